/// Appends big-endian primitives to a growing byte array.
///
/// Writing never fails: the values come from `decide`, which has already refused anything out of bounds.
/// A value that is still over a limit here is a broken invariant, and crashing before it reaches the log
/// is better than writing a record that no reader will accept (STYLE principle 5). Field names are
/// autoclosures because they are only needed in that crash message.
public struct ByteWriter: Sendable {
    /// What has been written. (Stored under another name so that the small writes below can be inlinable:
    /// codecs in other modules, the wire's and the archive's, then append in place instead of calling here
    /// for every byte and integer.)
    public var bytes: [UInt8] { written }
    @usableFromInline var written: [UInt8]

    public init(capacity: Int = 256) {
        written = []
        written.reserveCapacity(capacity)
    }

    /// Appends to `bytes` (taken over, not copied when nothing else holds them): lets a caller encode
    /// straight into a buffer it keeps, then take it back with `takeBytes()`.
    public init(appendingTo bytes: consuming [UInt8]) {
        written = bytes
    }

    /// Hands the buffer back, leaving this writer empty.
    public mutating func takeBytes() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &written)
        return taken
    }

    public var count: Int { written.count }

    /// Makes room for `capacity` bytes in all (nothing when there is room already).
    public mutating func reserveCapacity(_ capacity: Int) { written.reserveCapacity(capacity) }

    @inlinable
    public mutating func writeU8(_ value: UInt8) { written.append(value) }

    // Wider integers are appended as one block of their big-endian bytes: one capacity check and one copy
    // instead of one per byte (these are the hottest calls of every codec).
    @inlinable
    public mutating func writeU16(_ value: UInt16) { appendBigEndian(value) }

    @inlinable
    public mutating func writeU32(_ value: UInt32) { appendBigEndian(value) }

    @inlinable
    public mutating func writeU64(_ value: UInt64) { appendBigEndian(value) }

    /// An unsigned LEB128 integer: seven bits a byte, low bits first, the top bit set on every byte but the last.
    public mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            writeU8(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        writeU8(UInt8(rest))
    }

    /// A signed integer as the LEB128 of its zig-zag form (`ZigZag`): small magnitudes of either sign take a byte.
    public mutating func writeZigZag(_ value: Int64) { writeVarint(ZigZag.encode(value)) }

    @inlinable
    mutating func appendBigEndian<Value: FixedWidthInteger>(_ value: Value) {
        withUnsafeBytes(of: value.bigEndian) { written.append(contentsOf: $0) }
    }

    /// Two's complement, so `Int64.min` and `Int64.max` need no special case.
    @inlinable
    public mutating func writeI64(_ value: Int64) { writeU64(UInt64(bitPattern: value)) }

    @inlinable
    public mutating func writeBool(_ value: Bool) { written.append(value ? 1 : 0) }

    public mutating func writeBytes(_ raw: some Sequence<UInt8>) { written.append(contentsOf: raw) }

    /// Overwrites four bytes written earlier; used to fill in a length once the body is known.
    public mutating func overwriteU32(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= written.count, "overwriteU32 outside the written bytes")
        for index in 0..<4 {
            written[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * index))
        }
    }

    /// Overwrites eight bytes written earlier (big-endian, as `writeU64`).
    public mutating func overwriteU64(_ value: UInt64, at offset: Int) {
        precondition(offset >= 0 && offset + 8 <= written.count, "overwriteU64 outside the written bytes")
        for index in 0..<8 {
            written[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * index))
        }
    }

    /// A u32 byte length, then the UTF-8 bytes.
    public mutating func writeString(_ value: String, bytesMax: Int, field: @autoclosure () -> String) {
        let length = value.utf8.count
        precondition(length <= bytesMax, "\(field()) is \(length) bytes, over the codec limit of \(bytesMax)")
        writeU32(UInt32(truncatingIfNeeded: length))
        // Through the contiguous UTF-8, borrowed (native strings have it): appending the `utf8` view goes
        // element by element through the generic sequence path, and `withUTF8` needs a mutable copy (a
        // retain and a release of the string per call).
        if value.utf8.withContiguousStorageIfAvailable({ written.append(contentsOf: $0) }) != nil { return }
        var text = value
        text.withUTF8 { written.append(contentsOf: $0) }
    }

    /// A reservation id as its text (a u32 byte length, then the UTF-8 bytes, exactly as `writeString` of
    /// the text): a UUID is written straight from its bits.
    public mutating func writeReservationID(_ id: ReservationID, bytesMax: Int, field: @autoclosure () -> String) {
        id.withUTF8 { text in
            precondition(text.count <= bytesMax, "\(field()) is \(text.count) bytes, over the codec limit of \(bytesMax)")
            writeU32(UInt32(truncatingIfNeeded: text.count))
            written.append(contentsOf: text)
        }
    }

    /// A u16 element count; every caller then writes that many elements.
    public mutating func writeCount(_ count: Int, countMax: Int, field: @autoclosure () -> String) {
        precondition(countMax <= Int(UInt16.max), "\(field()): a count limit must fit in u16")
        precondition(count <= countMax, "\(field()) has \(count) elements, over the codec limit of \(countMax)")
        writeU16(UInt16(truncatingIfNeeded: count))
    }

    /// A presence byte (0 absent, 1 present), then the value when present. The generic helpers are
    /// inlinable so that the codecs in other modules specialize them: an unspecialized call looks up the
    /// generic type's metadata at run time, on every field of every request.
    @inlinable
    public mutating func writeOptional<Value>(_ value: Value?, _ writeValue: (inout ByteWriter, Value) -> Void) {
        guard let value else { return writeU8(0) }
        writeU8(1)
        writeValue(&self, value)
    }

    /// A u16 count, then each element.
    @inlinable
    public mutating func writeArray<Element>(
        _ elements: [Element], countMax: Int, field: @autoclosure () -> String,
        _ writeElement: (inout ByteWriter, Element) -> Void
    ) {
        writeCount(elements.count, countMax: countMax, field: field())
        for element in elements { writeElement(&self, element) }
    }

    public mutating func writeOptionalI64(_ value: Int64?) { writeOptional(value) { $0.writeI64($1) } }

    public mutating func writeOptionalString(_ value: String?, bytesMax: Int, field: @autoclosure () -> String) {
        writeOptional(value) { $0.writeString($1, bytesMax: bytesMax, field: field()) }
    }
}
