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
        var fold = try Fold(
            start: checkpoint?.state ?? LedgerState(), next: (checkpoint?.sequence ?? 0) + 1,
            lastTimestamp: checkpoint?.timestampMilliseconds ?? 0,
            chain: checkpoint?.chain ?? (checkpoint == nil ? EventChain.genesis : nil), target: target,
            scope: scope, historySink: scope == .full ? history : nil, progress: progress)
        let plan = Self.segmentsNeeded(segments, from: fold.next, target: target)
        if !plan.isEmpty {
            let last: UInt64? = if case .sequence(let sequence) = target { sequence } else { nil }
            let stream = SegmentStream(archive, plan, from: fold.next, through: last, decoding: scope == .full)
            defer { stream.cancel() }
            while !fold.done, var chunk = try stream.next() {
                if scope == .full {
                    for event in chunk.events where !fold.done { try fold.apply(event: event, chain: nil, file: chunk.file) }
                } else {
                    try fold.apply(records: chunk.records, chunk.range, file: chunk.file)
                }
                if let header = chunk.finished, fold.next == header.lastSequence + 1 { fold.chain = header.exitChain }
                stream.recycle(&chunk)
            }
        }
        if !fold.done, let log { try replayLive(log, into: &fold) }
        try fold.flushHistory()
        if case .sequence(let sequence) = target, fold.next - 1 != sequence {
            throw ArchiveError(.notFound, file: archive.directory.path, sequence: fold.next,
                               "the archive and the live log end at sequence \(fold.next - 1), before \(sequence)")
        }
        return ReplayResult(
            state: try fold.finalState(), lastSequence: fold.next - 1, lastTimestampMilliseconds: fold.lastTimestamp,
            chain: fold.chain, checkpointSequence: checkpoint?.sequence ?? 0, eventsApplied: fold.applied,
            skippedCheckpoints: skipped)
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
            if fold.walksRecords {
                let entries: [RawStoredEvent]
                do { entries = try log.rawEvents(from: fold.next, limit: Self.liveChunkEvents) } catch {
                    throw ArchiveError(.io, file: "live log", sequence: fold.next, "\(error)")
                }
                guard let first = entries.first, first.sequence == fold.next else {
                    throw ArchiveError(.discontinuous, file: "live log", sequence: fold.next, "event \(fold.next) is missing from the live log")
                }
                for entry in entries where !fold.done {
                    var failure: ArchiveError?
                    entry.record.withUnsafeBytes { bytes in
                        do throws(ArchiveError) { try fold.apply(record: bytes, chain: entry.chain, file: "live log") } catch { failure = error }
                    }
                    if let failure { throw failure }
                }
                continue
            }
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

/// The running state of one replay: a `LedgerState` that events are applied to (a full replay), or a
/// `WorkingSetFold` that walks records in place (a working-set replay).
struct Fold {
    private var state: LedgerState
    private var records: WorkingSetFold?
    var next: UInt64
    var lastTimestamp: Int64
    var chain: [UInt8]?
    let target: ReplayTarget
    /// Takes the history before it is dropped (a full replay into a restore).
    let historySink: ((LedgerState) throws -> Void)?
    let progress: ((UInt64) -> Void)?
    var applied: UInt64 = 0
    var done = false

    init(
        start: LedgerState, next: UInt64, lastTimestamp: Int64, chain: [UInt8]?, target: ReplayTarget, scope: ReplayScope,
        historySink: ((LedgerState) throws -> Void)?, progress: ((UInt64) -> Void)?
    ) throws(ArchiveError) {
        state = start
        if scope == .workingSet {
            do { records = try WorkingSetFold(start) } catch {
                throw ArchiveError(.corrupt, file: "checkpoint", sequence: next - 1, "the starting state is inconsistent: \(error)")
            }
            state = LedgerState()
        }
        self.next = next
        self.lastTimestamp = lastTimestamp
        self.chain = chain
        self.target = target
        self.historySink = historySink
        self.progress = progress
    }

    /// Whether this fold takes records (`apply(record:)`) rather than events.
    var walksRecords: Bool { records != nil }

    /// Applies one decoded event (a full replay).
    mutating func apply(event: Event, chain: [UInt8]?, file: String) throws(ArchiveError) {
        guard try admit(event.sequence, event.timestampMilliseconds, file: file) else { return }
        do { try Ledger.apply(event.body, to: &state, keepingHistory: true) } catch {
            throw ArchiveError(.corrupt, file: file, sequence: next, "the event does not apply: \(error)")
        }
        try applied(event.timestampMilliseconds, chain: chain)
    }

    /// Walks the records `range` of a segment (a working-set replay).
    /// Holds reserved in the block keep their records there until the block is left (`WorkingSetFold`).
    mutating func apply(records block: RecordBlock, _ range: Range<Int>, file: String) throws(ArchiveError) {
        var failure: ArchiveError?
        var failed = false  // tested per record: cheaper than comparing the optional error with nil
        records!.enterBlock(block.bytes)
        block.bytes.withUnsafeBytes { bytes in
            for index in range where !done && !failed {
                let record = block.range(index)
                do throws(ArchiveError) {
                    try apply(record: UnsafeRawBufferPointer(rebasing: bytes[record]), atBlockOffset: record.lowerBound, chain: nil, file: file)
                } catch {
                    failure = error
                    failed = true
                }
            }
        }
        records!.leaveBlock()
        if let failure { throw failure }
    }

    /// Walks one record (a working-set replay); `offset` is where it is in the block entered, if it is in one.
    mutating func apply(record: UnsafeRawBufferPointer, atBlockOffset offset: Int? = nil, chain: [UInt8]?, file: String) throws(ArchiveError) {
        let header: RecordHeader
        do { header = try RecordHeader(record) } catch {
            throw ArchiveError(.corrupt, file: file, sequence: next, "event record: \(error.reason)")
        }
        guard try admit(header.sequence, header.timestampMilliseconds, file: file) else { return }
        var none = NoCharges()
        do {
            if let offset {
                try records!.apply(record, header, atBlockOffset: offset, charges: &none)
            } else {
                try records!.apply(record, header, charges: &none)
            }
        } catch {
            switch error {
            case .undecodable(let error): throw ArchiveError(.corrupt, file: file, sequence: next, "event record: \(error.reason)")
            case .inconsistent(let error): throw ArchiveError(.corrupt, file: file, sequence: next, "the event does not apply: \(error)")
            }
        }
        try applied(header.timestampMilliseconds, chain: chain)
    }

    /// Whether the event at `sequence` is to be applied: it is the next one and the target includes it.
    private mutating func admit(_ sequence: UInt64, _ timestamp: Int64, file: String) throws(ArchiveError) -> Bool {
        guard target.includes(sequence: sequence, timestamp: timestamp) else {
            done = true
            return false
        }
        guard sequence == next else {
            throw ArchiveError(.discontinuous, file: file, sequence: sequence, "expected event \(next)")
        }
        return true
    }

    private mutating func applied(_ timestamp: Int64, chain: [UInt8]?) throws(ArchiveError) {
        next += 1
        lastTimestamp = timestamp
        self.chain = chain
        applied += 1
        if applied % 8_192 == 0 {
            try flushHistory()
            if applied % 65_536 == 0 { progress?(applied) }
        }
    }

    /// Hands the history to the sink, if any, and drops it.
    mutating func flushHistory() throws(ArchiveError) {
        guard let historySink else { return }
        do { try historySink(state) } catch { throw ArchiveError(.io, file: "restore", sequence: next - 1, "writing history: \(error)") }
        state.dropHistory()
    }

    /// The state reached.
    func finalState() throws(ArchiveError) -> LedgerState {
        guard let records else { return state }
        do { return try records.state() } catch {
            switch error {
            case .undecodable(let error): throw ArchiveError(.corrupt, file: "replay", sequence: next - 1, "a held reservation's record: \(error.reason)")
            case .inconsistent(let error): throw ArchiveError(.corrupt, file: "replay", sequence: next - 1, "\(error)")
            }
        }
    }
}
