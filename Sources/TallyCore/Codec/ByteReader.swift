/// Reads big-endian primitives from a byte array, checking every bound before touching a byte.
///
/// The input is treated as hostile (a damaged disk, a tampered archive): every read throws
/// `EventCodecError` instead of trapping, no integer conversion can overflow, and no length or count
/// read from the input can make the reader allocate more than the field's limit allows. Field names are
/// autoclosures so that the text of an error is only built when there is an error: a record has dozens of
/// fields, and decoding one must not allocate a string per field.
public struct ByteReader {
    /// The input, read in place (a record decoded out of a larger buffer is not copied first).
    private let bytes: ArraySlice<UInt8>
    /// Where the next read starts, counted from the first byte of the input.
    public private(set) var offset: Int
    /// Scope paths read before by this thread's decoder, if it keeps them (`ScopePathCache`).
    public var scopePaths: ScopePathCache?

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
        offset = 0
    }

    /// Reads part of a larger buffer; offsets (and those in errors) count from the slice's first byte.
    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        offset = 0
    }

    public var remainingCount: Int { bytes.count - offset }

    /// Throws `truncated` unless `count` more bytes are available; `count` is never negative here.
    private func require(_ count: Int, _ field: @autoclosure () -> String) throws(EventCodecError) {
        guard remainingCount >= count else {
            throw EventCodecError(
                .truncated, offset: offset,
                reason: "truncated at offset \(offset) reading \(field()) "
                    + "(needs \(count) bytes, \(remainingCount) left)")
        }
    }

    /// Reads `width` bytes as one big-endian unsigned integer (width at most 8).
    private mutating func readBigEndian(
        _ width: Int, _ field: @autoclosure () -> String
    ) throws(EventCodecError) -> UInt64 {
        try require(width, field())
        // One load of the bytes in place, checked above: a loop of subscripts checks every byte's index again.
        let start = offset
        offset += width
        return bytes.withUnsafeBytes { buffer in
            switch width {
            case 8: return UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: start, as: UInt64.self))
            case 4: return UInt64(UInt32(bigEndian: buffer.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
            case 2: return UInt64(UInt16(bigEndian: buffer.loadUnaligned(fromByteOffset: start, as: UInt16.self)))
            case 1: return UInt64(buffer[start])
            default:
                var value: UInt64 = 0
                for index in start..<(start + width) { value = value << 8 | UInt64(buffer[index]) }
                return value
            }
        }
    }

    public mutating func readU8(_ field: @autoclosure () -> String) throws(EventCodecError) -> UInt8 {
        UInt8(truncatingIfNeeded: try readBigEndian(1, field()))
    }

    /// An unsigned LEB128 integer as `ByteWriter.writeVarint` writes it: at most ten bytes, the tenth carrying only
    /// the top bit of a u64; anything else is damage.
    public mutating func readVarint(_ field: @autoclosure () -> String) throws(EventCodecError) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var done = false
        while !done {
            let byte = try readU8(field())
            guard shift < 63 || (shift == 63 && byte <= 1) else {
                throw EventCodecError(.valueOutOfRange, offset: start, reason: "\(field()) at offset \(start) is a varint over 64 bits")
            }
            value |= UInt64(byte & 0x7f) << shift
            shift += 7
            done = byte & 0x80 == 0
        }
        return value
    }

    /// A signed integer as `ByteWriter.writeZigZag` writes it.
    public mutating func readZigZag(_ field: @autoclosure () -> String) throws(EventCodecError) -> Int64 {
        ZigZag.decode(try readVarint(field()))
    }

    /// The next byte, left to be read again.
    mutating func peekU8(_ field: @autoclosure () -> String) throws(EventCodecError) -> UInt8 {
        let start = offset
        defer { offset = start }
        return try readU8(field())
    }

    public mutating func readU16(_ field: @autoclosure () -> String) throws(EventCodecError) -> UInt16 {
        UInt16(truncatingIfNeeded: try readBigEndian(2, field()))
    }

    public mutating func readU32(_ field: @autoclosure () -> String) throws(EventCodecError) -> UInt32 {
        UInt32(truncatingIfNeeded: try readBigEndian(4, field()))
    }

    public mutating func readU64(_ field: @autoclosure () -> String) throws(EventCodecError) -> UInt64 {
        try readBigEndian(8, field())
    }

    public mutating func readI64(_ field: @autoclosure () -> String) throws(EventCodecError) -> Int64 {
        Int64(bitPattern: try readBigEndian(8, field()))
    }

    /// An `Int` stored as i64; only a 32-bit platform could see a value that does not fit.
    public mutating func readInt(_ field: @autoclosure () -> String) throws(EventCodecError) -> Int {
        let start = offset
        return try Self.int(try readI64(field()), readAt: start, field())
    }

    /// `value`, read at `start`, as an `Int`: only a 32-bit platform could see one that does not fit.
    static func int(_ value: Int64, readAt start: Int, _ field: @autoclosure () -> String) throws(EventCodecError) -> Int {
        guard let result = Int(exactly: value) else {
            throw EventCodecError(.valueOutOfRange, offset: start, reason: "\(field()) \(value) does not fit in Int")
        }
        return result
    }

    /// Exactly 0 or 1: any other byte would give a second encoding of the same value.
    public mutating func readBool(_ field: @autoclosure () -> String) throws(EventCodecError) -> Bool {
        let start = offset
        switch try readU8(field()) {
        case 0: return false
        case 1: return true
        case let other:
            throw EventCodecError(
                .invalidFlag, offset: start, reason: "\(field()) at offset \(start) is \(other), not 0 or 1")
        }
    }

    public mutating func readRawBytes(
        _ count: Int, _ field: @autoclosure () -> String
    ) throws(EventCodecError) -> ArraySlice<UInt8> {
        precondition(count >= 0, "a byte count comes from a checked length, never straight from input")
        try require(count, field())
        defer { offset += count }
        return bytes[(bytes.startIndex + offset)..<(bytes.startIndex + offset + count)]
    }

    /// A scope path (u32 length, UTF-8) that `cache` holds, read past; nil (nothing read) when it holds
    /// none with these bytes, or they are not a well-formed string field at all (the full read reports that).
    mutating func cachedScopePath(_ cache: ScopePathCache) -> ScopePath? {
        guard remainingCount >= 4 else { return nil }
        let length = bytes.withUnsafeBytes { Int(UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
        guard length <= remainingCount - 4 else { return nil }
        let start = offset + 4
        guard let path = bytes.withUnsafeBytes({ cache.path(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }) else { return nil }
        offset = start + length
        return path
    }

    /// Calls `body` with the input's bytes `start..<end` (offsets from the first byte of the input).
    func rawBytes(from start: Int, to end: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
    }

    /// A u32 byte length, then that many bytes of well-formed UTF-8, kept byte for byte.
    ///
    /// The length is compared with the field's limit before anything is allocated. Validation rejects
    /// overlong forms, surrogates and values above U+10FFFF, exactly as Swift's own decoder does, so the
    /// resulting `String` holds the same bytes and re-encodes to them.
    public mutating func readString(
        _ field: @autoclosure () -> String, bytesMax: Int
    ) throws(EventCodecError) -> String {
        try text(of: readStringBytes(field(), bytesMax: bytesMax), field())
    }

    /// A reservation id written as a string field (`readString`'s checks), without making a `String` of a UUID.
    public mutating func readReservationID(
        _ field: @autoclosure () -> String, bytesMax: Int
    ) throws(EventCodecError) -> ReservationID {
        let utf8 = try readStringBytes(field(), bytesMax: bytesMax)
        if let id = utf8.withUnsafeBytes({ ReservationID.parseUUID($0) }) { return id }
        return ReservationID(try text(of: utf8, field()))  // any other text: the string's UTF-8 checks
    }

    /// The field's bytes as a `String`, refused unless they are well-formed UTF-8.
    private func text(of utf8: ArraySlice<UInt8>, _ field: @autoclosure () -> String) throws(EventCodecError) -> String {
        // Almost every string in the log is ASCII, which is valid UTF-8 as it is: one cheap pass decides,
        // and only other text pays for the scalar-by-scalar check.
        let isASCII = utf8.withUnsafeBufferPointer { bytes in bytes.allSatisfy { $0 < 0x80 } }
        if !isASCII, let invalid = ByteReader.firstInvalidUTF8Index(utf8) {
            let bad = invalid - bytes.startIndex
            throw EventCodecError(.invalidUTF8, offset: bad, reason: "\(field()) has invalid UTF-8 at offset \(bad)")
        }
        return utf8.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
    }

    /// A string field's bytes (u32 length, checked against the limit before anything is read), unchecked as text.
    private mutating func readStringBytes(
        _ field: @autoclosure () -> String, bytesMax: Int
    ) throws(EventCodecError) -> ArraySlice<UInt8> {
        let start = offset
        let length = try readU32("\(field()) length")
        guard UInt64(length) <= UInt64(bytesMax) else {
            throw EventCodecError(
                .stringTooLong, offset: start,
                reason: "\(field()) at offset \(start) declares \(length) bytes, over its limit of \(bytesMax)")
        }
        return try readRawBytes(Int(length), field())
    }

    /// The index of the first byte that does not start a well-formed scalar, or nil if all are well formed.
    private static func firstInvalidUTF8Index(_ utf8: ArraySlice<UInt8>) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = utf8.makeIterator()
        var index = utf8.startIndex
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): index += scalar.count
            case .emptyInput: return nil
            case .error: return index
            }
        }
    }

    /// A u16 element count, checked against the field's limit before the caller reserves anything.
    public mutating func readCount(_ field: @autoclosure () -> String, countMax: Int) throws(EventCodecError) -> Int {
        let start = offset
        let count = Int(try readU16("\(field()) count"))
        guard count <= countMax else {
            throw EventCodecError(
                .countTooLarge, offset: start,
                reason: "\(field()) at offset \(start) has \(count) elements, over its limit of \(countMax)")
        }
        return count
    }

    /// A presence byte (exactly 0 or 1), then the value when present. (Inlinable, like the other generic
    /// helpers here and in `ByteWriter`, so that callers in other modules specialize it.)
    @inlinable
    public mutating func readOptional<Value>(
        _ field: @autoclosure () -> String, _ readValue: (inout ByteReader) throws(EventCodecError) -> Value
    ) throws(EventCodecError) -> Value? {
        guard try readBool("\(field()) presence") else { return nil }
        return try readValue(&self)
    }

    @inlinable
    public mutating func readArray<Element>(
        _ field: @autoclosure () -> String, countMax: Int,
        _ readElement: (inout ByteReader) throws(EventCodecError) -> Element
    ) throws(EventCodecError) -> [Element] {
        let count = try readCount(field(), countMax: countMax)
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try readElement(&self)) }
        return elements
    }

    /// A one-byte raw value of a closed enumeration; an unknown value is an error, never a default.
    @inlinable
    public mutating func readEnum<Value: RawRepresentable>(
        _ type: Value.Type, _ field: @autoclosure () -> String
    ) throws(EventCodecError) -> Value where Value.RawValue == UInt8 {
        let start = offset
        let raw = try readU8(field())
        guard let value = Value(rawValue: raw) else {
            throw EventCodecError(
                .unknownEnumValue, offset: start, reason: "\(field()) at offset \(start) has unknown value \(raw)")
        }
        return value
    }

    public mutating func readOptionalI64(_ field: @autoclosure () -> String) throws(EventCodecError) -> Int64? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in try reader.readI64(field()) }
    }

    public mutating func readOptionalString(
        _ field: @autoclosure () -> String, bytesMax: Int
    ) throws(EventCodecError) -> String? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readString(field(), bytesMax: bytesMax)
        }
    }

    /// Throws `trailingBytes` unless every byte has been consumed.
    public func expectEnd(_ context: @autoclosure () -> String) throws(EventCodecError) {
        guard remainingCount == 0 else {
            throw EventCodecError(
                .trailingBytes, offset: offset,
                reason: "\(remainingCount) trailing bytes at offset \(offset) after \(context())")
        }
    }
}

/// Zig-zag maps signed integers to unsigned ones so that small magnitudes of either sign stay small (0, -1, 1, -2,
/// 2, ... become 0, 1, 2, 3, 4, ...), for LEB128.
public enum ZigZag {
    @inlinable public static func encode(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
    @inlinable public static func decode(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }
}
