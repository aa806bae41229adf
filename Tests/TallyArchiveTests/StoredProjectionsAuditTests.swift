import Foundation
import Testing
@testable import TallyArchive
import TallyCore
import TallyStore

/// The audit compares the live store's projections with the replay without loading the stored history:
/// the working set whole, settled reservations and idempotency records one batch at a time. Damage to
/// any of them is named.
@Suite struct StoredProjectionsAuditTests {
    /// The store as a reader sees it, with chosen damage.
    final class DamagedProjections: StoredProjections {
        let reader: LogReader
        var changedReservation: ReservationID?
        var missingIdempotency: IdempotencyKey?
        var extraSettled = 0
        var changedBudget: BudgetKey?

        init(_ reader: LogReader) { self.reader = reader }

        func storedWorkingSet() throws -> StoredWorkingSet {
            var stored = try reader.storedWorkingSet()
            stored.terminalReservations += extraSettled
            if let key = changedBudget { stored.state.budgets[key]!.allocated = Amount(stored.state.budgets[key]!.allocated.value + 1) }
            return stored
        }

        func storedReservations(_ ids: [ReservationID]) throws -> [[UInt8]?] {
            try zip(ids, reader.storedReservations(ids)).map { id, bytes in
                guard id == changedReservation, var bytes else { return bytes }
                bytes[bytes.count - 1] ^= 1
                return bytes
            }
        }

        func storedIdempotencyRecords(_ keys: [IdempotencyKey]) throws -> [IdempotencyRecord?] {
            try zip(keys, reader.storedIdempotencyRecords(keys)).map { key, record in key == missingIdempotency ? nil : record }
        }
    }

    struct SealedStore {
        let fixture = ArchiveFixture()
        let state: LedgerState

        init() throws {
            let store = try fixture.open()
            var workload = Workload(seed: 61)
            try workload.setup(store)
            try workload.run(store, fixture: fixture, count: 600)
            _ = try fixture.sealer(store, everyEvents: 150).sealPending(nowMilliseconds: fixture.now)
            // Some events stay live only: their history is compared as the audit folds the live log.
            try workload.run(store, fixture: fixture, count: 100)
            state = try store.storedState()
            store.close()
        }
    }

    @Test func anUndamagedStoreAuditsClean() throws {
        let sealed = try SealedStore()
        let reader = try LogReader(directory: sealed.fixture.dataDirectory)
        let report = try Auditor(archive: sealed.fixture.archive, log: reader, stored: DamagedProjections(reader)).run()
        #expect(report.isClean, "\(report.findings)")
    }

    /// The archive-only audit walks records in place and counts spend by number (`WorkingSetFold`,
    /// `SpendTally`); the audit with a store decodes every event. Both report exactly the spend that
    /// `SpendLedger.record` sums over the decoded events, and both are clean.
    @Test func spendIsTheSameWhetherRecordsAreWalkedOrDecoded() throws {
        let sealed = try SealedStore()
        let reader = try LogReader(directory: sealed.fixture.dataDirectory)
        let bucket: Int64 = 60_000
        let walked = try Auditor(archive: sealed.fixture.archive, log: reader, stored: nil).run(bucketMilliseconds: bucket)
        let decoded = try Auditor(archive: sealed.fixture.archive, log: reader, stored: reader).run(bucketMilliseconds: bucket)
        var expected = SpendLedger(bucketMilliseconds: bucket)
        var state = LedgerState()
        for stored in try reader.events(from: 1, limit: Int.max) {
            expected.record(stored.event, in: state)
            try Ledger.apply(stored.event.body, to: &state)
        }
        #expect(walked.isClean && decoded.isClean, "\(walked.findings) \(decoded.findings)")
        #expect(walked.eventsChecked == decoded.eventsChecked && walked.checkpointsChecked == decoded.checkpointsChecked)
        #expect(!expected.totals.isEmpty && Set(expected.totals.keys.map(\.grouping)).count == SpendLedger.Grouping.allCases.count)
        #expect(walked.spend.totals == expected.totals)
        #expect(decoded.spend.totals == expected.totals)
    }

    @Test func damagedStoredHistoryAndWorkingSetAreNamed() throws {
        let sealed = try SealedStore()
        let reader = try LogReader(directory: sealed.fixture.dataDirectory)
        let settled = try #require(sealed.state.reservations.values.filter { $0.status != .active }.map(\.id).sorted().first)
        let record = try #require(sealed.state.idempotency.keys.sorted { $0.key < $1.key }.first)
        let budget = try #require(sealed.state.budgets.keys.first)
        let damaged = DamagedProjections(reader)
        damaged.changedReservation = settled
        damaged.missingIdempotency = record
        damaged.extraSettled = 2
        damaged.changedBudget = budget

        let findings = try Auditor(archive: sealed.fixture.archive, log: reader, stored: damaged, now: sealed.fixture.now).run().findings.map(\.description)
        #expect(findings.count == 4, "\(findings)")
        #expect(findings.contains { $0.contains("projections") && $0.contains("reservation \(settled): differs from the replayed log") })
        #expect(findings.contains { $0.contains("idempotency record \(record.tenant)/") && $0.contains("\(record.key): missing from the projection") })
        #expect(findings.contains { $0.contains("reservations: 2 settled ones in the projection were not produced by the log") })
        #expect(findings.contains { $0.contains("budget \(budget.description): differs") })
    }

    @Test func aMissingCheckpointCostsOnlyReplayTime() throws {
        let sealed = try SealedStore()
        let checkpoints = try sealed.fixture.archive.list().checkpoints
        #expect(checkpoints.count >= 3)
        try sealed.fixture.archive.remove(checkpoints[2].name)
        let reader = try LogReader(directory: sealed.fixture.dataDirectory)
        let report = try Auditor(archive: sealed.fixture.archive, log: reader, stored: reader).run()
        #expect(report.isClean && report.checkpointsChecked == checkpoints.count - 1, "\(report.findings)")
        let replay = try Replayer(archive: sealed.fixture.archive, log: nil).replay(to: .sequence(checkpoints[2].sequence), scope: .workingSet)
        #expect(replay.checkpointSequence == checkpoints[1].sequence)
        #expect(replay.state.budgets == (try Replayer(archive: sealed.fixture.archive, log: nil).replay(to: .sequence(checkpoints[2].sequence))).state.budgets)
    }
}
