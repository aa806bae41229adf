import Foundation
import Testing
import TallyArchive
import TallyCore
import TallyStore

/// A new data directory rebuilt from the archive alone opens, continues the chain and audits clean.
@Suite struct DisasterRecoveryTests {
    @Test func aDirectoryRestoredFromTheArchiveContinuesTheLedger() throws {
        let fixture = ArchiveFixture()
        var store = try fixture.open()
        var workload = Workload(seed: 51)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 400)
        _ = try fixture.sealer(store, everyEvents: 150).sealPending(nowMilliseconds: fixture.now, force: true)
        let state = try store.storedState()
        let last = try store.lastSequence()
        store.close()

        let restored = fixture.root + "/restored"
        let result = try ArchiveMaintenance.restore(archive: fixture.archive, to: restored)
        #expect(result.lastSequence == last && result.state.budgets == state.budgets)
        #expect(result.state.idempotency.isEmpty, "the history went to disk as the replay went, not into memory")
        #expect(throws: StoreError.self) { _ = try ArchiveMaintenance.restore(archive: fixture.archive, to: restored) }

        var options = StoreOptions()
        options.clock = { [clock = fixture.clock] in clock.now }
        store = try LedgerStore(directory: restored, options: options)
        #expect(try store.storedState() == state)
        #expect(try store.lastSequence() == last)
        try workload.run(store, fixture: fixture, count: 30)
        let after = try store.storedState()
        let newLast = try store.lastSequence()
        #expect(newLast > last)
        store.close()

        let copy = ArchiveDirectory(path: ArchiveDirectory.defaultPath(dataDirectory: restored))
        #expect(try ArchiveMaintenance.verify(dataDirectory: restored, archive: copy).isClean)
        let reader = try LogReader(directory: restored)
        let audit = try Auditor(archive: copy, log: reader, stored: reader).run()
        #expect(audit.isClean, "\(audit.findings)")
        #expect(audit.lastSequence == newLast)
        #expect(try Replayer(archive: copy, log: reader).replay(to: .sequence(newLast)).state == after)
    }

    @Test func aRestoreThatDidNotFinishIsNeverOpenedAsAStore() throws {
        let fixture = ArchiveFixture()
        var store = try fixture.open()
        var workload = Workload(seed: 52)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 200)
        let state = try store.storedState()
        store.close()
        #expect(state.reservations.values.contains { $0.status != .active })

        let interrupted = fixture.root + "/interrupted"
        do {
            let restoring = try RestoringStore(directory: interrupted)
            try restoring.writeHistory(state)
        }
        var options = StoreOptions()
        options.clock = { [clock = fixture.clock] in clock.now }
        let error = try #require(throws: StoreError.self) { store = try LedgerStore(directory: interrupted, options: options) }
        #expect(error.kind == .corrupt && "\(error)".contains("a restore that did not finish"))
    }
}
