import Foundation
import Testing
@testable import TallyCore
@testable import TallyStore

/// Rows of idempotency records that aged out are deleted with later batches (`IdempotencySweep`), and taken
/// out of the index: a server's table and memory do not grow with every request it ever answered, while
/// every record still kept replays as before, and `verify` accepts what was deleted and nothing more.
@Suite struct IdempotencySweepTests {
    static let workspace = "tenant:acme/workspace:w"
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 24 * hour
    static let margin = IdempotencySweep.marginMilliseconds

    @Test func theIndexForgetsRemovedRows() {
        let index = IdempotencyIndex(digest: { key in UInt64(key.key.count) })
        index.build { add in
            for (ordinal, key) in [(1, "a"), (2, "b"), (3, "c"), (4, "dd")] as [(UInt64, String)] {
                add(ordinal, IdempotencyKey(tenant: "acme", endpoint: .reserve, key: key))
            }
        }
        #expect(Array(index.candidates(1)) == [3, 2, 1])
        index.remove(digest: 1, ordinal: 3)  // the newest: the next one takes its place
        #expect(Array(index.candidates(1)) == [2, 1])
        index.remove(digest: 1, ordinal: 1)  // an older one
        #expect(Array(index.candidates(1)) == [2])
        index.remove(digest: 1, ordinal: 9)  // not indexed: nothing changes
        index.remove(digest: 2, ordinal: 2)  // another digest's row: nothing changes
        #expect(Array(index.candidates(1)) == [2] && Array(index.candidates(2)) == [4])
        index.remove(digest: 1, ordinal: 2)
        #expect(index.candidates(1).isEmpty)
        #expect(index.rows == 1)
        #expect(index.add(digest: 1) == 5, "ordinals are never handed out twice")
    }

    /// After the sweep deleted most of a large backlog, the index gives the memory back (dictionaries keep their
    /// room otherwise) and still finds every row left, old and new, with ordinals going on from where they were.
    @Test func theIndexShrinksOnceMostRowsAreRemoved() {
        let index = IdempotencyIndex(digest: { key in UInt64(key.key.dropFirst().count) })
        index.build { add in
            for ordinal in 1...20_000 as ClosedRange<UInt64> {
                // Digests 1...10,000, each on two rows: the first 10,000 rows and the second 10,000.
                add(ordinal, IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "k" + String(repeating: "x", count: Int((ordinal - 1) % 10_000 + 1))))
            }
        }
        let peak = index.capacity
        #expect(peak >= 20_000)
        for ordinal in 1...19_950 as ClosedRange<UInt64> { index.remove(digest: (ordinal - 1) % 10_000 + 1, ordinal: ordinal) }
        #expect(index.rows == 50)
        #expect(index.capacity * 8 <= peak, "the room shrinks with the rows: \(index.capacity) of \(peak)")
        for digest in 9_951...10_000 as ClosedRange<UInt64> { #expect(Array(index.candidates(digest)) == [digest + 10_000]) }
        #expect(index.candidates(1).isEmpty)
        #expect(index.add(digest: 7) == 20_001)
        #expect(Array(index.candidates(7)) == [20_001])
    }

    /// Reserve records are kept a day, a direct debit's a week: rows past their retention (and the margin) go
    /// with the next batch, the week-long row in front of them does not hold them back, and it goes when its
    /// own week is over. Everything kept replays, before and after a reopen.
    @Test func agedOutRowsGoWithLaterBatchesAndKeptOnesStillReplay() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000_000)])
        let start = fixture.clock.now
        for index in 0..<10 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        let debit = try store.executeBlocking(Self.debit("week")).get()
        for index in 10..<20 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        fixture.advance(2 * Self.hour)
        _ = try store.executeBlocking(StoreFixture.reserve("late", 10, key: "late")).get()

        // Aged out but within the margin: nothing is deleted yet.
        fixture.advance(Self.day - 2 * Self.hour + Self.margin / 2)
        _ = try store.executeBlocking(StoreFixture.reserve("t1", 10, key: "t1")).get()
        #expect(store.projections.records.rows == 23)

        fixture.advance(Self.margin)
        _ = try store.executeBlocking(StoreFixture.reserve("t2", 10, key: "t2")).get()
        #expect(store.projections.records.rows == 4, "the twenty day-long rows went with that batch")
        let fresh = try store.executeBlocking(StoreFixture.reserve("again", 10, key: "k3")).get()
        #expect(!fresh.isReplay, "a key whose record aged out is decided afresh")
        for reopen in [false, true] {
            if reopen {
                store.close()
                store = try fixture.open()
            }
            let replay = try store.executeBlocking(Self.debit("week")).get()
            #expect(replay.isReplay && replay.reply == debit.reply, "the week-long record, passed over, still answers")
            #expect(try store.executeBlocking(StoreFixture.reserve("other", 10, key: "late")).get().isReplay)
            #expect(try store.executeBlocking(StoreFixture.reserve("other", 10, key: "k3")).get().isReplay, "the new record of k3")
        }
        store.close()
        #expect(try Set(IdempotencyRowsTests.rows(fixture).map(\.key)) == ["week", "late", "t1", "t2", "k3"])
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
        let before = try Maintenance.verify(directory: fixture.directory, now: start + Self.day - Self.hour)
        #expect(before.findings.contains("idempotency record acme/reserve/k0: missing from the projection"),
                "verify accepts only records that aged out before its now: \(before.findings)")

        // A week on, the debit's row goes too (the sweep starts from the table's front after a reopen).
        store = try fixture.open()
        fixture.advance(7 * Self.day)
        _ = try store.executeBlocking(StoreFixture.reserve("t3", 10, key: "t3")).get()
        #expect(store.projections.records.rows == 1)
        let again = try store.executeBlocking(Self.debit("week")).get()
        #expect(!again.isReplay)
        store.close()
        #expect(try IdempotencyRowsTests.rows(fixture).map(\.key) == ["t3", "week"])
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
    }

    /// A batch deletes at most its share of rows; the batches after it go on where it stopped until none is due.
    @Test func aLongBacklogIsDeletedAFewRowsPerBatch() throws {
        let fixture = StoreFixture()
        var options = fixture.options(sweepEveryMilliseconds: 1_000 * Self.day)  // no expiry batches in between
        options.idempotencySweepRowsPerBatch = 4
        options.idempotencySweepWhileIdle = false  // only the batches delete
        let store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000_000)])
        for index in 0..<10 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        fixture.advance(Self.day + Self.margin + 1)
        var rows: [Int] = []
        for index in 0..<4 {
            _ = try store.executeBlocking(StoreFixture.reserve("t\(index)", 10, key: "t\(index)")).get()
            rows.append(store.projections.records.rows)
        }
        // Each batch adds its own row: 10 - 4 + 1, then 4 fewer and one more, then the last 2.
        #expect(rows == [7, 4, 3, 4])
        store.close()
        #expect(try IdempotencyRowsTests.rows(fixture).map(\.key) == ["t0", "t1", "t2", "t3"])
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
    }

    /// A batch of one command carries `minimumRowsPerBatch` deletes, not the thousand a full batch may.
    @Test func aLoneRequestCarriesAFewDozenDeletes() throws {
        let fixture = StoreFixture()
        var options = fixture.options(sweepEveryMilliseconds: 1_000 * Self.day)
        options.idempotencySweepWhileIdle = false
        let store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000_000)])
        for index in 0..<100 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        fixture.advance(Self.day + Self.margin + 1)
        _ = try store.executeBlocking(StoreFixture.reserve("t0", 10, key: "t0")).get()
        #expect(store.projections.records.rows == 100 - IdempotencySweep.minimumRowsPerBatch + 1)
        _ = try store.executeBlocking(StoreFixture.reserve("t1", 10, key: "t1")).get()
        #expect(store.projections.records.rows == 2)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
    }

    /// With no command coming, the writer deletes aged-out rows on its own, a chunk at a time, and stops at the first
    /// row still kept.
    @Test func anIdleServerDeletesAgedOutRowsOnItsOwn() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.idempotencySweepRowsPerBatch = 16  // several chunks
        let store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000_000)])
        for index in 0..<100 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        fixture.advance(2 * Self.hour)
        _ = try store.executeBlocking(StoreFixture.reserve("late", 10, key: "late")).get()
        fixture.advance(Self.day - 2 * Self.hour + Self.margin + 1)
        #expect(StoreFixture.eventually { store.projections.records.rows == 1 }, "rows left: \(store.projections.records.rows)")
        #expect(try store.executeBlocking(StoreFixture.reserve("other", 10, key: "late")).get().isReplay)
        store.close()
        #expect(try IdempotencyRowsTests.rows(fixture).map(\.key) == ["late"])
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
    }

    /// A rebuild writes the records the log makes less those that aged out by its `now` (as a server would delete
    /// them), and verify at that `now` agrees.
    @Test func aRebuildLeavesOutRecordsThatAgedOut() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000_000)])
        let start = fixture.clock.now
        for index in 0..<10 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10, key: "k\(index)")).get() }
        fixture.advance(23 * Self.hour)
        _ = try store.executeBlocking(StoreFixture.reserve("late", 10, key: "late")).get()
        store.close()

        #expect(try Maintenance.rebuild(directory: fixture.directory, now: start + 20 * Self.hour) > 0)
        #expect(try IdempotencyRowsTests.rows(fixture).count == 11, "nothing had aged out by then")
        let now = start + 30 * Self.hour
        #expect(try Maintenance.rebuild(directory: fixture.directory, now: now) > 0)
        #expect(try IdempotencyRowsTests.rows(fixture).map(\.key) == ["late"])
        #expect(try Maintenance.verify(directory: fixture.directory, now: now).isClean)
        let reopened = try fixture.open()
        fixture.advance(7 * Self.hour)  // the clock at `now`
        #expect(try reopened.executeBlocking(StoreFixture.reserve("other", 10, key: "late")).get().isReplay)
        #expect(!(try reopened.executeBlocking(StoreFixture.reserve("again", 10, key: "k1")).get().isReplay))
        reopened.close()
    }

    static func debit(_ key: String) -> Command {
        .recordDebit(DebitCommand(
            tenant: "acme", caller: .tenant(id: "acme", keyID: "k"), eventID: "event-\(key)",
            idempotency: IdempotencyStamp(key: key, payloadHash: Digest256(words: (7, 7, 7, 7))),
            subject: Subject(workspace: "w", agent: "a"), action: Action(kind: "tool", name: "search"),
            actual: Quantity(.usdMicrocents, Amount(5))))
    }
}
