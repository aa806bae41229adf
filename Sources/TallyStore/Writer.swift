import Foundation
import Synchronization
import TallyCore

/// The single writer: one thread at a time decides commands and applies events. Commands arrive from any
/// thread; the writer thread drains them in batches (a lone command on an idle store is instead processed
/// by the thread that submits it, see `submit`), decides and applies each batch in memory, encodes what it
/// changes, and hands the bytes to the `Flusher`, which appends the events to the log in one durable
/// transaction (group commit: one fsync per batch), answers the batch's callers and then writes the
/// projections (no fsync, see `StoreFiles`; reads wait for them, `ProjectionsBarrier`). While the flusher
/// makes batch N durable the writer already decides batches N+1, N+2, ... on top of it (pipelined group
/// commit, at most `inFlightBatchesMax` ahead); should N fail, the batches after it are failed too and the
/// state is reloaded from the store, so nothing is ever acknowledged that was decided on effects that did not
/// become durable.
// Safe: the queue and `busy` are guarded by `condition`; every other field belongs to the thread that set `busy`.
final class Writer: @unchecked Sendable {  // Safe: queue and `busy` under `condition`, all else to the thread that set `busy`
    typealias Completion = LedgerStore.Completion

    private struct Pending {
        var command: Command
        var completion: Completion?

        /// Moves the command out, leaving a placeholder that allocates nothing.
        mutating func takeCommand() -> Command {
            var taken = Command.expireReservations(ExpireCommand(candidates: []))
            swap(&taken, &command)
            return taken
        }
    }

    /// A request to remove archived events from the live log, done in chunks between batches.
    private struct Trim {
        var through: UInt64
        var chain: [UInt8]
        var completion: @Sendable (Result<LogBase, StoreError>) -> Void
    }

    /// What the writer keeps of a batch while the flusher has it: the entries to evict once it is durable.
    private struct InFlight {
        var number: UInt64
        var keys: TouchedKeys
    }

    /// A lone command answered before its projections were written (`submit` with `afterAnswer`): the writer's
    /// work stays `busy` until they are, and whoever takes them first writes them (`writeDeferredProjections`).
    private struct DeferredProjections: Sendable {
        var job: Flusher.Job
        var ticket: UInt64
        var keys: TouchedKeys
        /// When the caller was answered (monotonic nanoseconds): the writer's work counts as ended then.
        var answeredAt: UInt64
    }

    /// One batch decided and applied in memory, with its bytes, ready for the flusher.
    private struct Decided {
        var job: Flusher.Job
        /// Reservations and idempotency records the batch changed or loaded.
        var keys: TouchedKeys
    }

    private let files: StoreFiles
    /// The log's environment.
    private let environment: LMDBEnvironment
    private let projections: Projections
    private let flusher: Flusher
    private let events: LMDBDatabase
    private let meta: LMDBDatabase
    private let options: StoreOptions
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var trims: [Trim] = []
    private var stopping = false
    /// The flusher reported a failed transaction: settle and recover even if no command comes.
    private var settleNeeded = false
    /// Tests hold the writer to observe group commit deterministically.
    private var held = false
    /// Set while a thread runs the writer's work: the writer thread, or a submitting thread that found the
    /// writer idle (`submit`). Everything below `finished` belongs to whoever set it.
    private var busy = false
    private let finished = DispatchSemaphore(value: 0)

    private var state: LedgerState
    /// The subjects' scope paths derived so far (belongs, like `state`, to whoever runs the writer's work).
    private let derivations = ScopeDerivations()
    /// The end of the log as decided: includes the batch in flight, if any.
    private var position: LogPosition
    /// Batches handed to the flusher that have not ended, oldest first.
    private var inFlight: [InFlight] = []
    /// The number of the last batch handed to the flusher.
    private var handedOver: UInt64 = 0
    private var nextSweep: Int64 = 0
    /// Deletes aged-out idempotency rows with the batches (belongs to whoever runs the writer's work).
    private var recordSweep: IdempotencySweep
    /// Set by `submit` while it processes a lone command whose caller runs the projections' transaction after
    /// the answer (belongs to whoever runs the writer's work).
    private var answeringFirst = false
    /// The projections waiting to be written after their answer, if any; `hasDeferred` says so without a lock
    /// (set while `deferred` holds them, cleared when they are taken).
    private let deferred = Mutex<DeferredProjections?>(nil)
    private let hasDeferred = Atomic<Bool>(false)
    /// Set while the projections are behind the log and could not be brought up to it: commands are
    /// refused with it until a retry between batches succeeds.
    private var stalled: StoreError?

    init(files: StoreFiles, state: LedgerState, position: LogPosition, options: StoreOptions) {
        self.files = files
        environment = files.log
        projections = files.projections
        flusher = Flusher(log: files.log, projections: files.projections.environment, options: options)
        events = environment.database(StoreLayout.events)
        meta = environment.database(StoreLayout.meta)
        self.options = options
        self.state = state
        self.position = position
        recordSweep = IdempotencySweep(rowsPerBatch: options.idempotencySweepRowsPerBatch)
    }

    func start() {
        flusher.onFailure = { [weak self] in self?.flusherFailed() }
        flusher.start()
        let thread = Thread { [self] in
            ThreadName.setCurrent("tally-writer")
            // `tallyd` checked the CPUs before opening; a refusal all the same leaves the thread where the system
            // puts it, and is told on the channel that reports opening (`tallyd` logs it).
            if let refused = options.writerCPUs?.pinCurrentThread() { options.openProgress?("the writer thread runs unpinned: \(refused)") }
            run()
            finished.signal()
        }
        thread.name = "tally-writer"
        thread.start()
    }

    /// Queues a command, or, when `mayRunHere` and the writer is idle, processes it on the calling thread.
    /// Processed here, the command is answered once its event is durable; with `afterAnswer` its projections'
    /// transaction is then left to the work `afterAnswer` schedules, off the answer's latency.
    func submit(_ command: consuming Command, mayRunHere: Bool = true, afterAnswer: LedgerStore.AfterAnswer? = nil, completion: @escaping Completion) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return completion(.failure(StoreError(.closed, "the store is closed")))
        }
        let now = DispatchTime.now().uptimeNanoseconds
        // With `afterAnswer` the writer's work stays busy until the scheduled work has run, which a thread with
        // more commands read at once reaches only after them: they queue for the writer thread (one batch), and
        // no idle time need tell them apart from a lone client's next request.
        guard mayRunHere && !busy && queue.isEmpty && trims.isEmpty && !held && isQuiet(now)
            && (afterAnswer != nil || now &- idleSince >= Self.idleBeforeRunningHereNanoseconds) else {
            queue.append(Pending(command: command, completion: completion))
            condition.unlock()
            // After unlocking: a writer woken while the lock is still held would at once block on it again
            // (strace under HTTP load: a contended lock, two more futex calls, per wake-up).
            condition.signal()
            return
        }
        // The writer is idle, nothing waits and nothing has gone to the flusher lately (requests come one at a
        // time): decide, flush and answer on the caller's thread. Waking the writer thread and then the
        // caller's thread again would cost two thread wake-ups, more than the work itself. Under load the
        // writer thread does it, so that no network thread waits for a disk flush.
        busy = true
        condition.unlock()
        answeringFirst = afterAnswer != nil
        var lone = [Pending(command: command, completion: completion)]
        process(&lone)
        answeringFirst = false
        if let afterAnswer, hasDeferred.load(ordering: .acquiring) {
            // Still busy: the writer's work ends once the projections are written, by that work or by whoever
            // needs them sooner (a read, the writer thread with commands waiting).
            return afterAnswer { [self] in writeDeferredProjections() }
        }
        endRunningHere(idleSince: DispatchTime.now().uptimeNanoseconds)
    }

    /// Ends the writer's work begun by `submit` on a submitting thread.
    private func endRunningHere(idleSince ended: UInt64) {
        condition.lock()
        busy = false
        idleSince = ended
        if !queue.isEmpty || !trims.isEmpty || stopping { condition.broadcast() }
        condition.unlock()
    }

    /// Writes the projections of a command answered before them, if they are still waiting, and ends the
    /// writer's work that answered it. Any thread may call it; the first to take them writes them.
    private func writeDeferredProjections() {
        guard hasDeferred.load(ordering: .acquiring) else { return }
        let taken = deferred.withLock { waiting in
            let taken = waiting.take()
            if taken != nil { hasDeferred.store(false, ordering: .releasing) }
            return taken
        }
        guard let work = taken else { return }
        switch flusher.writeDeferredProjections(work.job, ticket: work.ticket) {
        case .success:
            evict(work.keys, keeping: [])
        case .failure:
            recover()  // the log holds the answered change: replay it into the projections (reads wait for it)
        }
        endRunningHere(idleSince: work.answeredAt)
    }

    /// A flusher transaction failed: recover now rather than with the next command (`settleNeeded`).
    private func flusherFailed() {
        condition.lock()
        settleNeeded = true
        condition.unlock()
        condition.signal()
    }

    /// Holds or releases the writer between batches (tests only: queued commands wait while held).
    func hold(_ value: Bool) {
        condition.lock()
        held = value
        condition.signal()
        condition.unlock()
    }

    /// Stops taking commands, answers everything already queued, and waits for the thread to end.
    func stop() {
        condition.lock()
        let wasStopping = stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if !wasStopping { finished.wait() }
    }

    var statistics: StoreStatistics { flusher.statistics }


    /// Returns once every command answered so far has its projections written (reads call it first). A lone
    /// command's projections still waiting after its answer are written here, on the reading thread: that may be
    /// the very thread the work to write them is scheduled on, which a wait would block.
    func awaitAnsweredProjections() throws(StoreError) {
        if hasDeferred.load(ordering: .acquiring) { writeDeferredProjections() }
        try flusher.barrier.awaitWritten()
    }

    /// The flusher, for tests that hold it or make it fail.
    var flusherForTests: Flusher { flusher }

    func submitTrim(through sequence: UInt64, chain: [UInt8], completion: @escaping @Sendable (Result<LogBase, StoreError>) -> Void) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return completion(.failure(StoreError(.closed, "the store is closed")))
        }
        trims.append(Trim(through: sequence, chain: chain, completion: completion))
        condition.signal()
        condition.unlock()
    }

    private func run() {
        var done = false
        condition.lock()
        while !done {
            while busy || ((queue.isEmpty || held) && (trims.isEmpty || held) && !stopping && !settleNeeded && options.clock() < nextSweep
                           && (held || !options.idempotencySweepWhileIdle || stalled != nil || options.clock() < recordSweep.nextDue)) {
                if busy && hasDeferred.load(ordering: .acquiring) {
                    // Projections left for after an answer still wait: write them here, so nothing waits behind them.
                    condition.unlock()
                    writeDeferredProjections()
                    condition.lock()
                    continue
                }
                let wait = Double(max(1, nextSweep - options.clock())) / 1_000
                _ = condition.wait(until: Date(timeIntervalSinceNow: min(wait, 1)))
            }
            busy = true
            let take = held && !stopping ? 0 : min(queue.count, options.batchCommandsMax)
            var batch: [Pending]
            if take == queue.count {
                // The usual case under load: take the whole queue without copying every command out of it.
                batch = queue
                queue = []
                queue.reserveCapacity(batch.count)
            } else {
                batch = Array(queue.prefix(take))
                queue.removeFirst(take)
            }
            let trim = held && !stopping ? nil : trims.first
            if trim != nil { trims.removeFirst() }
            done = stopping && queue.isEmpty && trims.isEmpty && trim == nil
            let mayDeleteRecords = options.idempotencySweepWhileIdle && !held && !stopping
            let mustSettle = settleNeeded
            settleNeeded = false
            condition.unlock()
            if !batch.isEmpty {
                process(&batch)
            } else if mustSettle, !inFlight.isEmpty, case .failure = settle(flusher.current, keeping: nil) {
                recoverAfterFailure()  // at once: readers wait for the projections of batches answered already
            }
            if let trim {
                drain()  // a trim writes on this thread: the flusher must be idle
                trimChunk(trim)
            }
            if options.clock() >= nextSweep {
                if stalled == nil { sweep() }
                nextSweep = options.clock() + options.expirySweepIntervalMilliseconds
            }
            if batch.isEmpty && trim == nil && mayDeleteRecords && stalled == nil && options.clock() >= recordSweep.nextDue {
                sweepRecordsWhileIdle()
            }
            if !done {
                condition.lock()  // held into the next round's wait
                busy = false
                if !batch.isEmpty { idleSince = DispatchTime.now().uptimeNanoseconds }
            }
        }
        drain()
        flusher.stop()
    }

    /// Expires what the expiry index says is past its deadline, as an ordinary command of the writer.
    private func sweep() {
        let now = options.clock()
        var candidates: [ReservationID] = []
        do {
            try projections.environment.read { txn in
                try txn.scan(projections.expiry) { key, value in
                    guard StoreLayout.deadline(fromExpiryKey: key) < now, candidates.count < Limits.expirySweepCountMax else { return false }
                    // Read from the bytes (no `String` for a UUID); bytes that are not UTF-8 name no reservation.
                    if let id = value.withUnsafeBytes({ ReservationID(utf8: $0) }) { candidates.append(id) }
                    return true
                }
            }
        } catch {
            return  // reads failing means writes will fail too; the next batch reports it to its callers
        }
        if !candidates.isEmpty {
            var sweep = [Pending(command: .expireReservations(ExpireCommand(candidates: candidates)), completion: nil)]
            process(&sweep)
        }
    }

    /// Deletes the next chunk of archived events and moves the log base up with them; puts the request
    /// back at the front of the queue until it is done. The chain value the archive recorded for the
    /// last trimmed event must match the log's, or nothing is deleted.
    private func trimChunk(_ trim: Trim) {
        // The projections replay the log from the position they cover: while they cannot, nothing of the log
        // may go (the archiver asks again on its next pass).
        if stalled != nil { recover() }
        if let stalled { return trim.completion(.failure(stalled)) }
        do {
            let base = try environment.write { txn in
                try LogBase.trimChunk(through: trim.through, chain: trim.chain, lastSequence: position.lastSequence, events: events, meta: meta, txn)
            }
            if base.sequence < trim.through {
                condition.lock()
                trims.insert(trim, at: 0)
                condition.unlock()
            } else {
                trim.completion(.success(base))
            }
        } catch {
            trim.completion(.failure(StoreError(error, doing: "trimming the log")))
        }
    }

    /// Decides a batch while earlier ones may still be flushing and hands it to the flusher, which takes it
    /// into its next transaction. A batch decided on top of one that failed is failed with it.
    private func process(_ batch: inout [Pending]) {
        if !inFlight.isEmpty, case .failure = settle(flusher.current, keeping: nil) {
            recoverAfterFailure()  // the failed batches' callers have their error; go on from the store
        }
        if stalled != nil {
            recover()
            if let stalled { return fail(batch, stalled) }
        }
        var decided: Decided
        do {
            decided = try decide(&batch)
        } catch {
            drain()
            recover()
            return fail(batch, Self.storeError(error, doing: "deciding a batch"))
        }
        if inFlight.count >= Self.inFlightBatchesMax,
           case .failure(let error) = settle(flusher.awaitEnd(of: inFlight[0].number), keeping: decided.keys) {
            recoverAfterFailure()
            return fail(batch, error)
        }
        if inFlight.isEmpty && batch.count <= Self.inlineBatchCommandsMax && isQueueEmpty {
            // Nothing to decide meanwhile (a lone request, light load): flush here rather than pay a thread
            // hand-off. Commands that arrive during this fsync form the next batch, as without pipelining.
            if answeringFirst {
                switch flusher.flushInlineAnsweringFirst(decided.job) {
                case .success(let answered):
                    let work = DeferredProjections(
                        job: answered.job, ticket: answered.ticket, keys: decided.keys, answeredAt: DispatchTime.now().uptimeNanoseconds)
                    deferred.withLock { $0 = work }
                    hasDeferred.store(true, ordering: .releasing)
                case .failure:
                    recover()  // the flusher answered the batch's callers with the error
                }
                return
            }
            switch flusher.flushInline(decided.job) {
            case .success:
                evict(decided.keys, keeping: [])
            case .failure:
                recover()  // the flusher answered the batch's callers with the error
            }
            return
        }
        handedOver += 1
        lastHandOver.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
        decided.job.number = handedOver
        flusher.flush(decided.job)
        inFlight.append(InFlight(number: handedOver, keys: decided.keys))
    }

    /// When a batch was last handed to the flusher (monotonic nanoseconds; 0: never).
    private let lastHandOver = Atomic<UInt64>(0)
    /// How long after a hand-over to the flusher submitting threads leave the work to the writer thread.
    private static let quietNanoseconds: UInt64 = 20_000_000

    /// Whether no batch has been handed to the flusher for a while: batches go to it only when commands
    /// arrive while others are being decided or flushed, so this means requests are coming one at a time.
    private func isQuiet(_ now: UInt64) -> Bool {
        let last = lastHandOver.load(ordering: .relaxed)
        return last == 0 || now &- last > Self.quietNanoseconds
    }

    /// When the writer's work last ended (monotonic nanoseconds; under `condition`).
    private var idleSince: UInt64 = 0
    /// How long the writer must have been idle before a command submitted without `afterAnswer` runs on the
    /// thread that submits it. A command that arrives sooner is most likely the next of several the same
    /// thread has read at once (one event loop serving many connections): run there, each would get a flush
    /// of its own, one after the other, while the writer thread would have taken them as one batch. (An
    /// event loop's next request a lone client sends after its answer can arrive sooner than this.)
    private static let idleBeforeRunningHereNanoseconds: UInt64 = 50_000

    /// How many batches may be handed to the flusher and not yet durable. The flusher takes all that wait
    /// into one transaction, so this bounds the memory of what is decided ahead, not the batching.
    private static let inFlightBatchesMax = 16

    /// A batch this small with nothing queued behind it is flushed by the writer itself: at such low
    /// concurrency the hand-off to the flusher costs more latency than overlapping the next batch saves,
    /// while a larger batch means requests keep arriving and pipelining pays.
    private static let inlineBatchCommandsMax = 4

    private var isQueueEmpty: Bool {
        condition.lock()
        defer { condition.unlock() }
        return queue.isEmpty
    }

    /// Takes the batches the flusher has ended off `inFlight`, oldest first. Once one is durable, drops what
    /// it loaded or settled, except what a later batch (in flight, or `keeping`, decided and not yet handed
    /// over) still needs in memory until it is durable in turn. Returns the first failure, if any.
    private func settle(_ progress: Flusher.Progress, keeping: TouchedKeys?) -> Result<Void, StoreError> {
        var ended = 0
        while ended < inFlight.count, inFlight[ended].number <= progress.through { ended += 1 }
        guard ended > 0 else { return .success(()) }
        let done = inFlight.prefix(ended)
        inFlight.removeFirst(ended)
        var later = inFlight.map(\.keys)
        if let keeping { later.append(keeping) }
        for batch in done {
            if case .failure(let error) = progress.outcome(of: batch.number) { return .failure(error) }
            evict(batch.keys, keeping: later)
        }
        return .success(())
    }

    /// After a failed batch: waits until the flusher has ended every batch handed over after it (it fails
    /// them, they were decided on top of it), reloads the state from the store and lets the flusher write
    /// again.
    private func recoverAfterFailure() {
        if let last = inFlight.last { _ = flusher.awaitEnd(of: last.number) }
        inFlight.removeAll()
        recover()
        flusher.resume()
    }

    /// Waits until nothing is in flight (before a trim, and when stopping).
    private func drain() {
        guard let last = inFlight.last else { return }
        if case .failure = settle(flusher.awaitEnd(of: last.number), keeping: nil) { recoverAfterFailure() }
    }

    private func fail(_ batch: [Pending], _ error: StoreError) {
        for pending in batch { pending.completion?(.failure(error)) }
    }

    /// Decides and applies one batch in memory and encodes what it changes. Reservations and idempotency
    /// records that are not in memory are read from the store: whatever the batch in flight changed is
    /// still in memory (it is evicted only once durable), so the last durable version is the right one.
    /// On a thrown error `state` may hold part of the batch: the caller reloads it.
    /// Each command is moved out of `batch` as it is decided (its completion stays).
    private func decide(_ batch: inout [Pending]) throws -> Decided {
        // Decided on a local value moved out of `self.state` and back (on a throw too): a stored property of
        // the class handed to a call is copied first (a retain and a release of each of its six dictionaries,
        // three times per command), a local variable is lent as it is.
        var state = LedgerState()
        swap(&state, &self.state)
        defer { swap(&state, &self.state) }
        let now = max(options.clock(), position.lastTimestamp)
        var answers: [Flusher.Answer] = []
        answers.reserveCapacity(batch.count)
        var writes = WriteSet(commands: batch.count, bytesPerCommand: 768, entriesPerCommand: 2)
        var projectionWrites = WriteSet(commands: batch.count)
        var touched = TouchedKeys()
        touched.reservations.reserveCapacity(batch.count)
        touched.idempotency.reserveCapacity(batch.count)
        var hydrated = TouchedKeys()
        var oldDeadlines: [ReservationID: Int64] = [:]
        oldDeadlines.reserveCapacity(batch.count)
        var next = position
        // Through the buffer: iterating the array would copy every pending command and its completion.
        try batch.withUnsafeMutableBufferPointer { batch in try projections.environment.read { txn in
            // The closure's own local, for the same reason as above: `state`, captured from outside, would be
            // copied for every call that borrows it.
            var working = LedgerState()
            swap(&working, &state)
            defer { swap(&working, &state) }
            for index in batch.indices {
                // The command moved out of the batch (a placeholder left behind) for the three calls below:
                // handed `batch[index].command`, each of them got a copy of its own (a retain and a release of
                // every string in it), the compiler unable to tell that the calls leave the buffer alone.
                let command = batch[index].takeCommand()
                try projections.hydrate(for: command, into: &working, adding: &hydrated, from: txn)
                // `draft` rather than `decide`: the reply of a fresh success is read from `working` right
                // after its events, which is what `decide` would return without its scratch copy.
                let result: Result<Decision, Refusal>
                switch Ledger.draft(working, command, now: now, derivations: derivations) {
                case .failure(let refusal):
                    result = .failure(refusal)
                case .success(.replay(let decision)):
                    result = .success(decision)
                case .success(.fresh(let events)):
                    // One copy of each event, by the iterator, for the calls below: handed `events[position]`,
                    // each of them got a copy of its own (four per event; through the array's buffer too).
                    for event in events {
                        // The deadline before the batch: note it at the reservation's first event (`touch`
                        // below adds it to the touched reservations).
                        if let id = event.reservationID, !touched.reservations.contains(id),
                           let deadline = Self.activeDeadline(id, in: &working) {
                            oldDeadlines[id] = deadline
                        }
                        event.touch(&touched, in: working)
                        do { try Ledger.apply(event, to: &working) } catch {
                            preconditionFailure("decide produced an event apply refuses: \(error)")
                        }
                        append(event, at: now, to: &next, &writes)
                    }
                    let reply = Ledger.reply(
                        to: command, events: events, after: working, base: working, now: now)
                    result = .success(Decision(events: events, reply: reply))
                }
                answers.append(Flusher.Answer(completion: batch[index].completion, result: result))
            }
            sweepRecords(now: now, commands: batch.count, txn: txn, into: &projectionWrites)
        } }
        projections.write(touched, from: state, oldDeadlines: oldDeadlines, into: &projectionWrites)
        next.write(to: projections.meta, &projectionWrites)
        position = next
        // Shares `touched`'s storage: usually nothing was loaded, and then nothing is copied.
        var keys = touched
        if !hydrated.reservations.isEmpty { keys.reservations.formUnion(hydrated.reservations) }
        if !hydrated.idempotency.isEmpty { keys.idempotency.formUnion(hydrated.idempotency) }
        return Decided(
            job: Flusher.Job(logWrites: writes, projectionWrites: projectionWrites, answers: answers, lastSequence: next.lastSequence, number: 0),
            keys: keys)
    }

    /// Deletes some aged-out idempotency rows with this batch, when any are due (`IdempotencySweep`). A failure
    /// to read them leaves the batch alone: the sweep tries again a minute later (the same failure, if it
    /// lasts, reaches the callers through the reads their commands need).
    private func sweepRecords(now: Int64, commands: Int, txn: borrowing LMDBReadTransaction, into writes: inout WriteSet) {
        do {
            try recordSweep.step(now: now, commands: commands, projections: projections, txn: txn, into: &writes)
        } catch {
            recordSweep.failed(at: now)
        }
    }

    /// Deletes aged-out idempotency rows while no command waits (a batch's share would wait for the next command):
    /// in a projections transaction of the writer's own, the flusher drained first, as for a trim. One chunk of
    /// `IdempotencySweep.defaultRowsPerBatch` rows at a time, so a command that arrives meanwhile waits for one
    /// chunk at most.
    private func sweepRecordsWhileIdle() {
        drain()
        guard stalled == nil else { return }  // a failure the drain met left the projections behind the log
        let now = max(options.clock(), position.lastTimestamp)
        var writes = WriteSet()
        do {
            try projections.environment.read { txn in
                try recordSweep.step(now: now, commands: IdempotencySweep.defaultRowsPerBatch, projections: projections, txn: txn, into: &writes)
            }
            try projections.environment.writeGrowing(doing: "deleting aged-out idempotency records", limitBytes: options.mapSizeBytesMax) { txn in
                try writes.apply(txn)
            }
        } catch {
            recordSweep.failed(at: now)  // the rows taken out of the index may still be stored
        }
    }

    /// After a failed batch: the log position goes back to what the log holds, the projections are brought
    /// up to it (a batch whose log write was durable but whose projections were not written), and the
    /// in-memory state is reloaded from them. Should that fail, commands are refused until it succeeds.
    private func recover() {
        do {
            position = try files.logEnd()
            let replayed = try files.catchUp(limitBytes: options.mapSizeBytesMax)
            state = try projections.environment.read { txn in
                // The rows handed out for the failed batches were never written: the index is rebuilt from the table
                // (a catch-up that replayed anything did that before it wrote rows of its own).
                if replayed == 0 { try projections.indexRecords(txn) }
                return try projections.loadWorkingSet(txn)
            }
            // The failed batches' deletes may not have happened: the index has their rows again, and so must the sweep.
            recordSweep.reset()
            stalled = nil
            flusher.barrier.caughtUp()
        } catch {
            let cause = StoreError(error, doing: "bringing the projections up to the log after a failed batch")
            stalled = StoreError(cause.kind, "\(cause.message); commands are refused until that succeeds (tallyd retries it before each batch)")
            flusher.barrier.failed(StoreError(cause.kind, "\(cause.message); reads of answered changes fail until that succeeds"))
        }
    }

    private static func storeError(_ error: any Error, doing context: String) -> StoreError {
        if let error = error as? LMDBError { return StoreError(error, doing: context) }
        if let error = error as? StoreError { return error }
        return StoreError(.io, "\(context): \(error)")
    }

    private func append(_ body: EventBody, at now: Int64, to position: inout LogPosition, _ writes: inout WriteSet) {
        position.lastSequence += 1
        position.lastTimestamp = now
        position.chainHead = writes.appendEvent(
            events, sequence: position.lastSequence, timestampMilliseconds: now,
            body: body, chainingFrom: position.chainHead)
    }

    /// Keeps memory to the working set: terminal reservations and idempotency records are durable in the
    /// store and are loaded again when a command needs them. Entries in `keeping` belong to batches that are
    /// not durable yet and stay until they are.
    private func evict(_ keys: TouchedKeys, keeping: [TouchedKeys]) {
        if keeping.isEmpty {
            for id in keys.reservations { evictIfTerminal(id) }
            state.idempotency.removeAll(keepingCapacity: true)
            return
        }
        // Terminal first: most of a batch's reservations are still ACTIVE (just reserved) or already gone, and
        // then the later batches' sets need not be searched at all.
        for id in keys.reservations {
            guard let index = state.reservations.index(forKey: id), state.peekReservation(at: index, { $0.status.isTerminal }),
                  !keeping.contains(where: { $0.reservations.contains(id) }) else { continue }
            state.reservations.remove(at: index)
        }
        for key in keys.idempotency where !keeping.contains(where: { $0.idempotency.contains(key) }) { state.idempotency[key] = nil }
    }

    /// Drops a terminal reservation, reading its status in place (no copy of the whole value).
    private func evictIfTerminal(_ id: ReservationID) {
        guard let index = state.reservations.index(forKey: id),
              state.peekReservation(at: index, { $0.status.isTerminal }) else { return }
        state.reservations.remove(at: index)
    }

    /// The settle deadline of an ACTIVE reservation (`Reservation.settleDeadlineMilliseconds`), read in
    /// place rather than from a copy of the whole reservation.
    private static func activeDeadline(_ id: ReservationID, in state: inout LedgerState) -> Int64? {
        guard let index = state.reservations.index(forKey: id) else { return nil }
        return state.peekReservation(at: index) { $0.status == .active ? $0.settleDeadlineMilliseconds : nil }
    }
}
