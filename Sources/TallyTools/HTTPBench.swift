import Foundation
import Histogram
import NIOCore
import NIOPosix
import Synchronization
import TallyClient
import TallyWire

/// `tally bench --http`: the same shapes as `Bench`, over the Cycles HTTP/JSON gateway. Each connection is
/// an HTTP/1.1 keep-alive connection with one request at a time (HTTP/1.1 has no safe pipelining), so the
/// concurrency is the number of connections. Setup and the ledger check go through the admin plane.
public struct HTTPBench: Sendable {
    public var runtime: (host: String, port: Int)
    public var admin: (host: String, port: Int)
    public var adminKey: String
    public var shape: Bench.Shape = .lifecycle
    public var connections = 50
    public var durationSeconds = 10.0
    public var warmupSeconds = 1.0

    /// `runtime` and `admin` are `host:port` addresses of the two planes.
    public init(runtime: String, admin: String, adminKey: String) throws {
        let runtimeAddress = try TallyAddress(parsing: runtime)
        let adminAddress = try TallyAddress(parsing: admin)
        self.runtime = (runtimeAddress.host, runtimeAddress.port)
        self.admin = (adminAddress.host, adminAddress.port)
        self.adminKey = adminKey
    }

    struct Tally: Sendable {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var operations: UInt64 = 0
        var errors: UInt64 = 0
        var committed: [String: Int64] = [:]
    }

    public func run() async throws -> Bench.Result {
        let group = MultiThreadedEventLoopGroup.singleton
        let setup = try await HTTPBenchConnection.connect(host: admin.host, port: admin.port, group: group)
        let tenant = "bench-" + String(UUID().uuidString.prefix(8)).lowercased()
        let adminHeaders = [("X-Admin-API-Key", adminKey)]
        try await setup.expect(201, "POST", "/v1/admin/tenants", adminHeaders, #"{"tenant_id": "\#(tenant)", "name": "bench"}"#)
        let created = try await setup.expect(201, "POST", "/v1/admin/api-keys", adminHeaders, #"{"tenant_id": "\#(tenant)", "name": "bench"}"#)
        guard let secret = (try? JSONParser.parse(created))?["key_secret"].flatMap({ if case .string(let s) = $0 { s } else { nil } }) else {
            throw BenchError("the server did not return a key secret")
        }
        let huge = Int64.max / 4
        var scopes: [String] = []
        if shape == .independent {
            scopes = (0..<connections).map { "tenant:\(tenant)/workspace:w\($0)/agent:a" }
        } else {
            scopes = ["tenant:\(tenant)/workspace:shared"]
        }
        for scope in scopes {
            try await setup.expect(201, "POST", "/v1/admin/budgets", adminHeaders, """
                {"scope": "\(scope)", "unit": "USD_MICROCENTS", "allocated": {"unit": "USD_MICROCENTS", "amount": \(huge)}}
                """)
        }
        let start = ContinuousClock.now
        let warmupEnd = start + .milliseconds(Int(warmupSeconds * 1_000))
        let end = warmupEnd + .milliseconds(Int(durationSeconds * 1_000))
        var total = Tally()
        try await withThrowingTaskGroup(of: Tally.self) { tasks in
            for index in 0..<connections {
                let connection = try await HTTPBenchConnection.connect(host: runtime.host, port: runtime.port, group: group)
                let driver = HTTPBenchDriver(
                    connection: connection, key: secret, shape: shape, index: index, scope: scopes[shape == .independent ? index : 0],
                    warmupEnd: warmupEnd, end: end)
                tasks.addTask { await driver.run() }
            }
            for try await tally in tasks {
                total.histogram.add(tally.histogram)
                total.operations += tally.operations
                total.errors += tally.errors
                total.committed.merge(tally.committed, uniquingKeysWith: +)
            }
        }
        let check = try await ledgerCheck(setup, tenant: tenant, committed: total.committed, adminHeaders)
        setup.close()
        return Bench.Result(
            operations: total.operations, seconds: durationSeconds, errors: total.errors,
            p50Microseconds: total.histogram.valueAtPercentile(50), p99Microseconds: total.histogram.valueAtPercentile(99),
            p999Microseconds: total.histogram.valueAtPercentile(99.9), ledgerCheck: check, rawWriteP50Microseconds: nil)
    }

    private func ledgerCheck(_ setup: HTTPBenchConnection, tenant: String, committed: [String: Int64], _ headers: [(String, String)]) async throws -> String {
        let body = try await setup.expect(200, "GET", "/v1/admin/budgets?tenant_id=\(tenant)&limit=200", headers, nil)
        guard case .array(let ledgers)? = (try? JSONParser.parse(body))?["ledgers"] else { return "failed: no budget listing" }
        for ledger in ledgers {
            guard case .string(let scope)? = ledger["scope"], case .integer(let spent)? = ledger["spent"]?["amount"] else {
                return "failed: a budget without scope or spent"
            }
            if spent != committed[scope, default: 0] {
                return "failed: \(scope) spent \(spent) but acknowledged commits sum to \(committed[scope, default: 0])"
            }
        }
        return "ok (\(committed.values.reduce(0, +)) committed across \(ledgers.count) budgets)"
    }
}

/// One connection's loop: reserve, commit the reservation, repeat (plus a balance read every fifth step in
/// the mix shape), driven by completions on the connection's event loop.
private final class HTTPBenchDriver: Sendable {
    let connection: HTTPBenchConnection
    let headers: [(String, String)]
    let shape: Bench.Shape
    let index: Int
    let scope: String
    let subject: String
    let warmupEnd: ContinuousClock.Instant
    let end: ContinuousClock.Instant
    private let state = Mutex(State())

    private struct State {
        var tally = HTTPBench.Tally()
        var step = 0
        var finished: CheckedContinuation<HTTPBench.Tally, Never>?
    }

    init(connection: HTTPBenchConnection, key: String, shape: Bench.Shape, index: Int, scope: String, warmupEnd: ContinuousClock.Instant, end: ContinuousClock.Instant) {
        self.connection = connection
        self.headers = [("X-Cycles-API-Key", key)]
        self.shape = shape
        self.index = index
        self.scope = scope
        self.warmupEnd = warmupEnd
        self.end = end
        subject = shape == .independent
            ? #"{"workspace": "w\#(index)", "agent": "a"}"#
            : #"{"workspace": "shared", "agent": "agent\#(index % 8)"}"#
    }

    func run() async -> HTTPBench.Tally {
        await withCheckedContinuation { finished in
            state.withLock { $0.finished = finished }
            next(now: .now)
        }
    }

    private func next(now: ContinuousClock.Instant) {
        guard now < end else { return finish() }
        let step = state.withLock { state in
            state.step += 1
            return state.step
        }
        let key = "h\(index)-\(step)"
        if shape == .mix && step % 5 == 0 {
            return timed("GET", "/v1/balances?workspace=shared", nil) { _, now in self.next(now: now) }
        }
        let estimate = Int64(1_000 + (step % 97))
        let reserve = """
            {"idempotency_key": "\(key)", "subject": \(subject), "action": {"kind": "llm.completion", "name": "bench"}, \
            "estimate": {"unit": "USD_MICROCENTS", "amount": \(estimate)}}
            """
        timed("POST", "/v1/reservations", reserve) { body, now in
            guard let body, let id = Self.stringField("reservation_id", in: body) else { return self.next(now: now) }
            let actual = estimate - 10
            let commit = #"{"idempotency_key": "\#(key)", "actual": {"unit": "USD_MICROCENTS", "amount": \#(actual)}}"#
            self.timed("POST", "/v1/reservations/\(id)/commit", commit) { body, now in
                if body != nil { self.state.withLock { $0.tally.committed[self.scope, default: 0] += actual } }
                self.next(now: now)
            }
        }
    }

    /// Sends one request; `then` gets the body of a 2xx answer (nil otherwise) and the time it arrived.
    private func timed(_ method: String, _ path: String, _ body: String?, then: @escaping @Sendable ([UInt8]?, ContinuousClock.Instant) -> Void) {
        let began = ContinuousClock.now
        connection.send(method, path, headers, body) { result in
            let now = ContinuousClock.now
            let success: [UInt8]? = if case .success(let reply) = result, (200..<300).contains(reply.status) { reply.body } else { nil }
            if now >= self.warmupEnd, now < self.end {
                let microseconds = Bench.microseconds(now - began)
                self.state.withLock { state in
                    _ = state.tally.histogram.record(microseconds)
                    state.tally.operations += 1
                    if success == nil { state.tally.errors += 1 }
                }
            }
            then(success, now)
        }
    }

    private func finish() {
        let (tally, finished) = state.withLock { state in
            defer { state.finished = nil }
            return (state.tally, state.finished)
        }
        connection.close()
        finished?.resume(returning: tally)
    }

    /// The string value of the first `"name":"..."` member in a compact JSON body (the gateway writes compact
    /// JSON), found without parsing the whole body.
    static func stringField(_ name: String, in body: [UInt8]) -> String? {
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

/// A minimal keep-alive HTTP/1.1 client connection on NIO: one request at a time, completion-driven. It
/// writes each request as one buffer and reads answers with `Content-Length` (all the gateway sends) straight
/// from the bytes, so the bench's own cost per request stays small next to the server's.
final class HTTPBenchConnection: Sendable {
    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
    }

    let channel: Channel
    private let handler: NIOLoopBound<ReplyHandler>
    private let host: String

    private init(channel: Channel, handler: NIOLoopBound<ReplyHandler>, host: String) {
        self.channel = channel
        self.handler = handler
        self.host = host
    }

    static func connect(host: String, port: Int, group: EventLoopGroup) async throws -> HTTPBenchConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplyHandler())
                }
            }
            .connect(host: host, port: port)
            .get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ReplyHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return HTTPBenchConnection(channel: channel, handler: handler, host: host)
    }

    func send(_ method: String, _ path: String, _ headers: [(String, String)], _ body: String?, completion: @escaping @Sendable (Result<Reply, Error>) -> Void) {
        let channel = channel
        let handler = handler
        let host = host
        channel.eventLoop.execute {
            var request = channel.allocator.buffer(capacity: 256 + (body?.utf8.count ?? 0))
            request.writeString(method)
            request.writeStaticString(" ")
            request.writeString(path)
            request.writeStaticString(" HTTP/1.1\r\nHost: ")
            request.writeString(host)
            for (name, value) in headers {
                request.writeStaticString("\r\n")
                request.writeString(name)
                request.writeStaticString(": ")
                request.writeString(value)
            }
            if let body {
                request.writeStaticString("\r\nContent-Type: application/json\r\nContent-Length: ")
                request.writeString(String(body.utf8.count))
                request.writeStaticString("\r\n\r\n")
                request.writeString(body)
            } else {
                request.writeStaticString("\r\n\r\n")
            }
            handler.value.pending = completion
            channel.writeAndFlush(request).whenFailure { error in
                handler.value.fail(error)
            }
        }
    }

    /// Sends and waits, requiring `status`; answers the body.
    @discardableResult
    func expect(_ status: Int, _ method: String, _ path: String, _ headers: [(String, String)], _ body: String?) async throws -> [UInt8] {
        let reply = try await withCheckedThrowingContinuation { continuation in
            send(method, path, headers, body) { continuation.resume(with: $0) }
        }
        guard reply.status == status else {
            throw BenchError("\(method) \(path) answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self))")
        }
        return reply.body
    }

    func close() { channel.close(promise: nil) }

    final class ReplyHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        var pending: (@Sendable (Result<Reply, Error>) -> Void)?
        private var buffered = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            if buffered.readableBytes == 0 { buffered = bytes } else { buffered.writeBuffer(&bytes) }
            do {
                while let reply = try Self.parse(&buffered) {
                    let completion = pending
                    pending = nil
                    completion?(.success(reply))
                }
            } catch {
                fail(error)
                context.close(promise: nil)
            }
        }

        /// One whole answer off the front of `buffer`, or nil until it has arrived (one pass over the head's
        /// bytes: generic collection searches and string splitting cost more than the server's answer).
        static func parse(_ buffer: inout ByteBuffer) throws -> Reply? {
            let head: (status: Int, length: Int, headLength: Int)? = try buffer.withUnsafeReadableBytes { raw in
                guard raw.count >= 12, raw.starts(with: "HTTP/1.1 ".utf8) else {
                    if raw.count >= 12 { throw BenchError("not an HTTP/1.1 answer") }
                    return nil
                }
                var status = 0
                for index in 9..<12 { status = status * 10 + Int(raw[index] &- 48) }
                var length = 0
                var lineStart = 0
                var index = 0
                while index + 1 < raw.count {
                    guard raw[index] == 13, raw[index + 1] == 10 else {
                        index += 1
                        continue
                    }
                    if index == lineStart { return (status, length, index + 2) }  // the empty line
                    // "Content-Length:" in any case, at the start of the line.
                    let name = "content-length:".utf8
                    if index - lineStart > name.count,
                       zip(raw[lineStart..<lineStart + name.count], name).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) {
                        length = 0
                        for digit in raw[lineStart + name.count..<index] where digit >= 48 && digit <= 57 { length = length * 10 + Int(digit - 48) }
                    }
                    index += 2
                    lineStart = index
                }
                return nil
            }
            guard let head, buffer.readableBytes >= head.headLength + head.length else { return nil }
            buffer.moveReaderIndex(forwardBy: head.headLength)
            if head.status == 100 { return try parse(&buffer) }  // leave to send a body: not the answer
            let body = buffer.readBytes(length: head.length)!
            if buffer.readableBytes == 0 { buffer.clear() }
            return Reply(status: head.status, body: body)
        }

        func fail(_ error: Error) {
            let completion = pending
            pending = nil
            completion?(.failure(error))
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(BenchError("the server closed the connection"))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            fail(error)
            context.close(promise: nil)
        }
    }
}
