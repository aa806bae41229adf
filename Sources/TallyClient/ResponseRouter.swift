import NIOCore
import Synchronization
import TallyWire

/// Matches response frames to the callers waiting for them, and queues the frames to write; plain code behind
/// one lock, so the NIO handler only forwards frames and callers only wait.
///
/// Invariants: a request id is in `pending` from registration until its response arrives (or, if it was
/// never written, until it fails or is cancelled), so no id is reused while the server may still answer
/// it; every waiter is resumed exactly once, after it has been taken out of the table; at most
/// `inFlightMax` requests are on the wire and the rest wait in `backlog` in the order they were sent.
/// Frames admitted to the wire are appended to `outbound` (in admission order) and written by whoever drains
/// it on the event loop: the response handler at the end of each read, or one task scheduled when the first
/// frame arrives in an empty queue. So a burst of requests costs one write and one flush, not one each.
/// Completion handlers run on `eventLoop` and never under the lock (they may send again); continuations
/// only enqueue their task, so they are resumed wherever the event that ends their wait happens.
final class ResponseRouter: Sendable {
    typealias Event = (record: [UInt8], chain: [UInt8])
    typealias Completion = @Sendable (Result<Response, any Error>) -> Void

    /// The connection's event loop: completion handlers run on it.
    let eventLoop: any EventLoop
    private let state: Mutex<State>

    private struct State {
        var nextRequestID: UInt32 = 1
        var inFlightMax = ClientLimits.inFlightRequestsBeforeWelcome
        var written = 0
        var pending: [UInt32: Pending] = [:]
        var backlog = FIFO<(id: UInt32, frame: Frame)>()
        var subscriptions: [UInt32: Subscription] = [:]
        /// Set once; every later registration fails with it.
        var closed: TallyClientError?
        /// An error frame that answered no pending request: the server's reason for closing the connection.
        var serverError: WireError?
        /// Encoded frames admitted to the wire and not yet handed to the channel.
        var outbound = ByteBuffer()
        /// The request ids of the frames in `outbound`, to fail them if their write fails.
        var outboundIDs: [UInt32] = []
        /// A drain of `outbound` is already due (scheduled, or the response handler is in a read).
        var drainDue = false
    }

    /// A caller waiting for a response: a suspended task or a completion handler.
    enum Waiter: Sendable {
        case task(CheckedContinuation<Response, any Error>)
        case handler(Completion)

        /// An error frame ends the wait with the server's `WireError`.
        func resume(_ response: Response) {
            if case .error(let error) = response { return resume(throwing: error) }
            switch self {
            case .task(let continuation): continuation.resume(returning: response)
            case .handler(let completion): completion(.success(response))
            }
        }

        func resume(throwing error: any Error) {
            switch self {
            case .task(let continuation): continuation.resume(throwing: error)
            case .handler(let completion): completion(.failure(error))
            }
        }
    }

    /// A waiter to resume once the lock is released, with a response or the error that ended its wait.
    typealias Resumption = (waiter: Waiter, outcome: Result<Response, any Error>)

    private struct Pending {
        /// `nil` once the caller gave up (cancelled); the entry stays until the server answers.
        var waiter: Waiter?
        var isWritten = false
    }

    /// What a subscription's consumer receives: an event (or `nil` at the end) and credit to write.
    typealias Delivery = (event: Event?, credit: Frame?)

    private enum SubscriptionEnd {
        case finished
        case failed(any Error)
    }

    private struct Subscription {
        /// Holds at most the granted credit: the server sends no more before the consumer takes some.
        var buffer = FIFO<Event>()
        var waiter: CheckedContinuation<Delivery, any Error>?
        var end: SubscriptionEnd?
        let grantThreshold: UInt32
        var consumedSinceGrant: UInt32 = 0
    }

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.state = Mutex(State())
    }

    // MARK: Requests

    /// A fresh request id: never 0 (the handshake's), never one still in use.
    func makeRequestID() -> UInt32 {
        state.withLock { state in
            var id: UInt32
            repeat {
                id = state.nextRequestID
                state.nextRequestID = state.nextRequestID == .max ? 1 : state.nextRequestID + 1
            } while state.pending[id] != nil || state.subscriptions[id] != nil
            return id
        }
    }

    /// Registers a caller and queues its frame for the wire, or in the backlog when the server's bound is
    /// reached; answers `true` when the caller must schedule a drain (`drainOutbound`) on the event loop.
    /// A closed connection or a cancelled task ends the wait at once.
    func register(_ id: UInt32, _ frame: Frame, _ waiter: Waiter) -> Bool {
        let outcome: (drain: Bool, refusal: (any Error)?) = state.withLock { state in
            if let closed = state.closed { return (false, closed) }
            if case .task = waiter, Task.isCancelled { return (false, CancellationError()) }
            guard state.written < state.inFlightMax else {
                state.pending[id] = Pending(waiter: waiter)
                state.backlog.append((id, frame))
                return (false, nil)
            }
            state.pending[id] = Pending(waiter: waiter, isWritten: true)
            state.written += 1
            return (Self.queue(frame, id, &state), nil)
        }
        if let refusal = outcome.refusal { resume([(waiter, .failure(refusal))]) }
        return outcome.drain
    }

    /// Queues a frame that waits for no response (a subscription's start or credit); answers `true` when the
    /// caller must schedule a drain.
    func enqueue(_ frame: Frame) -> Bool {
        state.withLock { state in Self.queue(frame, frame.requestID, &state) }
    }

    /// Appends an admitted frame to `outbound`; answers whether nobody is due to drain it yet.
    private static func queue(_ frame: Frame, _ id: UInt32, _ state: inout State) -> Bool {
        state.outbound.writeFrame(frame)
        state.outboundIDs.append(id)
        guard !state.drainDue else { return false }
        state.drainDue = true
        return true
    }

    /// Takes every queued frame (as one buffer) and their ids; from now on a new frame schedules a drain again.
    /// Call on the event loop only, so frames reach the channel in the order they were queued.
    func takeOutbound() -> (bytes: ByteBuffer, ids: [UInt32])? {
        state.withLock { state in
            state.drainDue = false
            guard state.outbound.readableBytes > 0 else { return nil }
            let taken = (state.outbound, state.outboundIDs)
            state.outbound.clear()
            state.outboundIDs.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// The caller's task was cancelled: it stops waiting. A written request keeps its slot until the server
    /// answers, because the server still counts it.
    func cancel(_ id: UInt32) {
        let waiter: Waiter? = state.withLock { state in
            guard var pending = state.pending[id] else { return nil }
            let waiter = pending.waiter
            pending.waiter = nil
            if pending.isWritten {
                state.pending[id] = pending
            } else {
                state.pending[id] = nil
            }
            return waiter
        }
        if let waiter { resume([(waiter, .failure(CancellationError()))]) }
    }

    /// The write of requests `ids` failed.
    func fail(_ ids: [UInt32], _ error: TallyClientError) {
        let resumptions: [Resumption] = state.withLock { state in
            var resumptions: [Resumption] = []
            for id in ids {
                guard let pending = state.pending.removeValue(forKey: id) else { continue }
                if pending.isWritten { state.written -= 1 }
                if let waiter = pending.waiter { resumptions.append((waiter, .failure(error))) }
            }
            return resumptions
        }
        resume(resumptions)
    }

    /// Called once the welcome announced the server's bound on requests in flight; answers `true` when the
    /// caller must schedule a drain.
    func setInFlightMax(_ limit: Int) -> Bool {
        state.withLock { state in
            state.inFlightMax = max(1, limit)
            return Self.admitBacklog(&state)
        }
    }

    // MARK: Responses

    /// Routes a read's worth of responses; answers the waiters to resume (on the event loop, outside the lock).
    /// Frames queued meanwhile (backlog requests that got a slot, credit, requests sent by the resumed
    /// handlers) are left for the caller's `takeOutbound`, which it must call after resuming.
    func receive(_ responses: [(id: UInt32, response: Response)]) -> [Resumption] {
        state.withLock { state in
            // The caller drains after this read, so nobody else needs to be scheduled for it.
            state.drainDue = true
            var resumptions: [Resumption] = []
            resumptions.reserveCapacity(responses.count)
            for (id, response) in responses {
                if state.subscriptions[id] != nil {
                    if let credit = Self.deliver(response, toSubscription: id, &state) {
                        _ = Self.queue(credit, id, &state)
                    }
                    continue
                }
                guard let pending = state.pending.removeValue(forKey: id) else {
                    // Not ours (a cancelled subscription's event) or a connection-level error before a close.
                    if case .error(let error) = response { state.serverError = error }
                    continue
                }
                if pending.isWritten { state.written -= 1 }
                if let waiter = pending.waiter { resumptions.append((waiter, .success(response))) }
            }
            _ = Self.admitBacklog(&state)
            return resumptions
        }
    }

    /// Resumes waiters outside the lock; completion handlers run on the event loop.
    func resume(_ resumptions: [Resumption]) {
        guard !resumptions.isEmpty else { return }
        let onLoop = eventLoop.inEventLoop
        for (waiter, outcome) in resumptions {
            if case .handler = waiter, !onLoop {
                eventLoop.execute { Self.resume(waiter, outcome) }
            } else {
                Self.resume(waiter, outcome)
            }
        }
    }

    private static func resume(_ waiter: Waiter, _ outcome: Result<Response, any Error>) {
        switch outcome {
        case .success(let response): waiter.resume(response)
        case .failure(let error): waiter.resume(throwing: error)
        }
    }

    /// Moves backlog requests into free slots; answers whether a drain must be scheduled for them.
    private static func admitBacklog(_ state: inout State) -> Bool {
        var mustSchedule = false
        while state.written < state.inFlightMax, let next = state.backlog.popFirst() {
            // Entries cancelled while queued are gone from `pending`.
            guard state.pending[next.id] != nil else { continue }
            state.pending[next.id]?.isWritten = true
            state.written += 1
            if queue(next.frame, next.id, &state) { mustSchedule = true }
        }
        return mustSchedule
    }

    // MARK: Closing

    /// Fails every waiting caller and ends every subscription (after its buffered events are consumed).
    func close(_ reason: TallyClientError) {
        let resumptions: [Resumption] = state.withLock { state in
            guard state.closed == nil else { return [] }
            let reason: TallyClientError =
                if case .connectionClosed(nil) = reason {
                    .connectionClosed(serverError: state.serverError)
                } else {
                    reason
                }
            state.closed = reason
            let resumptions = state.pending.values.compactMap { pending in
                pending.waiter.map { ($0, Result<Response, any Error>.failure(reason)) }
            }
            state.pending.removeAll()
            state.backlog.removeAll()
            state.written = 0
            state.outbound.clear()
            state.outboundIDs.removeAll()
            // A subscription ends quietly when this client closed the connection, with the reason otherwise.
            let end: SubscriptionEnd = if case .closedByClient = reason { .finished } else { .failed(reason) }
            for id in Array(state.subscriptions.keys) { Self.end(id, end, &state) }
            return resumptions
        }
        resume(resumptions)
    }

    // MARK: Subscriptions

    /// Registers a subscription; answers the reason instead when the connection is already closed.
    func openSubscription(_ id: UInt32, credit: UInt32) -> TallyClientError? {
        state.withLock { state in
            if let closed = state.closed { return closed }
            state.subscriptions[id] = Subscription(grantThreshold: max(1, credit / 2))
            return nil
        }
    }

    /// The next event of subscription `id` for its consumer (`nil` once it ended without an error), and a
    /// credit frame to write when the consumer has used half of the credit.
    func nextEvent(_ id: UInt32) async throws -> Delivery {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Delivery, any Error>) in
                state.withLock { state in
                    guard var subscription = state.subscriptions[id] else {
                        return continuation.resume(returning: (nil, nil))
                    }
                    if let event = subscription.buffer.popFirst() {
                        let credit = Self.consume(&subscription, id)
                        state.subscriptions[id] = subscription
                        return continuation.resume(returning: (event, credit))
                    }
                    if let end = subscription.end {
                        state.subscriptions[id] = nil
                        return Self.resume(continuation, end)
                    }
                    if Task.isCancelled {
                        state.subscriptions[id] = nil
                        return continuation.resume(throwing: CancellationError())
                    }
                    subscription.waiter = continuation
                    state.subscriptions[id] = subscription
                }
            }
        } onCancel: {
            state.withLock { state in
                // Dropped, so later events for it are ignored and no more credit is granted: the server stops.
                guard let subscription = state.subscriptions.removeValue(forKey: id) else { return }
                subscription.waiter?.resume(throwing: CancellationError())
            }
        }
    }

    private static func deliver(_ response: Response, toSubscription id: UInt32, _ state: inout State) -> Frame? {
        switch response {
        case .event(let record, let chain):
            guard var subscription = state.subscriptions[id], subscription.end == nil else { return nil }
            defer { state.subscriptions[id] = subscription }
            guard let waiter = subscription.waiter else {
                subscription.buffer.append((record, chain))
                return nil
            }
            subscription.waiter = nil
            let credit = consume(&subscription, id)
            waiter.resume(returning: ((record, chain), nil))
            return credit
        case .error(let error):
            end(id, .failed(error), &state)
            return nil
        default:
            // `.subscribed` confirms the start; nothing else is sent on a subscription's id.
            return nil
        }
    }

    /// Marks a subscription ended; a consumer that is waiting learns it now, otherwise after the buffer.
    private static func end(_ id: UInt32, _ end: SubscriptionEnd, _ state: inout State) {
        guard var subscription = state.subscriptions[id], subscription.end == nil else { return }
        subscription.end = end
        if subscription.buffer.isEmpty, let waiter = subscription.waiter {
            state.subscriptions[id] = nil
            resume(waiter, end)
        } else {
            state.subscriptions[id] = subscription
        }
    }

    private static func resume(_ continuation: CheckedContinuation<Delivery, any Error>, _ end: SubscriptionEnd) {
        switch end {
        case .finished: continuation.resume(returning: (nil, nil))
        case .failed(let error): continuation.resume(throwing: error)
        }
    }

    /// Counts one consumed event; every `grantThreshold` of them is granted back to the server.
    private static func consume(_ subscription: inout Subscription, _ id: UInt32) -> Frame? {
        subscription.consumedSinceGrant += 1
        guard subscription.consumedSinceGrant >= subscription.grantThreshold else { return nil }
        defer { subscription.consumedSinceGrant = 0 }
        return WireCodec.encodeRequest(.grantCredit(subscription.consumedSinceGrant), requestID: id)
    }
}
