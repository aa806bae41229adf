import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TallyStore

/// What the background archiver reports (the server logs it).
public enum ArchiverNotice: Sendable {
    case sealed(SealOutcome)
    case failed(ArchiveError)
}

/// The background archiver of a running ledger: a thread of its own that looks at the log every
/// `pollIntervalMilliseconds`, seals what is due and trims the live log when configured to.
///
/// It never blocks the writer: events are read in LMDB read transactions, compression and fsyncs happen on
/// its own thread, and trimming is queued to the writer in small chunks between batches.
/// Lifecycle: `start()` once, `stop()` once (it waits for a pass in progress to finish).
public final class Archiver: Sendable {
    private struct Control {
        var started = false
        var stopping = false
        var forceRequested = false
    }

    private let sealer: Mutex<ArchiveSealer>
    private let control = Mutex(Control())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let pollIntervalMilliseconds: Int64
    private let clock: @Sendable () -> Int64
    private let notify: @Sendable (ArchiverNotice) -> Void

    /// Archives `store`'s log as `configuration` says; `notify` runs on the archiver thread after each
    /// pass that sealed something or failed.
    public convenience init(
        store: LedgerStore, configuration: ArchiverConfiguration,
        clock: @escaping @Sendable () -> Int64 = StoreOptions.wallClockMilliseconds,
        notify: @escaping @Sendable (ArchiverNotice) -> Void = { _ in }
    ) {
        self.init(log: store, configuration: configuration, trim: { sequence, chain in
            try store.trimLogBlocking(through: sequence, chain: chain)
        }, clock: clock, notify: notify)
    }

    public init(
        log: any EventLog, configuration: ArchiverConfiguration,
        trim: (@Sendable (UInt64, [UInt8]) throws -> LogBase)?,
        clock: @escaping @Sendable () -> Int64 = StoreOptions.wallClockMilliseconds,
        notify: @escaping @Sendable (ArchiverNotice) -> Void = { _ in }
    ) {
        sealer = Mutex(ArchiveSealer(log: log, configuration: configuration, trim: trim))
        pollIntervalMilliseconds = max(10, configuration.pollIntervalMilliseconds)
        self.clock = clock
        self.notify = notify
    }

    /// Starts the archiver thread; a second call does nothing.
    public func start() {
        let first = control.withLock { control in
            defer { control.started = true }
            return !control.started
        }
        guard first else { return }
        let thread = Thread { [self] in
            Self.yieldToRequests()
            loop()
            finished.signal()
        }
        thread.name = "tally-archiver"
        thread.start()
    }

    /// Sealing is background work: the archiver thread runs at a nice value 10 above the server's, so the
    /// writer and the event loops get the cores first when they are busy (Linux sets nice per thread).
    static let niceIncrement: Int32 = 10

    private static func yieldToRequests() {
        #if os(Linux)
        ThreadName.setCurrent("tally-archiver")
        // `who` 0 is the calling thread: under NPTL the nice value belongs to each thread.
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        _ = setpriority(which, 0, getpriority(which, 0) + niceIncrement)
        #endif
    }

    /// Asks the thread to seal everything pending on its next turn, without waiting for it.
    public func requestSeal() {
        control.withLock { $0.forceRequested = true }
        wake.signal()
    }

    /// Seals everything pending now, on the calling thread (passes never overlap).
    public func sealNow() throws(ArchiveError) -> SealOutcome {
        let now = clock()
        return try sealer.withLock { (sealer) throws(ArchiveError) -> SealOutcome in try sealer.sealPending(nowMilliseconds: now, force: true) }
    }

    /// Stops the thread after the pass in progress, if any; safe to call more than once or before start.
    public func stop() {
        let (wasRunning, wasStopping) = control.withLock { control in
            defer { control.stopping = true }
            return (control.started, control.stopping)
        }
        guard wasRunning, !wasStopping else { return }
        wake.signal()
        finished.wait()
    }

    /// Runs the archiver until the calling task is cancelled (for a `Service`: wrap it in
    /// `cancelWhenGracefulShutdown`), then stops it without blocking a cooperative thread.
    public func run() async {
        start()
        while !Task.isCancelled {
            // Sleeping throws at once when the task is cancelled, which ends the loop.
            try? await Task.sleep(for: .seconds(3_600))
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.stop()
                continuation.resume()
            }
        }
    }

    /// After a failed pass the next one waits twice as long (up to 64 poll intervals), so a full disk is
    /// reported a few times a minute rather than every second; a pass that works resets the wait.
    private func loop() {
        var done = false
        var failures = 0
        while !done {
            let wait = pollIntervalMilliseconds << Int64(min(failures, 6))
            _ = wake.wait(timeout: .now() + .milliseconds(Int(wait)))
            let (stopping, force) = control.withLock { control in
                defer { control.forceRequested = false }
                return (control.stopping, control.forceRequested)
            }
            done = stopping
            if !done { failures = pass(force: force) ? 0 : failures + 1 }
        }
    }

    /// One sealing pass; false when it failed (the failure has been reported).
    private func pass(force: Bool) -> Bool {
        let now = clock()
        do {
            let outcome = try sealer.withLock { (sealer) throws(ArchiveError) -> SealOutcome in
                try sealer.sealPending(nowMilliseconds: now, force: force)
            }
            if !outcome.sealed.isEmpty || outcome.trimmedThrough != nil { notify(.sealed(outcome)) }
            return true
        } catch {
            notify(.failed(error))
            return false
        }
    }
}
