/// A reservation's id: a UUID the server made (`tallyd` makes version 7 ids), held as its 128 bits.
///
/// The writer looks reservations up by id about ten times per operation (the command's reservation, the
/// touched set, eviction's checks, the expiry index, the answer), and events, commands and replies carry
/// the id from the network thread to the flusher. As a 36-byte `String` each of those was a hash of 36
/// bytes, a compare of them and a retain and release of a heap object per copy (9-10% of the writer's
/// CPU at 16 x 64, BENCHMARKS.md); as two words it is none of that. The text is written out only where
/// bytes leave the process: the log, the projections' keys and records, the wire and JSON.
///
/// Any other text (ids a client made up, a test's `"r1"`) is kept as it is: ids are compared, hashed,
/// ordered and encoded exactly as their text would be. A canonical UUID text (lower-case hex, dashes at
/// 8, 13, 18 and 23) is always held as its bits, so one id has one form and equality is the text's.
public struct ReservationID: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringInterpolation {
    @usableFromInline
    enum Form: Sendable {
        case uuid(high: UInt64, low: UInt64)
        case text(String)
    }

    @usableFromInline let form: Form

    /// The UUID with these bits (`high` holds the first 8 bytes, big-endian).
    @inlinable
    public init(high: UInt64, low: UInt64) { form = .uuid(high: high, low: low) }

    /// The id written as `text`.
    public init(_ text: String) {
        var text = text
        form = text.withUTF8 { Self.parse(UnsafeRawBufferPointer($0)) } ?? .text(text)
    }

    public init(stringLiteral text: String) { self.init(text) }

    /// The id whose text is these bytes, or nil when they are not valid UTF-8.
    public init?(utf8 bytes: UnsafeRawBufferPointer) {
        if let parsed = Self.parse(bytes) {
            form = parsed
        } else if let text = String(validating: bytes, as: UTF8.self) {
            form = .text(text)
        } else {
            return nil
        }
    }

    /// The UUID's two words when the id is a canonical UUID text, nil otherwise.
    public var uuid: (high: UInt64, low: UInt64)? {
        if case .uuid(let high, let low) = form { (high, low) } else { nil }
    }

    public var description: String {
        switch form {
        case .uuid(let high, let low):
            String(unsafeUninitializedCapacity: Self.uuidTextCount) { Self.format(high, low, into: UnsafeMutableRawBufferPointer($0)) }
        case .text(let text):
            text
        }
    }

    /// The number of UTF-8 bytes of the text.
    public var utf8Count: Int {
        switch form {
        case .uuid: Self.uuidTextCount
        case .text(let text): text.utf8.count
        }
    }

    /// The number of Unicode scalars of the text (the length the limits count).
    public var scalarCount: Int {
        switch form {
        case .uuid: Self.uuidTextCount
        case .text(let text): text.unicodeScalars.count
        }
    }

    public var isEmpty: Bool { utf8Count == 0 }

    /// Calls `body` with the text's UTF-8 bytes (on the stack for a UUID: nothing is allocated).
    @inlinable
    public func withUTF8<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        switch form {
        case .uuid(let high, let low):
            var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
            return try withUnsafeMutableBytes(of: &buffer) { raw in
                let count = Self.format(high, low, into: raw)
                return try body(UnsafeRawBufferPointer(rebasing: raw[..<count]))
            }
        case .text(var text):
            return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        }
    }

    public static func == (left: ReservationID, right: ReservationID) -> Bool {
        switch (left.form, right.form) {
        case (.uuid(let leftHigh, let leftLow), .uuid(let rightHigh, let rightLow)): leftHigh == rightHigh && leftLow == rightLow
        case (.text(let leftText), .text(let rightText)): leftText == rightText
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch form {
        case .uuid(let high, let low):
            hasher.combine(high)
            hasher.combine(low)
        case .text(let text):
            hasher.combine(text)
        }
    }

    /// A UUID's own bits mixed with the table's seed (`KeyHash`: `tallyd`'s ids are random but for the
    /// creation time); any other text hashes as its `String` does.
    public func _rawHashValue(seed: Int) -> Int {
        switch form {
        case .uuid(let high, let low): KeyHash.mix(low ^ high &* 0x9E37_79B9_7F4A_7C15, seed: seed)
        case .text(let text): text._rawHashValue(seed: seed)
        }
    }

    /// The order of the texts: for two UUIDs that is the order of their bits (fixed-width lower-case hex).
    public static func < (left: ReservationID, right: ReservationID) -> Bool {
        if case .uuid(let leftHigh, let leftLow) = left.form, case .uuid(let rightHigh, let rightLow) = right.form {
            return (leftHigh, leftLow) < (rightHigh, rightLow)
        }
        return left.description < right.description
    }

    // MARK: - Text

    @usableFromInline static let uuidTextCount = 36

    /// Writes the canonical text (36 bytes) to the start of `buffer`, which has room for it; returns 36.
    @usableFromInline
    static func format(_ high: UInt64, _ low: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        precondition(buffer.count >= uuidTextCount)
        #if _endian(little)
        // Eight digits at a time (`hexDigits`), stored as words: the id's text is written about five times per
        // operation (the log, the projections' keys and records, the answer), one digit at a time it was 2% of
        // the writer.
        let base = buffer.baseAddress!
        let second = hexDigits(UInt32(truncatingIfNeeded: high))
        let third = hexDigits(UInt32(truncatingIfNeeded: low >> 32))
        base.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: high >> 32)), toByteOffset: 0, as: UInt64.self)
        base.storeBytes(of: UInt32(truncatingIfNeeded: second), toByteOffset: 9, as: UInt32.self)
        base.storeBytes(of: UInt32(truncatingIfNeeded: second >> 32), toByteOffset: 14, as: UInt32.self)
        base.storeBytes(of: UInt32(truncatingIfNeeded: third), toByteOffset: 19, as: UInt32.self)
        base.storeBytes(of: UInt32(truncatingIfNeeded: third >> 32), toByteOffset: 24, as: UInt32.self)
        base.storeBytes(of: hexDigits(UInt32(truncatingIfNeeded: low)), toByteOffset: 28, as: UInt64.self)
        buffer[8] = UInt8(ascii: "-")
        buffer[13] = UInt8(ascii: "-")
        buffer[18] = UInt8(ascii: "-")
        buffer[23] = UInt8(ascii: "-")
        return uuidTextCount
        #else
        return formatByDigit(high, low, into: buffer)
        #endif
    }

    /// The eight lower-case hex digits of `value` as the bytes of a word stored little-endian (the most
    /// significant digit first in memory): each nibble is spread into a byte of its own, then `0`-`9` and
    /// `a`-`f` are made in every byte at once (a byte of 10 or more gets the distance from `9` + 1 to `a`).
    @inline(__always)
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var nibbles = UInt64(value)
        nibbles = (nibbles | nibbles << 16) & 0x0000_FFFF_0000_FFFF
        nibbles = (nibbles | nibbles << 8) & 0x00FF_00FF_00FF_00FF
        nibbles = (nibbles | nibbles << 4) & 0x0F0F_0F0F_0F0F_0F0F  // nibble k of `value` in byte k
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101  // 1 where 10 or more
        return (nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 0x27).byteSwapped  // "0" + n, or "a" + n - 10
    }

    /// `format` one digit at a time (big-endian machines, and the tests' reference).
    static func formatByDigit(_ high: UInt64, _ low: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var cursor = 0
        func hex(_ value: UInt64, nibbles: Int, from top: Int) {
            for index in 0..<nibbles {
                let nibble = UInt8(truncatingIfNeeded: value >> UInt64(4 * (top - index))) & 0x0F
                buffer[cursor] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                cursor += 1
            }
        }
        func dash() {
            buffer[cursor] = UInt8(ascii: "-")
            cursor += 1
        }
        hex(high, nibbles: 8, from: 15)
        dash()
        hex(high, nibbles: 4, from: 7)
        dash()
        hex(high, nibbles: 4, from: 3)
        dash()
        hex(low, nibbles: 4, from: 15)
        dash()
        hex(low, nibbles: 12, from: 11)
        return cursor
    }

    /// The id of a canonical UUID text, nil for any other bytes.
    static func parseUUID(_ bytes: UnsafeRawBufferPointer) -> ReservationID? {
        parse(bytes).map { ReservationID(form: $0) }
    }

    private init(form: Form) { self.form = form }

    /// The UUID form of a canonical text: 36 bytes, lower-case hex digits, dashes at 8, 13, 18 and 23.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> Form? {
        guard bytes.count == uuidTextCount else { return nil }
        #if _endian(little)
        // Eight digits at a time (`hexValue`): parsing ids one byte at a time was 2% of the event loops.
        guard bytes[8] == UInt8(ascii: "-"), bytes[13] == UInt8(ascii: "-"), bytes[18] == UInt8(ascii: "-"),
              bytes[23] == UInt8(ascii: "-") else { return nil }
        let base = bytes.baseAddress!
        func word(_ offset: Int) -> UInt64 { base.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        func half(_ offset: Int) -> UInt64 { UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        guard let first = hexValue(word(0)), let second = hexValue(half(9) | half(14) << 32),
              let third = hexValue(half(19) | half(24) << 32), let fourth = hexValue(word(28)) else { return nil }
        return .uuid(high: first << 32 | second, low: third << 32 | fourth)
        #else
        return parseByDigit(bytes)
        #endif
    }

    /// The value of eight lower-case hex digits read as a little-endian word (the first digit in the lowest
    /// byte), nil unless every byte is `0`-`9` or `a`-`f`. Each byte is range-checked in its own lane (no byte
    /// has its top bit set, so no lane carries into the next), then the digits' values are packed together.
    @inline(__always)
    static func hexValue(_ word: UInt64) -> UInt64? {
        let lanes: UInt64 = 0x0101_0101_0101_0101
        let top = lanes &* 0x80
        guard word & top == 0 else { return nil }
        func atLeast(_ bound: UInt64) -> UInt64 { (word &+ lanes &* (0x80 - bound)) & top }
        func atMost(_ bound: UInt64) -> UInt64 { (lanes &* (0x80 + bound) &- word) & top }
        let digit = atLeast(0x30) & atMost(0x39)
        let letter = atLeast(0x61) & atMost(0x66)
        guard digit | letter == top else { return nil }
        var value = ((word & 0x0F0F_0F0F_0F0F_0F0F) &+ (letter >> 7) &* 9).byteSwapped  // first digit's nibble on top
        value = (value | value >> 4) & 0x00FF_00FF_00FF_00FF
        value = (value | value >> 8) & 0x0000_FFFF_0000_FFFF
        return (value | value >> 16) & 0xFFFF_FFFF
    }

    /// `parse` one byte at a time (big-endian machines, and the tests' reference).
    static func parseByDigit(_ bytes: UnsafeRawBufferPointer) -> Form? {
        guard bytes.count == uuidTextCount else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var digits = 0
        for index in 0..<uuidTextCount {
            let byte = bytes[index]
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            if digits < 16 {
                high = high << 4 | UInt64(value)
            } else {
                low = low << 4 | UInt64(value)
            }
            digits += 1
        }
        return .uuid(high: high, low: low)
    }
}
