import TallyCore

// LEB128 integers: the deltas in a segment payload are mostly 0 or small, so one byte each. They are written with
// `ByteWriter.writeVarint` (TallyCore) and read here, where a payload is walked without a `ByteReader`.

/// A cursor over a decompressed payload that reads LEB128 integers with every bound checked.
struct PayloadCursor {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    /// At most ten bytes, and the tenth may only carry the top bit of a u64; anything else is damage.
    @inline(__always)
    mutating func readVarint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var done = false
        while !done {
            guard offset < bytes.count, shift < 64 else { return nil }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { return nil }
            value |= UInt64(byte & 0x7f) << shift
            shift += 7
            done = byte & 0x80 == 0
        }
        return value
    }

    @inline(__always)
    mutating func readU32() -> UInt32? {
        guard bytes.count - offset >= 4 else { return nil }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    @inline(__always)
    mutating func readU8() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }
}
