import Foundation
import Testing
import Synchronization
@testable import TallyCore
@testable import TallyStore

/// Idempotency records are rows in the order they were written, found through an index in memory
/// (`IdempotencyIndex`): every replay must find its record whatever the digests do, after a reopen too, a key
/// used again after its record aged out answers from its newest row, and a format 2 table (records under their
/// keys) is converted at open.
@Suite struct IdempotencyRowsTests {
    static let workspace = "tenant:acme/workspace:w"

    @Test func theIndexNamesEveryRowOfADigestNewestFirst() {
        let index = IdempotencyIndex(digest: { key in UInt64(key.key.count) })
        index.build { add in
            add(5, IdempotencyKey(tenant: "acme", endpoint: .reserve, key: ""))
            add(2, IdempotencyKey(tenant: "acme", endpoint: .decide, key: ""))
        }
        #expect(Array(index.candidates(0)) == [5, 2])
        #expect(index.candidates(1).isEmpty)
        // New rows follow the table's last one, whatever order the scan met them in.
        #expect(index.add(digest: 0) == 6)
        #expect(index.add(digest: 7) == 7)
        #expect(Array(index.candidates(0)) == [6, 5, 2])
        #expect(Array(index.candidates(7)) == [7])
        #expect(index.rows == 4)
    }

    @Test func newRecordsAreAppendedAsRowsInTheOrderTheyWereWritten() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        for index in 0..<50 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k-\(49 - index)")).get() }
        store.close()
        let rows = try Self.rows(fixture)
        #expect(rows.map(\.ordinal) == Array(1...50))
        #expect(rows.map(\.key) == (0..<50).map { "k-\(49 - $0)" }, "written in the order of the commands, not of their keys")
    }

    /// With every key on one digest, each lookup must read and compare the full keys of all the rows.
    @Test func everyKeyOnOneDigestStillFindsItsOwnRecord() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.idempotencyDigestForTests = { _ in 42 }
        var store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        var originals: [ReserveReply] = []
        for index in 0..<30 {
            let decision = try store.executeBlocking(StoreFixture.reserve("r\(index)", Int64(10 + index), key: "k\(index)")).get()
            guard case .reserved(let reply, _) = decision.reply else { Issue.record("expected a reservation"); return }
            originals.append(reply)
        }
        for reopen in [false, true] {
            if reopen {
                store.close()
                store = try fixture.open(options)
            }
            for index in 0..<30 {
                let again = try store.executeBlocking(StoreFixture.reserve("other\(index)", Int64(10 + index), key: "k\(index)")).get()
                #expect(again.isReplay)
                guard case .reserved(let replayed, _) = again.reply else { Issue.record("expected a reservation"); return }
                #expect(replayed == originals[index])
                #expect(try store.executeBlocking(StoreFixture.reserve("x\(index)", 999, key: "k\(index)")).errorCode == .idempotencyMismatch)
            }
            #expect(try store.idempotencyRecord(IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "k7")) != nil)
            #expect(try store.idempotencyRecord(IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "k30")) == nil)
        }
        #expect(try store.lastSequence() == 2 + 30, "no replay and no mismatch wrote an event")
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// Keys are equal as the ledger's state compares them (`String`s: canonically equivalent text is one key),
    /// whether the record is still in the writer's memory or read back from its row.
    @Test func keysThatAreEqualStringsFindOneRecordInMemoryAndInTheTable() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        let composed = "caf\u{e9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
        _ = try store.executeBlocking(StoreFixture.reserve("first", 100, key: composed)).get()
        for reopen in [false, true] {
            if reopen {
                store.close()
                store = try fixture.open()
            }
            let again = try store.executeBlocking(StoreFixture.reserve("second", 100, key: decomposed)).get()
            #expect(again.isReplay, "reopened: \(reopen)")
            guard case .reserved(let reply, _) = again.reply else { Issue.record("expected a reservation"); return }
            #expect(reply.reservationID == "first")
        }
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    @Test func aKeyUsedAgainAfterItsRecordAgedOutAnswersFromItsNewestRow() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        _ = try store.executeBlocking(StoreFixture.reserve("first", 100, key: "again")).get()
        _ = try store.executeBlocking(StoreFixture.commit("first", 50)).get()
        // Past the reserve record's retention (24 hours here), not past the margin after which the sweep deletes it.
        fixture.advance(24 * 3_600_000 + IdempotencySweep.marginMilliseconds / 2)
        let fresh = try store.executeBlocking(StoreFixture.reserve("second", 200, key: "again")).get()
        #expect(!fresh.isReplay)
        for reopen in [false, true] {
            if reopen {
                store.close()
                store = try fixture.open()
            }
            let replay = try store.executeBlocking(StoreFixture.reserve("third", 200, key: "again")).get()
            #expect(replay.isReplay)
            guard case .reserved(let reply, _) = replay.reply else { Issue.record("expected a reservation"); return }
            #expect(reply.reservationID == "second")
            guard case .reserve(let stored)? = try store.idempotencyRecord(IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "again"))?.reply else {
                Issue.record("expected the reserve record")
                return
            }
            #expect(stored.reservationID == "second")
        }
        store.close()
        #expect(try Self.rows(fixture).filter { $0.key == "again" }.count == 2, "the aged-out row stays, the newer one answers")
        #expect(try Maintenance.verify(directory: fixture.directory).isClean, "one record per key, as the log says")
    }

    @Test func aTableOfFormatTwoIsConvertedAtOpen() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        var originals: [String: ReserveReply] = [:]
        for index in 0..<20 {
            let decision = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get()
            guard case .reserved(let reply, _) = decision.reply else { Issue.record("expected a reservation"); return }
            originals["k\(index)"] = reply
        }
        store.close()
        try Self.backToFormatTwo(fixture)
        #expect(throws: StoreError.self) { try Maintenance.verify(directory: fixture.directory) }
        let said = LinesSaid()
        var options = fixture.options()
        options.openProgress = { said.add($0) }
        store = try fixture.open(options)
        #expect(said.lines.contains { $0.contains("converted 20 idempotency records") })
        for index in 0..<20 {
            let again = try store.executeBlocking(StoreFixture.reserve("other\(index)", 10, key: "k\(index)")).get()
            #expect(again.isReplay)
            guard case .reserved(let replayed, _) = again.reply else { Issue.record("expected a reservation"); return }
            #expect(replayed == originals["k\(index)"])
        }
        _ = try store.executeBlocking(StoreFixture.reserve("new", 10, key: "k-new")).get()
        store.close()
        let rows = try Self.rows(fixture)
        #expect(rows.count == 21 && rows.map(\.ordinal) == Array(1...21))
        #expect(rows.last?.key == "k-new")
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// Projections of format 2 that the machine may have damaged (a marker from another boot) are rebuilt from
    /// the log in format 3, not converted.
    @Test func aDamagedTableOfFormatTwoIsRebuiltNotConverted() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        for index in 0..<5 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        store.close()
        try Self.backToFormatTwo(fixture)
        try Array("00000000-another-boot\n".utf8).withUnsafeBytes { bytes in
            try Data(bytes).write(to: URL(fileURLWithPath: fixture.directory + "/" + StoreLayout.unsyncedMarker))
        }
        let said = LinesSaid()
        var options = fixture.options()
        options.openProgress = { said.add($0) }
        store = try fixture.open(options)
        #expect(!said.lines.contains { $0.contains("convert") }, "\(said.lines)")
        #expect(said.lines.first?.hasPrefix("rebuilding the projections from the log") == true, "\(said.lines)")
        #expect(try store.executeBlocking(StoreFixture.reserve("other", 10, key: "k3")).get().isReplay)
        store.close()
        #expect(try Self.rows(fixture).map(\.ordinal) == Array(1...5))
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// Rewrites the idempotency table as format 2 had it: each record under its key, the projections' format 2.
    static func backToFormatTwo(_ fixture: StoreFixture) throws {
        let environment = try projectionsEnvironment(fixture)
        defer { environment.close() }
        let idempotency = environment.database(StoreLayout.idempotency)
        try environment.write { txn in
            var entries: [([UInt8], [UInt8])] = []
            try txn.scan(idempotency) { key, value in
                entries.append((key, value))
                return true
            }
            for (key, value) in entries {
                let (stored, _) = try Projections.idempotencyEntry(value)
                try txn.delete(idempotency, key)
                try txn.put(idempotency, StoreLayout.idempotencyKey(stored), value)
            }
            try txn.put(environment.database(StoreLayout.meta), StoreLayout.metaFormat,
                        StoreLayout.bigEndian(UInt64(StoreLayout.projectionsFormatWithKeyOrderedRecords)))
        }
    }

    /// The projections' environment of a closed store, opened beside it.
    static func projectionsEnvironment(_ fixture: StoreFixture) throws -> LMDBEnvironment {
        try LMDBEnvironment(directory: fixture.directory + "/projections", mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
    }

    /// The rows of the idempotency table: ordinal and the key they hold.
    static func rows(_ fixture: StoreFixture) throws -> [(ordinal: UInt64, key: String)] {
        let environment = try projectionsEnvironment(fixture)
        defer { environment.close() }
        var rows: [(ordinal: UInt64, key: String)] = []
        try environment.read { txn in
            try txn.scan(environment.database(StoreLayout.idempotency)) { key, value in
                rows.append((try #require(StoreLayout.ordinal(fromRowKey: key)), try Projections.idempotencyEntry(value).0.key))
                return true
            }
        }
        return rows
    }
}

/// Lines a store said while opening.
final class LinesSaid: Sendable {
    private let said = Mutex<[String]>([])
    func add(_ line: String) { said.withLock { $0.append(line) } }
    var lines: [String] { said.withLock { $0 } }
}
