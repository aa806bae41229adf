import Foundation
import Synchronization
import TallyCore

/// The second half of group commit: makes decided batches durable (one log transaction, one fsync),
/// answers their callers, then writes their projections, on a thread of its own.
///
/// The writer decides and applies the next batches in memory while the flusher writes and flushes earlier
/// ones (pipelined group commit), so neither the fsync nor the B-tree work stalls the writer, and the
/// flusher never waits for the writer to hand over the next batch: whatever was handed over while it was
/// flushing is taken together, in order, into its next transaction (up to `StoreOptions.batchCommandsMax`
/// commands). Nobody is answered before the transaction holding their events is durable. Once a
/// transaction fails, every batch handed over after it fails too (each was decided on top of effects that
/// did not become durable) until the writer has reloaded its state and calls `resume()`.
// Safe: `queue`, `progress` and `stopping` are guarded by `condition`; the rest is immutable or thread-safe.
final class Flusher: @unchecked Sendable {  // Safe: mutable fields only under `condition`
    /// One batch as the writer decided it: the bytes to write and the answer for each caller.
    struct Job: Sendable {
        /// The events, made durable first.
        var logWrites: WriteSet
        /// The projections and the position they cover, written once the log is durable.
        var projectionWrites: WriteSet
        var answers: [Answer]
        var lastSequence: UInt64
        /// The writer numbers its batches 1, 2, 3, ... in the order it hands them over.
        var number: UInt64
    }

    struct Answer: Sendable {
        var completion: Writer.Completion?
        /// Optional only so that `answer` can move it out (`take()`); always set until then.
        var result: Result<Decision, Refusal>?
    }

    /// How far the flusher has got with the batches handed over.
    struct Progress {
        /// Every batch up to this number has ended (durable, or failed).
        var through: UInt64 = 0
        /// The first batch that failed and why; it and every batch after it failed, until `resume()`.
        var failure: (from: UInt64, error: StoreError)?

        /// How batch `number` (ended) ended.
        func outcome(of number: UInt64) -> Result<Void, StoreError> {
            if let failure, number >= failure.from { return .failure(failure.error) }
            return .success(())
        }
    }

    private let log: LMDBEnvironment
    private let projections: LMDBEnvironment
    private let options: StoreOptions
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var progress = Progress()
    private var stopping = false
    /// Tests hold the flusher to let batches queue up behind it: how many transactions it may still start
    /// (nil: no limit).
    private var permits: Int?
    /// Tests only: asked before each transaction; an error it returns fails the transaction before anything
    /// is written, as a failing disk would.
    private let injectedFailure = Mutex<(@Sendable () -> StoreError?)?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    private let counters = Mutex(StoreStatistics())
    /// The log's file allocated ahead of its pages (one thread at a time commits; the lock is uncontended).
    private let allocation = Mutex(LogAllocation())
    /// What reads wait on while answered batches' projections are being written.
    let barrier = ProjectionsBarrier()
    /// Tells the writer that a transaction failed (set once, before `start`).
    var onFailure: (@Sendable () -> Void)?
    /// Tests only: asked after a batch is answered; an error it returns fails its projections' transaction.
    private let injectedProjectionsFailure = Mutex<(@Sendable () -> StoreError?)?>(nil)

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

    /// Hands over the next batch (numbered one more than the last).
    func flush(_ next: Job) {
        condition.lock()
        queue.append(next)
        condition.unlock()
        condition.broadcast()  // after unlocking, so that the woken flusher does not block on the lock at once
    }

    /// How far the flusher has got, without waiting.
    var current: Progress {
        condition.lock()
        defer { condition.unlock() }
        return progress
    }

    /// Waits until batch `number` has ended.
    func awaitEnd(of number: UInt64) -> Progress {
        condition.lock()
        defer { condition.unlock() }
        while progress.through < number { condition.wait() }
        return progress
    }

    /// Writes batches again after a failure, once the writer has reloaded what it decides on. The writer
    /// calls it with nothing handed over that has not ended.
    func resume() {
        condition.lock()
        progress.failure = nil
        condition.unlock()
    }

    /// Holds or releases the flusher between transactions (tests only).
    func hold(_ value: Bool) {
        condition.lock()
        permits = value ? 0 : nil
        condition.broadcast()
        condition.unlock()
    }

    /// Lets a held flusher start `count` more transactions (tests only).
    func allow(_ count: Int) {
        condition.lock()
        permits = permits.map { $0 + count }
        condition.broadcast()
        condition.unlock()
    }

    /// Batches handed over and not yet taken into a transaction (tests only).
    var waitingJobs: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count
    }

    /// Fails the transactions for which `failure` returns an error (tests only; nil stops it).
    func injectFailures(_ failure: (@Sendable () -> StoreError?)?) {
        injectedFailure.withLock { $0 = failure }
    }

    /// Runs `step` between answering a batch and writing its projections; an error it returns fails that
    /// transaction (tests only; nil stops it).
    func injectProjectionsFailures(_ step: (@Sendable () -> StoreError?)?) {
        injectedProjectionsFailure.withLock { $0 = step }
    }

    /// Ends the thread once the batches it holds are done. The writer stops it last.
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
            while (queue.isEmpty || permits == 0) && !stopping { condition.wait() }
            let taken = takeJobs()
            if !taken.isEmpty, let left = permits { permits = left - 1 }
            let failure = progress.failure?.error
            done = taken.isEmpty
            condition.unlock()
            if !taken.isEmpty { write(taken, failing: failure) }
        }
    }

    /// The batches of the next transaction, oldest first: all that are waiting, up to the command limit
    /// (but at least one). Under `condition`.
    private func takeJobs() -> [Job] {
        var commands = 0
        var count = 0
        while count < queue.count, count == 0 || commands + queue[count].answers.count <= options.batchCommandsMax {
            commands += queue[count].answers.count
            count += 1
        }
        if count == queue.count {
            defer { queue = [] }
            return queue
        }
        defer { queue.removeFirst(count) }
        return Array(queue.prefix(count))
    }

    /// Writes, flushes and answers one batch on the calling thread (the one doing the writer's work), for a
    /// batch that nothing else is waiting behind: handing it to the flusher thread would only add a thread
    /// wake-up to the latency of a lone request. Precondition: no batch is in flight.
    func flushInline(_ next: consuming Job) -> Result<Void, StoreError> {
        var jobs = [next]
        let result = durableWrite(jobs)
        answer(&jobs, result)
        allocation.withLock { $0.keepAhead(of: log) }
        return result
    }

    /// Writes, flushes and answers one batch on the calling thread like `flushInline`, but answers as soon as
    /// the log is durable and leaves the projections' transaction to `writeDeferredProjections`, which the
    /// writer runs once the answer is on its way (`Writer.submit`). Returns the batch with its answers taken
    /// and the barrier's ticket when the log is durable, the error (its callers answered with it) when not.
    /// Precondition: no batch is in flight.
    func flushInlineAnsweringFirst(_ next: consuming Job) -> Result<(job: Job, ticket: UInt64), StoreError> {
        var jobs = [next]
        let result = logWrite(jobs)
        if case .failure(let error) = result {
            answer(&jobs, result)
            allocation.withLock { $0.keepAhead(of: log) }
            return .failure(error)
        }
        let ticket = barrier.answering()
        answer(&jobs, result)
        return .success((jobs[0], ticket))
    }

    /// The projections' transaction of a batch `flushInlineAnsweringFirst` answered; reads of the answered
    /// change wait for it (`ProjectionsBarrier`) until it is written, or until the writer has replayed the log
    /// after it failed.
    func writeDeferredProjections(_ job: Job, ticket: UInt64) -> Result<Void, StoreError> {
        let result = answeredProjectionsWrite([job], ticket: ticket)
        allocation.withLock { $0.keepAhead(of: log) }
        return result
    }

    /// The projections' transaction of batches already answered (barrier `ticket`): the barrier is told once
    /// they are written; after a failure it stays behind until the writer has replayed the log.
    private func answeredProjectionsWrite(_ jobs: [Job], ticket: UInt64) -> Result<Void, StoreError> {
        let result = injectedProjectionsFailure.withLock({ $0?() }).map { .failure($0) } ?? projectionsWrite(jobs)
        if case .success = result { barrier.written(ticket) }
        return result
    }

    /// Writes and flushes batches in one log transaction (or fails them after an earlier failure), answers
    /// the callers as soon as it is durable, then writes the batches' projections (reads that begin meanwhile
    /// wait for them, `ProjectionsBarrier`) and only then reports to the writer how far it got: the writer
    /// keeps in memory what a batch changed until its projections hold it.
    private func write(_ jobs: consuming [Job], failing failure: StoreError?) {
        var result = failure.map { .failure($0) } ?? logWrite(jobs)
        if case .success = result {
            let ticket = barrier.answering()
            answer(&jobs, result)
            result = answeredProjectionsWrite(jobs, ticket: ticket)
        } else {
            answer(&jobs, result)
        }
        condition.lock()
        progress.through = jobs[jobs.count - 1].number
        var failedFirst = false
        if case .failure(let error) = result, progress.failure == nil {
            progress.failure = (jobs[0].number, error)
            failedFirst = true
        }
        condition.unlock()
        condition.broadcast()
        if failedFirst { onFailure?() }
        allocation.withLock { $0.keepAhead(of: log) }
    }

    /// The log's write transaction and its fsync, then the projections' transaction: for the lone batch
    /// flushed on the caller's thread, which answers only after both (a completion run there may go on to
    /// read on the same thread, which must not wait for projections only it can write).
    private func durableWrite(_ jobs: [Job]) -> Result<Void, StoreError> {
        let result = logWrite(jobs)
        guard case .success = result else { return result }
        return projectionsWrite(jobs)
    }

    /// The log's write transaction and its fsync, retried once after growing a full map.
    private func logWrite(_ jobs: [Job]) -> Result<Void, StoreError> {
        if let failure = injectedFailure.withLock({ $0?() }) { return .failure(failure) }
        let result = commitGrowing(log, jobs, \.logWrites, doing: "writing a batch to the log")
        if case .success = result {
            let commands = jobs.reduce(0) { $0 + $1.answers.count }
            counters.withLock {
                $0.flushes += 1
                $0.commands += UInt64(commands)
                $0.lastSequence = jobs[jobs.count - 1].lastSequence
                $0.largestBatch = max($0.largestBatch, commands)
            }
        }
        return result
    }

    /// The projections' transaction (which the server does not let wait for the disk), retried once after
    /// growing a full map. Should it fail after the log is durable, the batches are reported failed to the
    /// writer, which replays the log into the projections before anything else (the callers, answered
    /// already, have their events durable; reads wait for the replay).
    private func projectionsWrite(_ jobs: [Job]) -> Result<Void, StoreError> {
        commitGrowing(projections, jobs, \.projectionWrites, doing: "writing a batch's projections")
    }

    /// Answers the jobs' callers in order, moving each completion and decision out of its job (`take()`):
    /// iterating the answers would copy each one (a retain and a release of its completion and of everything
    /// in its decision), and reversing them to pop them in order moved every answer twice more.
    private func answer(_ jobs: inout [Job], _ result: Result<Void, StoreError>) {
        for index in jobs.indices {
            var answers: [Answer] = []
            swap(&answers, &jobs[index].answers)
            for position in answers.indices {
                guard let completion = answers[position].completion.take(),
                      let decided = answers[position].result.take() else { continue }
                switch result {
                case .success: completion(.success(consume decided))  // moved: without `consume` it was copied
                case .failure(let error): completion(.failure(error))
                }
            }
        }
    }

    private func commitGrowing(_ environment: LMDBEnvironment, _ jobs: [Job], _ writes: KeyPath<Job, WriteSet>, doing: String) -> Result<Void, StoreError> {
        var result = commit(environment, jobs, writes, doing: doing)
        if case .failure(let error) = result, error.kind == .storageFull,
           (try? environment.growMap(limitBytes: options.mapSizeBytesMax)) == true {
            result = commit(environment, jobs, writes, doing: doing)
        }
        return result
    }

    private func commit(_ environment: LMDBEnvironment, _ jobs: [Job], _ writes: KeyPath<Job, WriteSet>, doing: String) -> Result<Void, StoreError> {
        do {
            try environment.write { txn in
                for job in jobs { try job[keyPath: writes].apply(txn) }
            }
            return .success(())
        } catch {
            return .failure(StoreError(error, doing: doing))
        }
    }
}
