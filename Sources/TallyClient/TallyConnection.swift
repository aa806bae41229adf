import NIOCore
import NIOPosix
import TallyCore
import TallyWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One authenticated connection to `tallyd` over the binary protocol, shared by any number of tasks.
///
/// Requests are pipelined: each `send` gets a fresh request id and waits for the response that carries it,
/// in whatever order the server answers. The connection never reconnects on its own; when it closes,
/// every waiting request fails with `TallyClientError`, and the caller decides whether to connect again
/// (requests with idempotency keys can then be retried safely).
public final class TallyConnection: Sendable {
    /// The server's answer to the handshake: who this connection acts for and the server's limits.
    public let welcome: Welcome
    private let channel: any Channel
    private let router: ResponseRouter

    private init(welcome: Welcome, channel: any Channel, router: ResponseRouter) {
        self.welcome = welcome
        self.channel = channel
        self.router = router
    }

    deinit {
        // A forgotten connection must not keep its socket open until the server gives up on it.
        channel.close(promise: nil)
    }

    /// Opens a TCP connection, presents `credential` and waits for the welcome.
    ///
    /// Throws the server's `WireError` when it refuses the credential (`UNAUTHORIZED`...), and
    /// `TallyClientError.connectionFailed` when no TCP connection can be made.
    public static func connect(
        host: String, port: Int, credential: Credential, clientName: String = "tally",
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> TallyConnection {
        // The router needs the connection's event loop before the channel exists, so the loop is picked here.
        let eventLoop = group.next()
        let router = ResponseRouter(eventLoop: eventLoop)
        let channel: any Channel
        do {
            channel = try await bootstrap(group: eventLoop, router: router).connect(host: host, port: port).get()
        } catch {
            throw TallyClientError.connectionFailed(connectFailureReason(error))
        }
        do {
            let hello = Hello(credential: credential, clientName: clientName)
            let response = try await exchange(.hello(hello), requestID: 0, router: router, channel: channel)
            switch response {
            case .welcome(let welcome):
                if router.setInFlightMax(Int(welcome.limits.inFlightRequestsMax)) {
                    scheduleDrain(router, channel)
                }
                return TallyConnection(welcome: welcome, channel: channel, router: router)
            default:
                throw TallyClientError.unexpectedResponse(expected: "welcome", received: response.kindName)
            }
        } catch {
            router.close(.closedByClient)
            try? await channel.close()
            throw error
        }
    }

    /// Sends one request and waits for its response; an error frame is thrown as `WireError`.
    ///
    /// The handshake, `subscribe` and `grantCredit` have their own calls and are refused here. Cancelling the
    /// calling task stops the wait, but a request already written may still take effect on the server.
    public func send(_ request: Request) async throws -> Response {
        if let refusal = Self.refusal(of: request) { throw refusal }
        return try await Self.exchange(request, requestID: router.makeRequestID(), router: router, channel: channel)
    }

    /// Sends one request and calls `completion` with its response, or with the error `send(_:)` would throw:
    /// the pipelined form for callers that keep many requests in flight without a task for each.
    ///
    /// `completion` is called exactly once, on the connection's event loop, and never before this call
    /// returns, so it may send the next request itself. It should be short: the connection reads no
    /// further responses while it runs.
    public func send(_ request: Request, completion: @escaping @Sendable (Result<Response, any Error>) -> Void) {
        let frame: Frame
        let requestID: UInt32
        do {
            if let refusal = Self.refusal(of: request) { throw refusal }
            try WireCodec.checkLimits(request)
            requestID = router.makeRequestID()
            frame = WireCodec.encodeRequest(request, requestID: requestID)
        } catch {
            channel.eventLoop.execute { completion(.failure(error)) }
            return
        }
        if router.register(requestID, frame, .handler(completion)) { Self.scheduleDrain(router, channel) }
    }

    /// Streams the committed events from `sequence` on (admin key only), as the log stores them: the
    /// encoded record (`EventCodec.decode`) and its chain value.
    ///
    /// Flow control: the server sends at most `credit` events ahead of the consumer; every time the consumer
    /// has taken half of them, the client grants that many again. The stream ends without an error when this
    /// client closes the connection and throws when the server refuses or the connection fails. A consumer
    /// that stops iterating leaves at most `credit` events buffered, and the server stops sending.
    public func subscribe(
        from sequence: UInt64, credit: UInt32 = 256
    ) -> AsyncThrowingStream<(record: [UInt8], chain: [UInt8]), any Error> {
        let credit = min(max(credit, 1), ClientLimits.subscriptionCreditMax)
        let id = router.makeRequestID()
        if let closed = router.openSubscription(id, credit: credit) {
            return AsyncThrowingStream { $0.finish(throwing: closed) }
        }
        let frame = WireCodec.encodeRequest(.subscribe(fromSequence: sequence, credit: credit), requestID: id)
        if router.enqueue(frame) { Self.scheduleDrain(router, channel) }
        let router = self.router
        let channel = self.channel
        return AsyncThrowingStream(unfolding: {
            let delivery = try await router.nextEvent(id)
            if let credit = delivery.credit, router.enqueue(credit) { Self.scheduleDrain(router, channel) }
            return delivery.event
        })
    }

    /// Closes the connection; requests still waiting fail with `TallyClientError.closedByClient` and
    /// subscriptions end.
    public func close() async {
        router.close(.closedByClient)
        try? await channel.close()
    }

    // MARK: Plumbing

    /// The handshake, `subscribe` and `grantCredit` have their own calls.
    private static func refusal(of request: Request) -> TallyClientError? {
        switch request {
        case .hello: .unsupportedRequest("the handshake is made by connect(...)")
        case .subscribe, .grantCredit: .unsupportedRequest("use subscribe(from:credit:) to stream events")
        default: nil
        }
    }

    /// Framing in the pipeline, matching and encoding in the router: the only handler of our own is
    /// `ResponseHandler`, and the router hands it whole buffers to write.
    private static func bootstrap(group: any EventLoopGroup, router: ResponseRouter) -> ClientBootstrap {
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let decoder = FrameDecoder(frameBytesMax: ClientLimits.responseFrameBytesMax)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(router: router))
                }
            }
    }

    /// A short reason for a failed connect: the socket error of each address tried (NIO's own description
    /// nests several types).
    private static func connectFailureReason(_ error: any Error) -> String {
        guard let connectionError = error as? NIOConnectionError else { return "\(error)" }
        let reasons = connectionError.connectionErrors.map { failure -> String in
            guard let ioError = failure.error as? IOError else { return "\(failure.error)" }
            return String(cString: strerror(ioError.errnoCode))
        }
        if let dnsError = connectionError.dnsAAAAError ?? connectionError.dnsAError, reasons.isEmpty {
            return "cannot resolve \(connectionError.host): \(dnsError)"
        }
        return reasons.isEmpty ? "\(error)" : Array(Set(reasons)).sorted().joined(separator: "; ")
    }

    private static func exchange(
        _ request: Request, requestID: UInt32, router: ResponseRouter, channel: any Channel
    ) async throws -> Response {
        // The encoder treats a value over a wire limit as a broken invariant; values a user typed are checked
        // here and refused like the server would refuse them (`INVALID_REQUEST`).
        try WireCodec.checkLimits(request)
        let frame = WireCodec.encodeRequest(request, requestID: requestID)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if router.register(requestID, frame, .task(continuation)) { scheduleDrain(router, channel) }
            }
        } onCancel: {
            router.cancel(requestID)
        }
    }

    /// Writes the router's queued frames on the event loop: one hop for every frame queued until it runs.
    private static func scheduleDrain(_ router: ResponseRouter, _ channel: any Channel) {
        channel.eventLoop.execute { ResponseHandler.drainOutbound(router, channel) }
    }
}
