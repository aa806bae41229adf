import Foundation
import Testing
@testable import TallyTools

/// The pieces of `tally bench`'s measuring clients that read and write bytes, and what they do when the
/// server goes away (the whole clients run against a real server in `BenchCommandTests`).
@Suite struct BenchClientTests {
    private static func head(_ text: String) throws -> HTTPBenchAnswer.Head? {
        try Array(text.utf8).withUnsafeBytes { try HTTPBenchAnswer.head(in: $0) }
    }

    @Test func anAnswersHeadIsReadOnlyOnceItsEmptyLineHasArrived() throws {
        let answer = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nCONTENT-LENGTH: 22\r\nx-request-id: r\r\n\r\n{\"reservation_id\":\"a\"}"
        let whole = try #require(try Self.head(answer))
        let headLength = answer.utf8.count - 22
        #expect(whole == HTTPBenchAnswer.Head(status: 201, length: 22, headLength: headLength))
        // Every shorter prefix that ends before the empty line is not a head yet.
        for cut in 0..<headLength {
            let prefix = String(decoding: Array(answer.utf8)[..<cut], as: UTF8.self)
            #expect(try Self.head(prefix) == nil, "cut at \(cut)")
        }
        #expect(try Self.head("HTTP/1.1 204 No Content\r\n\r\n") == HTTPBenchAnswer.Head(status: 204, length: 0, headLength: 27))
    }

    @Test func somethingElseThanAnHTTP11AnswerIsAnError() {
        #expect(throws: BenchError.self) { try Self.head("SSH-2.0-OpenSSH_9.6\r\n\r\n") }
        #expect(throws: BenchError.self) { try Self.head("HTTP/1.1 2x0 OK\r\n\r\n") }
        #expect(throws: BenchError.self) { try Self.head("HTTP/1.1 200 OK\nContent-Length: 2\n\n") }
        #expect(throws: BenchError.self) { try Self.head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n") }
    }

    @Test func requestsAreOneBufferWithTheirLength() {
        var bytes: [UInt8] = []
        HTTPBenchRequest.append("POST", "/v1/reservations", host: "127.0.0.1", [("X-Cycles-API-Key", "k")], #"{"a": 1}"#, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "POST /v1/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Cycles-API-Key: k\r\n"
            + "Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
        bytes.removeAll()
        HTTPBenchRequest.append("GET", "/v1/balances", host: "h", [], nil, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "GET /v1/balances HTTP/1.1\r\nHost: h\r\n\r\n")
    }

    @Test func theReservationIdIsFoundInACompactBody() {
        let body = Array(#"{"decision":"ALLOW","reservation_id":"0193-ab","expires_at_ms":1}"#.utf8)
        #expect(HTTPBenchAnswer.stringField("reservation_id", in: body[...]) == "0193-ab")
        #expect(HTTPBenchAnswer.stringField("reservation_id", in: Array(#"{"error":"BUDGET_EXCEEDED"}"#.utf8)) == nil)
        #expect(HTTPBenchAnswer.stringField("reservation_id", in: Array(#"{"reservation_id":"unterminated"#.utf8)) == nil)
    }

    /// A loopback listener on port 0 that accepts `count` connections and closes each at once.
    private static func closingServer(accepting count: Int) throws -> (listener: Int32, port: Int) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        try #require(bound == 0)
        try #require(listen(listener, 8) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        Thread {
            for _ in 0..<count {
                let connection = accept(listener, nil, nil)
                if connection >= 0 { close(connection) }
            }
        }.start()
        return (listener, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A server that accepts and closes every connection: each bench client stops with the reason, not a hang.
    @Test func aServerThatClosesEveryConnectionEndsTheBenchWithTheReason() throws {
        let http = try Self.closingServer(accepting: 3)
        defer { close(http.listener) }
        let now = ContinuousClock.now
        let began = ContinuousClock.now
        #expect(throws: BenchError.self) {
            try HTTPBenchLoop.runHere(HTTPBenchLoop.Plan(
                host: "127.0.0.1", port: http.port, key: "k", shape: .lifecycle, scopes: ["tenant:t/workspace:shared"], connections: 3,
                warmupEnd: now, end: now + .seconds(5)))
        }
        let binary = try Self.closingServer(accepting: 3)
        defer { close(binary.listener) }
        #expect(throws: BenchError.self) {
            try BinaryBenchLoop.runHere(BinaryBenchLoop.Plan(
                host: "127.0.0.1", port: binary.port, key: "k", shape: .lifecycle, connections: 3, inFlight: 4,
                warmupEnd: now, end: now + .seconds(5)))
        }
        #expect(ContinuousClock.now - began < .seconds(4), "a bench client waited for a closed server")
    }
}
