/// Why a byte string is not one strict RFC 8259 JSON document, and where.
///
/// Kept in the parser's file because nothing else throws it.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A short sentence such as `unexpected character 'x'` or `duplicate member "amount"`.
    public var message: String
    /// The byte offset in the input where the problem was found.
    public var offset: Int

    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset)" }
}

/// A strict JSON parser for bodies from untrusted clients.
///
/// Strict means RFC 8259 with nothing added (no comments, trailing commas, single quotes, NaN, leading zeros)
/// plus three rules of our own: strings must be valid UTF-8 with no unpaired surrogate escapes, objects must
/// not repeat a member name (two "amount"s would make the request mean whatever the last reader picks), and
/// nesting is bounded by `depthMax`, which also bounds the recursion so no input can overflow the stack.
/// Any input either parses or throws; nothing in here traps on input.
public enum JSONParser {
    /// Cycles request bodies nest four or five levels; 64 is generous and keeps recursion shallow.
    public static let depthMax = 64

    /// Parses exactly one JSON value surrounded by optional whitespace; anything else after it is an error.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(buffer) }
        }
        return try result.get()
    }

    /// Parses exactly one JSON value surrounded by optional whitespace; anything else after it is an error.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var reader = JSONReader(input: bytes)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.index == bytes.count else { throw reader.unexpected() }
        return value
    }
}

/// The parser's cursor: a byte buffer and an index, read by recursive descent.
///
/// Strings are decoded from slices of the input in one step; only strings with escapes are copied into a
/// scratch buffer first.
private struct JSONReader {
    let input: UnsafeRawBufferPointer
    var index = 0

    init(input: UnsafeRawBufferPointer) {
        self.input = input
    }

    /// Duplicate names are found by scanning below this many members and with a set above it, so a hostile
    /// object with a hundred thousand members costs linear time, not quadratic.
    static let linearDuplicateScanMax = 16

    mutating func skipWhitespace() {
        while index < input.count {
            switch input[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func readValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard index < input.count else { throw unexpected() }
        switch input[index] {
        case UInt8(ascii: "{"): return try readObject(depth: depth + 1)
        case UInt8(ascii: "["): return try readArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try readLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try readLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try readLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try readNumber()
        default: throw unexpected()
        }
    }

    // MARK: Containers

    mutating func readObject(depth: Int) throws(JSONParseError) -> JSONValue {
        try checkDepth(depth)
        index += 1
        var members: [JSONMember] = []
        members.reserveCapacity(4)  // what requests' objects hold; growing from empty took three allocations
        var names: Set<String> = []
        skipWhitespace()
        if index < input.count, input[index] == UInt8(ascii: "}") {
            index += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard index < input.count, input[index] == UInt8(ascii: "\"") else {
                throw index < input.count ? error("expected member name") : unexpected()
            }
            let nameOffset = index
            let name = try readString()
            if isDuplicate(name, in: members, names: &names) {
                throw JSONParseError(message: "duplicate member \(Self.quotedForMessage(name))", offset: nameOffset)
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "expected ':'")
            skipWhitespace()
            members.append(JSONMember(name, try readValue(depth: depth)))
            skipWhitespace()
            guard index < input.count else { throw unexpected() }
            switch input[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw error("expected ',' or '}'")
            }
        }
    }

    mutating func readArray(depth: Int) throws(JSONParseError) -> JSONValue {
        try checkDepth(depth)
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if index < input.count, input[index] == UInt8(ascii: "]") {
            index += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try readValue(depth: depth))
            skipWhitespace()
            guard index < input.count else { throw unexpected() }
            switch input[index] {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw error("expected ',' or ']'")
            }
        }
    }

    mutating func expect(_ byte: UInt8, _ message: String) throws(JSONParseError) {
        guard index < input.count else { throw unexpected() }
        guard input[index] == byte else { throw error(message) }
        index += 1
    }

    func checkDepth(_ depth: Int) throws(JSONParseError) {
        guard depth <= JSONParser.depthMax else {
            throw error("nesting deeper than \(JSONParser.depthMax) levels")
        }
    }

    /// Checks `name` against the members so far; `names` is filled only once the object grows past the
    /// linear-scan bound.
    func isDuplicate(_ name: String, in members: [JSONMember], names: inout Set<String>) -> Bool {
        if members.count < Self.linearDuplicateScanMax {
            return members.contains { $0.name == name }
        }
        if names.isEmpty {
            names.reserveCapacity(members.count * 2)
            for member in members { names.insert(member.name) }
        }
        return !names.insert(name).inserted
    }

    // MARK: Literals and numbers

    mutating func readLiteral(_ literal: StaticString) throws(JSONParseError) {
        let expected = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for byte in expected {
            guard index < input.count, input[index] == byte else { throw unexpected() }
            index += 1
        }
    }

    /// Reads a number, accumulating its magnitude with overflow checks; whatever is not a plain integer that
    /// fits `Int64` is kept as text.
    mutating func readNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        let negative = input[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < input.count, isDigit(input[index]) else { throw error("expected digit after '-'") }
        var magnitude: UInt64 = 0
        var overflowed = false
        if input[index] == UInt8(ascii: "0") {
            index += 1
            if index < input.count, isDigit(input[index]) { throw error("leading zero in number") }
        } else {
            while index < input.count, isDigit(input[index]) {
                let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(input[index] - UInt8(ascii: "0")))
                overflowed = overflowed || overflow1 || overflow2
                magnitude = sum
                index += 1
            }
        }
        let isInteger = try readFractionAndExponent()
        if isInteger, !overflowed {
            if negative, magnitude <= Int64.min.magnitude {
                return .integer(Int64(truncatingIfNeeded: 0 &- magnitude))
            }
            if !negative, magnitude <= UInt64(Int64.max) {
                return .integer(Int64(magnitude))
            }
        }
        return .number(String(decoding: UnsafeRawBufferPointer(rebasing: input[start..<index]), as: UTF8.self))
    }

    /// Reads an optional fraction and exponent; returns true when there was neither.
    mutating func readFractionAndExponent() throws(JSONParseError) -> Bool {
        var isInteger = true
        if index < input.count, input[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            try readDigits("expected digit after '.'")
        }
        if index < input.count, input[index] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            index += 1
            if index < input.count, input[index] == UInt8(ascii: "+") || input[index] == UInt8(ascii: "-") {
                index += 1
            }
            try readDigits("expected digit in exponent")
        }
        return isInteger
    }

    mutating func readDigits(_ message: String) throws(JSONParseError) {
        guard index < input.count, isDigit(input[index]) else { throw error(message) }
        while index < input.count, isDigit(input[index]) { index += 1 }
    }

    func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    // MARK: Errors

    func error(_ message: String) -> JSONParseError {
        JSONParseError(message: message, offset: index)
    }

    /// The error for a byte that cannot appear here, or for input that ends too early.
    func unexpected() -> JSONParseError {
        guard index < input.count else { return error("unexpected end of input") }
        return error("unexpected \(Self.describe(input[index]))")
    }

    /// Printable ASCII is shown as itself; other bytes by value, so error text stays one clean line.
    static func describe(_ byte: UInt8) -> String {
        if byte > 0x20, byte < 0x7F { return "character '\(Character(Unicode.Scalar(byte)))'" }
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x\(byte < 0x10 ? "0" : "")\(hex)"
    }

    /// A member name as it appears in an error: JSON-escaped and cut to 64 scalars, because it is client text
    /// that ends up in logs and responses.
    static func quotedForMessage(_ name: String) -> String {
        var writer = JSONWriter(capacity: 80)
        writer.string(String(name.unicodeScalars.prefix(64)))
        return String(decoding: writer.bytes, as: UTF8.self) + (name.unicodeScalars.count > 64 ? "…" : "")
    }

    // MARK: Strings

    /// Reads a string starting at its opening quote, validating UTF-8 as it goes.
    mutating func readString() throws(JSONParseError) -> String {
        let quoteOffset = index
        index += 1
        var runStart = index
        var unescaped: [UInt8] = []
        var hasEscape = false
        while index < input.count {
            let byte = input[index]
            if byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\"), byte != UInt8(ascii: "\"") {
                index += 1
            } else if byte == UInt8(ascii: "\"") {
                let run = UnsafeRawBufferPointer(rebasing: input[runStart..<index])
                index += 1
                guard hasEscape else { return String(decoding: run, as: UTF8.self) }
                unescaped.append(contentsOf: run)
                return String(decoding: unescaped, as: UTF8.self)
            } else if byte == UInt8(ascii: "\\") {
                if !hasEscape { unescaped.reserveCapacity(index - runStart + 16) }
                hasEscape = true
                unescaped.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[runStart..<index]))
                try readEscape(into: &unescaped)
                runStart = index
            } else if byte < 0x20 {
                throw error("unescaped control character in string")
            } else {
                try skipUTF8Sequence()
            }
        }
        throw JSONParseError(message: "unterminated string", offset: quoteOffset)
    }

    /// Steps over one multi-byte UTF-8 sequence, refusing overlong forms, surrogates and values above
    /// U+10FFFF (the well-formed table of Unicode 15, section 3.9, table 3-7).
    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let continuations: Int
        let secondRange: ClosedRange<UInt8>
        switch input[index] {
        case 0xC2...0xDF: (continuations, secondRange) = (1, 0x80...0xBF)
        case 0xE0: (continuations, secondRange) = (2, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (continuations, secondRange) = (2, 0x80...0xBF)
        case 0xED: (continuations, secondRange) = (2, 0x80...0x9F)
        case 0xF0: (continuations, secondRange) = (3, 0x90...0xBF)
        case 0xF1...0xF3: (continuations, secondRange) = (3, 0x80...0xBF)
        case 0xF4: (continuations, secondRange) = (3, 0x80...0x8F)
        default: throw error("invalid UTF-8")
        }
        guard index + continuations < input.count, secondRange.contains(input[index + 1]) else {
            throw error("invalid UTF-8")
        }
        for offset in stride(from: 2, through: continuations, by: 1) where input[index + offset] & 0xC0 != 0x80 {
            throw error("invalid UTF-8")
        }
        index += continuations + 1
    }

    /// Reads one escape starting at its backslash and appends what it stands for as UTF-8.
    mutating func readEscape(into unescaped: inout [UInt8]) throws(JSONParseError) {
        let escapeOffset = index
        guard index + 1 < input.count else {
            throw JSONParseError(message: "unexpected end of input", offset: input.count)
        }
        let replacement: UInt8
        switch input[index + 1] {
        case UInt8(ascii: "\""): replacement = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): replacement = UInt8(ascii: "\\")
        case UInt8(ascii: "/"): replacement = UInt8(ascii: "/")
        case UInt8(ascii: "b"): replacement = 0x08
        case UInt8(ascii: "f"): replacement = 0x0C
        case UInt8(ascii: "n"): replacement = 0x0A
        case UInt8(ascii: "r"): replacement = 0x0D
        case UInt8(ascii: "t"): replacement = 0x09
        case UInt8(ascii: "u"):
            let scalar = try readUnicodeEscape(escapeOffset: escapeOffset)
            Self.appendUTF8(scalar, to: &unescaped)
            return
        default: throw error("invalid escape sequence")
        }
        unescaped.append(replacement)
        index += 2
    }

    /// Reads `\uXXXX`, or a `\uD8xx\uDCxx` surrogate pair, and returns the scalar value.
    mutating func readUnicodeEscape(escapeOffset: Int) throws(JSONParseError) -> UInt32 {
        guard let first = hex4(at: index + 2) else { throw error("invalid \\u escape") }
        index += 6
        switch first {
        case 0xD800...0xDBFF:
            guard index + 1 < input.count, input[index] == UInt8(ascii: "\\"), input[index + 1] == UInt8(ascii: "u"),
                let second = hex4(at: index + 2), (0xDC00...0xDFFF).contains(second)
            else {
                throw JSONParseError(message: "unpaired surrogate escape", offset: escapeOffset)
            }
            index += 6
            return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        case 0xDC00...0xDFFF:
            throw JSONParseError(message: "unpaired surrogate escape", offset: escapeOffset)
        default:
            return first
        }
    }

    /// The value of four hex digits at `offset`, or nil when they are missing or not hex.
    func hex4(at offset: Int) -> UInt32? {
        guard offset >= 0, offset + 4 <= input.count else { return nil }
        var value: UInt32 = 0
        for position in offset..<(offset + 4) {
            let byte = input[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Encodes a scalar value that `readUnicodeEscape` produced (never a surrogate, at most U+10FFFF).
    static func appendUTF8(_ scalar: UInt32, to bytes: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            bytes.append(UInt8(truncatingIfNeeded: scalar))
        case 0x80..<0x800:
            bytes.append(0xC0 | UInt8(truncatingIfNeeded: scalar >> 6))
            bytes.append(0x80 | UInt8(truncatingIfNeeded: scalar) & 0x3F)
        case 0x800..<0x10000:
            bytes.append(0xE0 | UInt8(truncatingIfNeeded: scalar >> 12))
            bytes.append(0x80 | UInt8(truncatingIfNeeded: scalar >> 6) & 0x3F)
            bytes.append(0x80 | UInt8(truncatingIfNeeded: scalar) & 0x3F)
        default:
            bytes.append(0xF0 | UInt8(truncatingIfNeeded: scalar >> 18))
            bytes.append(0x80 | UInt8(truncatingIfNeeded: scalar >> 12) & 0x3F)
            bytes.append(0x80 | UInt8(truncatingIfNeeded: scalar >> 6) & 0x3F)
            bytes.append(0x80 | UInt8(truncatingIfNeeded: scalar) & 0x3F)
        }
    }
}
