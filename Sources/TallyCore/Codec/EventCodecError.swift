/// Why a byte sequence is not a valid event record, and where the decoder noticed.
///
/// Malformed input is an operating failure (STYLE principle 5), so it is thrown, never a crash. The offset
/// counts from the first byte of the record, so an operator can find the damage with a hex dump of the
/// stored value; the reason is a sentence that names the field being read.
public struct EventCodecError: Error, Hashable, CustomStringConvertible {
    /// The class of failure, for code that must react differently (tests, `tally verify` summaries).
    public var kind: Kind
    /// Byte offset within the record where the offending field or byte starts.
    public var offset: Int
    /// A sentence for a person, e.g. "truncated at offset 17 reading amount (needs 8 bytes, 3 left)".
    public var reason: String

    public enum Kind: UInt8, CaseIterable, Sendable, Hashable {
        /// The input ended (or the declared body ended) before a field was complete.
        case truncated = 1
        /// The first byte names a format version this reader does not implement.
        case unsupportedVersion = 2
        /// The type byte names no known event.
        case unknownEventType = 3
        /// An enumeration byte (unit, status, caller tag, permission...) names no known case.
        case unknownEnumValue = 4
        /// A boolean or presence byte is neither 0 nor 1.
        case invalidFlag = 5
        /// A string's declared byte length is above that field's limit.
        case stringTooLong = 6
        /// An array or dictionary count is above that field's limit.
        case countTooLarge = 7
        /// A string's bytes are not well-formed UTF-8.
        case invalidUTF8 = 8
        /// A scope path does not satisfy the `ScopePath` invariants.
        case invalidScopePath = 9
        /// Dictionary keys are not in strictly increasing byte order, or two keys are equal as strings.
        case nonCanonicalKeys = 10
        /// A number does not fit the Swift type it is read into.
        case valueOutOfRange = 11
        /// Bytes are left over after the last field.
        case trailingBytes = 12
    }

    public init(_ kind: Kind, offset: Int, reason: String) {
        self.kind = kind
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "invalid event record: \(reason)" }
}
