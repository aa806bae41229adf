import Foundation
import Testing
import TallyArchive
import TallyCore
import TallyStore

/// Sealing a random workload into several segments and replaying it: to the end from the archive alone,
/// and to many sampled instants (by time and by sequence) from archive plus live log.
@Suite struct RoundTripTests {
    @Test func replayOfSealedSegmentsEqualsTheLiveState() throws {
        let seed = UInt64.random(in: 1...UInt64.max)
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: seed)
        try workload.setup(store)
        let sealer = fixture.sealer(store, everyEvents: 500, checkpointEvery: 120)
        var samples: [Sample] = []
        var commands = 0
        var sampling = Workload(seed: seed &+ 1)
        try workload.run(store, fixture: fixture, count: 2_500) { time in
            commands += 1
            if commands % 700 == 0 { _ = try sealer.sealPending(nowMilliseconds: time) }
            if sampling.next(100) == 0 {
                samples.append(Sample(time: time, sequence: try store.lastSequence(), state: try store.storedState()))
                // The next command may not share this timestamp, or a replay "at this time" would include it.
                fixture.clock.advance(1)
            }
        }
        let sealed = try sealer.sealPending(nowMilliseconds: fixture.now, force: true)
        #expect(!sealed.sealed.isEmpty, "seed \(seed)")
        let last = try store.lastSequence()
        let (segments, checkpoints) = try fixture.archive.list()
        #expect(segments.count >= 6 && segments.last?.lastSequence == last, "seed \(seed)")
        // One at each segment's end and one every 120 events inside it.
        let inner = segments.reduce(0) { $0 + Int(($1.lastSequence - $1.firstSequence) / 120) }
        #expect(checkpoints.count == segments.count + inner && inner > 0, "seed \(seed)")
        #expect(Set(segments.map(\.lastSequence)).isSubset(of: Set(checkpoints.map(\.sequence))))
        let reader = ArchiveReader(directory: fixture.archive)
        let stored = try checkpoints.map { try reader.checkpoint($0) }
        // Checkpoints hold the whole working set and no history: settled reservations and idempotency
        // records are in the segments' events only.
        #expect(stored.allSatisfy { $0.state.idempotency.isEmpty && $0.state.reservations.values.allSatisfy { $0.status == .active } })
        #expect(stored.allSatisfy { $0.state.tenants.count == stored.last!.state.tenants.count }, "every checkpoint holds the whole working set")
        #expect(stored.last?.state.budgets == (try store.storedState()).budgets)

        let fromArchive = try Replayer(archive: fixture.archive, log: nil).replay(to: .sequence(last))
        #expect(fromArchive.state == (try store.storedState()), "seed \(seed)")
        #expect(fromArchive.checkpointSequence == 0, "the whole state is replayed from the first event")
        #expect(try Replayer(archive: fixture.archive, log: nil).replay(to: .sequence(last), scope: .workingSet).checkpointSequence == last,
                "balances start from the newest checkpoint")

        let audit = try Auditor(archive: fixture.archive, log: nil, stored: nil).run()
        #expect(audit.isClean && audit.checkpointsChecked == checkpoints.count, "seed \(seed): \(audit.findings)")

        let replayer = Replayer(archive: fixture.archive, log: store)
        #expect(samples.count > 5, "seed \(seed)")
        for sample in samples {
            #expect(try replayer.replay(to: .time(sample.time)).state == sample.state, "seed \(seed) time \(sample.time)")
            #expect(try replayer.replay(to: .sequence(sample.sequence)).state == sample.state, "seed \(seed) sequence \(sample.sequence)")
            let working = try replayer.replay(to: .time(sample.time), scope: .workingSet).state
            #expect(working.budgets == sample.state.budgets && working.tenants == sample.state.tenants, "seed \(seed) time \(sample.time)")
            #expect(working.reservations.filter { $0.value.status == .active } == sample.state.reservations.filter { $0.value.status == .active },
                    "seed \(seed) time \(sample.time)")
        }
        store.close()
    }

    @Test func liveEventsAfterTheLastSegmentAreReplayedFromTheLog() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 42)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 700)
        _ = try fixture.sealer(store, everyEvents: 300).sealPending(nowMilliseconds: fixture.now)
        let sealedThrough = try fixture.archive.list().segments.last?.lastSequence ?? 0
        let last = try store.lastSequence()
        #expect(sealedThrough > 0 && sealedThrough < last)
        let replay = try Replayer(archive: fixture.archive, log: store).replay(to: .sequence(last))
        #expect(replay.state == (try store.storedState()))
        #expect(replay.eventsApplied == last, "the whole state replays every event")
        let balances = try Replayer(archive: fixture.archive, log: store).replay(to: .sequence(last), scope: .workingSet)
        #expect(balances.eventsApplied == last - sealedThrough, "balances replay only the live events after the checkpoint")
        #expect(balances.state.budgets == replay.state.budgets)
        let distrusting = try Replayer(archive: fixture.archive, log: store).replay(to: .sequence(last), scope: .workingSet, fromFirstEvent: true)
        #expect(distrusting.eventsApplied == last && distrusting.checkpointSequence == 0 && distrusting.state == balances.state)
        #expect(throws: ArchiveError.self) { _ = try Replayer(archive: fixture.archive, log: nil).replay(to: .sequence(last)) }
        store.close()
    }

    /// Both segment formats give back every record byte for byte: 2 (string table, raw deflate), which is
    /// written, and 1 (preset dictionary, zlib stream), which archives sealed before it still hold.
    @Test(arguments: [UInt16(1), 2])
    func segmentRecordsRoundTripByteForByte(formatVersion: UInt16) throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 7)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 400)
        let events = try store.events(from: 1, limit: Int.max)
        var dictionary = SegmentDictionary()
        for stored in events { dictionary.add(stored.event.body) }
        let bytes = try SegmentCodec.encode(
            records: events.map(\.record), chains: events.map(\.chain), entryChain: EventChain.genesis, strings: dictionary,
            formatVersion: formatVersion)
        let decoded = try SegmentCodec.decode(bytes, file: "memory")
        #expect(decoded.header.formatVersion == formatVersion)
        #expect(Array(decoded.records) == events.map(\.record))
        #expect(decoded.chainTags == events.map { SegmentCodec.chainTag($0.chain) })
        #expect(decoded.header.exitChain == events.last?.chain)
        #expect(decoded.header.eventCount == UInt64(events.count))
        let live = events.reduce(0) { $0 + 8 + $1.chain.count + $1.record.count }
        #expect(bytes.count * 4 < live, "\(bytes.count) archived bytes for \(live) live bytes")
        if formatVersion == 2 {
            // The strings the events repeat are lifted: far less to inflate than format 1's payload.
            let formatOne = try SegmentCodec.checkedHeader(
                try SegmentCodec.encode(
                    records: events.map(\.record), chains: events.map(\.chain), entryChain: EventChain.genesis, strings: dictionary,
                    formatVersion: 1),
                file: "memory")
            #expect(decoded.header.payloadLength * 4 < formatOne.payloadLength * 3,
                    "payload \(decoded.header.payloadLength) bytes, format 1 \(formatOne.payloadLength)")
            #expect(decoded.header.dictionaryLength == 0)
        }
        store.close()
    }

    @Test func checkpointRoundTripsTheWorkingSet() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 11)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 300)
        let state = try store.storedState()
        let checkpoint = Checkpoint(sequence: try store.lastSequence(), timestampMilliseconds: fixture.now, chain: [UInt8](repeating: 7, count: 32), state: state)
        let bytes = try CheckpointCodec.encode(checkpoint)
        #expect(try CheckpointCodec.decode(bytes, file: "memory") == checkpoint)
        #expect(try CheckpointCodec.encode(CheckpointCodec.decode(bytes, file: "memory")) == bytes, "one state, one byte form")
        #expect(checkpoint.state.budgets == state.budgets && checkpoint.state.idempotency.isEmpty)
        #expect(checkpoint.state.reservations == state.reservations.filter { $0.value.status == .active }, "only the working set is kept")
        store.close()
    }
}
