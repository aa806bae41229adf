import Foundation
import Synchronization
import Testing
@testable import TallyCore
@testable import TallyStore

/// The flusher commits each transaction with one flush of the log and answers a batch only once a later
/// flush (the next commit's, or one of the log on its own) has carried its meta page to the disk.
@Suite struct DeferredMetaSyncTests {
    static let workspace = "tenant:acme/workspace:w"
    static let key = BudgetKey(try! ScopePath(parsing: workspace), .usdMicrocents)

    /// Whether each reservation was acknowledged, by id.
    private final class Outcomes: Sendable {
        let acknowledged = Mutex<[String: Bool]>([:])
    }

    /// Submits `count` reservations while the writer is held, so that they form one batch.
    private static func submitBatch(_ store: LedgerStore, prefix: String, count: Int, into outcomes: Outcomes, _ answered: DispatchGroup) {
        store.withWriterHeld {
            for index in 0..<count {
                let id = "\(prefix)\(index)"
                answered.enter()
                store.submit(StoreFixture.reserve(id, 10)) { outcome in
                    let acknowledged = (try? outcome.get().get()) != nil
                    outcomes.acknowledged.withLock { $0[id] = acknowledged }
                    answered.leave()
                }
            }
        }
    }

    /// Batch A is followed at once by batch B's commit; every flush of the log on its own fails. A is
    /// answered (B's commit made it durable), B is not (its own flush failed): the answer of a batch waits
    /// for a flush after its commit, and a following commit is such a flush.
    @Test func aBatchIsAnsweredByTheNextCommitsFlushAndOnlyThen() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.batchCommandsMax = 5  // A and B cannot share a transaction
        let store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let outcomes = Outcomes()
        let answered = DispatchGroup()
        let syncs = Mutex(0)
        let before = store.statistics.flushes
        try store.withFlusherHeld {
            Self.submitBatch(store, prefix: "a", count: 5, into: outcomes, answered)
            try #require(StoreFixture.eventually { store.batchesWaitingForTheFlusher == 1 })
            Self.submitBatch(store, prefix: "b", count: 5, into: outcomes, answered)
            try #require(StoreFixture.eventually { store.batchesWaitingForTheFlusher == 2 })
            store.injectSyncFailures {
                syncs.withLock { $0 += 1 }
                return StoreError(.io, "injected flush failure")
            }
        }
        answered.wait()
        store.injectSyncFailures(nil)
        let results = outcomes.acknowledged.withLock { $0 }
        #expect((0..<5).allSatisfy { results["a\($0)"] == true }, "A is durable once B's commit returned: \(results)")
        #expect((0..<5).allSatisfy { results["b\($0)"] == false }, "B waited for its own flush, which failed: \(results)")
        #expect(syncs.withLock { $0 } == 1, "one lone flush, for B")
        #expect(store.statistics.flushes - before == 2, "two transactions")
        // B's callers got an error; its events may be in the log. Retrying with the same idempotency keys answers
        // from the log: each reservation exists once, and the budget holds exactly the ten.
        for index in 0..<5 {
            #expect(try store.executeBlocking(StoreFixture.reserve("b\(index)", 10)).errorCode == nil)
        }
        let reserved = try StoreFixture.allEvents(store).compactMap { stored -> String? in
            if case .reserved(let event) = stored.event.body { return event.reservationID }
            return nil
        }
        #expect(reserved.sorted() == ((0..<5).map { "a\($0)" } + (0..<5).map { "b\($0)" }).sorted())
        #expect(try store.budget(Self.key)?.reserved == 100)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// A lone request (flushed on the thread that submits it) waits for a second flush too: when it fails,
    /// the caller gets the error, and the store goes on with what its log holds.
    @Test func aLoneRequestWaitsForTheFlushAfterItsCommit() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        store.injectSyncFailures { StoreError(.io, "injected flush failure") }
        #expect(throws: StoreError.self, "answered only after the flush, with its error") {
            try store.executeBlocking(StoreFixture.reserve("lone", 10))
        }
        store.injectSyncFailures(nil)
        #expect(try store.executeBlocking(StoreFixture.reserve("lone", 10)).errorCode == nil, "the retry answers")
        #expect(try store.executeBlocking(StoreFixture.reserve("next", 5)).errorCode == nil)
        #expect(try store.budget(Self.key)?.reserved == 15)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// The log's environment commits without flushing its meta page only through the flusher: every other
    /// write (setup, trims, upgrades) is durable when it returns, and so is every acknowledged batch after a
    /// close and reopen.
    @Test func everyAnsweredBatchIsInTheLogAfterReopening() throws {
        let fixture = StoreFixture()
        let first = try fixture.open()
        try StoreFixture.setup(first, budgets: [(Self.workspace, 1_000_000)])
        let acknowledged = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<40 {
                let id = "c\(thread)-\(index)"
                if (try? first.executeBlocking(StoreFixture.reserve(id, 1)).get()) != nil {
                    acknowledged.withLock { $0.append(id) }
                }
            }
        }
        #expect(acknowledged.withLock { $0.count } == 320)
        first.close()
        let store = try fixture.open()
        defer { store.close() }
        let reserved = try StoreFixture.allEvents(store).compactMap { stored -> String? in
            if case .reserved(let event) = stored.event.body { return event.reservationID }
            return nil
        }
        #expect(reserved.sorted() == acknowledged.withLock { $0 }.sorted())
        #expect(try store.budget(Self.key)?.reserved == 320)
    }
}
