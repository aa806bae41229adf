import Foundation
import Glibc
import Synchronization

/// Progress of a long run (replay, audit, rebuild) on stderr: events done, events per second and, when
/// the total is known, the time left. Silent unless stderr is a terminal, so scripts and logs stay clean.
public final class ProgressReporter: Sendable {
    private struct Progress {
        var lastPrinted: Double = 0
        var printedAny = false
    }

    private let label: String
    private let total: UInt64?
    private let started = Date()
    private let enabled: Bool
    private let progress = Mutex(Progress())

    /// `total` is the number of events the run expects to process, when it is known.
    public init(label: String, total: UInt64?, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.total = total
        self.enabled = enabled
    }

    /// Reports `done` events; prints at most twice a second.
    public func update(_ done: UInt64) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(started)
        let due = progress.withLock { progress in
            guard elapsed - progress.lastPrinted >= 0.5 else { return false }
            progress.lastPrinted = elapsed
            progress.printedAny = true
            return true
        }
        guard due else { return }
        FileHandle.standardError.write(Data(("\r\u{1b}[K" + Self.line(label: label, done: done, total: total, elapsed: elapsed)).utf8))
    }

    /// Ends the progress line, if one was printed.
    public func finish() {
        guard enabled, progress.withLock({ $0.printedAny }) else { return }
        FileHandle.standardError.write(Data("\r\u{1b}[K".utf8))
    }

    /// One progress line, e.g. `replay: 1200000 events, 850000 events/s, ETA 12 s`.
    public static func line(label: String, done: UInt64, total: UInt64?, elapsed: Double) -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\(label): \(done) events, \(Int(rate)) events/s"
        if let total, total > done, rate > 0 {
            text += ", ETA \(Int((Double(total - done) / rate).rounded(.up))) s"
        }
        return text
    }
}
