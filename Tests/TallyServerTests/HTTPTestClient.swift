import Foundation
import TallyWire

/// One HTTP/1.1 exchange over a fresh loopback socket (`Connection: close`), read until the server closes:
/// small, blocking and bounded by a 10 s socket timeout, which is all the gateway tests need.
struct HTTPTestClient {
    let port: Int

    struct Reply: CustomStringConvertible {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]

        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue {
            (try? JSONParser.parse(body)) ?? .string("<not JSON: \(text)>")
        }
        func header(_ name: String) -> String? { headers[name.lowercased()] }
        var description: String { "HTTP \(status) \(text)" }
    }

    @discardableResult
    func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil, rawBody: [UInt8]? = nil
    ) throws -> Reply {
        let socket = try RawConnection(port: port)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let payload = rawBody ?? body.map { Array($0.utf8) }
        if let payload { head += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        head += "\r\n"
        socket.send(Array(head.utf8) + (payload ?? []))
        return try Self.parse(socket.readUntilClosed())
    }

    /// Shorthands with a tenant key or the admin key.
    func tenant(_ key: String, _ method: String, _ path: String, _ body: String? = nil, headers: [(String, String)] = []) throws -> Reply {
        try send(method, path, headers: [("X-Cycles-API-Key", key)] + headers, body: body)
    }

    func admin(_ method: String, _ path: String, _ body: String? = nil, key: String = ServerProcess.adminKey) throws -> Reply {
        try send(method, path, headers: [("X-Admin-API-Key", key)], body: body)
    }

    static func parse(_ bytes: [UInt8]) throws -> Reply {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw ServerProcessError("no HTTP head in \(bytes.count) bytes: \(String(decoding: bytes, as: UTF8.self))")
        }
        let lines = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw ServerProcessError("bad status line \(lines[0])") }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[(end + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Reply(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].indices.first(where: { bytes[$0] == 13 }) else { break }
            guard let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self), radix: 16), size > 0 else { break }
            let start = lineEnd + 2
            output += bytes[start..<min(bytes.count, start + size)]
            index = start + size + 2
        }
        return output
    }
}

extension JSONValue {
    /// `value["a"]?["b"]` as a path: `value.at("a", "b")`; array items by decimal index.
    func at(_ path: String...) -> JSONValue? {
        var current: JSONValue? = self
        for step in path {
            if case .array(let items)? = current, let index = Int(step) {
                current = index < items.count ? items[index] : nil
            } else {
                current = current?[step]
            }
        }
        return current
    }

    var int: Int64? { if case .integer(let value) = self { value } else { nil } }
    var str: String? { if case .string(let value) = self { value } else { nil } }
    var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    var items: [JSONValue] { if case .array(let items) = self { items } else { [] } }
    var memberNames: [String] { if case .object(let members) = self { members.map(\.name) } else { [] } }
}
