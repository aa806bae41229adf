/// One member of a JSON object: a name and its value.
///
/// Objects are arrays of members rather than dictionaries so that source order survives a round trip and
/// responses are written in the order the Cycles API documents them.
public struct JSONMember: Sendable, Hashable {
    public var name: String
    public var value: JSONValue

    public init(_ name: String, _ value: JSONValue) {
        self.name = name
        self.value = value
    }
}

/// A JSON document as a value, for the Cycles-compatible HTTP gateway and benchmarks.
///
/// Numbers keep their exactness: a plain integer that fits `Int64` is `.integer`, and every other number is
/// `.number` with its source text, so amounts are never rounded through `Double` on the way in or out.
/// Invariant: a `.number` holds valid RFC 8259 number text (the parser guarantees it; code that builds one by
/// hand must too, because the writer copies it verbatim).
///
/// Not `indirect`: arrays already give the recursion its indirection, and boxing every case cost a heap
/// allocation per scalar (parsing a 370-byte reservation body took about 4.3 µs boxed, 2.9 µs unboxed).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number written without fraction or exponent that fits Int64.
    case integer(Int64)
    /// Any other number (fraction, exponent, or an integer outside Int64), kept as its exact source text.
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in source order; the parser refuses duplicate names.
    case object([JSONMember])

    /// Builds an object from a literal such as `.object(["id": .string(id), "amount": .integer(5)])`,
    /// keeping the literal's order (a dictionary literal of `[String: JSONValue]` would lose it).
    public static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { JSONMember($0.key, $0.value) })
    }

    /// The value of the first member named `name`, or nil when there is none or this is not an object.
    ///
    /// A linear scan: request bodies have a handful of members, and a scan beats building a dictionary.
    public subscript(name: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.name == name {
            return member.value
        }
        return nil
    }

    /// Compact JSON: members in order, no spaces, strings escaped per RFC 8259 (only `"`, `\` and control
    /// characters; `/` and non-ASCII are written as they are), integers in decimal, `.number` verbatim.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }

    /// `serialized()` as a `String`.
    public func serializedString() -> String {
        String(decoding: serialized(), as: UTF8.self)
    }

    /// A short name of the JSON type for error messages ("expected a string, got an integer").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
