import Synchronization
import TallyWire

/// Matches response frames to the callers waiting for them; plain code behind one lock, so the NIO handler
/// only forwards frames and callers only wait.
///
/// Invariants: a request id is in `pending` from registration until its response arrives (or, if it was
/// never written, until it fails or is cancelled), so no id is reused while the server may still answer
/// it; every continuation is resumed exactly once, after it has been taken out of the table; at most
/// `inFlightMax` requests are on the wire and the rest wait in `backlog` in the order they were sent.
/// Resuming a continuation only enqueues its task, so it is done under the lock without re-entering it.
final class ResponseRouter: Sendable {
    typealias Event = (record: [UInt8], chain: [UInt8])

    private let state = Mutex(State())

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
    }

    private struct Pending {
        /// `nil` once the caller gave up (cancelled); the entry stays until the server answers.
        var continuation: CheckedContinuation<Response, any Error>?
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

    /// Registers a caller; answers the frame to write now, or `nil` when it waits in the backlog or the
    /// continuation was already resumed (closed connection, cancelled task).
    func register(_ id: UInt32, _ frame: Frame, _ continuation: CheckedContinuation<Response, any Error>) -> Frame? {
        state.withLock { state in
            if let closed = state.closed {
                continuation.resume(throwing: closed)
                return nil
            }
            if Task.isCancelled {
                continuation.resume(throwing: CancellationError())
                return nil
            }
            guard state.written < state.inFlightMax else {
                state.pending[id] = Pending(continuation: continuation)
                state.backlog.append((id, frame))
                return nil
            }
            state.pending[id] = Pending(continuation: continuation, isWritten: true)
            state.written += 1
            return frame
        }
    }

    /// The caller's task was cancelled: it stops waiting. A written request keeps its slot until the server
    /// answers, because the server still counts it.
    func cancel(_ id: UInt32) {
        state.withLock { state in
            guard var pending = state.pending[id] else { return }
            pending.continuation?.resume(throwing: CancellationError())
            pending.continuation = nil
            if pending.isWritten {
                state.pending[id] = pending
            } else {
                state.pending[id] = nil
            }
        }
    }

    /// A write of request `id` failed.
    func fail(_ id: UInt32, _ error: TallyClientError) {
        state.withLock { state in
            guard let pending = state.pending.removeValue(forKey: id) else { return }
            if pending.isWritten { state.written -= 1 }
            pending.continuation?.resume(throwing: error)
        }
    }

    /// Called once the welcome announced the server's bound on requests in flight.
    func setInFlightMax(_ limit: Int) -> [Frame] {
        state.withLock { state in
            state.inFlightMax = max(1, limit)
            return Self.admitBacklog(&state)
        }
    }

    // MARK: Responses

    /// Routes one response; answers the frames to write now (backlog requests that got a slot, credit).
    func receive(_ id: UInt32, _ response: Response) -> [Frame] {
        state.withLock { state in
            if state.subscriptions[id] != nil {
                return Self.deliver(response, toSubscription: id, &state).map { [$0] } ?? []
            }
            guard let pending = state.pending.removeValue(forKey: id) else {
                // Not ours (a cancelled subscription's event) or a connection-level error before a close.
                if case .error(let error) = response { state.serverError = error }
                return []
            }
            if pending.isWritten { state.written -= 1 }
            pending.continuation?.resume(returning: response)
            return Self.admitBacklog(&state)
        }
    }

    private static func admitBacklog(_ state: inout State) -> [Frame] {
        var frames: [Frame] = []
        while state.written < state.inFlightMax, let next = state.backlog.popFirst() {
            // Entries cancelled while queued are gone from `pending`.
            guard state.pending[next.id] != nil else { continue }
            state.pending[next.id]?.isWritten = true
            state.written += 1
            frames.append(next.frame)
        }
        return frames
    }

    // MARK: Closing

    /// Fails every waiting caller and ends every subscription (after its buffered events are consumed).
    func close(_ reason: TallyClientError) {
        state.withLock { state in
            guard state.closed == nil else { return }
            let reason: TallyClientError =
                if case .connectionClosed(nil) = reason {
                    .connectionClosed(serverError: state.serverError)
                } else {
                    reason
                }
            state.closed = reason
            for pending in state.pending.values { pending.continuation?.resume(throwing: reason) }
            state.pending.removeAll()
            state.backlog.removeAll()
            state.written = 0
            // A subscription ends quietly when this client closed the connection, with the reason otherwise.
            let end: SubscriptionEnd = if case .closedByClient = reason { .finished } else { .failed(reason) }
            for id in Array(state.subscriptions.keys) { Self.end(id, end, &state) }
        }
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
