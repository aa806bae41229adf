import Foundation
import Synchronization
import Testing
import TallyCore
import TallyWire
@testable import TallyTools

/// The pieces of `tally bench`'s measuring clients that read and write bytes, and what they do when the
/// server goes away (the whole clients run against a real server in `BenchCommandTests`).
@Suite struct BenchClientTests {
    /// Once a connection knows its scopes, the bench reads a reserved reply for its reservation id alone; on
    /// every response vector of protocol/vectors that read must agree with the full decode (and find no id
    /// in anything but a reserved reply).
    @Test func aReservedReplysIDIsReadAsTheFullDecodeReadsIt() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let vectors = root.appendingPathComponent("protocol/vectors")
        var checked = 0, reserved = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: vectors.path).sorted() where name.hasSuffix("-response.hex") {
            let text = try String(contentsOf: vectors.appendingPathComponent(name), encoding: .utf8)
            let hex = Array(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined().utf8)
            let bytes = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
            let frame = try Frame.parse(bytes)
            let expected: ReservationID? = if case .reply(.reserved(let reply, _)) = try WireCodec.decodeResponse(frame) { reply.reservationID } else { nil }
            #expect(BinaryBenchLoop.reservedID(frame) == expected, "\(name)")
            checked += 1
            if expected != nil { reserved += 1 }
        }
        #expect(checked > 10 && reserved == 1)
    }

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

    /// A listening socket on 127.0.0.1, port 0.
    private static func listeningSocket() throws -> (Int32, Int) {
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
        return (listener, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A loopback listener that accepts `count` connections and closes each at once.
    private static func closingServer(accepting count: Int) throws -> (listener: Int32, port: Int) {
        let (listener, port) = try listeningSocket()
        Thread {
            for _ in 0..<count {
                let connection = accept(listener, nil, nil)
                if connection >= 0 { close(connection) }
            }
        }.start()
        return (listener, port)
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

    /// A fake binary server on loopback: welcomes one connection, answers every reserve with `reserved` and
    /// every commit with `committed`, and writes each answer a few bytes at a time, so the client's frames
    /// arrive cut at every place. Stops when the client closes (or after 20 s).
    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
        /// The actual amounts of the commits answered.
        let committed = Atomic<Int>(0)
    }

    private static func fragmentingServer() throws -> (listener: Int32, port: Int, answered: Counter) {
        let (listener, port) = try listeningSocket()
        let answered = Counter()
        Thread { [answered] in
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var timeout = timeval(tv_sec: 20, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var input: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4_096)
            let balance = Balance(
                scope: try! ScopePath(parsing: "tenant:t/workspace:shared"), unit: .usdMicrocents, allocated: 1_000_000,
                remaining: 1_000_000, reserved: 0, spent: 0, debt: 0, overdraftLimit: 0, isOverLimit: false, status: .active)
            for _ in 0..<100_000 {
                let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { return }
                input.append(contentsOf: buffer[0..<count])
                while input.count >= 4 {
                    let length = input[0..<4].reduce(0) { $0 << 8 | Int($1) }
                    guard input.count >= 4 + length, let frame = try? Frame.parse(Array(input[0..<4 + length])) else { break }
                    input.removeFirst(4 + length)
                    let response: Response
                    switch try? WireCodec.decodeRequest(frame) {
                    case .hello?:
                        response = .welcome(Welcome(
                            protocolVersion: 1, principal: .tenant(id: "t", keyID: "k", permissions: []),
                            limits: ServerLimits(frameBytesMax: 1 << 20, inFlightRequestsMax: 3, listLimitMax: 100), serverName: "fake"))
                    case .reserve(let reserve)?:
                        response = .reply(.reserved(ReserveReply(
                            decision: .allow, reservationID: ReservationID("r-" + reserve.idempotencyKey), reserved: reserve.estimate,
                            expiresAtMilliseconds: 1, scopePath: balance.scope, affectedScopes: [balance.scope], caps: nil,
                            balances: [balance]), remainingTTLMilliseconds: 1))
                    case .commit(let commit)?:
                        answered.committed.add(Int(commit.actual.amount.value), ordering: .relaxed)
                        response = .reply(.committed(CommitReply(charged: commit.actual, released: nil, balances: [balance])))
                    default:
                        response = .error(WireError(code: .invalidRequest, message: "unexpected"))
                    }
                    let bytes = WireCodec.encodeResponse(response, requestID: frame.requestID).serialized
                    for start in stride(from: 0, to: bytes.count, by: 3) {
                        let end = min(start + 3, bytes.count)
                        _ = bytes[start..<end].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    answered.value.add(1, ordering: .relaxed)
                }
            }
        }.start()
        return (listener, port, answered)
    }

    /// Answers cut into 3-byte pieces still make whole reserve/commit rounds, and the commits the client
    /// counts are exactly the ones it was answered (the ledger check's input).
    @Test func theBinaryClientReadsAnswersCutAnywhere() throws {
        let server = try Self.fragmentingServer()
        defer { close(server.listener) }
        let now = ContinuousClock.now
        let tally = try BinaryBenchLoop.runHere(BinaryBenchLoop.Plan(
            host: "127.0.0.1", port: server.port, key: "k", shape: .lifecycle, connections: 1, inFlight: 3,
            warmupEnd: now, end: now + .milliseconds(300)))
        #expect(tally.errors == 0)
        #expect(tally.operations > 10, "\(tally.operations) operations")
        // Each committed lifecycle adds its actual (estimate - 10) to the scope of the reserve's balances.
        let committed = try #require(tally.committed["tenant:t/workspace:shared"])
        #expect(committed > 0)
        #expect(committed == Int64(server.answered.committed.load(ordering: .relaxed)))
        #expect(server.answered.value.load(ordering: .relaxed) >= Int(tally.operations))
    }
}
