/// The ledger's rules: `decide` turns a command into events and a reply (or a refusal), and `apply`
/// folds an event into state. Both are pure; see DESIGN.md, "decide, then apply".
public enum Ledger {}

/// What `decide` concluded for one command.
public struct Decision: Sendable, Hashable {
    /// The events to append, in order; empty for a replay or a no-op.
    public var events: [EventBody]
    public var reply: Reply
    /// The reply is a same-key replay of an earlier success: nothing new happened.
    public var isReplay: Bool

    public init(events: [EventBody], reply: Reply, isReplay: Bool = false) {
        self.events = events
        self.reply = reply
        self.isReplay = isReplay
    }
}

/// An event that does not fit the state it is applied to: the log is damaged or was not produced by
/// `decide`. Replay tools report it with the event's sequence; the writer treats it as a broken invariant.
public struct InconsistentEvent: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

extension Ledger {
    /// Decides and, on success, applies in one step: the convenience that tests and tools use.
    ///
    /// Returns what `decide` would. The reply is read from `state` after the events, as the store's writer
    /// does, rather than from the scratch copy `decide` builds: the same `apply` writes both.
    public static func execute(_ command: Command, on state: inout LedgerState, now: Int64) -> Result<Decision, Refusal> {
        switch draft(state, command, now: now) {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(.replay(let decision)):
            return .success(decision)
        case .success(.fresh(let events)):
            for event in events {
                do { try apply(event, to: &state) } catch {
                    preconditionFailure("decide produced an event apply refuses: \(error)")
                }
            }
            // `state` also stands in for the base: the only entry read from the base (an updated tenant
            // that no event changed) is the same before and after.
            let reply = reply(to: command, events: events, after: state, base: state, now: now)
            return .success(Decision(events: events, reply: reply))
        }
    }
}

extension LedgerState {
    /// The state after folding `events` into it, in order.
    public func applying(_ events: [EventBody]) throws(InconsistentEvent) -> LedgerState {
        var next = self
        for event in events { try Ledger.apply(event, to: &next) }
        return next
    }
}
