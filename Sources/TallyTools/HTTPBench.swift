import Foundation
import Histogram
import NIOCore
import NIOPosix
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
        let warmupEnd = ContinuousClock.now + .milliseconds(Int(warmupSeconds * 1_000))
        let total = try await HTTPBenchLoop.run(HTTPBenchLoop.Plan(
            host: runtime.host, port: runtime.port, key: secret, shape: shape, scopes: scopes, connections: connections,
            warmupEnd: warmupEnd, end: warmupEnd + .milliseconds(Int(durationSeconds * 1_000))))
        let check = try await ledgerCheck(setup, tenant: tenant, committed: total.committed, adminHeaders)
        setup.close()
        return Bench.Result(total, seconds: durationSeconds, ledgerCheck: check, rawWriteP50Microseconds: nil)
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

/// A minimal keep-alive HTTP/1.1 client connection on NIO, one request at a time, for the bench's setup and
/// its ledger check through the admin plane (the measured requests go through `HTTPBenchLoop`).
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
            var bytes: [UInt8] = []
            HTTPBenchRequest.append(method, path, host: host, headers, body, to: &bytes)
            let request = channel.allocator.buffer(bytes: bytes)
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

        /// One whole answer off the front of `buffer`, or nil until it has arrived.
        static func parse(_ buffer: inout ByteBuffer) throws -> Reply? {
            guard let head = try buffer.withUnsafeReadableBytes({ try HTTPBenchAnswer.head(in: $0) }),
                  buffer.readableBytes >= head.headLength + head.length else { return nil }
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
