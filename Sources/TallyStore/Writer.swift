import Foundation
import Synchronization
import TallyCore

/// The single writer: the only thread that decides commands, applies events, starts write transactions
/// and flushes. Commands arrive from any thread; the writer drains them in batches and answers each caller
/// only after the write transaction holding its events is durable (group commit: one fsync per batch).
// Safe: the queue is guarded by `condition`; every other field belongs to the writer thread alone.
final class Writer: @unchecked Sendable {  // Safe: queue under `condition`, all else writer-thread only
    typealias Completion = @Sendable (Result<Result<Decision, Refusal>, StoreError>) -> Void

    private struct Pending {
        var command: Command
        var completion: Completion?
    }

    /// A request to remove archived events from the live log, done in chunks between batches.
    private struct Trim {
        var through: UInt64
        var chain: [UInt8]
        var completion: @Sendable (Result<LogBase, StoreError>) -> Void
    }

    private let environment: LMDBEnvironment
    private let projections: Projections
    private let events: LMDBDatabase
    private let meta: LMDBDatabase
    private let options: StoreOptions
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var trims: [Trim] = []
    private var stopping = false
    /// Tests hold the writer to observe group commit deterministically.
    private var held = false
    private let finished = DispatchSemaphore(value: 0)

    private var state: LedgerState
    private var position: LogPosition
    private let counters = Mutex(StoreStatistics())
    private var nextSweep: Int64 = 0

    init(environment: LMDBEnvironment, state: LedgerState, position: LogPosition, options: StoreOptions) {
        self.environment = environment
        projections = Projections(environment)
        events = environment.database(StoreLayout.events)
        meta = environment.database(StoreLayout.meta)
        self.options = options
        self.state = state
        self.position = position
    }

    func start() {
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "tally-writer"
        thread.start()
    }

    func submit(_ command: Command, completion: @escaping Completion) {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return completion(.failure(StoreError(.closed, "the store is closed")))
        }
        queue.append(Pending(command: command, completion: completion))
        condition.signal()
        condition.unlock()
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

    var statistics: StoreStatistics { counters.withLock { $0 } }

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
        while !done {
            condition.lock()
            while (queue.isEmpty || held) && (trims.isEmpty || held) && !stopping && options.clock() < nextSweep {
                let wait = Double(max(1, nextSweep - options.clock())) / 1_000
                _ = condition.wait(until: Date(timeIntervalSinceNow: min(wait, 1)))
            }
            let take = held && !stopping ? 0 : min(queue.count, options.batchCommandsMax)
            let batch = Array(queue.prefix(take))
            queue.removeFirst(take)
            let trim = held && !stopping ? nil : trims.first
            if trim != nil { trims.removeFirst() }
            done = stopping && queue.isEmpty && trims.isEmpty && trim == nil
            condition.unlock()
            if !batch.isEmpty { process(batch) }
            if let trim { trimChunk(trim) }
            if options.clock() >= nextSweep {
                sweep()
                nextSweep = options.clock() + options.expirySweepIntervalMilliseconds
            }
        }
    }

    /// Expires what the expiry index says is past its deadline, as an ordinary command of the writer.
    private func sweep() {
        let now = options.clock()
        var candidates: [String] = []
        do {
            try environment.read { txn in
                try txn.scan(projections.expiry) { key, value in
                    guard StoreLayout.deadline(fromExpiryKey: key) < now, candidates.count < Limits.expirySweepCountMax else { return false }
                    candidates.append(String(decoding: value, as: UTF8.self))
                    return true
                }
            }
        } catch {
            return  // reads failing means writes will fail too; the next batch reports it to its callers
        }
        if !candidates.isEmpty {
            process([Pending(command: .expireReservations(ExpireCommand(candidates: candidates)), completion: nil)])
        }
    }

    /// Deletes the next chunk of archived events and moves the log base up with them; puts the request
    /// back at the front of the queue until it is done. The chain value the archive recorded for the
    /// last trimmed event must match the log's, or nothing is deleted.
    private func trimChunk(_ trim: Trim) {
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
            if let error = error as? StoreError { return trim.completion(.failure(error)) }
            if let error = error as? LMDBError { return trim.completion(.failure(StoreError(error, doing: "trimming the log"))) }
            trim.completion(.failure(StoreError(.io, "trimming the log: \(error)")))
        }
    }

    private func process(_ batch: [Pending]) {
        var outcome = flush(batch)
        if case .failure(let error) = outcome, error.kind == .storageFull,
           (try? environment.growMap(limitBytes: options.mapSizeBytesMax)) == true {
            outcome = flush(batch)
        }
        switch outcome {
        case .success(let results):
            for (pending, result) in zip(batch, results) { pending.completion?(.success(result)) }
        case .failure(let error):
            for pending in batch { pending.completion?(.failure(error)) }
        }
    }

    /// Decides, applies and makes durable one batch. On any failure the write transaction is aborted,
    /// the in-memory state is reloaded from the (untouched) store, and every caller gets the error.
    private func flush(_ batch: [Pending]) -> Result<[Result<Decision, Refusal>], StoreError> {
        let now = max(options.clock(), position.lastTimestamp)
        var results: [Result<Decision, Refusal>] = []
        var touched = TouchedKeys()
        var hydrated = TouchedKeys()
        var oldDeadlines: [String: Int64] = [:]
        var seen = Set<String>()
        var next = position
        do {
            try environment.write { txn in
                for pending in batch {
                    let lookups = pending.command.lookups(in: state)
                    try projections.hydrate(lookups, into: &state, adding: &hydrated, from: txn)
                    // `draft` rather than `decide`: the reply of a fresh success is read from `state` right
                    // after its events, which is what `decide` would return without its scratch copy.
                    switch Ledger.draft(state, pending.command, now: now) {
                    case .failure(let refusal):
                        results.append(.failure(refusal))
                    case .success(.replay(let decision)):
                        results.append(.success(decision))
                    case .success(.fresh(let events)):
                        for body in events {
                            if let id = body.reservationID, seen.insert(id).inserted,
                               let deadline = Self.activeDeadline(id, in: state) {
                                oldDeadlines[id] = deadline
                            }
                            body.touch(&touched, in: state)
                            do { try Ledger.apply(body, to: &state) } catch {
                                preconditionFailure("decide produced an event apply refuses: \(error)")
                            }
                            try append(body, at: now, to: &next, txn)
                        }
                        let reply = Ledger.reply(
                            to: pending.command, events: events, after: state, base: state, now: now)
                        results.append(.success(Decision(events: events, reply: reply)))
                    }
                }
                try projections.write(touched, from: state, oldDeadlines: oldDeadlines, in: txn)
                try next.write(to: meta, txn)
            }
        } catch {
            reload()
            if let error = error as? LMDBError { return .failure(StoreError(error, doing: "writing a batch")) }
            if let error = error as? StoreError { return .failure(error) }
            return .failure(StoreError(.io, "writing a batch: \(error)"))
        }
        position = next
        evict(touched, hydrated)
        counters.withLock {
            $0.flushes += 1
            $0.commands += UInt64(batch.count)
            $0.lastSequence = next.lastSequence
            $0.largestBatch = max($0.largestBatch, batch.count)
        }
        return .success(results)
    }

    private func append(_ body: EventBody, at now: Int64, to position: inout LogPosition, _ txn: borrowing LMDBWriteTransaction) throws {
        position.lastSequence += 1
        position.lastTimestamp = now
        let record = EventCodec.encode(Event(sequence: position.lastSequence, timestampMilliseconds: now, body: body))
        position.chainHead = EventChain.link(position.chainHead, record)
        try txn.put(events, StoreLayout.sequenceKey(position.lastSequence), position.chainHead + record, append: true)
    }

    /// Keeps memory to the working set: terminal reservations and idempotency records are durable in the
    /// store and are loaded again when a command needs them.
    private func evict(_ touched: TouchedKeys, _ hydrated: TouchedKeys) {
        for id in touched.reservations { evictIfTerminal(id) }
        for id in hydrated.reservations { evictIfTerminal(id) }
        state.idempotency.removeAll(keepingCapacity: true)
    }

    /// Drops a terminal reservation, reading only its status where it is stored (one hash, no copy of the
    /// whole value).
    private func evictIfTerminal(_ id: String) {
        guard let index = state.reservations.index(forKey: id), state.reservations.values[index].status.isTerminal else { return }
        state.reservations.remove(at: index)
    }

    /// The settle deadline of an ACTIVE reservation (`expires_at + grace`, saturating, as
    /// `Reservation.settleDeadlineMilliseconds`), from three fields read in place rather than a copy of the
    /// whole reservation.
    private static func activeDeadline(_ id: String, in state: LedgerState) -> Int64? {
        guard let index = state.reservations.index(forKey: id), state.reservations.values[index].status == .active else { return nil }
        let (sum, overflow) = state.reservations.values[index].expiresAtMilliseconds
            .addingReportingOverflow(state.reservations.values[index].graceMilliseconds)
        return overflow ? Int64.max : sum
    }

    private func reload() {
        do {
            state = try environment.read { txn in try projections.loadWorkingSet(txn) }
        } catch {
            preconditionFailure("the store cannot be read back after a failed write: \(error)")
        }
    }
}
