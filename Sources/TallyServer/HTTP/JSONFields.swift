import TallyCore
import TallyWire

/// Reads one JSON object of a request body strictly: every member must be read by the decoder, so a
/// member it does not know is refused by `finish()` (Cycles schemas are `additionalProperties: false`).
/// Every message names the field with its full path (`subject.agent`, `estimate.amount`).
///
/// An explicit `null` counts as absent, as the reference server's JSON binding treats it.
struct JSONFields {
    private let members: [JSONMember]
    private let path: String
    /// Which members were asked for, by position (the parser refuses duplicate names, so a member is its name).
    private var read: [Bool]

    init(_ value: JSONValue, path: String = "") throws(WireError) {
        guard case .object(let members) = value else {
            throw Self.invalid(path.isEmpty ? "the request body must be a JSON object" : "\(path) must be an object, not \(value.typeName)")
        }
        self.members = members
        self.path = path
        read = Array(repeating: false, count: members.count)
    }

    static func invalid(_ message: String) -> WireError { WireError(code: .invalidRequest, message: message) }

    func name(_ field: String) -> String { path.isEmpty ? field : "\(path).\(field)" }

    /// The member's value, or nil when absent or null.
    mutating func value(_ field: String) -> JSONValue? {
        guard let index = members.firstIndex(where: { $0.name == field }) else { return nil }
        read[index] = true
        if case .null = members[index].value { return nil }
        return members[index].value
    }

    mutating func required<T>(_ field: String, _ read: (inout JSONFields, String) throws(WireError) -> T?) throws(WireError) -> T {
        guard let value = try read(&self, field) else { throw Self.invalid("\(name(field)) is required") }
        return value
    }

    mutating func string(_ field: String) throws(WireError) -> String? {
        guard let value = value(field) else { return nil }
        guard case .string(let text) = value else { throw Self.invalid("\(name(field)) must be a string, not \(value.typeName)") }
        return text
    }

    mutating func integer(_ field: String) throws(WireError) -> Int64? {
        guard let value = value(field) else { return nil }
        switch value {
        case .integer(let number): return number
        case .number(let text): throw Self.invalid("\(name(field)) must be a whole number within 64 bits, not \(text)")
        default: throw Self.invalid("\(name(field)) must be an integer, not \(value.typeName)")
        }
    }

    mutating func integer(_ field: String, in range: ClosedRange<Int64>) throws(WireError) -> Int64? {
        guard let number = try integer(field) else { return nil }
        guard range.contains(number) else { throw Self.invalid("\(name(field)) must be \(range.lowerBound)-\(range.upperBound), not \(number)") }
        return number
    }

    mutating func bool(_ field: String) throws(WireError) -> Bool? {
        guard let value = value(field) else { return nil }
        guard case .bool(let flag) = value else { throw Self.invalid("\(name(field)) must be true or false, not \(value.typeName)") }
        return flag
    }

    mutating func strings(_ field: String) throws(WireError) -> [String]? {
        guard let value = value(field) else { return nil }
        guard case .array(let items) = value else { throw Self.invalid("\(name(field)) must be an array of strings, not \(value.typeName)") }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else { throw Self.invalid("\(name(field))[\(index)] must be a string, not \(item.typeName)") }
            strings.append(text)
        }
        return strings
    }

    mutating func object(_ field: String) throws(WireError) -> JSONFields? {
        guard let value = value(field) else { return nil }
        return try JSONFields(value, path: name(field))
    }

    /// A nested object read by `read`, whose unknown members are refused like the body's; nil when absent.
    mutating func nested<T>(_ field: String, _ read: (inout JSONFields) throws(WireError) -> T) throws(WireError) -> T? {
        guard var inner = try object(field) else { return nil }
        let value = try read(&inner)
        try inner.finish()
        return value
    }

    /// A free JSON object (`metadata`, `metrics.custom`), kept as its compact text.
    mutating func freeObject(_ field: String) throws(WireError) -> JSONText? {
        guard let value = value(field) else { return nil }
        guard case .object = value else { throw Self.invalid("\(name(field)) must be an object, not \(value.typeName)") }
        return JSONText(value.serializedString())
    }

    /// A string map (`subject.dimensions`).
    mutating func stringMap(_ field: String) throws(WireError) -> [String: String]? {
        guard let value = value(field) else { return nil }
        guard case .object(let members) = value else { throw Self.invalid("\(name(field)) must be an object, not \(value.typeName)") }
        var map: [String: String] = [:]
        for member in members {
            guard case .string(let text) = member.value else {
                throw Self.invalid("\(name(field)).\(member.name) must be a string, not \(member.value.typeName)")
            }
            map[member.name] = text
        }
        return map
    }

    mutating func enumeration<T>(_ field: String, _ cases: [T], _ label: (T) -> String) throws(WireError) -> T? {
        guard let text = try string(field) else { return nil }
        if let match = cases.first(where: { label($0) == text }) { return match }
        throw Self.invalid("\(name(field)) must be one of \(cases.map(label).joined(separator: ", ")), not \"\(text)\"")
    }

    /// Refuses members the decoder did not ask for.
    func finish() throws(WireError) {
        if let unknown = read.firstIndex(of: false) {
            throw Self.invalid("\(name(members[unknown].name)) is not a known field")
        }
    }
}
