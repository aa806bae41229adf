/// An operating failure of the archive layer (thrown, STYLE principle 5), always naming the file and,
/// where one is known, the byte offset in it and the event sequence, so an operator can find the damage.
public struct ArchiveError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Reading, writing, syncing or renaming a file failed.
        case io
        /// The bytes of a file are not a valid segment or checkpoint (magic, CRC, lengths, encoding).
        case corrupt
        /// A file declares a format version this reader does not implement.
        case unsupportedVersion
        /// A declared size is over its limit (`ArchiveLimits`); nothing was allocated for it.
        case limitExceeded
        /// Segments or the live log do not follow each other (gap, overlap, broken chain link).
        case discontinuous
        /// The archive or the log does not reach the requested sequence or instant.
        case notFound
    }

    public var kind: Kind
    /// The file concerned (a path), or empty when none applies.
    public var file: String
    /// Byte offset in the file (or in the decompressed payload, as the message says), when known.
    public var offset: Int?
    /// The event sequence concerned, when known.
    public var sequence: UInt64?
    public var message: String

    public init(_ kind: Kind, file: String, offset: Int? = nil, sequence: UInt64? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.offset = offset
        self.sequence = sequence
        self.message = message
    }

    public var description: String {
        var place = file.isEmpty ? "" : file
        if let offset { place += place.isEmpty ? "offset \(offset)" : " at offset \(offset)" }
        if let sequence { place += place.isEmpty ? "sequence \(sequence)" : " (sequence \(sequence))" }
        return place.isEmpty ? message : "\(place): \(message)"
    }
}
