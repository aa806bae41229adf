import Foundation
import Histogram

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The measuring client of `tally bench --http`: every connection on one thread, on plain nonblocking
/// sockets and epoll (`poll(2)` off Linux). Each connection keeps one request in flight (HTTP/1.1 has no safe pipelining);
/// a request is one `send`, an answer usually one `recv`. The client shares the machine's cores with the
/// server it measures, so what it spends per request is taken from the server: on NIO (two event loops, a
/// future, a closure and a lock per request) it cost 15-20 us of CPU per request, here a few.
struct HTTPBenchLoop {
    struct Plan: Sendable {
        var host: String
        var port: Int
        var key: String
        var shape: Bench.Shape
        /// One scope per connection (`independent`) or one for all.
        var scopes: [String]
        var connections: Int
        var warmupEnd: ContinuousClock.Instant
        var end: ContinuousClock.Instant
    }

    /// Runs the plan on a thread of its own.
    static func run(_ plan: Plan) async throws -> BenchTally {
        try await BenchSocket.runOnThread(named: "tally-bench-http") { try runHere(plan) }
    }

    /// Runs the plan on the calling thread.
    static func runHere(_ plan: Plan) throws -> BenchTally {
        var loop = try HTTPBenchLoop(plan)
        return try loop.run()
    }

    private enum Waiting {
        case reserve(estimate: Int64)
        case commit(actual: Int64)
        case balances
    }

    private struct Connection {
        let index: Int
        let scope: String
        let subject: String
        var step = 0
        /// The request in flight, nil when the connection is done.
        var waiting: Waiting?
        var key = ""
        var began = ContinuousClock.now
        var input: [UInt8] = []
        var output = BenchOutput()
    }

    private let plan: Plan
    private let host: String
    private let headers: [(String, String)]
    private var connections: [Connection] = []
    private let readiness: BenchReadiness
    private var inFlight = 0
    private var tally = BenchTally()
    private var failure: String?

    private init(_ plan: Plan) throws {
        self.plan = plan
        host = plan.host
        headers = [("X-Cycles-API-Key", plan.key)]
        readiness = try BenchReadiness()
        for index in 0..<plan.connections {
            try readiness.add(try BenchSocket.dial(plan.host, plan.port))
            let subject = plan.shape == .independent
                ? #"{"workspace": "w\#(index)", "agent": "a"}"#
                : #"{"workspace": "shared", "agent": "agent\#(index % 8)"}"#
            connections.append(Connection(index: index, scope: plan.scopes[plan.shape == .independent ? index : 0], subject: subject))
        }
    }

    private mutating func run() throws -> BenchTally {
        let start = ContinuousClock.now
        for index in connections.indices { next(index, now: start) }
        // Answers still missing this long after the end are counted as errors (a stalled server must not
        // keep the bench running for ever).
        let giveUp = plan.end + .seconds(30)
        var scratch = [UInt8](repeating: 0, count: 65_536)
        var ready: [Int] = []
        while inFlight > 0 {
            if ContinuousClock.now >= giveUp {
                tally.errors += UInt64(inFlight)
                failure = failure ?? "\(inFlight) answers did not arrive within 30 s of the end"
                break
            }
            try readiness.wait(milliseconds: 100, into: &ready)
            for event in ready {
                let index = event >> 2
                if event & 2 != 0 { flush(index) }
                if event & 1 != 0 { receive(index, into: &scratch) }
            }
        }
        if tally.operations == 0, let failure { throw BenchError(failure) }
        return tally
    }

    /// Starts the connection's next request, or ends the connection when the measured time is over.
    private mutating func next(_ index: Int, now: ContinuousClock.Instant) {
        guard now < plan.end else {
            if connections[index].waiting != nil { inFlight -= 1 }
            connections[index].waiting = nil
            return
        }
        if connections[index].waiting == nil { inFlight += 1 }
        connections[index].step += 1
        let step = connections[index].step
        if plan.shape == .mix && step % 5 == 0 {
            connections[index].waiting = .balances
            return send(index, "GET", "/v1/balances?workspace=shared", nil)
        }
        let key = "h\(connections[index].index)-\(step)"
        let estimate = Int64(1_000 + (step % 97))
        connections[index].key = key
        connections[index].waiting = .reserve(estimate: estimate)
        send(index, "POST", "/v1/reservations", """
            {"idempotency_key": "\(key)", "subject": \(connections[index].subject), "action": {"kind": "llm.completion", "name": "bench"}, \
            "estimate": {"unit": "USD_MICROCENTS", "amount": \(estimate)}}
            """)
    }

    private mutating func send(_ index: Int, _ method: String, _ path: String, _ body: String?) {
        HTTPBenchRequest.append(method, path, host: host, headers, body, to: &connections[index].output.bytes)
        connections[index].began = .now
        flush(index)
    }

    /// Writes what is left of the connection's request; waits for room when the socket is full.
    private mutating func flush(_ index: Int) {
        if let broken = readiness.flush(index, &connections[index].output) { drop(index, broken) }
    }

    private mutating func receive(_ index: Int, into scratch: inout [UInt8]) {
        switch readiness.receive(index, into: &scratch) {
        case .none: return
        case .broken(let reason): return drop(index, reason)
        case .bytes(let count): connections[index].input.append(contentsOf: scratch[0..<count])
        }
        let head: HTTPBenchAnswer.Head?
        do {
            head = try connections[index].input.withUnsafeBytes { try HTTPBenchAnswer.head(in: $0) }
        } catch {
            return drop(index, "\(error)")
        }
        guard let head, connections[index].input.count >= head.headLength + head.length else { return }
        guard connections[index].input.count == head.headLength + head.length else {
            return drop(index, "the server sent more than one answer to one request")
        }
        let now = ContinuousClock.now
        let success = (200..<300).contains(head.status)
        if now >= plan.warmupEnd, now < plan.end {
            _ = tally.histogram.record(Bench.microseconds(now - connections[index].began))
            tally.operations += 1
            if !success { tally.errors += 1 }
        }
        let body = connections[index].input[head.headLength...]
        let waiting = connections[index].waiting
        connections[index].input.removeAll(keepingCapacity: true)
        switch waiting {
        case .reserve(let estimate)?:
            guard success, let id = HTTPBenchAnswer.stringField("reservation_id", in: body) else { return next(index, now: now) }
            let actual = estimate - 10
            connections[index].waiting = .commit(actual: actual)
            send(index, "POST", "/v1/reservations/\(id)/commit", #"{"idempotency_key": "\#(connections[index].key)", "actual": {"unit": "USD_MICROCENTS", "amount": \#(actual)}}"#)
        case .commit(let actual)?:
            if success { tally.committed[connections[index].scope, default: 0] += actual }
            next(index, now: now)
        case .balances?, nil:
            next(index, now: now)
        }
    }

    /// Closes a broken connection; its request in flight counts as an error.
    private mutating func drop(_ index: Int, _ reason: String) {
        failure = failure ?? reason
        readiness.remove(index)
        if connections[index].waiting != nil {
            connections[index].waiting = nil
            inFlight -= 1
            tally.errors += 1
        }
    }
}

/// A request as the bench sends it: one buffer, head and body.
enum HTTPBenchRequest {
    static func append(_ method: String, _ path: String, host: String, _ headers: [(String, String)], _ body: String?, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: method.utf8)
        bytes.append(UInt8(ascii: " "))
        bytes.append(contentsOf: path.utf8)
        bytes.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        bytes.append(contentsOf: host.utf8)
        for (name, value) in headers {
            bytes.append(contentsOf: "\r\n".utf8)
            bytes.append(contentsOf: name.utf8)
            bytes.append(contentsOf: ": ".utf8)
            bytes.append(contentsOf: value.utf8)
        }
        if let body {
            bytes.append(contentsOf: "\r\nContent-Type: application/json\r\nContent-Length: ".utf8)
            bytes.append(contentsOf: String(body.utf8.count).utf8)
            bytes.append(contentsOf: "\r\n\r\n".utf8)
            bytes.append(contentsOf: body.utf8)
        } else {
            bytes.append(contentsOf: "\r\n\r\n".utf8)
        }
    }
}

/// Reading the gateway's answers straight from their bytes: one pass over the head (generic collection
/// searches and string splitting would cost more than the server's answer).
enum HTTPBenchAnswer {
    struct Head: Equatable {
        var status: Int
        /// The body's length (`Content-Length`, all the gateway sends).
        var length: Int
        /// The head's length, through its empty line.
        var headLength: Int
    }

    /// The head at the start of `raw`, or nil while it has not all arrived.
    static func head(in raw: UnsafeRawBufferPointer) throws -> Head? {
        guard raw.count >= 12 else { return nil }
        guard raw.starts(with: "HTTP/1.1 ".utf8) else { throw BenchError("not an HTTP/1.1 answer") }
        var status = 0
        for index in 9..<12 {
            guard raw[index] >= 48, raw[index] <= 57 else { throw BenchError("an answer without a status code") }
            status = status * 10 + Int(raw[index] - 48)
        }
        var length = 0
        var lineStart = 0
        let name = "content-length:".utf8
        let base = raw.baseAddress!
        // Line by line (memchr finds each line's end): the empty line ends the head.
        while lineStart < raw.count, let found = memchr(base + lineStart, 10, raw.count - lineStart) {
            let newline = base.distance(to: UnsafeRawPointer(found))
            guard newline > lineStart, raw[newline - 1] == 13 else { throw BenchError("an answer with a bare line feed") }
            let lineEnd = newline - 1
            if lineEnd == lineStart { return Head(status: status, length: length, headLength: newline + 1) }
            // "Content-Length:" in any case, at the start of the line.
            if raw[lineStart] | 0x20 == UInt8(ascii: "c"), lineEnd - lineStart > name.count,
               zip(raw[lineStart..<lineStart + name.count], name).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) {
                length = 0
                for digit in raw[lineStart + name.count..<lineEnd] where digit >= 48 && digit <= 57 {
                    guard length < 1 << 40 else { throw BenchError("an answer too long to read") }
                    length = length * 10 + Int(digit - 48)
                }
            }
            lineStart = newline + 1
        }
        return nil
    }

    /// The string value of the first `"name":"..."` member in a compact JSON body (the gateway writes compact
    /// JSON), found without parsing the whole body.
    static func stringField(_ name: String, in body: some Collection<UInt8>) -> String? {
        let body = Array(body)
        let marker = Array("\"\(name)\":\"".utf8)
        guard body.count > marker.count else { return nil }
        for start in 0...(body.count - marker.count) where body[start] == marker[0] && body[start..<start + marker.count].elementsEqual(marker) {
            let valueStart = start + marker.count
            guard let valueEnd = body[valueStart...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            return String(decoding: body[valueStart..<valueEnd], as: UTF8.self)
        }
        return nil
    }
}
