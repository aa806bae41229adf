import Logging
import NIOCore
import TallyCore
import TallyStore
import TallyWire

/// One client connection: handshake, then pipelined requests answered by request id.
///
/// The handler frames the bytes it reads itself, with `FrameDecoder` (an oversized length is refused after
/// its four bytes), keeps the connection's state (principal, requests in flight, subscriptions) on its
/// event loop and hands work to the router, the store's writer or a read transaction. A malformed frame
/// gets an error frame and a close; other connections and the ledger are untouched.
///
/// Framing here rather than in a `ByteToMessageHandler` in front: that handler wraps every frame in an
/// `NIOAny` that this one unwraps with a dynamic cast, and runs its own decode loop per read, about a tenth
/// of the event loops' time per request at 16 connections x 64 in flight (BENCHMARKS.md).
///
/// Answers are framed straight into one buffer per event loop tick, which is written and flushed once
/// (no frame encoder in the pipeline, one write per batch of answers rather than one per answer).
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case awaitingHello
        case ready(Principal, keyHash: Digest256?, checkedAt: Int64)
        case closing
    }

    private struct Subscription {
        var next: UInt64
        var credit: UInt32
    }

    /// A command the store has completed, waiting for this connection's event loop.
    private struct Completed: Sendable {
        var requestID: UInt32
        /// Optional only so that `deliverCompleted` can move it out (`take()`); always set until then.
        var outcome: Result<Result<Decision, Refusal>, StoreError>?
        var answer: @Sendable (Decision) -> Response
    }

    private let context: ServerContext
    private var phase = Phase.awaitingHello
    private(set) var inFlight = 0
    private var subscriptions: [UInt32: Subscription] = [:]
    private var pollTask: RepeatedTask?
    /// Commands completed by the store for this connection, posted from the store's thread.
    private let completed = AnswerMailbox<Completed>()
    /// The answers `deliverCompleted` is sending (empty between its runs; its storage goes back and forth
    /// with the mailbox's).
    private var delivering: [Completed] = []
    private var flushScheduled = false
    /// Framed answers waiting for this tick's flush (empty when `flushScheduled` is false).
    private var pending = ByteBuffer()
    private var decoder: FrameDecoder
    /// Bytes read and not yet framed (the start of a frame whose end has not arrived), if any.
    private var unframed: ByteBuffer?
    /// Schedules the store's work left for after an answer (a lone command's projections) behind the answer's
    /// flush: the completion posts `deliverCompleted`, which schedules the flush; two hops queue the work after it.
    private var afterAnswer: LedgerStore.AfterAnswer?

    init(context: ServerContext, frameBytesMax: Int) {
        self.context = context
        decoder = FrameDecoder(frameBytesMax: frameBytesMax)
    }

    func channelActive(context channelContext: ChannelHandlerContext) {
        let loop = channelContext.eventLoop
        afterAnswer = { work in loop.execute { loop.execute(work) } }
        context.registry.add(channelContext.channel, handler: NIOLoopBound(self, eventLoop: channelContext.eventLoop))
    }

    func channelInactive(context channelContext: ChannelHandlerContext) {
        unframed = nil  // a frame cut short by the peer's close: nobody is left to answer
        pollTask?.cancel()
        context.registry.remove(channelContext.channel)
        channelContext.fireChannelInactive()
    }

    func channelRead(context channelContext: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var earlier = unframed {
            unframed = nil  // unique again, so the append below does not copy what it holds
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        do {
            while !isClosing, let frame = try decoder.decode(buffer: &bytes) {
                received(frame, channelContext)
            }
        } catch {
            // An oversized or impossible length: nothing after it can be framed.
            return fail(error, requestID: 0, channelContext)
        }
        guard bytes.readableBytes > 0, !isClosing else { return }
        // Keep only the partial frame: the bytes before it are done with.
        bytes.discardReadBytes()
        unframed = bytes
    }

    private var isClosing: Bool {
        if case .closing = phase { return true }
        return false
    }

    private func received(_ frame: Frame, _ channelContext: ChannelHandlerContext) {
        let request: Request
        do {
            request = try WireCodec.decodeRequest(frame)
        } catch {
            return fail(error, requestID: frame.requestID, channelContext)
        }
        switch phase {
        case .closing:
            return
        case .awaitingHello:
            guard case .hello(let hello) = request else {
                return fail(WireError(code: .unauthorized, message: "the first frame must be a hello with a credential"), requestID: frame.requestID, channelContext)
            }
            handshake(hello, requestID: frame.requestID, channelContext)
        case .ready(let principal, let keyHash, let checkedAt):
            // A tenant key is re-checked at most once per `keyRecheckMilliseconds`: a revoked key or a
            // suspended tenant stops working within that time on open connections, without two read
            // transactions on every request.
            let now = context.clock()
            if let keyHash, now - checkedAt >= ServerContext.keyRecheckMilliseconds {
                if case .failure(let error) = context.authenticator.check(keyHash, now: now) {
                    return fail(error, requestID: frame.requestID, channelContext)
                }
                phase = .ready(principal, keyHash: keyHash, checkedAt: now)
            }
            handle(request, requestID: frame.requestID, principal: principal, channelContext)
        }
    }

    func errorCaught(context channelContext: ChannelHandlerContext, error: Error) {
        let wireError = (error as? WireError) ?? WireError(code: .malformedFrame, message: "\(error)")
        fail(wireError, requestID: 0, channelContext)
    }

    private func handshake(_ hello: Hello, requestID: UInt32, _ channelContext: ChannelHandlerContext) {
        switch context.authenticator.authenticate(hello.credential, now: context.clock()) {
        case .failure(let error):
            fail(error, requestID: requestID, channelContext)
        case .success(let (principal, hash)):
            phase = .ready(principal, keyHash: hash, checkedAt: context.clock())
            context.logger.debug("authenticated", metadata: ["client": "\(hello.clientName)", "principal": "\(principal)"])
            write(.welcome(Welcome(protocolVersion: WireProtocol.version, principal: principal, limits: context.limits, serverName: "tallyd")), requestID: requestID, channelContext)
        }
    }

    private func handle(_ request: Request, requestID: UInt32, principal: Principal, _ channelContext: ChannelHandlerContext) {
        switch context.router.route(request, principal: principal) {
        case .refuse(let error):
            write(.error(error), requestID: requestID, channelContext)
        case .read(let read):
            do {
                write(try read(), requestID: requestID, channelContext)
            } catch let error as WireError {
                write(.error(error), requestID: requestID, channelContext)
            } catch {
                write(.error(WireError(code: .internalError, message: "\(error)")), requestID: requestID, channelContext)
            }
        case .command(let command, let answer):
            guard !context.registry.isDraining else {
                return write(.error(WireError(code: .internalError, message: "the server is shutting down; retry with the same idempotency key")), requestID: requestID, channelContext)
            }
            // An open subscription counts as a request in flight (protocol/wire.md, pipelining).
            guard inFlight + subscriptions.count < Int(context.limits.inFlightRequestsMax) else {
                return write(.error(WireError(code: .limitExceeded, message: "more than \(context.limits.inFlightRequestsMax) requests in flight")), requestID: requestID, channelContext)
            }
            inFlight += 1
            let loopBound = NIOLoopBound((self, channelContext), eventLoop: channelContext.eventLoop)
            let mailbox = completed
            // The answer is built on the event loop, not on the store's thread that completes the command
            // (the flusher's, between the log's fsync and the projections: the batch's critical path); the
            // answers of one batch reach the loop in one task (`AnswerMailbox`).
            context.store.submit(command, afterAnswer: afterAnswer) { outcome in
                guard mailbox.post(Completed(requestID: requestID, outcome: outcome, answer: answer)) else { return }
                loopBound.eventLoop.execute {
                    let (handler, channelContext) = loopBound.value
                    handler.deliverCompleted(channelContext)
                }
            }
        case .subscribe(let from, let credit):
            guard inFlight + subscriptions.count < Int(context.limits.inFlightRequestsMax) else {
                return write(.error(WireError(code: .limitExceeded, message: "more than \(context.limits.inFlightRequestsMax) requests in flight")), requestID: requestID, channelContext)
            }
            subscriptions[requestID] = Subscription(next: from, credit: credit)
            write(.subscribed(fromSequence: from), requestID: requestID, channelContext)
            startPolling(channelContext)
        case .grantCredit(let credit):
            subscriptions[requestID]?.credit &+= credit
        }
    }

    /// Answers every command the store has completed for this connection so far, in the order completed.
    private func deliverCompleted(_ channelContext: ChannelHandlerContext) {
        completed.takeAll(into: &delivering)
        // Each answer moved out (from the back of the reversed array, which ends empty with its capacity kept):
        // `for done in delivering` copied every one of them (a retain and a release of its closure and of
        // everything in its decision). Reversed through the buffer, whose swaps move; the array's own `reverse()`
        // copied each answer twice more.
        delivering.withUnsafeMutableBufferPointer { $0.reverse() }
        while var done = delivering.popLast() {
            // The outcome moved out of the answer: switched on in place, its decision was copied (a retain and a
            // release of everything in it) to be handed to `answer`.
            let response: Response = switch done.outcome.take() {
            case .success(.success(let decision))?: done.answer(decision)
            case .success(.failure(let refusal))?: .error(WireError(refusal))
            case .failure(let storeError)?: .error(WireError(code: .internalError, message: "the ledger could not make this durable: \(storeError)"))
            case nil: preconditionFailure("an answer delivered twice")
            }
            inFlight -= 1
            write(response, requestID: done.requestID, channelContext)
        }
    }

    private func startPolling(_ channelContext: ChannelHandlerContext) {
        guard pollTask == nil else { return }
        let loopBound = NIOLoopBound((self, channelContext), eventLoop: channelContext.eventLoop)
        pollTask = channelContext.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(context.subscriptionPollMilliseconds)) { _ in
            let (handler, channelContext) = loopBound.value
            handler.pushEvents(channelContext)
        }
    }

    /// Sends each subscription the committed events it has credit for (flow control: never more).
    private func pushEvents(_ channelContext: ChannelHandlerContext) {
        for (id, subscription) in subscriptions where subscription.credit > 0 {
            guard let events = try? context.store.events(from: subscription.next, limit: Int(min(subscription.credit, 512))) else { continue }
            // Events below a trim point live only in the archive: a gap is refused, never skipped silently.
            if let first = events.first, first.event.sequence != subscription.next {
                subscriptions[id] = nil
                let message = "events \(subscription.next)-\(first.event.sequence - 1) were trimmed from the live log into the archive; "
                    + "read them with tally replay or tally audit, then subscribe from \(first.event.sequence)"
                write(.error(WireError(code: .invalidRequest, message: message)), requestID: id, channelContext)
                continue
            }
            for stored in events {
                write(.event(record: stored.record, chain: stored.chain), requestID: id, channelContext)
            }
            if let last = events.last {
                subscriptions[id] = Subscription(next: last.event.sequence + 1, credit: subscription.credit - UInt32(events.count))
            }
        }
    }

    /// Frames a response into this tick's buffer; the buffer is written and flushed once per event loop
    /// tick, so a batch of answers shares one write and one syscall.
    private func write(_ response: Response, requestID: UInt32, _ channelContext: ChannelHandlerContext) {
        guard channelContext.channel.isActive else { return }
        if pending.capacity == 0 { pending = channelContext.channel.allocator.buffer(capacity: 1_024) }
        pending.writeFrame(WireCodec.encodeResponse(response, requestID: requestID))
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound((self, channelContext), eventLoop: channelContext.eventLoop)
        channelContext.eventLoop.execute {
            let (handler, channelContext) = loopBound.value
            handler.flushPending(channelContext)
        }
    }

    /// Writes and flushes the framed answers of this tick, if any.
    private func flushPending(_ channelContext: ChannelHandlerContext) {
        flushScheduled = false
        guard pending.readableBytes > 0 else { return }
        let answers = pending
        pending = ByteBuffer()
        channelContext.writeAndFlush(wrapOutboundOut(answers), promise: nil)
    }

    /// Answers with an error frame, then closes: used for malformed frames and failed authentication.
    private func fail(_ error: Error, requestID: UInt32, _ channelContext: ChannelHandlerContext) {
        if case .closing = phase { return }
        phase = .closing
        let wireError = (error as? WireError) ?? WireError(code: .malformedFrame, message: "\(error)")
        context.logger.debug("closing a connection", metadata: ["error": "\(wireError)"])
        // Answers framed earlier in this tick go first, in order.
        var frames = pending
        pending = ByteBuffer()
        if frames.capacity == 0 { frames = channelContext.channel.allocator.buffer(capacity: 256) }
        frames.writeFrame(WireCodec.encodeResponse(.error(wireError), requestID: requestID))
        let loopBound = NIOLoopBound(channelContext, eventLoop: channelContext.eventLoop)
        channelContext.writeAndFlush(wrapOutboundOut(frames)).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }
}

/// What every connection shares.
struct ServerContext: Sendable {
    let store: LedgerStore
    let router: RequestRouter
    let authenticator: Authenticator
    let limits: ServerLimits
    let registry: ConnectionRegistry
    let logger: Logger
    let clock: @Sendable () -> Int64
    let subscriptionPollMilliseconds: Int64

    /// How long an open connection trusts its tenant key's last check (see `ConnectionHandler`).
    static let keyRecheckMilliseconds: Int64 = 1_000
}
