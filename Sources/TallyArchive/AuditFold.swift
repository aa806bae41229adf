import TallyCore
import TallyStore

/// The running state of an audit: the replayed state, where the history has reached, the chain value
/// there, and what was found so far. A gap or an unreadable segment makes the state unknown from there
/// on (later checkpoints and the projections are then not compared), but the chain checks continue.
///
/// The state holds the working set and the history written lately: at each checkpoint and every 65,536
/// events the history is compared with the stored projections, if any, and dropped, so the audit's memory
/// stays bounded by the working set.
struct AuditFold {
    let archive: ArchiveReader
    let checkpoints: [UInt64: ArchiveDirectory.CheckpointEntry]
    /// Spend, counted from decoded events (with a store) or from the charges `working` reports.
    var spend: SpendLedger
    var tally: SpendTally
    let progress: ((UInt64) -> Void)?
    /// The replayed state when events are decoded and applied: with a live store, whose history is compared
    /// entry by entry, so the replay keeps history between the comparisons.
    var state = LedgerState()
    /// The replay of an audit that compares no history (the archive alone): records walked in place.
    var working: WorkingSetFold?
    var stateKnown = true
    var next: UInt64 = 1
    var chain: [UInt8]? = EventChain.genesis
    var lastTimestamp = Int64.min
    var exitChains: [UInt64: [UInt8]] = [:]
    /// Compares the history with the stored projections as it is dropped (nil without a live store).
    var historyCheck: StoredHistoryCheck?
    var findings: [AuditFinding] = []
    var eventsChecked: UInt64 = 0
    var checkpointsChecked = 0

    init(
        archive: ArchiveReader, checkpoints: [ArchiveDirectory.CheckpointEntry], spend: SpendLedger,
        stored: (any StoredProjections)?, now: Int64, progress: ((UInt64) -> Void)?
    ) {
        self.archive = archive
        self.historyCheck = stored.map { StoredHistoryCheck($0, now: now) }
        self.checkpoints = Dictionary(checkpoints.map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
        self.spend = spend
        self.tally = SpendTally(bucketMilliseconds: spend.bucketMilliseconds)
        self.progress = progress
        if stored == nil { working = WorkingSetFold() }
    }

    /// The spend found, however it was counted.
    var spendFound: SpendLedger {
        guard let working else { return spend }
        return tally.ledger(budgets: working.budgetKey)
    }

    /// Checks one segment (prepared by `SegmentPreparer`) and folds its events.
    mutating func audit(_ entry: ArchiveDirectory.SegmentEntry, _ prepared: PreparedSegment) {
        let file = archive.directory.filePath(entry.name)
        guard entry.firstSequence >= next else {
            return note(file, sequence: entry.firstSequence,
                        "covers \(entry.firstSequence)...\(entry.lastSequence), overlapping events already archived up to \(next - 1)")
        }
        if entry.firstSequence > next {
            note(file, sequence: next, "events \(next)...\(entry.firstSequence - 1) are in no segment (expected a segment starting at \(next), found \(entry.firstSequence))")
            lose(at: entry.firstSequence)
        }
        let decoded: DecodedSegment
        switch prepared.decoded {
        case .success(let segment): decoded = segment
        case .failure(let error):
            findings.append(AuditFinding(error))
            return lose(at: entry.lastSequence + 1)
        }
        let header = decoded.header
        if let chain, header.entryChain != chain {
            note(file, offset: 52, sequence: header.firstSequence,
                 "entry chain \(hex(header.entryChain)) does not match the chain after event \(next - 1), \(hex(chain)) (a segment from another history?)")
        }
        var linkReported = false
        decoded.records.bytes.withUnsafeBytes { bytes in
            for index in decoded.records.indices {
                let sequence = header.firstSequence + UInt64(index)
                let tag = prepared.chainTag(index)
                if tag != decoded.chainTags[index] && !linkReported {
                    linkReported = true
                    note(file, sequence: sequence, "the chain breaks at this event: expected tag \(hex32(decoded.chainTags[index])), "
                         + "found \(hex32(tag)) (an event was changed, removed or reordered)")
                }
                if working != nil {
                    let record = UnsafeRawBufferPointer(rebasing: bytes[decoded.records.range(index)])
                    fold(record: record, sequence: sequence, chain: { prepared.chain(index) }, file: file)
                    continue
                }
                switch prepared.events[index] {
                case .success(let event): fold(event, chain: { prepared.chain(index) }, file: file)
                case .failure(let error):
                    note(file, sequence: sequence, "the event record does not decode: \(error.reason)")
                    stateKnown = false
                    next = sequence + 1
                }
            }
        }
        let running = decoded.records.isEmpty ? header.entryChain : prepared.chain(decoded.records.count - 1)
        if running != header.exitChain {
            note(file, offset: 84, sequence: header.lastSequence, "exit chain expected \(hex(header.exitChain)), recomputed \(hex(running))")
        }
        chain = header.exitChain
        exitChains[header.lastSequence] = header.exitChain
        next = header.lastSequence + 1
    }

    /// Applies one decoded event at `next` (state, timestamps, spend, checkpoints).
    mutating func fold(_ event: Event, chain: () -> [UInt8], file: String) {
        checkTime(event.timestampMilliseconds, event.sequence, file: file)
        if stateKnown {
            spend.record(event, in: state)
            do { try Ledger.apply(event.body, to: &state, keepingHistory: historyCheck != nil) } catch {
                note(file, sequence: event.sequence, "the event does not apply to the replayed state: \(error)")
                stateKnown = false
            }
        }
        advance(event.sequence, chain: chain)
    }

    /// Walks one event record at `next` in place (an audit that compares no history). While the state is
    /// unknown the record is not walked: its bytes are still covered by the chain.
    mutating func fold(record: UnsafeRawBufferPointer, sequence: UInt64, chain: () -> [UInt8], file: String) {
        let header: RecordHeader
        do { header = try RecordHeader(record) } catch {
            return undecodable(record: error, sequence: sequence, file: file)
        }
        guard header.sequence == sequence else {
            note(file, sequence: sequence, "the entry at this sequence holds event \(header.sequence)")
            stateKnown = false
            next = sequence + 1
            return
        }
        checkTime(header.timestampMilliseconds, sequence, file: file)
        if stateKnown {
            do { try working!.apply(record, header, charges: &tally) } catch {
                switch error {
                case .undecodable(let error): return undecodable(record: error, sequence: sequence, file: file)
                case .inconsistent(let error):
                    note(file, sequence: sequence, "the event does not apply to the replayed state: \(error)")
                    stateKnown = false
                }
            }
        }
        advance(sequence, chain: chain)
    }

    private mutating func undecodable(record error: EventCodecError, sequence: UInt64, file: String) {
        note(file, sequence: sequence, "the event record does not decode: \(error.reason)")
        stateKnown = false
        next = sequence + 1
    }

    private mutating func checkTime(_ timestamp: Int64, _ sequence: UInt64, file: String) {
        if timestamp < lastTimestamp {
            note(file, sequence: sequence, "timestamp \(timestamp) goes back from \(lastTimestamp)")
        }
        lastTimestamp = timestamp
    }

    /// After event `sequence`: counts it, compares the checkpoint there if any, reports progress.
    private mutating func advance(_ sequence: UInt64, chain: () -> [UInt8]) {
        next = sequence + 1
        eventsChecked += 1
        if let entry = checkpoints[sequence] {
            compare(entry, chain: chain())
        } else if eventsChecked % 65_536 == 0 {
            dropHistory()
        }
        if eventsChecked % 65_536 == 0 { progress?(eventsChecked) }
    }

    private mutating func compare(_ entry: ArchiveDirectory.CheckpointEntry, chain running: [UInt8]) {
        let file = archive.directory.filePath(entry.name)
        checkpointsChecked += 1
        dropHistory()
        let raw: CheckpointCodec.RawCheckpoint
        do { raw = try CheckpointCodec.decodePayload(try archive.directory.read(entry.name), file: file) } catch {
            return findings.append(AuditFinding(error))
        }
        if raw.sequence != entry.sequence {
            note(file, offset: 10, sequence: entry.sequence, "sequence expected \(entry.sequence), found \(raw.sequence)")
        }
        if raw.chain != running {
            note(file, offset: 26, sequence: entry.sequence, "chain expected \(hex(running)), found \(hex(raw.chain))")
        }
        if raw.timestamp != lastTimestamp {
            note(file, offset: 18, sequence: entry.sequence, "timestamp expected \(lastTimestamp), found \(raw.timestamp)")
        }
        guard stateKnown else { return }
        var state = state
        if let working {
            do { state = try working.state() } catch {
                note(file, sequence: entry.sequence, "the replayed state cannot be built: \(error)")
                stateKnown = false
                return
            }
        }
        // One working set has one encoding, so equal bytes settle it; only a mismatch pays for a decode and a diff.
        if raw.working == CheckpointCodec.payloadBytes(state) { return }
        let actual: LedgerState
        do { actual = try archive.checkpoint(entry).state } catch {
            return findings.append(AuditFinding(error))
        }
        let differences = Maintenance.differences(expected: state, actual: actual)
        for difference in differences {
            note(file, sequence: entry.sequence, "differs from the replay: \(difference)")
        }
        if differences.isEmpty {
            note(file, sequence: entry.sequence, "differs from the replay's encoding although every entry compares equal")
        }
    }

    /// Compares the history in `state` with the stored projections and drops it (checkpoints hold the
    /// working set only).
    mutating func dropHistory() {
        if stateKnown, historyCheck != nil {
            do { try historyCheck!.check(state) } catch {
                findings.append(AuditFinding(error))
                historyCheck = nil
            }
        }
        state.dropHistory()
    }

    /// The live log: its own chain from its base, its agreement with the archive where both hold an event,
    /// and the events after the archive's end, folded up to `through` (the projections' sequence).
    mutating func auditLive(_ log: any EventLog, through: UInt64?) throws(ArchiveError) {
        let bounds: LogBounds
        do { bounds = try log.bounds() } catch { throw ArchiveError(.io, file: "live log", "\(error)") }
        let last = min(through ?? bounds.lastSequence, bounds.lastSequence)
        let base = bounds.base
        if base.sequence >= next {
            if base.sequence > next - 1 {
                note("live log", sequence: next, "events \(next)...\(base.sequence) are in no segment and were trimmed from the live log")
            }
            lose(at: base.sequence + 1)
            chain = base.chain
        } else if let exit = exitChains[base.sequence], base.sequence > 0, exit != base.chain {
            note("live log", sequence: base.sequence, "trim base chain \(hex(base.chain)) differs from the segment's exit chain \(hex(exit))")
        }
        var liveChain = base.chain
        var sequence = base.sequence + 1
        while sequence <= last {
            // Undecoded: the part the archive already holds needs only its chain checked; records are
            // decoded where they are folded.
            let entries: [RawStoredEvent]
            do { entries = try log.rawEvents(from: sequence, limit: Replayer.liveChunkEvents) } catch {
                throw ArchiveError(.io, file: "live log", sequence: sequence, "\(error)")
            }
            for entry in entries where entry.sequence <= last {
                guard entry.sequence == sequence else {
                    note("live log", sequence: sequence, "event \(sequence) is missing (found \(entry.sequence))")
                    return
                }
                checkLive(entry, &liveChain)
                sequence += 1
            }
            if entries.isEmpty { return note("live log", sequence: sequence, "the log ends before its recorded last sequence \(last)") }
        }
    }

    private mutating func checkLive(_ entry: RawStoredEvent, _ liveChain: inout [UInt8]) {
        let sequence = entry.sequence
        if EventChain.link(liveChain, entry.record) != entry.chain {
            note("live log", sequence: sequence, "chain value does not link to event \(sequence - 1)")
        }
        liveChain = entry.chain
        if sequence < next {
            if let exit = exitChains[sequence], exit != entry.chain {
                note("live log", sequence: sequence, "differs from the archive: segment exit chain \(hex(exit)), live chain \(hex(entry.chain))")
            }
            return
        }
        if sequence == next, let chain, sequence > 1, exitChains[sequence - 1] != nil, EventChain.link(chain, entry.record) != entry.chain {
            note("live log", sequence: sequence, "does not link to the archive's last segment")
        }
        chain = entry.chain
        if working != nil {
            return entry.record.withUnsafeBytes { fold(record: $0, sequence: sequence, chain: { entry.chain }, file: "live log") }
        }
        let event: Event
        do { event = try EventCodec.decode(entry.record) } catch {
            note("live log", sequence: sequence, "the event record does not decode: \(error.reason)")
            stateKnown = false
            next = sequence + 1
            return
        }
        guard event.sequence == sequence else {
            note("live log", sequence: sequence, "the entry at this sequence holds event \(event.sequence)")
            stateKnown = false
            next = sequence + 1
            return
        }
        fold(event, chain: { entry.chain }, file: "live log")
    }

    /// Continues after a gap or an unreadable range: the state and chain there are unknown.
    private mutating func lose(at sequence: UInt64) {
        stateKnown = false
        chain = nil
        next = sequence
    }

    private mutating func note(_ file: String, offset: Int? = nil, sequence: UInt64?, _ message: String) {
        findings.append(AuditFinding(file: file, offset: offset, sequence: sequence, message))
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.prefix(8).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() + "…"
}

func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
