import Foundation
import Testing
@testable import TallyArchive
import TallyCore
import TallyStore

/// The sealer reads the live log in chunks, in place, and checks every event's chain value before anything is
/// written: a segment must never hold an event the log does not, and never skip one.
@Suite struct SealerLiveLogTests {
    /// A live log that hands out a store's events with one of them changed or left out on the way.
    struct AlteredLog: EventLog {
        let store: LedgerStore
        let sequence: UInt64
        let alter: @Sendable (inout [StoredEvent], Int) -> Void

        func events(from first: UInt64, limit: Int) throws -> [StoredEvent] {
            var events = try store.events(from: first, limit: limit)
            if let index = events.firstIndex(where: { $0.event.sequence == sequence }) { alter(&events, index) }
            return events
        }

        func bounds() throws -> LogBounds { try store.bounds() }
    }

    private static func history(seed: UInt64, events: Int) throws -> (ArchiveFixture, LedgerStore) {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: seed)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: events)
        return (fixture, store)
    }

    @Test func sealingInSmallReadsWritesTheSameFilesAsInOneRead() throws {
        let (fixture, store) = try Self.history(seed: 41, events: 400)
        defer { store.close() }
        var whole = fixture.configuration(everyEvents: 150, checkpointEvery: 40)
        whole.directory = fixture.root + "/whole"
        var small = whole
        small.directory = fixture.root + "/small"
        _ = try ArchiveSealer(log: store, configuration: whole).sealPending(nowMilliseconds: fixture.now)
        let sealer = ArchiveSealer(log: store, configuration: small)
        sealer.readChunkEvents = 7  // reads and inner checkpoints fall at different events
        _ = try sealer.sealPending(nowMilliseconds: fixture.now)
        let names = try FileManager.default.contentsOfDirectory(atPath: whole.directory).filter { !$0.hasSuffix(".lock") }.sorted()
        #expect(names.filter { $0.hasPrefix("segment-") }.count >= 2 && names.filter { $0.hasPrefix("checkpoint-") }.count >= 6, "\(names)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: small.directory).filter { !$0.hasSuffix(".lock") }.sorted() == names)
        for name in names {
            #expect(try ArchiveDirectory(path: small.directory).read(name) == ArchiveDirectory(path: whole.directory).read(name), "\(name)")
        }
        #expect(try Auditor(archive: ArchiveDirectory(path: small.directory), log: nil, stored: nil).run().isClean)
    }

    /// The sealer folds records in place (`WorkingSetFold`); its checkpoints must hold exactly what applying
    /// the decoded events reaches (`Ledger.apply(keepingHistory: false)`), both where it folded every event
    /// itself and where a fresh sealer went on from the archive's newest checkpoint.
    @Test func checkpointsHoldWhatApplyingTheEventsReaches() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        defer { store.close() }
        var workload = Workload(seed: 43)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 260)
        let configuration = fixture.configuration(everyEvents: 110, checkpointEvery: 45)
        _ = try ArchiveSealer(log: store, configuration: configuration).sealPending(nowMilliseconds: fixture.now)
        try workload.run(store, fixture: fixture, count: 240)
        _ = try ArchiveSealer(log: store, configuration: configuration).sealPending(nowMilliseconds: fixture.now, force: true)

        let archive = ArchiveDirectory(path: configuration.directory)
        let checkpoints = try archive.list().checkpoints
        let last = try store.bounds().lastSequence
        #expect(checkpoints.count >= 8 && checkpoints.last?.sequence == last, "\(checkpoints.map(\.sequence))")
        var state = LedgerState()
        var next: UInt64 = 1
        var withHolds = 0
        for entry in checkpoints {
            while next <= entry.sequence {
                for stored in try store.events(from: next, limit: Int(entry.sequence - next + 1)) {
                    try Ledger.apply(stored.event.body, to: &state, keepingHistory: false)
                    next = stored.event.sequence + 1
                }
            }
            let checkpoint = try CheckpointCodec.decode(try archive.read(entry.name), file: entry.name)
            #expect(checkpoint.state == state, "checkpoint \(entry.sequence)")
            if state.reservations.values.contains(where: { $0.status == .active }) { withHolds += 1 }
        }
        #expect(withHolds >= 2, "checkpoints taken while reservations were open: \(withHolds)")
    }

    @Test func aRecordThatNoLongerMatchesItsChainValueIsRefusedAndNothingIsSealed() throws {
        let (fixture, store) = try Self.history(seed: 42, events: 300)
        defer { store.close() }
        let log = AlteredLog(store: store, sequence: 123) { events, index in
            events[index].record[events[index].record.count - 1] ^= 0x01
        }
        let sealer = ArchiveSealer(log: log, configuration: fixture.configuration(everyEvents: 100))
        sealer.readChunkEvents = 16
        #expect {
            _ = try sealer.sealPending(nowMilliseconds: fixture.now)
        } throws: { error in
            (error as? ArchiveError)?.kind == .discontinuous && "\(error)".contains("chain is broken at event 123")
        }
        // The segment before the damage is sealed; nothing from the one holding it.
        #expect(try fixture.archive.list().segments.map(\.lastSequence) == [100])
    }

    /// A log whose event at `sequence` holds `record` instead, with a chain value that matches it: the damage
    /// the chain cannot show (written that way), which decoding must catch.
    private static func relinked(_ store: LedgerStore, at sequence: UInt64, record: @escaping @Sendable ([UInt8]) -> [UInt8]) throws -> AlteredLog {
        let previous = try #require(store.events(from: sequence - 1, limit: 1).first).chain
        return AlteredLog(store: store, sequence: sequence) { events, index in
            events[index].record = record(events[index].record)
            events[index].chain = EventChain.link(previous, events[index].record)
        }
    }

    @Test func aRecordThatDoesNotDecodeIsReportedAsCorruptAndNothingIsSealed() throws {
        let (fixture, store) = try Self.history(seed: 44, events: 300)
        defer { store.close() }
        let log = try Self.relinked(store, at: 150) { Array($0.prefix(5)) }
        let sealer = ArchiveSealer(log: log, configuration: fixture.configuration(everyEvents: 100))
        sealer.readChunkEvents = 16
        #expect {
            _ = try sealer.sealPending(nowMilliseconds: fixture.now)
        } throws: { error in
            let error = error as? ArchiveError
            return error?.kind == .corrupt && error?.sequence == 150 && "\(error!)".contains("does not decode")
        }
        #expect(try fixture.archive.list().segments.map(\.lastSequence) == [100])
    }

    @Test func aRecordOfAnotherSequenceIsReportedAsCorrupt() throws {
        let (fixture, store) = try Self.history(seed: 45, events: 300)
        defer { store.close() }
        let other = try #require(store.events(from: 160, limit: 1).first).record
        let log = try Self.relinked(store, at: 150) { _ in other }
        let sealer = ArchiveSealer(log: log, configuration: fixture.configuration(everyEvents: 100))
        #expect {
            _ = try sealer.sealPending(nowMilliseconds: fixture.now)
        } throws: { error in
            let error = error as? ArchiveError
            return error?.kind == .corrupt && "\(error!)".contains("holds event 160")
        }
        #expect(try fixture.archive.list().segments.map(\.lastSequence) == [100])
    }

    @Test func aMissingEventIsRefusedAndNothingIsSealed() throws {
        let (fixture, store) = try Self.history(seed: 43, events: 300)
        defer { store.close() }
        let log = AlteredLog(store: store, sequence: 57) { events, index in events.remove(at: index) }
        let sealer = ArchiveSealer(log: log, configuration: fixture.configuration(everyEvents: 100))
        sealer.readChunkEvents = 16
        #expect {
            _ = try sealer.sealPending(nowMilliseconds: fixture.now)
        } throws: { error in
            (error as? ArchiveError)?.kind == .discontinuous && "\(error)".contains("event 57 is missing")
        }
        #expect(try fixture.archive.list().segments.isEmpty)
    }

    @Test func theLogsInPlaceReadGivesWhatItsCopyingReadGives() throws {
        let (_, store) = try Self.history(seed: 44, events: 200)
        defer { store.close() }
        let copied = try store.rawEvents(from: 20, limit: 150)
        var visited: [RawStoredEvent] = []
        try store.visitRawEvents(from: 20, limit: 150) { sequence, chain, record in
            visited.append(RawStoredEvent(sequence: sequence, chain: Array(chain), record: Array(record)))
        }
        #expect(copied.count == 150 && copied.first?.sequence == 20)
        #expect(visited == copied)
    }
}
