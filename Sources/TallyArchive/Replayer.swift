import TallyCore
import TallyStore

/// The state a replay reached and how it got there.
public struct ReplayResult: Sendable {
    public var state: LedgerState
    /// The last event applied (the checkpoint's when no event was needed; 0 for an empty ledger).
    public var lastSequence: UInt64
    public var lastTimestampMilliseconds: Int64
    /// The chain value after `lastSequence`, when the replay ended where one is recorded (a checkpoint,
    /// a segment's end or a live log entry).
    public var chain: [UInt8]?
    /// The checkpoint the replay started from (0: from the first event).
    public var checkpointSequence: UInt64
    public var eventsApplied: UInt64
    /// Checkpoints that were passed over because they could not be read.
    public var skippedCheckpoints: [ArchiveError]
}

/// How much of the state a replay rebuilds.
public enum ReplayScope: Sendable, Hashable {
    /// Tenants, keys, budgets and ACTIVE reservations: balances as of an instant. Reads the newest
    /// checkpoint before the target and the events after it, and drops history as it goes (bounded memory).
    case workingSet
    /// Everything, settled reservations and idempotency records included (disaster recovery, `verify`
    /// after trimming): every event from the first, since checkpoints hold no history; memory grows with
    /// the ledger's history.
    case full
}

/// Point-in-time replay: the nearest checkpoint at or before the target, then the events after it from
/// the segments and the live log. Reads only; the live log is read through its read transactions.
public struct Replayer: Sendable {
    public let archive: ArchiveReader
    public let log: (any EventLog)?
    /// Live log events read per read transaction.
    static let liveChunkEvents = 8_192

    public init(archive: ArchiveDirectory, log: (any EventLog)?) {
        self.archive = ArchiveReader(directory: archive)
        self.log = log
    }

    /// Rebuilds the state as of `target` (see `ReplayScope` for how much of it). `progress` is called now and
    /// then with the events applied so far. With `history`, a full replay hands the state to it every few
    /// thousand events and then drops the settled history from memory (a restore writes it to disk), so the
    /// result holds the working set and what was written since the last hand-over. `fromFirstEvent` ignores
    /// the checkpoints (to measure replay, or to get balances without trusting them).
    public func replay(
        to target: ReplayTarget, scope: ReplayScope = .full, history: ((LedgerState) throws -> Void)? = nil,
        fromFirstEvent: Bool = false, progress: ((UInt64) -> Void)? = nil
    ) throws(ArchiveError) -> ReplayResult {
        let (segments, checkpoints) = try archive.directory.list()
        let (checkpoint, skipped) = scope == .workingSet && !fromFirstEvent
            ? archive.newestCheckpoint(atOrBefore: target, in: checkpoints) : (nil, [])
        var fold = Fold(
            state: checkpoint?.state ?? LedgerState(), next: (checkpoint?.sequence ?? 0) + 1,
            lastTimestamp: checkpoint?.timestampMilliseconds ?? 0,
            chain: checkpoint?.chain ?? (checkpoint == nil ? EventChain.genesis : nil), target: target,
            keepsHistory: scope == .full, historySink: scope == .full ? history : nil, progress: progress)
        let plan = Self.segmentsNeeded(segments, from: fold.next, target: target)
        if !plan.isEmpty {
            let last: UInt64? = if case .sequence(let sequence) = target { sequence } else { nil }
            let stream = SegmentStream(archive, plan, from: fold.next, through: last)
            defer { stream.cancel() }
            while !fold.done, let chunk = try stream.next() {
                for event in chunk.events where !fold.done { try fold.apply(event: event, chain: nil, file: chunk.file) }
                if let header = chunk.finished, fold.next == header.lastSequence + 1 { fold.chain = header.exitChain }
            }
        }
        if !fold.done, let log { try replayLive(log, into: &fold) }
        try fold.flushHistory()
        if case .sequence(let sequence) = target, fold.next - 1 != sequence {
            throw ArchiveError(.notFound, file: archive.directory.path, sequence: fold.next,
                               "the archive and the live log end at sequence \(fold.next - 1), before \(sequence)")
        }
        return ReplayResult(
            state: fold.state, lastSequence: fold.next - 1, lastTimestampMilliseconds: fold.lastTimestamp, chain: fold.chain,
            checkpointSequence: checkpoint?.sequence ?? 0, eventsApplied: fold.applied, skippedCheckpoints: skipped)
    }

    /// The segments that follow each other from `next` on, up to the one holding a sequence target; a gap
    /// ends the list (the live log may still hold what is missing).
    static func segmentsNeeded(
        _ segments: [ArchiveDirectory.SegmentEntry], from next: UInt64, target: ReplayTarget
    ) -> [ArchiveDirectory.SegmentEntry] {
        var plan: [ArchiveDirectory.SegmentEntry] = []
        var expected = next
        for entry in segments where entry.lastSequence >= expected {
            guard entry.firstSequence <= expected else { break }
            plan.append(entry)
            expected = entry.lastSequence + 1
            if case .sequence(let last) = target, entry.lastSequence >= last { break }
        }
        return plan
    }

    private func replayLive(_ log: any EventLog, into fold: inout Fold) throws(ArchiveError) {
        let bounds: LogBounds
        do { bounds = try log.bounds() } catch { throw ArchiveError(.io, file: "live log", "\(error)") }
        guard bounds.lastSequence >= fold.next else { return }
        guard bounds.base.sequence < fold.next else {
            throw ArchiveError(.discontinuous, file: archive.directory.path, sequence: fold.next,
                               "event \(fold.next) is in no segment and the live log starts after \(bounds.base.sequence)")
        }
        while !fold.done && fold.next <= bounds.lastSequence {
            let events: [StoredEvent]
            do { events = try log.events(from: fold.next, limit: Self.liveChunkEvents) } catch {
                throw ArchiveError(.io, file: "live log", sequence: fold.next, "\(error)")
            }
            guard let first = events.first, first.event.sequence == fold.next else {
                throw ArchiveError(.discontinuous, file: "live log", sequence: fold.next, "event \(fold.next) is missing from the live log")
            }
            for stored in events where !fold.done {
                try fold.apply(event: stored.event, chain: stored.chain, file: "live log")
            }
        }
    }
}

/// The running state of one replay.
struct Fold {
    var state: LedgerState
    var next: UInt64
    var lastTimestamp: Int64
    var chain: [UInt8]?
    let target: ReplayTarget
    /// False for a working-set replay: events are applied without building history (settled reservations
    /// go at once, no idempotency records), which keeps memory bounded by the working set.
    let keepsHistory: Bool
    /// Takes the history before it is dropped (a full replay into a restore).
    let historySink: ((LedgerState) throws -> Void)?
    let progress: ((UInt64) -> Void)?
    var applied: UInt64 = 0
    var done = false

    mutating func apply(event: Event, chain: [UInt8]?, file: String) throws(ArchiveError) {
        guard target.includes(sequence: event.sequence, timestamp: event.timestampMilliseconds) else {
            done = true
            return
        }
        guard event.sequence == next else {
            throw ArchiveError(.discontinuous, file: file, sequence: event.sequence, "expected event \(next)")
        }
        do { try Ledger.apply(event.body, to: &state, keepingHistory: keepsHistory) } catch {
            throw ArchiveError(.corrupt, file: file, sequence: next, "the event does not apply: \(error)")
        }
        next += 1
        lastTimestamp = event.timestampMilliseconds
        self.chain = chain
        applied += 1
        if applied % 8_192 == 0 {
            try flushHistory()
            if applied % 65_536 == 0 { progress?(applied) }
        }
    }

    /// Hands the history to the sink, if any, and drops it. (A replay that keeps no history never builds
    /// any: it applies events with `keepingHistory: false`.)
    mutating func flushHistory() throws(ArchiveError) {
        guard let historySink else { return }
        do { try historySink(state) } catch { throw ArchiveError(.io, file: "restore", sequence: next - 1, "writing history: \(error)") }
        state.dropHistory()
    }
}
