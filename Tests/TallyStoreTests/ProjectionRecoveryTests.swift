import Foundation
import Synchronization
import Testing
@testable import TallyCore
@testable import TallyStore

/// The projections live in an environment of their own, written after the durable log without waiting for
/// the disk: what they miss is replayed from the log at open, and what a machine crash may have damaged is
/// rebuilt from it.
@Suite struct ProjectionRecoveryTests {
    static let workspace = "tenant:acme/workspace:w"
    static let key = BudgetKey(try! ScopePath(parsing: workspace), .usdMicrocents)

    private static var projections: String { StoreLayout.projectionsDirectory }

    /// Runs `body` on an open store of the fixture and closes it.
    private static func with(_ fixture: StoreFixture, _ body: (LedgerStore) throws -> Void) throws {
        let store = try fixture.open()
        defer { store.close() }
        try body(store)
    }

    private static func copy(_ from: String, _ to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// A budget of 1,000; r1 reserved 100 and committed 70; r2 holding 50.
    private static func smallHistory(_ fixture: StoreFixture) throws {
        try with(fixture) { (store: LedgerStore) throws in
            try StoreFixture.setup(store, budgets: [(workspace, 1_000)])
            _ = try store.executeBlocking(StoreFixture.reserve("r1", 100)).get()
            _ = try store.executeBlocking(StoreFixture.commit("r1", 70)).get()
            _ = try store.executeBlocking(StoreFixture.reserve("r2", 50)).get()
        }
    }

    /// Budgets, every reservation and idempotency record: what the store shows.
    private static func everything(_ fixture: StoreFixture) throws -> LedgerState {
        var state = LedgerState()
        try with(fixture) { (store: LedgerStore) throws in state = try store.storedState() }
        return state
    }

    /// The answers to one batch: how many were acknowledged once all have arrived.
    private final class BatchAnswers: Sendable {
        let all = DispatchGroup()
        let first = DispatchSemaphore(value: 0)
        let acknowledged = Mutex(0)

        func acknowledgedOnceAllArrived() -> Int {
            all.wait()
            return acknowledged.withLock { $0 }
        }
    }

    /// Submits `count` reserves of 10 as one batch for the flusher thread (the writer held while they queue,
    /// more than it flushes itself) and returns once the first answer has arrived.
    private static func answerOneBatch(_ store: LedgerStore, count: Int, prefix: String) -> BatchAnswers {
        let answers = BatchAnswers()
        store.withWriterHeld {
            for index in 0..<count {
                answers.all.enter()
                store.submit(StoreFixture.reserve("\(prefix)\(index)", 10)) { outcome in
                    if (try? outcome.get().get()) != nil { answers.acknowledged.withLock { $0 += 1 } }
                    answers.first.signal()
                    answers.all.leave()
                }
            }
        }
        answers.first.wait()
        return answers
    }

    /// The flusher answers a batch once its log is durable and writes its projections after: a read begun after
    /// an answer waits for them (a test step holds the projections back meanwhile).
    @Test func aReadAfterAnAnswerSeesItWhileItsProjectionsAreStillBeingWritten() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let held = Mutex(false)
        store.injectProjectionsFailures {
            if held.withLock({ let first = !$0; $0 = true; return first }) { Thread.sleep(forTimeInterval: 0.3) }
            return nil
        }
        let answers = Self.answerOneBatch(store, count: 8, prefix: "r")
        // Answered before the projections: all eight are in the read, none missing.
        #expect(try store.budget(Self.key)?.reserved == 80)
        #expect(answers.acknowledgedOnceAllArrived() == 8)
        store.injectProjectionsFailures(nil)
    }

    /// A projections transaction that fails after its batch was answered (the log holds it): the writer
    /// replays the log into the projections at once, reads wait for that, and the store verifies clean.
    @Test func projectionsThatFailAfterTheAnswerAreReplayedBeforeReadsGoOn() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let failed = Mutex(false)
        store.injectProjectionsFailures {
            failed.withLock { let first = !$0; $0 = true; return first } ? StoreError(.io, "injected projections failure") : nil
        }
        let answers = Self.answerOneBatch(store, count: 8, prefix: "p")
        #expect(answers.acknowledgedOnceAllArrived() == 8, "the log was durable: every caller has its reservation")
        #expect(try store.budget(Self.key)?.reserved == 80)
        #expect(try store.reservation("p7")?.status == .active)
        store.injectProjectionsFailures(nil)
        // The writer decides on what the projections hold again: a retry replays, a new reservation is counted.
        #expect(try store.executeBlocking(StoreFixture.reserve("p0", 10)).errorCode == nil)
        #expect(try store.executeBlocking(StoreFixture.reserve("p8", 10)).errorCode == nil)
        #expect(try store.budget(Self.key)?.reserved == 90)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    @Test func projectionsBehindTheLogAreCaughtUpAtOpen() throws {
        let fixture = StoreFixture()
        let saved = fixture.directory + "-saved-projections"
        defer { try? FileManager.default.removeItem(atPath: saved) }
        try Self.with(fixture) { (store: LedgerStore) throws in
            try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
            for index in 0..<10 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 100)).get() }
        }
        // The projections as they were after the first run: the second run's events will be missing.
        try Self.copy(fixture.directory + "/" + Self.projections, saved)
        try Self.with(fixture) { (store: LedgerStore) throws in
            for index in 10..<20 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 100)).get() }
            for index in 0..<5 { _ = try store.executeBlocking(StoreFixture.commit("r\(index)", 60)).get() }
            _ = try store.executeBlocking(StoreFixture.release("r5")).get()
        }
        let expected = try Self.everything(fixture)
        try Self.copy(saved, fixture.directory + "/" + Self.projections)

        let behind = try Maintenance.verify(directory: fixture.directory)
        #expect(behind.isClean, "projections behind the log are consistent as of what they cover: \(behind.findings)")
        #expect(behind.eventsBehind == 16)

        try Self.with(fixture) { (store: LedgerStore) throws in
            #expect(Maintenance.differences(expected: expected, actual: try store.storedState()).isEmpty)
            #expect(try store.budget(Self.key)?.spent == Amount(300))
            #expect(try store.budget(Self.key)?.reserved == Amount(1_400))
            #expect(try store.reservation("r5")?.status == .released)
            // The working set came back too: the caught-up reservations can be committed.
            #expect(try store.executeBlocking(StoreFixture.commit("r19", 10)).errorCode == nil)
        }
        let caughtUp = try Maintenance.verify(directory: fixture.directory)
        #expect(caughtUp.isClean && caughtUp.eventsBehind == 0, "\(caughtUp.findings)")
    }

    @Test func theUnsyncedMarkerIsThereOnlyWhileAServerWrites() throws {
        let fixture = StoreFixture()
        let marker = fixture.directory + "/" + StoreLayout.unsyncedMarker
        try Self.with(fixture) { (store: LedgerStore) throws in
            try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
            let recorded = try String(contentsOfFile: marker, encoding: .utf8)
            #expect(recorded.trimmingCharacters(in: .whitespacesAndNewlines) == StoreFiles.bootID())
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "a clean close flushes the projections and removes the marker")
    }

    /// Damages a stored budget (as pages lost in a machine crash might) and leaves a marker from `boot`.
    private static func damage(_ fixture: StoreFixture, markerBoot boot: String) throws {
        do {
            let environment = try LMDBEnvironment(
                directory: fixture.directory + "/" + projections, mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            defer { environment.close() }
            let budgets = environment.database(StoreLayout.budgets)
            var budget = try #require(try environment.read { txn in
                try txn.get(budgets, StoreLayout.budgetKey(key)).map(ProjectionCodec.decodeBudget)
            })
            budget.spent = Amount(999)
            try environment.write { txn in try txn.put(budgets, StoreLayout.budgetKey(key), ProjectionCodec.encode(budget)) }
        }
        try Array((boot + "\n").utf8).withUnsafeBytes { bytes in
            try Data(bytes).write(to: URL(fileURLWithPath: fixture.directory + "/" + StoreLayout.unsyncedMarker))
        }
    }

    @Test func aMachineCrashWhileProjectionsWereUnsyncedRebuildsThemFromTheLog() throws {
        let fixture = StoreFixture()
        try Self.smallHistory(fixture)
        // A marker from this boot means only the process stopped: the projections are trusted as they are
        // (here the damage shows through, which proves nothing was rebuilt needlessly).
        try Self.damage(fixture, markerBoot: try #require(StoreFiles.bootID()))
        try Self.with(fixture) { (store: LedgerStore) throws in #expect(try store.budget(Self.key)?.spent == Amount(999)) }

        // A marker from another boot: the machine went down with projections not yet on disk. Verify says so
        // (its findings about them are expected), and the next open rebuilds them.
        try Self.damage(fixture, markerBoot: "00000000-another-boot")
        let before = try Maintenance.verify(directory: fixture.directory)
        #expect(before.projectionsMayBeDamaged && !before.isClean)
        // Opening says what it is doing and when it is done (tallyd logs these lines).
        let lines = Mutex<[String]>([])
        var options = fixture.options()
        options.openProgress = { line in lines.withLock { $0.append(line) } }
        try fixture.open(options).close()
        let said = lines.withLock { $0 }
        #expect(said.first == "rebuilding the projections from the log (the machine stopped while they were being written): 5 events", "\(said)")
        #expect(said.last?.hasPrefix("projections up to the log's end: 5 events in ") == true, "\(said)")
        try Self.damage(fixture, markerBoot: "00000000-another-boot")
        try Self.with(fixture) { (store: LedgerStore) throws in
            #expect(try store.budget(Self.key)?.spent == Amount(70))
            #expect(try store.budget(Self.key)?.reserved == Amount(50))
            #expect(try store.reservation("r1")?.status == .committed)
            #expect(try store.executeBlocking(StoreFixture.commit("r2", 50)).errorCode == nil)
        }
        let after = try Maintenance.verify(directory: fixture.directory)
        #expect(after.isClean && !after.projectionsMayBeDamaged)
    }

    @Test func damagedProjectionsOverATrimmedLogAreRefusedWithWhatToRun() throws {
        let fixture = StoreFixture()
        try Self.with(fixture) { (store: LedgerStore) throws in
            try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
            _ = try store.executeBlocking(StoreFixture.reserve("r1", 100)).get()
            let events = try StoreFixture.allEvents(store)
            _ = try store.trimLogBlocking(through: 2, chain: events[1].chain)
        }
        try Self.damage(fixture, markerBoot: "00000000-another-boot")
        // Refused, and refused again: a refusal must not make the damaged projections look trusted.
        for _ in 0..<2 {
            let refusal = try #require(throws: StoreError.self) { try fixture.open().close() }
            #expect(refusal.kind == .corrupt)
            #expect("\(refusal)".contains("trimmed through 2") && "\(refusal)".contains("tally rebuild with the archive directory"))
        }
    }

    @Test func aDirectoryOfFormatOneIsUpgradedAtOpen() throws {
        let fixture = StoreFixture()
        try Self.smallHistory(fixture)
        let expected = try Self.everything(fixture)
        // Rewrite the directory as format 1 kept it: every table in the log's environment.
        do {
            let projected = try LMDBEnvironment(
                directory: fixture.directory + "/" + Self.projections, mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            let log = try LMDBEnvironment(
                directory: fixture.directory, mapSizeBytes: 1 << 26, databaseNames: StoreLayout.logTables + StoreLayout.projections)
            try projected.read { source in
                try log.write { target in
                    for name in StoreLayout.projections {
                        try source.scan(projected.database(name)) { key, value in
                            try target.put(log.database(name), key, value)
                            return true
                        }
                    }
                    try target.put(log.database(StoreLayout.meta), StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(1)))
                }
            }
            projected.close()
            log.close()
            try FileManager.default.removeItem(atPath: fixture.directory + "/" + Self.projections)
        }
        let refusal = try #require(throws: StoreError.self) { try LogReader(directory: fixture.directory).storedState() }
        #expect(refusal.kind == .formatMismatch && "\(refusal)".contains("open it once with tallyd"))

        try Self.with(fixture) { (store: LedgerStore) throws in
            #expect(Maintenance.differences(expected: expected, actual: try store.storedState()).isEmpty)
            #expect(try store.executeBlocking(StoreFixture.commit("r2", 50)).errorCode == nil)
        }
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
        let log = try LMDBEnvironment(
            directory: fixture.directory, mapSizeBytes: 1 << 26, databaseNames: StoreLayout.logTables + StoreLayout.projections)
        defer { log.close() }
        let (left, format) = try log.read { txn throws -> (Int, [UInt8]?) in
            var left = 0
            for name in StoreLayout.projections { left += try txn.count(log.database(name)) }
            return (left, try txn.get(log.database(StoreLayout.meta), StoreLayout.metaFormat))
        }
        #expect(left == 0, "no projection entries are left in the log's environment")
        #expect(format == StoreLayout.bigEndian(UInt64(2)))
    }
}
