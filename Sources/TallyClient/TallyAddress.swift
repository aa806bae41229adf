/// Where a `tallyd` listens for the binary protocol: `host:port`, `[v6-address]:port`, or a bare host with
/// the default port.
public struct TallyAddress: Sendable, Hashable, CustomStringConvertible {
    /// The port `tallyd` listens on for the binary protocol unless configured otherwise.
    public static let defaultPort = 7070
    public static let `default` = TallyAddress(host: "127.0.0.1", port: defaultPort)

    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[::1]:port`, `host` or `[::1]` (the last two on `defaultPort`).
    public init(parsing text: String) throws(AddressError) {
        let text = text.trimmingSpaces
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw AddressError(text, "an IPv6 address needs a closing ']'")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":" else { throw AddressError(text, "expected ':' and a port after ']'") }
                portText = rest.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw AddressError(text, "write an IPv6 address in brackets, as [::1]:7070") }
        } else {
            host = Substring(text)
        }
        guard !host.isEmpty else { throw AddressError(text, "the host is empty") }
        var port = TallyAddress.defaultPort
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed) else {
                throw AddressError(text, "the port must be a number from 1 to 65535")
            }
            port = parsed
        }
        self.init(host: String(host), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Why a text is not an address.
    public struct AddressError: Error, Sendable, Hashable, CustomStringConvertible {
        public var text: String
        public var reason: String

        init(_ text: String, _ reason: String) {
            self.text = text
            self.reason = reason
        }

        public var description: String { "'\(text)' is not an address: \(reason)" }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
