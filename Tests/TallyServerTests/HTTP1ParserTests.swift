import NIOCore
import Testing
@testable import TallyServer

/// The gateway's HTTP/1.1 request parser: framing, pipelining, limits, and the ambiguous messages it refuses.
@Suite struct HTTP1ParserTests {
    private func parser(bodyMax: Int = 1_024) -> HTTP1Parser { HTTP1Parser(limits: .init(bodyBytesMax: bodyMax)) }

    /// Feeds `text` in pieces of `piece` bytes and collects every step that is not `needMore`.
    private func feed(_ text: String, piece: Int = .max, parser: inout HTTP1Parser) throws(HTTP1Error) -> [HTTP1Parser.Step] {
        let bytes = Array(text.utf8)
        var buffer = ByteBuffer()
        var steps: [HTTP1Parser.Step] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + piece)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while true {
                let step = try parser.next(&buffer)
                if case .needMore = step { break }
                steps.append(step)
            }
        }
        return steps
    }

    private func requests(_ steps: [HTTP1Parser.Step]) -> [HTTP1Request] {
        steps.compactMap { if case .request(let request) = $0 { request } else { nil } }
    }

    private func refusal(_ text: String) -> HTTP1Error? {
        var parser = parser()
        do {
            _ = try feed(text, parser: &parser)
            return nil
        } catch {
            return error
        }
    }

    @Test func pipelinedRequestsComeOutWholeAndInOrderHoweverTheBytesArrive() throws {
        let text = "POST /v1/reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nX-Cycles-API-Key: k1\r\n\r\n{\"a\": true}"
            + "\r\nGET /v1/balances?tenant=acme HTTP/1.1\r\nhost: x\r\nX-Multi: a\r\nx-multi:  b \r\n\r\n"
            + "POST /v1/decide HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4;ext=1\r\n{\"b\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n"
        for piece in [1, 2, 3, 7, 64, Int.max] {
            var parser = parser()
            let got = requests(try feed(text, piece: piece, parser: &parser))
            #expect(got.map(\.method) == ["POST", "GET", "POST"], "pieces of \(piece)")
            #expect(got.map(\.target) == ["/v1/reservations", "/v1/balances?tenant=acme", "/v1/decide"])
            #expect(got.map { String(buffer: $0.body) } == ["{\"a\": true}", "", "{\"b\": 1}"])
            #expect(got.map(\.keepAlive) == [true, true, false])
            #expect(got[0].headers["x-cycles-api-key"] == "k1")
            #expect(got[1].headers["X-MULTI"] == "a, b", "repeated fields join, values trimmed")
            #expect(got[1].headers["Content-Length"] == nil)
            #expect(parser.isIdle)
        }
    }

    @Test func aClientThatExpectsContinueIsToldOnceTheHeadIsWhole() throws {
        var parser = parser()
        let head = "POST /v1/decide HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        let steps = try feed(head, parser: &parser)
        guard steps.count == 1, case .continueExpected = steps[0] else { Issue.record("\(steps)"); return }
        #expect(requests(try feed("{}", parser: &parser)).map { String(buffer: $0.body) } == ["{}"])
        // A body sent along with the head needs no leave.
        var eager = self.parser()
        #expect(requests(try feed(head + "{}", parser: &eager)).count == 1)
    }

    @Test func http10ClosesUnlessAskedToKeepAliveAndLeadingEmptyLinesAreIgnored() throws {
        var parser = parser()
        let got = requests(try feed("\r\n\r\nGET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", parser: &parser))
        #expect(got.map(\.keepAlive) == [false, true])
    }

    @Test func aBodyOverTheLimitIsAnsweredAtOnceAndClosesTheConnection() throws {
        var parser = parser(bodyMax: 8)
        let fixed = requests(try feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n", parser: &parser))
        #expect(fixed.map(\.bodyTooLarge) == [true] && fixed.map(\.keepAlive) == [false])
        var chunked = self.parser(bodyMax: 8)
        let pieces = requests(try feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n4\r\n", parser: &chunked))
        #expect(pieces.map(\.bodyTooLarge) == [true])
        var exact = self.parser(bodyMax: 8)
        #expect(requests(try feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n12345678", parser: &exact)).map(\.bodyTooLarge) == [false])
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\u{1}\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET / FTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    ])
    func ambiguousOrMalformedMessagesAreRefused(text: String, status: Int) {
        #expect(refusal(text)?.status == status, "\(text.debugDescription)")
    }

    @Test func headsAreBoundedInSizeAndFieldCount() {
        let long = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 20_000)
        #expect(refusal(long)?.status == 431, "a head with no end in sight is refused before it is whole")
        let many = "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: 1\r\n", count: 101) + "\r\n"
        #expect(refusal(many)?.status == 431)
        #expect(refusal("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-A: 1\r\n", count: 99) + "\r\n") == nil)
    }

    @Test func randomBytesNeverCrashTheParser() {
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        for _ in 0..<2_000 {
            var bytes: [UInt8] = Array("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            for _ in 0..<Int(seed % 64) {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
                bytes.append([UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: "0"), UInt8(ascii: "a"), UInt8(ascii: ";"), UInt8(truncatingIfNeeded: seed)][Int(seed >> 60) % 6])
            }
            var parser = parser()
            var buffer = ByteBuffer(bytes: bytes)
            for _ in 0..<100 {  // bounded: every step consumes bytes or asks for more
                guard let step = try? parser.next(&buffer), case .request = step else { break }
            }
        }
    }

    @Test func responsesAreOneMessageWithTheConnectionsFields() {
        var response = GatewayResponse(status: .created, headers: [.contentType: "application/json"], body: Array("{}".utf8))
        response.headers[.requestID] = "req_1"
        response.headers[.cyclesTenant] = "bad\r\nInjected: yes"
        var bytes = ByteBuffer()
        HTTP1ResponseWriter.write(response, keepAlive: false, headRequest: false, into: &bytes)
        let text = String(buffer: bytes)
        #expect(text.hasPrefix("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-Id: req_1\r\nX-Cycles-Tenant: bad  Injected: yes\r\n"))
        #expect(text.contains("\r\nContent-Length: 2\r\nServer: tallyd\r\nDate: ") && text.hasSuffix(" GMT\r\nConnection: close\r\n\r\n{}"))
        var head = ByteBuffer()
        HTTP1ResponseWriter.write(response, keepAlive: true, headRequest: true, into: &head)
        #expect(String(buffer: head).hasSuffix(" GMT\r\n\r\n"), "a HEAD answer has the length but not the body")
    }

    @Test func pathsSplitIntoTheirNonEmptySegments() {
        #expect(HTTPGateway.segments(of: "/v1/reservations/r-1/commit") == ["v1", "reservations", "r-1", "commit"])
        #expect(HTTPGateway.segments(of: "//v1///balances/") == ["v1", "balances"])
        #expect(HTTPGateway.segments(of: "/") == [] && HTTPGateway.segments(of: "") == [])
        #expect(HTTPGateway.segments(of: "health") == ["health"])
        #expect(HTTPGateway.segments(of: "/v1/r\u{E9}servations") == ["v1", "r\u{E9}servations"])
    }
}
