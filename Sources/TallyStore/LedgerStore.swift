import Foundation
import Synchronization
import TallyCore

/// A durable Tally ledger in one data directory: the event log and its projections in LMDB (two
/// environments, `StoreFiles`), one writer thread with group commit, and reads from any thread that never
/// wait for the writer.
public final class LedgerStore: Sendable {
    public let directory: String
    /// The log's environment (events and the log's `meta`).
    let environment: LMDBEnvironment
    let projections: Projections
    let writer: Writer
    private let lock: DirectoryLock
    private let closed = Mutex(false)

    /// Opens (creating when missing) a data directory for writing, checks it (format version, chain head),
    /// replays into the projections whatever of the log they miss (after a crash) and loads the working set.
    public init(directory: String, options: StoreOptions = StoreOptions()) throws(StoreError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.io, "cannot create the data directory \(directory): \(error)")
        }
        self.directory = directory
        lock = try DirectoryLock(directory: directory)
        let files: StoreFiles
        do {
            files = try StoreFiles.openBoth(
                directory, mapSizeBytes: options.mapSizeBytes, readOnly: false, recordDigest: options.idempotencyDigestForTests)
        } catch {
            lock.release()
            throw error
        }
        environment = files.log
        projections = files.projections
        let state: LedgerState, position: LogPosition
        do throws(StoreError) {
            try files.upgradeFromOneEnvironment(directory, progress: options.openProgress)
            (state, position) = try Recovery.open(files, directory: directory, limitBytes: options.mapSizeBytesMax, progress: options.openProgress)
            try Self.indexIdempotencyRecords(files.projections, progress: options.openProgress)
            // From here on the projections are written without waiting for the disk (the log is).
            try StoreFiles.markUnsynced(directory)
            do {
                try projections.environment.setDurable(false)
            } catch {
                throw StoreError(error, doing: "opening \(directory)")
            }
        } catch {
            files.close()
            lock.release()
            throw error
        }
        writer = Writer(files: files, state: state, position: position, options: options)
        writer.start()
    }

    /// Counters of the writer since open (how well group commit is batching).
    public var statistics: StoreStatistics { writer.statistics }

    /// Answers what is queued, flushes, stops the writer, closes the environment and releases the
    /// directory. The store refuses commands and reads afterwards. Safe to call more than once.
    public func close() {
        let first = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        writer.stop()
        // The projections reach the disk before the marker that says they might not goes away.
        if (try? projections.environment.sync()) != nil { StoreFiles.markSynced(directory) }
        projections.environment.close()
        environment.close()
        lock.release()
    }

    /// A store dropped without `close()` still answers what is queued and releases the directory.
    deinit { close() }

    /// Holds the writer between batches while `body` runs, so that everything submitted meanwhile is
    /// decided and flushed together (tests use it to observe group commit).
    func withWriterHeld(_ body: () throws -> Void) rethrows {
        writer.hold(true)
        defer { writer.hold(false) }
        try body()
    }

    /// Holds the flusher while `body` runs: batches the writer decides meanwhile wait for it (tests observe
    /// that they are then made durable together).
    func withFlusherHeld(_ body: () throws -> Void) rethrows {
        writer.flusherForTests.hold(true)
        defer { writer.flusherForTests.hold(false) }
        try body()
    }

    /// Lets the held flusher make `count` more transactions (tests only, inside `withFlusherHeld`).
    func allowFlushes(_ count: Int) { writer.flusherForTests.allow(count) }

    /// Batches decided and waiting for the flusher (tests only).
    var batchesWaitingForTheFlusher: Int { writer.flusherForTests.waitingJobs }

    /// Makes the transactions for which `failure` returns an error fail before writing (tests only).
    func injectFlushFailures(_ failure: (@Sendable () -> StoreError?)?) {
        writer.flusherForTests.injectFailures(failure)
    }

    /// Runs `step` after each batch the flusher thread answers, before its projections are written; an error
    /// it returns fails the projections' transaction (tests only).
    func injectProjectionsFailures(_ step: (@Sendable () -> StoreError?)?) {
        writer.flusherForTests.injectProjectionsFailures(step)
    }

    /// Hands a command to the writer. The completion runs once the command's events are durable (or it was
    /// refused, or the batch failed), on one of the store's threads (the flusher, or the writer for a small
    /// batch), or, when requests come one at a time and the writer is idle, on the calling thread before
    /// `submit` returns (`Writer.submit`); keep it short and never wait for the store in it, nor read from it (on
    /// the flusher thread a read would wait for projections that thread writes after the completions).
    ///
    /// `afterAnswer`, when given, schedules a piece of the store's work on the calling thread after whatever the
    /// completion scheduled there (an event loop: `execute` after the answer's write and flush). A command
    /// processed on the calling thread is then answered before its projections' transaction, which that work
    /// writes; until it runs, the next command waits for it and a read writes it itself (on any thread).
    public func submit(
        _ command: consuming Command, afterAnswer: AfterAnswer? = nil,
        completion: @escaping Completion
    ) {
        writer.submit(command, afterAnswer: afterAnswer, completion: completion)
    }

    /// What `submit` calls with a command's outcome. It takes the outcome (`__owned`): the flusher hands each
    /// decision over rather than lend it, so a completion that keeps it (a connection's mailbox) moves it
    /// instead of copying every string and array in it.
    public typealias Completion = @Sendable (__owned Result<Result<Decision, Refusal>, StoreError>) -> Void

    /// Schedules a piece of the store's work on the thread that submitted a command (see `submit`).
    public typealias AfterAnswer = @Sendable (_ work: @escaping @Sendable () -> Void) -> Void

    /// Removes events up to `sequence` from the live log once they are safely archived, and records that
    /// the log now starts after them. `chain` is the chain value after event `sequence` as the archive
    /// recorded it; if the log disagrees nothing is removed. Runs on the writer thread in chunks between
    /// batches; the completion runs there too, when the whole range is gone (or on failure).
    public func trimLog(through sequence: UInt64, chain: [UInt8], completion: @escaping @Sendable (Result<LogBase, StoreError>) -> Void) {
        writer.submitTrim(through: sequence, chain: chain, completion: completion)
    }

    /// The same, blocking the calling thread (the archiver's own thread, tools and tests).
    @available(*, noasync, message: "trim from a thread of your own, not from async code")
    public func trimLogBlocking(through sequence: UInt64, chain: [UInt8]) throws(StoreError) -> LogBase {
        let result = Mutex<Result<LogBase, StoreError>?>(nil)
        let semaphore = DispatchSemaphore(value: 0)
        trimLog(through: sequence, chain: chain) { outcome in
            result.withLock { $0 = outcome }
            semaphore.signal()
        }
        semaphore.wait()
        return try result.withLock { $0! }.get()
    }

    /// Submits and waits: the ledger's answer, or a thrown `StoreError` if nothing could be made durable.
    public func execute(_ command: Command) async throws(StoreError) -> Result<Decision, Refusal> {
        // Never on the calling thread: it belongs to Swift's shared pool, which must not wait for a disk flush.
        let outcome = await withCheckedContinuation { continuation in
            writer.submit(command, mayRunHere: false) { continuation.resume(returning: $0) }
        }
        return try outcome.get()
    }

    /// The same, blocking the calling thread (tools and tests outside async code).
    @available(*, noasync, message: "use execute(_:) from async code")
    public func executeBlocking(_ command: Command) throws(StoreError) -> Result<Decision, Refusal> {
        let box = OutcomeBox()
        submit(command) { box.set($0) }
        return try box.wait().get()
    }
}

/// One outcome handed from the writer thread to a blocked caller.
private final class OutcomeBox: Sendable {
    private let outcome = Mutex<Result<Result<Decision, Refusal>, StoreError>?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func set(_ value: Result<Result<Decision, Refusal>, StoreError>) {
        outcome.withLock { $0 = value }
        semaphore.signal()
    }

    func wait() -> Result<Result<Decision, Refusal>, StoreError> {
        semaphore.wait()
        return outcome.withLock { $0! }
    }
}

/// What the writer has done since the store was opened.
public struct StoreStatistics: Sendable, Hashable {
    /// Durable write transactions (one fsync each).
    public var flushes: UInt64 = 0
    /// Commands decided in those transactions (including refusals, which write nothing of their own).
    public var commands: UInt64 = 0
    public var largestBatch = 0
    public var lastSequence: UInt64 = 0
}

extension LedgerStore {
    /// Builds the index of the idempotency rows before the writer starts (the catch-up of `Recovery.open` may
    /// have built it already), telling how long it took when the table is large.
    @available(*, noasync, message: "reads the whole idempotency table")
    static func indexIdempotencyRecords(_ projections: Projections, progress: (@Sendable (String) -> Void)?) throws(StoreError) {
        do {
            try projections.environment.read { txn in
                guard !projections.records.isBuilt else { return }
                let rows = try txn.count(projections.idempotency)
                let telling = StoreFiles.OpenProgress(rows >= 1_000_000 ? progress : nil)
                telling.say("indexing \(rows) idempotency records")
                try projections.indexRecords(txn)
                telling.say("indexed \(rows) idempotency records in \(telling.elapsed)")
            }
        } catch {
            throw StoreError(error, doing: "indexing the idempotency records")
        }
    }
}
