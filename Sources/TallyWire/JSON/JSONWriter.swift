import TallyCore

/// Appends compact JSON to a byte buffer without building a `JSONValue` tree first, for hot paths.
///
/// The writer places commas itself: it keeps one "no element yet" flag per open container and remembers
/// when a key has just been written, so callers only say what comes next. It does not check that calls
/// nest correctly beyond crashing on an unmatched `end`, which is a programming error, not bad input.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8]
    /// One flag per open container: true until its first element or member is written.
    private var containerIsEmpty: [Bool] = []
    /// True between `key(_:)` and the value that belongs to it, which must not get a comma.
    private var afterKey = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
        containerIsEmpty.reserveCapacity(8)
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        containerIsEmpty.append(true)
    }

    public mutating func endObject() {
        close(UInt8(ascii: "}"))
    }

    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        containerIsEmpty.append(true)
    }

    public mutating func endArray() {
        close(UInt8(ascii: "]"))
    }

    /// Writes the comma if needed, then `"name":`.
    public mutating func key(_ name: String) {
        separate()
        appendQuoted(name)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// As `key(_:)` for a name written in the caller's source, which never needs escaping: its bytes are
    /// copied as they are (response shapes write dozens of keys per answer).
    public mutating func key(literal name: StaticString) {
        assert(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount).allSatisfy { $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C })
        separate()
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    public mutating func string(_ value: String) {
        separate()
        appendQuoted(value)
    }

    /// A reservation id as a JSON string: a UUID's text needs no escapes and is written from its bits.
    public mutating func string(_ id: ReservationID) {
        guard id.uuid != nil else { return string(id.description) }
        separate()
        bytes.append(UInt8(ascii: "\""))
        id.withUTF8 { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
    }

    public mutating func integer(_ value: Int64) {
        separate()
        appendDecimal(value)
    }

    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: Self.nullBytes)
    }

    /// Embeds a value, serialized as `JSONValue.serialized()` describes.
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .integer(let number): integer(number)
        case .number(let text):
            separate()
            bytes.append(contentsOf: text.utf8)
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for member in members {
                key(member.name)
                self.value(member.value)
            }
            endObject()
        }
    }

    private static let trueBytes: [UInt8] = Array("true".utf8)
    private static let falseBytes: [UInt8] = Array("false".utf8)
    private static let nullBytes: [UInt8] = Array("null".utf8)
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Writes the comma that precedes every element but the first, except right after a key.
    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = containerIsEmpty.indices.last else { return }
        if containerIsEmpty[last] {
            containerIsEmpty[last] = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
    }

    private mutating func close(_ bracket: UInt8) {
        precondition(containerIsEmpty.popLast() != nil, "JSONWriter: end without a matching begin")
        afterKey = false
        bytes.append(bracket)
    }

    /// Appends a quoted string, copying runs that need no escape in one go.
    private mutating func appendQuoted(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = value
        text.withUTF8 { utf8 in
            var runStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                appendEscape(byte)
                runStart = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendEscape(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "\n"): bytes.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): bytes.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): bytes.append(UInt8(ascii: "t"))
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        default:
            bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
            bytes.append(Self.hexDigits[Int(byte >> 4)])
            bytes.append(Self.hexDigits[Int(byte & 0x0F)])
        }
    }

    /// Decimal digits without going through `String`, since amounts are written on every response. Most
    /// significant digit first, straight into `bytes` (reversing a slice of them afterwards copies the array).
    private mutating func appendDecimal(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        let magnitude = value.magnitude
        var divisor: UInt64 = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
            divisor /= 10
        } while divisor != 0
    }
}
