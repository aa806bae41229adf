import TallyCore
import TallyStore

/// What one sealing pass did.
public struct SealOutcome: Sendable, Hashable {
    /// The segments written, in order (empty when nothing was due).
    public var sealed: [SegmentHeader] = []
    /// The live log's base after the pass, when it trimmed.
    public var trimmedThrough: UInt64?
}

/// Seals ranges of the live log into segments and checkpoints. Synchronous: the background `Archiver`
/// and `tally archive seal` both call `sealPending`, under the archive directory's lock.
///
/// It keeps the state as of the last sealed event between passes, so a running archiver folds each event
/// once; a fresh sealer loads it from the newest checkpoint. The state is folded from the records in place
/// (`WorkingSetFold`, which reaches what `Ledger.apply(keepingHistory: false)` does): checkpoints need the
/// working set only, and applying every decoded event was about a seventh of sealing.
///
/// Nothing is decoded into `Event`s on the way: each record is checked against its stored chain value, walked
/// in place by the fold (its structure; the fold also hands over the strings and digests a segment lifts),
/// and the new segment is read back and compared byte for byte before it is written. A segment holds the
/// log's bytes exactly, so full decoding is left to what reads them (replay, audit, restore); decoding here
/// as well was about a quarter of sealing.
public final class ArchiveSealer {
    public let configuration: ArchiverConfiguration
    let directory: ArchiveDirectory
    private let log: any EventLog
    private let trim: ((UInt64, [UInt8]) throws -> LogBase)?
    private var sealedState: (sequence: UInt64, timestamp: Int64, chain: [UInt8], fold: WorkingSetFold)?
    /// The log's last sequence and the time at the previous pass, to tell a busy ledger from a quiet one.
    private var previousPass: (lastSequence: UInt64, milliseconds: Int64)?
    /// How many events one read of the live log takes (tests make it small to cross many read boundaries).
    var readChunkEvents = 8_192

    /// `trim`, when given, removes events up to a sequence from the live log after checking the chain
    /// value after it (`LedgerStore.trimLogBlocking`); without it, `retainLiveEvents` is ignored.
    public init(log: any EventLog, configuration: ArchiverConfiguration, trim: ((UInt64, [UInt8]) throws -> LogBase)? = nil) {
        self.configuration = configuration
        self.directory = ArchiveDirectory(path: configuration.directory)
        self.log = log
        self.trim = trim
    }

    /// Seals every segment that is due at `nowMilliseconds` (all pending events when `force`), then trims.
    public func sealPending(nowMilliseconds: Int64, force: Bool = false) throws(ArchiveError) -> SealOutcome {
        try directory.create()
        let lock = try ArchiveLock(directory: directory)
        defer { withExtendedLifetime(lock) {} }
        try directory.removeLeftovers()
        var outcome = SealOutcome()
        var sealed = try currentSealedState()
        let bounds = try readBounds()
        guard bounds.base.sequence <= sealed.sequence else {
            throw ArchiveError(.discontinuous, file: directory.path, sequence: sealed.sequence + 1,
                               "the live log was trimmed through \(bounds.base.sequence) but the archive ends at \(sealed.sequence)")
        }
        var pending = bounds.lastSequence - sealed.sequence
        let busy = !force && isBusy(lastSequence: bounds.lastSequence, now: nowMilliseconds)
        // Kept for the pass only: a busy ledger's pass seals several segments in a row, a quiet one's one.
        var workspace = Workspace()
        while pending > 0 {
            let count: UInt64
            let oldEnough = force ? true : try isOldEnough(sealed.sequence + 1, now: nowMilliseconds)
            if pending >= configuration.everyEvents {
                // A burst's segments wait for a quieter pass, up to the backlog (`busyBacklogEvents`).
                if busy && pending < configuration.busyBacklogEvents && !oldEnough { break }
                count = configuration.everyEvents
            } else if oldEnough {
                count = pending
            } else {
                break
            }
            // Only the position is passed along: handing over `sealed` whole would keep a second reference to
            // the state and make the first mutation copy every dictionary.
            let header = try seal(from: (sealed.sequence, sealed.chain), count: count, fold: &sealed.fold, workspace: &workspace)
            sealed = (header.lastSequence, header.lastTimestampMilliseconds, header.exitChain, sealed.fold)
            outcome.sealed.append(header)
            pending -= count
        }
        // Kept only between passes: a second reference during the pass would make every mutation copy the state.
        sealedState = sealed
        outcome.trimmedThrough = try trimIfDue()
        return outcome
    }

    private func readBounds() throws(ArchiveError) -> LogBounds {
        do { return try log.bounds() } catch { throw ArchiveError(.io, file: "live log", "\(error)") }
    }

    /// The state after the last sealed event: kept from the previous pass, or replayed from the archive.
    private func currentSealedState() throws(ArchiveError) -> (sequence: UInt64, timestamp: Int64, chain: [UInt8], fold: WorkingSetFold) {
        let segments = try directory.list().segments
        let lastSealed = segments.last?.lastSequence ?? 0
        if let cached = sealedState, cached.sequence == lastSealed {
            sealedState = nil
            return cached
        }
        guard lastSealed > 0 else { return (0, 0, EventChain.genesis, WorkingSetFold()) }
        // A crash between a segment's rename and its checkpoint's leaves no checkpoint at the end: the replay
        // from the checkpoint before gives the working set to write it.
        let repair = !(try directory.list().checkpoints.contains { $0.sequence == lastSealed })
        let replay = try Replayer(archive: directory, log: nil).replay(to: .sequence(lastSealed), scope: .workingSet)
        guard let chain = replay.chain else {
            throw ArchiveError(.corrupt, file: directory.path, sequence: lastSealed, "no chain value is recorded after the last segment")
        }
        if repair {
            try writeCheckpoint(Checkpoint(sequence: lastSealed, timestampMilliseconds: replay.lastTimestampMilliseconds, chain: chain, state: replay.state))
        }
        do {
            return (lastSealed, replay.lastTimestampMilliseconds, chain, try WorkingSetFold(replay.state))
        } catch {
            throw ArchiveError(.corrupt, file: directory.path, sequence: lastSealed, "the archive's working set is inconsistent: \(error)")
        }
    }

    /// Whether events arrived at `busyEventsPerSecond` or faster since the previous pass (never on the first).
    private func isBusy(lastSequence: UInt64, now: Int64) -> Bool {
        defer { previousPass = (lastSequence, now) }
        guard let previous = previousPass, lastSequence > previous.lastSequence else { return false }
        let (delta, deltaOverflow) = now.subtractingReportingOverflow(previous.milliseconds)
        guard !deltaOverflow else { return false }
        let elapsed = UInt64(max(1, delta))
        let arrived = lastSequence - previous.lastSequence
        // arrived / (elapsed / 1000) >= rate, without dividing; a count this large is busy whatever the time.
        let (scaled, overflow) = arrived.multipliedReportingOverflow(by: 1_000)
        let (threshold, thresholdOverflow) = ArchiverConfiguration.busyEventsPerSecond.multipliedReportingOverflow(by: elapsed)
        return !thresholdOverflow && (overflow || scaled >= threshold)
    }

    private func isOldEnough(_ sequence: UInt64, now: Int64) throws(ArchiveError) -> Bool {
        guard let seconds = configuration.everySeconds else { return false }
        let events: [StoredEvent]
        do { events = try log.events(from: sequence, limit: 1) } catch { throw ArchiveError(.io, file: "live log", "\(error)") }
        guard let first = events.first else { return false }
        return now - first.event.timestampMilliseconds >= seconds * 1_000
    }

    /// Reads `count` events after `start` from the live log, checks their chain, folds them into `fold`,
    /// and writes the segment and then its checkpoints (inside it every `checkpointEveryEvents`, and at its
    /// end).
    private func seal(
        from start: (sequence: UInt64, chain: [UInt8]), count: UInt64, fold: inout WorkingSetFold, workspace: inout Workspace
    ) throws(ArchiveError) -> SegmentHeader {
        // The records and their stored chain values back to back, one buffer each for the whole segment: an
        // array per event (two, with the chain) cost an allocation each and, freed together at the end, put a
        // third of the archiver's time in the allocator. Each is the previous segment's, emptied.
        var records = workspace.records
        var storedChains = workspace.chains
        var hints = workspace.hints
        workspace.records = RecordBlock(reservingBytes: 0, records: 0)
        workspace.chains = []
        workspace.hints = SegmentLiftHints(capacity: 0)
        records.removeAll()
        storedChains.removeAll(keepingCapacity: true)
        hints.removeAll()
        records.reserve(bytes: Int(count) * Self.recordBytesGuess, records: Int(count))
        storedChains.reserveCapacity(32 * Int(count))
        hints.reserve(Int(count))
        defer {
            workspace.records = records
            workspace.chains = storedChains
            workspace.hints = hints
        }
        var linked: [UInt8] = []
        var chain = start.chain
        var next = start.sequence + 1
        let last = start.sequence + count
        let every = max(1, configuration.checkpointEveryEvents)
        // Checkpoints inside the segment are written after it, so none ever points past the archive's end.
        var inner: [Checkpoint] = []
        while next <= last {
            // Copied out of the log in one short read, then checked and folded outside it.
            let first = records.count
            do {
                try log.visitRawEvents(from: next, limit: min(readChunkEvents, Int(last - next + 1))) { sequence, chainValue, record in
                    let expected = next + UInt64(records.count - first)
                    guard sequence == expected else { throw Gap(sequence: expected) }
                    records.append(record)
                    storedChains.append(contentsOf: chainValue)
                }
            } catch let gap as Gap {
                throw ArchiveError(.discontinuous, file: "live log", sequence: gap.sequence, "event \(gap.sequence) is missing")
            } catch {
                throw ArchiveError(.io, file: "live log", sequence: next, "\(error)")
            }
            guard records.count > first else { throw ArchiveError(.discontinuous, file: "live log", sequence: next, "event \(next) is missing") }
            let read = records.count - first
            records.bytes.withUnsafeBytes { bytes in
                EventChain.links(from: chain, records: bytes, count: read, range: { records.range(first + $0) }, into: &linked)
            }
            for offset in 0..<read {
                let index = first + offset
                guard linked[(32 * offset)..<(32 * offset + 32)] == storedChains[(32 * index)..<(32 * index + 32)] else {
                    throw ArchiveError(.discontinuous, file: "live log", sequence: next,
                                       "the live log's chain is broken at event \(next); nothing was sealed")
                }
                // Walked in place, not decoded: the fold checks each record's structure, refuses one it cannot
                // walk, and hands `hints` its strings and digests on the way.
                var timestamp: Int64 = 0
                let failure: ArchiveError? = records.bytes.withUnsafeBytes { bytes in
                    let record = UnsafeRawBufferPointer(rebasing: bytes[records.range(index)])
                    let header: RecordHeader
                    do throws(EventCodecError) { header = try RecordHeader(record) } catch {
                        return ArchiveError(.corrupt, file: "live log", sequence: next, "the stored event does not decode: \(error.reason)")
                    }
                    guard header.sequence == next else {
                        return ArchiveError(.corrupt, file: "live log", sequence: next, "the log entry at key \(next) holds event \(header.sequence)")
                    }
                    timestamp = header.timestampMilliseconds
                    do throws(WorkingSetFold.Failure) { try fold.apply(record, header, charges: &hints) } catch {
                        switch error {
                        case .undecodable(let error):
                            return ArchiveError(.corrupt, file: "live log", sequence: next, "the stored event does not decode: \(error.reason)")
                        case .inconsistent(let error):
                            return ArchiveError(.corrupt, file: "live log", sequence: next, "the event does not apply: \(error)")
                        }
                    }
                    return nil
                }
                if let failure { throw failure }
                hints.endRecord()
                if (next - start.sequence) % every == 0 && next != last {
                    chain = Array(linked[(32 * offset)..<(32 * offset + 32)])
                    inner.append(Checkpoint(sequence: next, timestampMilliseconds: timestamp, chain: chain, state: try state(of: fold)))
                }
                next += 1
            }
            chain = Array(linked[(linked.count - 32)...])
        }
        let bytes = try SegmentCodec.encode(
            records: records, chains: storedChains, entryChain: start.chain, strings: hints.strings, hints: hints, workspace: &workspace.codec)
        defer { workspace.codec.file = bytes }
        try SegmentCodec.verify(bytes, holds: records, reusing: &workspace.codec.decoding)
        let header = try SegmentHeader.read(bytes, file: "new segment")
        try directory.writeAtomically(ArchiveDirectory.segmentName(first: header.firstSequence, last: header.lastSequence), bytes)
        for checkpoint in inner { try writeCheckpoint(checkpoint) }
        try writeCheckpoint(Checkpoint(sequence: last, timestampMilliseconds: header.lastTimestampMilliseconds, chain: chain, state: try state(of: fold)))
        return header
    }

    private func state(of fold: WorkingSetFold) throws(ArchiveError) -> LedgerState {
        do { return try fold.state() } catch {
            throw ArchiveError(.corrupt, file: "live log", "the working set cannot be built: \(error)")
        }
    }

    /// Memory one pass hands from one segment to the next: for 100,000 events the records alone are
    /// about 40 MB, and fresh memory costs a page fault for every 4 KiB it touches.
    private struct Workspace {
        var records = RecordBlock(reservingBytes: 0, records: 0)
        var chains: [UInt8] = []
        var hints = SegmentLiftHints(capacity: 0)
        var codec = SegmentCodec.Workspace()
    }

    /// The log skipped a sequence while it was read.
    private struct Gap: Error {
        var sequence: UInt64
    }

    /// Room reserved per event for the segment's records (lifecycle records are 300-600 bytes; the block grows
    /// past it if need be).
    private static let recordBytesGuess = 512

    private func writeCheckpoint(_ checkpoint: Checkpoint) throws(ArchiveError) {
        try directory.writeAtomically(ArchiveDirectory.checkpointName(sequence: checkpoint.sequence), try CheckpointCodec.encode(checkpoint))
    }

    /// Trims the live log through the newest segment end that leaves `retainLiveEvents` live and has a
    /// checkpoint, so that startup, verify and rebuild can start from that checkpoint.
    private func trimIfDue() throws(ArchiveError) -> UInt64? {
        guard let retain = configuration.retainLiveEvents, let trim else { return nil }
        let bounds = try readBounds()
        guard bounds.lastSequence > retain else { return nil }
        let limit = bounds.lastSequence - retain
        let (segments, checkpoints) = try directory.list()
        let checkpointed = Set(checkpoints.map(\.sequence))
        guard let entry = segments.last(where: { $0.lastSequence <= limit && checkpointed.contains($0.lastSequence) }),
              entry.lastSequence > bounds.base.sequence else { return nil }
        let header = try SegmentCodec.checkedHeader(try directory.read(entry.name), file: directory.filePath(entry.name))
        do {
            return try trim(header.lastSequence, header.exitChain).sequence
        } catch {
            throw ArchiveError(.io, file: "live log", sequence: header.lastSequence, "trimming: \(error)")
        }
    }
}
