import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization
import TallyWire

/// One HTTP request as the gateway sees it: the head, and the body collected up to the gateway's limit.
struct GatewayRequest: Sendable {
    var method: HTTPRequest.Method
    var path: String
    var query: [(String, String)]
    var headers: RequestHeaders
    var body: ByteBuffer
    /// The body went over the limit (it is not read).
    var bodyTooLarge: Bool
    /// Where the exchange's request id (and trace id, when the client sends none) come from.
    var ids: ExchangeIDs

    init(_ request: HTTP1Request, ids: ExchangeIDs) {
        // The parser admits only token methods; one HTTP does not know is never confused with a served one.
        method = HTTPRequest.Method(request.method) ?? HTTPRequest.Method("INVALID")!
        headers = request.headers
        let target = Self.originForm(request.target)
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(target[..<mark])
            query = Self.parseQuery(target[target.utf8.index(after: mark)...])
        } else {
            path = target
            query = []
        }
        body = request.body
        bodyTooLarge = request.bodyTooLarge
        self.ids = ids
    }

    /// The request target as a path and query: an absolute-form target (`http://host/v1/...`, which HTTP/1.1
    /// servers must accept) loses its scheme and authority.
    static func originForm(_ target: String) -> String {
        guard target.utf8.first != UInt8(ascii: "/") else { return target }
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
    var headers: ResponseHeaders
    /// The JSON as written (copied once, into the message's buffer).
    var body: [UInt8]
}

/// The gateway's own response fields (the connection adds `Content-Length`, `Date`, `Server` and
/// `Connection`), in the order they were set.
struct ResponseHeaders: Sendable, ExpressibleByDictionaryLiteral {
    private(set) var fields: [(name: HTTPField.Name, value: String)] = []

    init(dictionaryLiteral elements: (HTTPField.Name, String)...) {
        fields.reserveCapacity(6)  // the gateway adds the request and trace ids (and the tenant)
        for (name, value) in elements { self[name] = value }
    }

    subscript(_ name: HTTPField.Name) -> String? {
        get { fields.first { $0.name == name }?.value }
        set {
            fields.removeAll { $0.name == name }
            if let newValue { fields.append((name, newValue)) }
        }
    }
}

/// Writes one response as the bytes of an HTTP/1.1 message.
enum HTTP1ResponseWriter {
    /// Status line, the gateway's fields, the connection's fields, and the body (none after a HEAD).
    static func write(_ response: GatewayResponse, keepAlive: Bool, headRequest: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(response.status.code))
        buffer.writeStaticString(" ")
        buffer.writeString(response.status.reasonPhrase)
        buffer.writeStaticString("\r\n")
        for (name, value) in response.headers.fields { field(name.rawName, value, into: &buffer) }
        buffer.writeStaticString("Content-Length: ")
        buffer.writeString(String(response.body.count))
        buffer.writeStaticString("\r\nServer: tallyd\r\nDate: ")
        buffer.writeString(HTTPDate.now())
        buffer.writeStaticString(keepAlive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n")
        if !headRequest { buffer.writeBytes(response.body) }
    }

    /// One field line; a CR or LF in a value (never produced by the gateway) becomes a space, so a value
    /// can never end the head early.
    private static func field(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        if value.utf8.withContiguousStorageIfAvailable({ $0.contains { $0 == 13 || $0 == 10 } }) ?? value.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
            buffer.writeBytes(value.utf8.map { $0 == 13 || $0 == 10 ? 32 : $0 })
        } else {
            buffer.writeString(value)
        }
        buffer.writeStaticString("\r\n")
    }
}

/// Runs the gateway's request tasks on the event loop that read the request: a task executor per loop, preferred
/// by every request task that loop starts. The request is parsed, validated and answered on its loop, and the
/// resumption after the ledger's answer goes straight there: Swift resumes a continuation on the generic
/// executor, which for a task with a preferred executor is that executor. (An actor on the loop's serial
/// executor, the first way this was done, resumed through a thread of the global pool and then switched to the
/// loop: two thread wake-ups per request instead of one. With `NonisolatedNonsendingByDefault` the gateway's
/// async functions run where their caller runs, so no call hops either.)
final class EventLoopTasks: Sendable {
    let loop: any EventLoop
    /// An `EventLoopTaskExecutor` where the platform has task executors (macOS 15; always on Linux).
    private let executor: (any Sendable)?

    init(loop: any EventLoop) {
        self.loop = loop
        if #available(macOS 15, *) {
            executor = EventLoopTaskExecutor(loop: loop)
        } else {
            executor = nil
        }
    }

    /// Answers `request` in a task of its own and hands the response to `write` on the loop. Called on the
    /// loop's thread; the task starts at once, on that thread, where the platform allows.
    func start(_ gateway: HTTPGateway, _ request: GatewayRequest, then write: @escaping @Sendable (GatewayResponse) -> Void) {
        if #available(macOS 26, *), let executor = executor as? EventLoopTaskExecutor {
            Task.immediate(executorPreference: executor) { write(await gateway.respond(to: request)) }
        } else if #available(macOS 15, *), let executor = executor as? EventLoopTaskExecutor {
            Task(executorPreference: executor) { write(await gateway.respond(to: request)) }
        } else {
            let loop = loop
            Task {
                let response = await gateway.respond(to: request)
                loop.execute { write(response) }
            }
        }
    }

    /// The loop's tasks, made once per loop.
    final class Registry: Sendable {
        private let tasks = Mutex<[ObjectIdentifier: EventLoopTasks]>([:])

        func tasks(for loop: any EventLoop) -> EventLoopTasks {
            tasks.withLock { tasks in
                if let found = tasks[ObjectIdentifier(loop)] { return found }
                let made = EventLoopTasks(loop: loop)
                tasks[ObjectIdentifier(loop)] = made
                return made
            }
        }
    }
}

/// A task executor that runs jobs on one event loop (a job is one more task on the loop's queue).
@available(macOS 15, *)
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// An HTTP/1.1 connection of one plane: parses requests from the bytes (`HTTP1Parser`), answers one at a
/// time in order (pipelined requests wait, and reading stops while too much of them is buffered), and writes
/// each response as one buffer. On quiesce (graceful shutdown) an idle connection closes at once, a busy
/// one after its current answer. A connection that does not send its next whole request within the idle
/// timeout of opening or of its last answer is closed (with a 408 when part of a request had arrived), so
/// neither idle keep-alive clients nor slow senders hold connection places for ever.
final class GatewayConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let gateway: HTTPGateway
    private let tasks: EventLoopTasks
    private var parser: HTTP1Parser
    private var ids = ExchangeIDs()
    private var buffered = ByteBuffer()
    /// A request is being answered.
    private var serving = false
    /// A read was held back while serving with a full buffer.
    private var readHeld = false
    private var quiescing = false
    private var closing = false
    private let idleTimeout: TimeAmount
    /// Since when the connection owes its next request (opening, or its last answer).
    private var waitingSince = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?

    /// Bytes of further (pipelined) requests buffered while one is answered before reading pauses.
    private var bufferedMax: Int { parser.limits.headBytesMax + parser.limits.bodyBytesMax }

    init(gateway: HTTPGateway, tasks: EventLoopTasks, idleTimeout: TimeAmount) {
        self.gateway = gateway
        self.tasks = tasks
        self.idleTimeout = idleTimeout
        parser = HTTP1Parser(limits: .init(bodyBytesMax: gateway.shared.bodyBytesMax))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        scheduleIdleCheck(in: idleTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
    }

    private func scheduleIdleCheck(in delay: TimeAmount, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(in: delay) {
            loopBound.value.0.checkIdle(context: loopBound.value.1)
        }
    }

    private func checkIdle(context: ChannelHandlerContext) {
        guard !closing else { return }
        // A request being answered is the server's time, not the client's.
        if serving { return scheduleIdleCheck(in: idleTimeout, context: context) }
        let waited = NIODeadline.now() - waitingSince
        guard waited >= idleTimeout else { return scheduleIdleCheck(in: idleTimeout - waited, context: context) }
        if buffered.readableBytes > 0 || !parser.isIdle {
            refuse(HTTP1Error(status: 408, message: "the request did not arrive whole within \(idleTimeout.nanoseconds / 1_000_000_000) s"), context: context)
        } else {
            close(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closing else { return }
        if buffered.readableBytes == 0 {
            buffered = bytes
        } else {
            buffered.writeBuffer(&bytes)
        }
        serveNext(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if serving, buffered.readableBytes >= bufferedMax {
            readHeld = true
        } else {
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        quiescing = true
        if !serving { close(context: context) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context)
    }

    /// A peer gone mid-way: requests still buffered behind the one being answered are not started.
    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        context.fireChannelInactive()
    }

    /// Parses what is buffered and starts answering the next whole request, if there is one.
    private func serveNext(context: ChannelHandlerContext) {
        while !serving, !closing {
            let step: HTTP1Parser.Step
            do {
                step = try parser.next(&buffered)
            } catch {
                return refuse(error, context: context)
            }
            switch step {
            case .needMore:
                if buffered.readableBytes == 0 { buffered.clear() } else { buffered.discardReadBytes() }
                return
            case .continueExpected:
                // A client that waits before sending its body (curl does for bodies over 1 KiB) gets leave now.
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
            case .request(let request):
                serve(request, context: context)
            }
        }
    }

    private func serve(_ parsed: HTTP1Request, context: ChannelHandlerContext) {
        serving = true
        let request = GatewayRequest(parsed, ids: ids.split())
        let keepAlive = parsed.keepAlive && !quiescing
        let headRequest = parsed.isHead
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let gateway = gateway
        gateway.shared.requestStarted()
        let write: @Sendable (GatewayResponse) -> Void = { response in
            loopBound.value.0.answered(response, keepAlive: keepAlive, headRequest: headRequest, context: loopBound.value.1)
            gateway.shared.requestFinished()
        }
        // The runtime commands are answered through a completion; everything else in a task on this loop.
        guard gateway.startCommand(request, on: context.eventLoop, then: write) else {
            return tasks.start(gateway, request, then: write)
        }
    }

    private func answered(_ response: GatewayResponse, keepAlive: Bool, headRequest: Bool, context: ChannelHandlerContext) {
        serving = false
        waitingSince = .now()
        let keepAlive = keepAlive && !quiescing && !closing
        // The head is 250-400 bytes (the trace fields and the date); room for it, so the buffer never grows.
        var bytes = context.channel.allocator.buffer(capacity: 512 + response.body.count)
        HTTP1ResponseWriter.write(response, keepAlive: keepAlive, headRequest: headRequest, into: &bytes)
        guard keepAlive else {
            return writeAndClose(bytes, context: context)
        }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        serveNext(context: context)
        if readHeld, !serving {
            readHeld = false
            context.read()
        }
    }

    /// A message that cannot be served: answered with its status and a Cycles error body, then closed.
    private func refuse(_ error: HTTP1Error, context: ChannelHandlerContext) {
        closing = true
        let trace = TraceContext.resolve(traceparent: nil, cyclesTraceID: nil, ids: &ids)
        let body = CyclesResponses.error(
            WireError(code: .invalidRequest, message: error.message),
            requestID: trace.requestID, traceID: trace.traceID)
        let response = GatewayResponse(
            status: HTTPResponse.Status(code: error.status, reasonPhrase: error.reasonPhrase),
            headers: [.contentType: "application/json", .requestID: trace.requestID, .cyclesTraceID: trace.traceID],
            body: body)
        var bytes = context.channel.allocator.buffer(capacity: 512 + body.count)
        HTTP1ResponseWriter.write(response, keepAlive: false, headRequest: false, into: &bytes)
        writeAndClose(bytes, context: context)
    }

    private func writeAndClose(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(bytes)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func close(context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        context.close(promise: nil)
    }
}

/// One plane's listener: binds, serves, and on shutdown stops accepting and lets each connection finish
/// the request it is answering.
final class GatewayListener: Sendable {
    let channel: any Channel
    private let quiescing: ServerQuiescingHelper

    init(gateway: HTTPGateway, host: String, port: Int, tasks: EventLoopTasks.Registry, connectionsMax: Int, idleTimeout: TimeAmount) async throws {
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
                    try channel.pipeline.syncOperations.addHandler(
                        GatewayConnectionHandler(gateway: gateway, tasks: tasks.tasks(for: channel.eventLoop), idleTimeout: idleTimeout))
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
