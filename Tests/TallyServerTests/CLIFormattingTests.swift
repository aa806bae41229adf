import TallyClient
import Testing

/// The `--address` grammar of the `tally` CLI (`TallyAddress`, in TallyClient so every client shares it).
///
/// The table and JSON renderers live in TallyTools, which this target does not depend on; their tests
/// wait in `Tests/TallyToolsTests` for a target (see the client author's report).
@Suite struct TallyAddressTests {
    @Test(arguments: [
        ("127.0.0.1:7070", "127.0.0.1", 7070),
        ("localhost:1", "localhost", 1),
        ("tally.internal", "tally.internal", 7070),
        ("[::1]:7071", "::1", 7071),
        ("[::1]", "::1", 7070),
        (" example.com:65535 ", "example.com", 65_535),
    ])
    func parsesHostAndPort(text: String, host: String, port: Int) throws {
        let address = try TallyAddress(parsing: text)
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test(arguments: ["", ":7070", "host:", "host:0", "host:65536", "host:http", "::1:7070", "[::1", "[::1]7070"])
    func refusesMalformedAddresses(text: String) {
        #expect(throws: TallyAddress.AddressError.self) { try TallyAddress(parsing: text) }
    }

    @Test func describesIPv6InBrackets() throws {
        #expect(try TallyAddress(parsing: "[::1]:9").description == "[::1]:9")
        #expect(TallyAddress.default.description == "127.0.0.1:7070")
    }
}
