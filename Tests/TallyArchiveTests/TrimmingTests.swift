import Foundation
import Testing
import TallyArchive
import TallyCore
import TallyStore

/// After sealing and trimming the live log, a restart, verify, rebuild, replay and audit all still work.
@Suite struct TrimmingTests {
    @Test func restartVerifyRebuildAndReplayWorkAfterATrim() throws {
        let fixture = ArchiveFixture()
        var store = try fixture.open()
        var workload = Workload(seed: 21)
        try workload.setup(store)
        var early: Sample?
        var commands = 0
        try workload.run(store, fixture: fixture, count: 700) { time in
            commands += 1
            if commands == 150 {
                early = Sample(time: time, sequence: try store.lastSequence(), state: try store.storedState())
                fixture.clock.advance(1)
            }
        }
        let outcome = try fixture.sealer(store, everyEvents: 200, retain: 50).sealPending(nowMilliseconds: fixture.now)
        let base = try store.bounds().base
        #expect(outcome.trimmedThrough == base.sequence && base.sequence >= 200)
        #expect(try store.lastSequence() - base.sequence >= 50)
        #expect(try store.events(from: 1, limit: 1).first?.event.sequence == base.sequence + 1)
        store.close()

        store = try fixture.open()
        try workload.run(store, fixture: fixture, count: 100)
        let state = try store.storedState()
        let last = try store.lastSequence()
        store.close()

        #expect(throws: StoreError.self) { _ = try Maintenance.verify(directory: fixture.dataDirectory) }
        let report = try ArchiveMaintenance.verify(dataDirectory: fixture.dataDirectory, archive: fixture.archive)
        #expect(report.isClean, "\(report.findings)")
        #expect(report.eventsChecked == last - base.sequence)
        #expect(try ArchiveMaintenance.rebuild(dataDirectory: fixture.dataDirectory, archive: fixture.archive) == last)

        let reader = try LogReader(directory: fixture.dataDirectory)
        #expect(try reader.storedState().state == state)
        let replayer = Replayer(archive: fixture.archive, log: reader)
        let sample = try #require(early)
        #expect(sample.sequence < base.sequence)
        #expect(try replayer.replay(to: .time(sample.time)).state == sample.state)
        #expect(try replayer.replay(to: .sequence(last)).state == state)
        let audit = try Auditor(archive: fixture.archive, log: reader, stored: reader).run()
        #expect(audit.isClean, "\(audit.findings)")
        #expect(audit.lastSequence == last)
    }

    @Test func aLogTrimmedToNothingStillOpensAndContinues() throws {
        let fixture = ArchiveFixture()
        var store = try fixture.open()
        var workload = Workload(seed: 22)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 150)
        let last = try store.lastSequence()
        let outcome = try fixture.sealer(store, everyEvents: 1_000, retain: 0).sealPending(nowMilliseconds: fixture.now, force: true)
        #expect(outcome.trimmedThrough == last)
        #expect(try store.events(from: 1, limit: 10).isEmpty)
        store.close()

        store = try fixture.open()
        #expect(try store.lastSequence() == last)
        try workload.run(store, fixture: fixture, count: 30)
        #expect(try store.lastSequence() > last)
        store.close()
        #expect(try ArchiveMaintenance.verify(dataDirectory: fixture.dataDirectory, archive: fixture.archive).isClean)
    }

    @Test func aTrimWhoseChainDoesNotMatchTheLogRemovesNothing() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 23)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 50)
        #expect(throws: StoreError.self) { _ = try store.trimLogBlocking(through: 20, chain: [UInt8](repeating: 1, count: 32)) }
        #expect(try store.bounds().base.sequence == 0)
        #expect(try store.events(from: 1, limit: 1).first?.event.sequence == 1)
        store.close()
    }

    @Test func onlyAnExclusiveReaderTrimsAndOnlyWhenNoStoreHoldsTheDirectory() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 24)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 40)
        let chain = try #require(try store.events(from: 10, limit: 1).first?.chain)
        #expect(throws: StoreError.self) { _ = try LogReader(directory: fixture.dataDirectory, exclusive: true) }
        store.close()
        do {
            // LMDB wants one environment per directory and process: this one is closed before the next opens.
            let shared = try LogReader(directory: fixture.dataDirectory)
            #expect(throws: StoreError.self) { _ = try shared.trimLog(through: 10, chain: chain) }
        }
        let exclusive = try LogReader(directory: fixture.dataDirectory, exclusive: true)
        #expect(try exclusive.trimLog(through: 10, chain: chain) == LogBase(sequence: 10, chain: chain))
        #expect(try exclusive.events(from: 1, limit: 1).first?.event.sequence == 11)
    }
}
