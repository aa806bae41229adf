import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import Synchronization

/// One HTTP request as the gateway sees it: the head, and the body collected up to the gateway's limit.
struct GatewayRequest: Sendable {
    var method: HTTPRequest.Method
    var path: String
    var query: [(String, String)]
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// The body went over the limit (what was read of it is dropped).
    var bodyTooLarge: Bool

    init(head: HTTPRequestHead, body: ByteBuffer, bodyTooLarge: Bool) {
        // A method that is not a valid token (llhttp refuses those first) must not fall back to one that is served.
        method = HTTPRequest.Method(head.method.rawValue) ?? HTTPRequest.Method("INVALID")!
        headers = head.headers
        let target = Self.originForm(head.uri)
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = Self.parseQuery(target[target.index(after: mark)...])
        } else {
            path = target
            query = []
        }
        self.body = body
        self.bodyTooLarge = bodyTooLarge
    }

    /// The request target as a path and query: an absolute-form target (`http://host/v1/...`, which HTTP/1.1
    /// servers must accept) loses its scheme and authority.
    static func originForm(_ target: String) -> String {
        for scheme in ["http://", "https://"] where target.lowercased().hasPrefix(scheme) {
            let rest = target.dropFirst(scheme.count)
            guard let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
            return rest[slash] == "/" ? String(rest[slash...]) : "/" + rest[slash...]
        }
        return target
    }

    /// `a=1&b=x%20y` into pairs; values are percent-decoded (a value that does not decode is kept as sent),
    /// names and the path are taken as sent.
    static func parseQuery(_ text: Substring) -> [(String, String)] {
        text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = parts.count > 1 ? String(parts[1]) : ""
            return (String(parts[0]), value.removingPercentEncoding ?? value)
        }
    }
}

/// One HTTP response of the gateway.
struct GatewayResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPHeaders
    var body: ByteBuffer
}

extension HTTPHeaders {
    /// Every value of a field (names compare case-insensitively), joined with ", " as HTTP combines them.
    subscript(_ name: HTTPField.Name) -> String? {
        get {
            let values = self[name.rawName]
            return values.isEmpty ? nil : values.joined(separator: ", ")
        }
        set {
            if let newValue { replaceOrAdd(name: name.rawName, value: newValue) } else { remove(name: name.rawName) }
        }
    }
}

/// Serialises the gateway's work on each event loop: the actor runs on the loop's own executor, so a request
/// is parsed, validated and answered on the loop that read it, and a command's completion resumes there too
/// (no hop through the global concurrent executor; with `NonisolatedNonsendingByDefault` the gateway's
/// async functions run on their caller's executor).
actor EventLoopActor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    /// Answers `request` and hands the response to `write`, both on the loop.
    func serve(_ gateway: HTTPGateway, _ request: GatewayRequest, then write: @Sendable (GatewayResponse) -> Void) async {
        write(await gateway.respond(to: request))
    }
}

/// The actor of each event loop, made once per loop.
final class EventLoopActors: Sendable {
    private let actors = Mutex<[ObjectIdentifier: EventLoopActor]>([:])

    func actor(for loop: any EventLoop) -> EventLoopActor {
        actors.withLock { actors in
            if let actor = actors[ObjectIdentifier(loop)] { return actor }
            let actor = EventLoopActor(loop: loop)
            actors[ObjectIdentifier(loop)] = actor
            return actor
        }
    }
}

/// An HTTP/1.1 connection of one plane: collects each request's body (bounded), hands the request to the
/// gateway, writes the response. NIO's pipeline handler keeps pipelined requests in order and closes
/// idle connections on quiesce (graceful shutdown).
final class GatewayConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let gateway: HTTPGateway
    private let actor: EventLoopActor
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var bodyTooLarge = false

    init(gateway: HTTPGateway, actor: EventLoopActor) {
        self.gateway = gateway
        self.actor = actor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body.clear()
            bodyTooLarge = false
            // A client that waits for leave to send its body (curl does for bodies over 1 KiB) gets it now;
            // a body over the limit is read and dropped, then refused with 413 once the request is whole.
            if request.headers[.expect]?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .continue))), promise: nil)
            }
        case .body(var chunk):
            guard !bodyTooLarge else { return }
            if body.readableBytes + chunk.readableBytes > gateway.shared.bodyBytesMax {
                bodyTooLarge = true
                body.clear()
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let request = GatewayRequest(head: head, body: body, bodyTooLarge: bodyTooLarge)
            body = ByteBuffer()
            let keepAlive = head.isKeepAlive
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let (gateway, actor) = (gateway, actor)
            gateway.shared.requestStarted()
            Task.immediate {
                await actor.serve(gateway, request) { response in
                    loopBound.value.0.write(response, keepAlive: keepAlive, context: loopBound.value.1)
                    gateway.shared.requestFinished()
                }
            }
        }
    }

    private func write(_ response: GatewayResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.add(name: "Content-Length", value: String(response.body.readableBytes))
        headers.add(name: "Server", value: "tallyd")
        headers.add(name: "Date", value: HTTPDate.now())
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: response.status.code, reasonPhrase: response.status.reasonPhrase),
            headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// One plane's listener: binds, serves, and on shutdown stops accepting and lets each connection finish
/// the request it is answering.
final class GatewayListener: Sendable {
    let channel: any Channel
    private let quiescing: ServerQuiescingHelper

    init(gateway: HTTPGateway, host: String, port: Int, actors: EventLoopActors, connectionsMax: Int) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        self.quiescing = quiescing
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // Connections over the limit are closed at accept, before they cost anything.
                guard gateway.shared.connections.admit(channel, max: connectionsMax) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        GatewayConnectionHandler(gateway: gateway, actor: actors.actor(for: channel.eventLoop)))
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    /// Stops accepting; connections close once their current response is written. Completes when all are closed.
    func shutdown() async {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        quiescing.initiateShutdown(promise: promise)
        try? await promise.futureResult.get()
    }
}

/// The `Date` header every response carries (RFC 9110 section 6.6.1), formatted once per second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        let second = Int(spec.tv_sec)
        if let text = cache.withLock({ $0.second == second ? $0.text : nil }) { return text }
        let text = format(epochSeconds: second)
        cache.withLock { $0 = (second, text) }
        return text
    }

    /// IMF-fixdate, e.g. `Sun, 29 Nov 2026 19:30:00 GMT`.
    static func format(epochSeconds: Int) -> String {
        var time = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
