import Foundation
import Synchronization
import TallyCore

/// The second half of group commit: makes one decided batch durable (one log transaction, one fsync),
/// writes its projections, and then answers its callers, on a thread of its own.
///
/// The writer decides and applies batch N+1 in memory while the flusher writes and flushes batch N
/// (pipelined group commit), so the fsync and the B-tree work no longer stall the writer. It holds at
/// most one batch: the writer collects the outcome of a batch before it hands over the next one, which
/// keeps the order of the log and lets the writer fail a batch that was decided on top of one that could
/// not be made durable. Nobody is answered before the transaction holding their events is durable.
// Safe: `job`, `outcome` and `stopping` are guarded by `condition`; the rest is immutable or thread-safe.
final class Flusher: @unchecked Sendable {  // Safe: mutable fields only under `condition`
    /// One batch as the writer decided it: the bytes to write and the answer for each caller.
    struct Job: Sendable {
        /// The events and the log's position, made durable first.
        var logWrites: WriteSet
        /// The projections and the position they cover, written once the log is durable.
        var projectionWrites: WriteSet
        var answers: [Answer]
        var lastSequence: UInt64
    }

    struct Answer: Sendable {
        var completion: Writer.Completion?
        var result: Result<Decision, Refusal>
    }

    private let log: LMDBEnvironment
    private let projections: LMDBEnvironment
    private let options: StoreOptions
    private let condition = NSCondition()
    private var job: Job?
    private var outcome: Result<Void, StoreError>?
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private let counters = Mutex(StoreStatistics())

    init(log: LMDBEnvironment, projections: LMDBEnvironment, options: StoreOptions) {
        self.log = log
        self.projections = projections
        self.options = options
    }

    var statistics: StoreStatistics { counters.withLock { $0 } }

    func start() {
        let thread = Thread { [self] in
            ThreadName.setCurrent("tally-flusher")
            run()
            finished.signal()
        }
        thread.name = "tally-flusher"
        thread.start()
    }

    /// Hands over the next batch. The writer calls it only after collecting the previous outcome.
    func flush(_ next: Job) {
        condition.lock()
        precondition(job == nil && outcome == nil, "the flusher holds one batch at a time")
        job = next
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the batch handed over last is durable (or failed) and returns how it ended.
    func awaitOutcome() -> Result<Void, StoreError> {
        condition.lock()
        defer { condition.unlock() }
        while outcome == nil { condition.wait() }
        defer { outcome = nil }
        return outcome!
    }

    /// Whether the batch handed over last has ended, without waiting.
    var hasOutcome: Bool {
        condition.lock()
        defer { condition.unlock() }
        return outcome != nil
    }

    /// Ends the thread once the batch it holds (if any) is done. The writer stops it last.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
    }

    private func run() {
        var done = false
        while !done {
            condition.lock()
            while job == nil && !stopping { condition.wait() }
            let next = job
            done = next == nil
            condition.unlock()
            if let next { write(next) }
        }
    }

    /// Writes, flushes and answers one batch on the calling thread (the writer's), for a batch that nothing
    /// else is waiting behind: handing it to the flusher thread would only add a thread wake-up to the
    /// latency of a lone request. Precondition: no batch is in flight.
    func flushInline(_ next: Job) -> Result<Void, StoreError> {
        let result = durableWrite(next)
        answer(next, result)
        return result
    }

    /// Writes and flushes one batch, reports the outcome to the writer, then answers the callers: the
    /// writer can hand over its next batch while this one's completions run.
    private func write(_ next: Job) {
        let result = durableWrite(next)
        condition.lock()
        job = nil
        outcome = result
        condition.broadcast()
        condition.unlock()
        answer(next, result)
    }

    /// The log's write transaction and its fsync, then the projections' transaction (which the server
    /// does not let wait for the disk), each retried once after growing a full map. Should the projections
    /// fail after the log is durable, the batch is reported failed: the writer then replays the log into
    /// the projections before anything else, and a caller's retry with the same idempotency key replays.
    private func durableWrite(_ next: Job) -> Result<Void, StoreError> {
        var result = commitGrowing(log, next.logWrites, doing: "writing a batch to the log")
        if case .success = result {
            result = commitGrowing(projections, next.projectionWrites, doing: "writing a batch's projections")
        }
        if case .success = result {
            counters.withLock {
                $0.flushes += 1
                $0.commands += UInt64(next.answers.count)
                $0.lastSequence = next.lastSequence
                $0.largestBatch = max($0.largestBatch, next.answers.count)
            }
        }
        return result
    }

    private func answer(_ next: Job, _ result: Result<Void, StoreError>) {
        switch result {
        case .success:
            for answer in next.answers { answer.completion?(.success(answer.result)) }
        case .failure(let error):
            for answer in next.answers { answer.completion?(.failure(error)) }
        }
    }

    private func commitGrowing(_ environment: LMDBEnvironment, _ writes: WriteSet, doing: String) -> Result<Void, StoreError> {
        var result = commit(environment, writes, doing: doing)
        if case .failure(let error) = result, error.kind == .storageFull,
           (try? environment.growMap(limitBytes: options.mapSizeBytesMax)) == true {
            result = commit(environment, writes, doing: doing)
        }
        return result
    }

    private func commit(_ environment: LMDBEnvironment, _ writes: WriteSet, doing: String) -> Result<Void, StoreError> {
        do {
            try environment.write { txn in try writes.apply(txn) }
            return .success(())
        } catch {
            return .failure(StoreError(error, doing: doing))
        }
    }
}
