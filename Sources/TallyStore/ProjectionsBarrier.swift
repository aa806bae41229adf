import Foundation
import Synchronization

/// Keeps reads in step with answers. The flusher answers a batch as soon as its log transaction is durable
/// and writes the batch's projections right after (answering first takes the projections' transaction off
/// every request's latency); a read that begins meanwhile waits here until they are written, so whoever has
/// an answer reads its effects, as when the projections were written first.
///
/// `answering()` is called before a batch's callers are answered, `written(_:)` once its projections are;
/// after a failed projections transaction the batch stays unwritten until the writer has replayed the log into
/// the projections (`caughtUp()`). Should that replay fail too (`failed(_:)`), or take longer than `waitMax`,
/// reads fail with an error rather than show a balance without an answered change.
// Safe: `answered` and `written` are guarded by `condition`; `lagging` is atomic.
final class ProjectionsBarrier: @unchecked Sendable {  // Safe: mutable fields only under `condition`
    private let condition = NSCondition()
    /// Batches answered before their projections were written, counted from 1.
    private var answered: UInt64 = 0
    /// Of those, how many have their projections written, in order.
    private var written: UInt64 = 0
    /// Whether `written < answered`: the one load a read pays when nothing lags.
    private let lagging = Atomic<Bool>(false)
    /// Why the projections cannot be brought up to the answers for now (the writer's replay failed).
    private var broken: StoreError?
    private let waitMax: TimeInterval

    init(waitMax: TimeInterval = 5) { self.waitMax = waitMax }

    /// Before answering a batch whose projections are still to be written: its ticket for `written(_:)`.
    func answering() -> UInt64 {
        condition.lock()
        answered += 1
        lagging.store(true, ordering: .sequentiallyConsistent)
        let ticket = answered
        condition.unlock()
        return ticket
    }

    /// The projections of the batch with `ticket` (and every earlier one) are written.
    func written(_ ticket: UInt64) {
        condition.lock()
        markWritten(through: ticket)
        condition.unlock()
        condition.broadcast()
    }

    /// The projections cover the whole log again (the writer replayed it after a failure).
    func caughtUp() {
        condition.lock()
        markWritten(through: answered)
        condition.unlock()
        condition.broadcast()
    }

    /// Under `condition`.
    private func markWritten(through ticket: UInt64) {
        written = max(written, ticket)
        if written >= answered {
            lagging.store(false, ordering: .sequentiallyConsistent)
            broken = nil
        }
    }

    /// The writer could not replay the log into the projections: reads that would wait fail at once with
    /// `error` until a later replay succeeds (`caughtUp()`).
    func failed(_ error: StoreError) {
        condition.lock()
        broken = error
        condition.unlock()
        condition.broadcast()
    }

    /// Returns once every batch answered before the call has its projections written.
    func awaitWritten() throws(StoreError) {
        guard lagging.load(ordering: .sequentiallyConsistent) else { return }
        condition.lock()
        defer { condition.unlock() }
        let target = answered
        let deadline = Date(timeIntervalSinceNow: waitMax)
        while written < target {
            if let broken { throw broken }
            guard condition.wait(until: deadline) else {
                throw StoreError(.io, "the projections are behind the log after a failed write and are being rebuilt from it; retry the read")
            }
        }
    }
}
