import Foundation
import Synchronization
import Testing
@testable import TallyCore
@testable import TallyStore

/// A lone command processed on the submitting thread with an `afterAnswer` scheduler is answered once its
/// event is durable; its projections' transaction is left to the work it schedules, and whoever needs the
/// projections first (a read, the writer thread with a command waiting, closing the store) writes them.
@Suite struct AnswerBeforeProjectionsTests {
    static let workspace = "tenant:acme/workspace:w"
    static let key = BudgetKey(try! ScopePath(parsing: workspace), .usdMicrocents)

    /// What happened, in order: "answered <id>" from the completions, "projections" from the step the store
    /// runs right before each projections' transaction written after an answer ("projections on the test's
    /// thread" when that step ran on the thread that made the journal).
    private final class Journal: Sendable {
        let entries = Mutex<[String]>([])
        let thread = pthread_self()
        func projections() { add(pthread_equal(pthread_self(), thread) != 0 ? "projections on the test's thread" : "projections") }
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// Work the store scheduled through `afterAnswer`, kept until the test runs it (or never).
    private final class Scheduled: Sendable {
        let work = Mutex<[@Sendable () -> Void]>([])
        var afterAnswer: LedgerStore.AfterAnswer { { work in self.work.withLock { $0.append(work) } } }
        var count: Int { work.withLock { $0.count } }
        func runAll() { for item in work.withLock({ $0 }) { item() } }
    }

    /// A store with a budget of 10,000, idle and quiet long enough that the next command runs on the
    /// submitting thread (`Writer.submit`).
    private static func idleStore(_ fixture: StoreFixture, journal: Journal) throws -> LedgerStore {
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(workspace, 10_000)])
        store.injectProjectionsFailures { journal.projections(); return nil }
        Thread.sleep(forTimeInterval: 0.05)
        return store
    }

    private static func submit(_ store: LedgerStore, _ command: Command, _ id: String, _ journal: Journal, _ scheduled: Scheduled) {
        store.submit(command, afterAnswer: scheduled.afterAnswer) { outcome in
            journal.add((try? outcome.get().get()) != nil ? "answered \(id)" : "failed \(id)")
        }
    }

    @Test func aReadRightAfterTheAnswerWritesTheProjectionsItself() throws {
        let fixture = StoreFixture()
        let journal = Journal()
        let store = try Self.idleStore(fixture, journal: journal)
        defer { store.close() }
        let scheduled = Scheduled()
        Self.submit(store, StoreFixture.reserve("r1", 100), "r1", journal, scheduled)
        // Answered on this thread before `submit` returned; the projections wait for the scheduled work.
        #expect(journal.all == ["answered r1"])
        #expect(scheduled.count == 1)
        // A read on the thread that would run that work must not wait for it (nor for the writer thread, which
        // would take them on its next round): it writes them itself.
        #expect(try store.budget(Self.key)?.reserved == 100)
        #expect(try store.reservation("r1")?.status == .active)
        #expect(journal.all == ["answered r1", "projections on the test's thread"])
        scheduled.runAll()  // nothing left to do
        #expect(journal.all == ["answered r1", "projections on the test's thread"])
        // The writer's work has ended: the next lone command runs here again, and is answered the same way.
        Thread.sleep(forTimeInterval: 0.05)
        Self.submit(store, StoreFixture.commit("r1", 60), "c1", journal, scheduled)
        #expect(journal.all.count == 3 && journal.all.last == "answered c1")
        scheduled.runAll()
        #expect(journal.all.count == 4 && journal.all.last == "projections on the test's thread")
        let budget = try store.budget(Self.key)
        #expect(budget?.reserved == 0 && budget?.spent == 60)
    }

    @Test func theScheduledWorkWritesTheProjectionsAndFreesTheWriter() throws {
        let fixture = StoreFixture()
        let journal = Journal()
        let store = try Self.idleStore(fixture, journal: journal)
        defer { store.close() }
        let scheduled = Scheduled()
        Self.submit(store, StoreFixture.reserve("r1", 100), "r1", journal, scheduled)
        scheduled.runAll()
        #expect(journal.all == ["answered r1", "projections on the test's thread"])
        #expect(try store.reservation("r1")?.status == .active)
        #expect(try store.executeBlocking(StoreFixture.reserve("r2", 50)).errorCode == nil)
        #expect(try store.budget(Self.key)?.reserved == 150)
    }

    /// The scheduled work never runs (its thread is gone): the next command, queued for the writer thread,
    /// makes that thread write the projections first and then decide it on top of them.
    @Test func aCommandArrivingMeanwhileHasTheWriterThreadWriteThemFirst() throws {
        let fixture = StoreFixture()
        let journal = Journal()
        let store = try Self.idleStore(fixture, journal: journal)
        defer { store.close() }
        let dropped = Scheduled()
        Self.submit(store, StoreFixture.reserve("r1", 100), "r1", journal, dropped)
        #expect(journal.all == ["answered r1"])
        // Decided on top of r1: 9,900 left, so 9,950 does not fit and 9,900 does.
        #expect(try store.executeBlocking(StoreFixture.reserve("r2", 9_950)).errorCode == .budgetExceeded)
        #expect(try store.executeBlocking(StoreFixture.reserve("r3", 9_900)).errorCode == nil)
        #expect(journal.all.prefix(2) == ["answered r1", "projections"], "written by the writer thread")
        #expect(try store.budget(Self.key)?.reserved == 10_000)
    }

    /// The projections' transaction fails after the answer (the log holds the change): the log is replayed
    /// into the projections, reads see the answered change, and the store verifies clean.
    @Test func projectionsThatFailAfterTheAnswerAreReplayedFromTheLog() throws {
        let fixture = StoreFixture()
        let journal = Journal()
        let store = try Self.idleStore(fixture, journal: journal)
        store.injectProjectionsFailures { StoreError(.io, "injected projections failure") }
        let scheduled = Scheduled()
        Self.submit(store, StoreFixture.reserve("r1", 100), "r1", journal, scheduled)
        #expect(journal.all == ["answered r1"], "the event was durable: the caller has its reservation")
        scheduled.runAll()
        store.injectProjectionsFailures(nil)
        #expect(try store.reservation("r1")?.status == .active)
        #expect(try store.budget(Self.key)?.reserved == 100)
        // A retry with the same key replays the first answer; the writer decides on the replayed state.
        #expect(try store.executeBlocking(StoreFixture.reserve("r1", 100)).errorCode == nil)
        #expect(try store.executeBlocking(StoreFixture.reserve("r2", 9_950)).errorCode == .budgetExceeded)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// Closing the store with projections still waiting after an answer writes them before it closes.
    @Test func closingWritesWhatWaitsAfterAnAnswer() throws {
        let fixture = StoreFixture()
        let journal = Journal()
        let store = try Self.idleStore(fixture, journal: journal)
        let dropped = Scheduled()
        Self.submit(store, StoreFixture.reserve("r1", 100), "r1", journal, dropped)
        store.close()
        #expect(journal.all == ["answered r1", "projections"], "written by the writer thread as it stops")
        dropped.runAll()  // after the close: finds nothing to do
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
        let reopened = try fixture.open()
        defer { reopened.close() }
        #expect(try reopened.budget(Self.key)?.reserved == 100)
    }
}
