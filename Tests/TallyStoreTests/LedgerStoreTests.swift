import Foundation
import Synchronization
import Testing
@testable import TallyCore
@testable import TallyStore

@Suite struct LedgerStoreTests {
    static let workspace = "tenant:acme/workspace:w"
    static let key = BudgetKey(try! ScopePath(parsing: workspace), .usdMicrocents)

    @Test func eventsAreAppendedInOrderWithAnUnbrokenChain() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
        _ = try store.executeBlocking(StoreFixture.reserve("r1", 100)).get()
        _ = try store.executeBlocking(StoreFixture.commit("r1", 80)).get()
        let events = try StoreFixture.allEvents(store)
        #expect(events.map(\.event.sequence) == [1, 2, 3, 4])
        #expect(events.map(\.event.body.typeName) == ["TenantCreated", "BudgetCreated", "Reserved", "Committed"])
        var chain = EventChain.genesis
        for stored in events {
            chain = EventChain.link(chain, stored.record)
            #expect(stored.chain == chain)
        }
        #expect(try store.lastSequence() == 4)
        #expect(try store.budget(Self.key)?.spent == 80)
    }

    @Test func aRefusalWritesNothing() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 100)])
        let result = try store.executeBlocking(StoreFixture.reserve("r1", 101))
        #expect(result.errorCode == .budgetExceeded)
        #expect(try store.lastSequence() == 2)
        #expect(try store.reservation("r1") == nil)
    }

    @Test func storedProjectionsEqualAReplayOfTheLog() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [("tenant:acme", 50_000), (Self.workspace, 20_000), ("\(Self.workspace)/agent:a", 5_000)])
        var generator = StoreRandom(seed: 7)
        var open: [String] = []
        for step in 0..<400 {
            fixture.advance(Int64(generator.next() % 3_000))
            switch generator.next() % 4 {
            case 0, 1:
                let id = "r\(step)"
                let result = try store.executeBlocking(StoreFixture.reserve(id, Int64(generator.next() % 400), agent: ["a", "b"][Int(generator.next() % 2)], ttl: 5_000, grace: 1_000))
                if result.errorCode == nil { open.append(id) }
            case 2 where !open.isEmpty:
                _ = try store.executeBlocking(StoreFixture.commit(open.removeFirst(), Int64(generator.next() % 500)))
            case 3 where !open.isEmpty:
                _ = try store.executeBlocking(StoreFixture.release(open.removeLast()))
            default:
                _ = try store.executeBlocking(.expireReservations(ExpireCommand(candidates: open.map { ReservationID($0) })))
            }
        }
        let replayed = try StoreFixture.replay(store)
        #expect(try store.storedState() == replayed)
        let last = try store.lastSequence()
        store.close()
        let report = try Maintenance.verify(directory: fixture.directory)
        #expect(report.isClean, "\(report.findings)")
        #expect(report.eventsChecked == last && last > 100)
    }

    @Test func anIdempotentReplaySurvivesAReopen() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
        let first = try store.executeBlocking(StoreFixture.reserve("r1", 100, key: "same")).get()
        _ = try store.executeBlocking(StoreFixture.commit("r1", 60, key: "c")).get()
        store.close()
        store = try fixture.open()
        defer { store.close() }
        let again = try store.executeBlocking(StoreFixture.reserve("r-other", 100, key: "same")).get()
        #expect(again.isReplay)
        guard case .reserved(let original, _) = first.reply, case .reserved(let replayed, let ttl) = again.reply else {
            Issue.record("expected reservation replies")
            return
        }
        #expect(replayed == original)
        #expect(ttl == 0, "the reservation is committed, so nothing remains of its TTL")
        let commitAgain = try store.executeBlocking(StoreFixture.commit("r1", 60, key: "c")).get()
        #expect(commitAgain.isReplay)
        #expect(try store.executeBlocking(StoreFixture.commit("r1", 61, key: "c")).errorCode == .idempotencyMismatch)
        #expect(try store.executeBlocking(StoreFixture.commit("r1", 60, key: "c2")).errorCode == .reservationFinalized)
        #expect(try store.lastSequence() == 4)
    }

    @Test func theExpirySweepReturnsEachHoldExactlyOnce() async throws {
        let fixture = StoreFixture()
        let store = try fixture.open(fixture.options(sweepEveryMilliseconds: 5))
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000), ("\(Self.workspace)/agent:a", 500)])
        _ = try await store.execute(StoreFixture.reserve("short", 100, ttl: 1_000, grace: 0)).get()
        _ = try await store.execute(StoreFixture.reserve("long", 50, ttl: 60_000)).get()
        fixture.advance(1_001)
        var expired = false
        for _ in 0..<400 where !expired {
            try await Task.sleep(for: .milliseconds(10))
            expired = try store.reservation("short")?.status == .expired
        }
        #expect(expired)
        try await Task.sleep(for: .milliseconds(50))
        let events = try StoreFixture.allEvents(store).map(\.event.body.typeName)
        #expect(events.filter { $0 == "Expired" }.count == 1)
        #expect(try store.budget(Self.key)?.reserved == 50)
        #expect(try store.reservation("long")?.status == .active)
        #expect(try await store.execute(StoreFixture.commit("short", 10)).errorCode == .reservationExpired)
    }

    @Test func manyThreadsNeverOverspendOneSharedBudget() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let accepted = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { thread in
            for index in 0..<40 {
                let id = "t\(thread)-\(index)"
                let result = try? store.executeBlocking(StoreFixture.reserve(id, 37, agent: "agent\(thread)"))
                if result?.errorCode == nil { accepted.withLock { $0.append(id) } }
            }
        }
        let ids = accepted.withLock { $0 }
        #expect(ids.count == 10_000 / 37)
        let budget = try #require(try store.budget(Self.key))
        #expect(budget.reserved.value == Int64(ids.count) * 37 && budget.remaining.value == 10_000 - Int64(ids.count) * 37)
        let logged = Set(try StoreFixture.allEvents(store).compactMap { stored -> String? in
            if case .reserved(let reserved) = stored.event.body { return reserved.reservationID.description }
            return nil
        })
        #expect(logged == Set(ids))
    }

    @Test func oneFlushServesEveryCallerQueuedBehindIt() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let before = store.statistics
        let answered = DispatchGroup()
        let outcomes = Mutex<[String: Bool]>([:])
        store.withWriterHeld {
            for index in 0..<200 {
                answered.enter()
                store.submit(StoreFixture.reserve("g\(index)", 10)) { outcome in
                    let durable = (try? store.lastSequence()).map { $0 >= 2 + 200 } ?? false
                    outcomes.withLock { $0["g\(index)"] = durable && (try? outcome.get().get()) != nil }
                    answered.leave()
                }
            }
        }
        answered.wait()
        let after = store.statistics
        #expect(after.flushes - before.flushes == 1, "200 queued callers, one write transaction")
        #expect(after.largestBatch == 200)
        #expect(outcomes.withLock { $0.values.allSatisfy { $0 } && $0.count == 200 }, "each caller is answered after the whole batch is durable")
    }

    @Test func aBatchNeverHoldsMoreThanTheConfiguredNumberOfCommands() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.batchCommandsMax = 16
        let store = try fixture.open(options)
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let before = store.statistics.flushes
        let answered = DispatchGroup()
        store.withWriterHeld {
            for index in 0..<40 {
                answered.enter()
                store.submit(StoreFixture.reserve("b\(index)", 1)) { _ in answered.leave() }
            }
        }
        answered.wait()
        #expect(store.statistics.flushes - before == 3, "40 queued commands in batches of at most 16")
        #expect(store.statistics.largestBatch == 16)
        #expect(try store.lastSequence() == 2 + 40, "batch boundaries never lose or repeat an event")
    }

    /// Requests one at a time are decided, made durable and answered on the submitting thread (no thread
    /// wake-ups); a command submitted while the writer is busy waits for the writer thread instead.
    @Test func aLoneCommandOnAnIdleStoreIsAnsweredOnTheSubmittingThread() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
        // The writer thread's one sweep at start may take the writer's place while a command arrives (that
        // command then waits for the writer thread): allow for it once.
        var answeredHere = 0
        for index in 0..<20 {
            Thread.sleep(forTimeInterval: 0.002)  // the next request comes after a round trip to its client
            let here = Mutex(false)
            let answered = DispatchSemaphore(value: 0)
            let caller = pthread_self()
            store.submit(StoreFixture.reserve("lone\(index)", 10)) { outcome in
                let durable = (try? store.lastSequence()) == UInt64(3 + index)
                here.withLock { $0 = pthread_equal(pthread_self(), caller) != 0 && durable && (try? outcome.get().get()) != nil }
                answered.signal()
            }
            if here.withLock({ $0 }) { answeredHere += 1 }
            #expect(answered.wait(timeout: .now() + .seconds(10)) == .success)
        }
        #expect(answeredHere >= 19, "answered, durable, on the caller's thread before submit returned")
        let answered = DispatchSemaphore(value: 0)
        let early = Mutex(false)
        store.withWriterHeld {
            store.submit(StoreFixture.reserve("queued", 10)) { _ in answered.signal() }
            early.withLock { $0 = answered.wait(timeout: .now() + .milliseconds(200)) == .success }
        }
        #expect(!early.withLock { $0 }, "a held writer holds the command")
        #expect(answered.wait(timeout: .now() + .seconds(10)) == .success)
        #expect(try store.reservation("queued")?.status == .active)
    }

    /// Commands one thread submits back to back (an event loop that read many requests at once) are not
    /// each flushed on that thread, one after the other: after the first, they wait for the writer thread,
    /// which makes them durable together.
    @Test func commandsSubmittedBackToBackAreBatchedNotFlushedOneByOne() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        Thread.sleep(forTimeInterval: 0.05)  // the writer idle for a while, as before a burst
        let before = store.statistics.flushes
        let answered = DispatchGroup()
        for index in 0..<40 {
            answered.enter()
            store.submit(StoreFixture.reserve("burst\(index)", 1)) { _ in answered.leave() }
        }
        #expect(answered.wait(timeout: .now() + .seconds(30)) == .success)
        let flushes = store.statistics.flushes - before
        #expect(flushes <= 10, "40 commands submitted back to back took \(flushes) flushes")
        #expect(try store.budget(Self.key)?.reserved == 40)
    }

    @Test func batchesDecidedWhileTheFlusherIsBusyShareItsNextTransaction() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let before = store.statistics
        let answered = DispatchGroup()
        let acknowledged = Mutex(0)
        try store.withFlusherHeld {
            for group in 0..<3 {
                store.withWriterHeld {
                    for index in 0..<6 {
                        answered.enter()
                        store.submit(StoreFixture.reserve("q\(group)-\(index)", 10)) { outcome in
                            if (try? outcome.get().get()) != nil { acknowledged.withLock { $0 += 1 } }
                            answered.leave()
                        }
                    }
                }
                // The writer decides the group as one batch and hands it over; the held flusher keeps it.
                try #require(StoreFixture.eventually { store.batchesWaitingForTheFlusher == group + 1 })
            }
            #expect(acknowledged.withLock { $0 } == 0, "nobody is answered before their batch is durable")
        }
        answered.wait()
        #expect(acknowledged.withLock { $0 } == 18)
        #expect(store.statistics.flushes - before.flushes == 1, "three batches waiting, one write transaction")
        #expect(store.statistics.largestBatch == 18)
        let reserved = try StoreFixture.allEvents(store).compactMap { stored -> String? in
            if case .reserved(let reserved) = stored.event.body { return reserved.reservationID.description }
            return nil
        }
        #expect(reserved == (0..<3).flatMap { group in (0..<6).map { "q\(group)-\($0)" } }, "in the order decided")
        #expect(try store.budget(Self.key)?.reserved == 180)
    }

    /// The writer keeps in memory what a batch that is not durable yet changed, even once an earlier batch
    /// that touched the same reservation is durable: deciding from the store's older copy would settle a
    /// reservation twice.
    @Test func aReservationSettledInABatchStillFlushingIsNotForgottenWhenAnEarlierBatchEnds() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.batchCommandsMax = 5  // so that the two batches below cannot share a transaction
        let store = try fixture.open(options)
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 10_000)])
        let answered = DispatchGroup()
        let outcomes = Mutex<[String: Result<Result<Decision, Refusal>, StoreError>]>([:])
        func submit(_ name: String, _ command: Command) {
            answered.enter()
            store.submit(command) { outcome in
                outcomes.withLock { $0[name] = outcome }
                answered.leave()
            }
        }
        func awaitWaiting(_ count: Int) throws {
            try #require(StoreFixture.eventually { store.batchesWaitingForTheFlusher == count })
        }
        try store.withFlusherHeld {
            store.withWriterHeld {  // batch A: reserves x (and four others)
                submit("reserve", StoreFixture.reserve("x", 100))
                for index in 0..<4 { submit("filler-a\(index)", StoreFixture.reserve("a\(index)", 1)) }
            }
            try awaitWaiting(1)
            store.withWriterHeld {  // batch B: commits x
                submit("commit", StoreFixture.commit("x", 60))
                for index in 0..<4 { submit("filler-b\(index)", StoreFixture.reserve("b\(index)", 1)) }
            }
            try awaitWaiting(2)
            let flushes = store.statistics.flushes
            store.allowFlushes(1)  // A becomes durable, B waits
            try #require(StoreFixture.eventually { store.statistics.flushes == flushes + 1 })
            try awaitWaiting(1)
            // Decided after A ended and before B is durable: x is committed, whatever the store holds yet.
            submit("second commit", StoreFixture.commit("x", 90, key: "another-key"))
            try awaitWaiting(2)
        }
        answered.wait()
        let results = outcomes.withLock { $0 }
        #expect((try? results["commit"]?.get().get()) != nil)
        #expect((try? results["second commit"]?.get())?.errorCode != nil, "a committed reservation cannot be committed again")
        let commits = try StoreFixture.allEvents(store).filter { $0.event.body.typeName == "Committed" }
        #expect(commits.count == 1)
        #expect(try store.budget(Self.key)?.spent == 60)
    }

    /// Failed flushes amid pipelined batches: every caller's answer matches what the log holds (an
    /// acknowledged command is in it exactly once, a failed one is not), the writer goes on from the store,
    /// and the projections equal a replay of the log.
    @Test func answersMatchTheLogWhenFlushesFailAmidPipelinedBatches() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, Int64.max / 2)])
        let transactions = Mutex(0)
        store.injectFlushFailures {
            transactions.withLock { count in
                count += 1
                return count % 5 == 0 ? StoreError(.io, "injected failure") : nil
            }
        }
        let reserved = Mutex<[String: Bool]>([:])
        let committed = Mutex<[String: Bool]>([:])
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<50 {
                let id = "f\(thread)-\(index)"
                do {
                    _ = try store.executeBlocking(StoreFixture.reserve(id, 3)).get()
                    reserved.withLock { $0[id] = true }
                } catch {
                    reserved.withLock { $0[id] = false }
                    failures.withLock { $0 += 1 }
                    continue
                }
                do {
                    _ = try store.executeBlocking(StoreFixture.commit(id, 2)).get()
                    committed.withLock { $0[id] = true }
                } catch {
                    committed.withLock { $0[id] = false }
                    failures.withLock { $0 += 1 }
                }
            }
        }
        store.injectFlushFailures(nil)
        #expect(failures.withLock { $0 } > 0, "the injected failures were met")
        var inLog: [String: [String]] = [:]
        for stored in try StoreFixture.allEvents(store) {
            switch stored.event.body {
            case .reserved(let event): inLog["Reserved", default: []].append(event.reservationID.description)
            case .committed(let event): inLog["Committed", default: []].append(event.reservationID.description)
            default: break
            }
        }
        let reservedIDs = reserved.withLock { $0 }, committedIDs = committed.withLock { $0 }
        #expect(inLog["Reserved", default: []].sorted() == reservedIDs.filter(\.value).keys.sorted())
        #expect(inLog["Committed", default: []].sorted() == committedIDs.filter(\.value).keys.sorted())
        let acknowledgedCommits = Int64(committedIDs.values.filter { $0 }.count)
        let openReservations = Int64(reservedIDs.values.filter { $0 }.count) - acknowledgedCommits
        let budget = try #require(try store.budget(Self.key))
        #expect(budget.spent.value == 2 * acknowledgedCommits && budget.reserved.value == 3 * openReservations)
        // After the failures the writer decides on what the store holds: a failed commit can be retried.
        if let retry = committedIDs.first(where: { !$0.value })?.key {
            #expect(try store.executeBlocking(StoreFixture.commit(retry, 2)).errorCode == nil)
        }
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    /// The log's file is allocated ahead of its last page (commits overwrite allocated blocks instead of
    /// growing the file); LMDB ignores the allocated tail, at reopen too.
    @Test func theLogFileIsAllocatedAheadOfItsPagesAndReopensClean() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        for index in 0..<20 { _ = try store.executeBlocking(StoreFixture.reserve("a\(index)", 10)).get() }
        let used = try store.environment.usedBytes()
        let file = try #require(store.environment.fileBytes())
        #expect(file - used >= LogAllocation.refillBelowBytes, "allocated \(file) bytes for \(used) in use")
        #expect(file - used <= LogAllocation.aheadBytes)
        store.close()
        store = try fixture.open()
        for index in 20..<40 { _ = try store.executeBlocking(StoreFixture.reserve("a\(index)", 10)).get() }
        #expect(try store.budget(Self.key)?.reserved == 400)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
    }

    @Test func theDataDirectoryIsHeldByOneWriter() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
        #expect(throws: StoreError.self) { try fixture.open() }
        #expect(throws: StoreError.self) { try Maintenance.rebuild(directory: fixture.directory) }
        #expect(try Maintenance.verify(directory: fixture.directory).isClean, "verify only reads and runs beside the writer")
        store.close()
        #expect(try Maintenance.rebuild(directory: fixture.directory) == 2)
    }

    @Test func verifyNamesATamperedProjectionAndRebuildRepairsIt() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000)])
        _ = try store.executeBlocking(StoreFixture.reserve("r1", 100)).get()
        store.close()
        do {
            let environment = try LMDBEnvironment(directory: fixture.directory + "/projections", mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            var budget = try #require(try environment.read { txn in
                try txn.get(environment.database(StoreLayout.budgets), StoreLayout.budgetKey(Self.key)).map(ProjectionCodec.decodeBudget)
            })
            budget.spent = 999
            try environment.write { txn in
                try txn.put(environment.database(StoreLayout.budgets), StoreLayout.budgetKey(Self.key), ProjectionCodec.encode(budget))
            }
        }
        let report = try Maintenance.verify(directory: fixture.directory)
        #expect(report.findings == ["budget \(Self.key): differs from the replayed log"])
        _ = try Maintenance.rebuild(directory: fixture.directory)
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
        let reopened = try fixture.open()
        defer { reopened.close() }
        #expect(try reopened.budget(Self.key)?.spent == 0)
        #expect(try reopened.budget(Self.key)?.reserved == 100)
    }

    /// A store written before reservations had the derived layout (records in format 1, or in format 2 as session
    /// 31's builds wrote them) reads, verifies and goes on: records are compared by value where their bytes
    /// differ, and a reservation written again takes the derived layout.
    @Test func reservationRecordsInFormatOneReadVerifyAndGoOn() throws {
        let fixture = StoreFixture()
        var store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        for index in 0..<3 { _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10)).get() }
        _ = try store.executeBlocking(StoreFixture.commit("r0", 7)).get()
        store.close()
        func formats() throws -> [String: UInt8] {
            let environment = try LMDBEnvironment(directory: fixture.directory + "/projections", mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            var formats: [String: UInt8] = [:]
            try environment.read { txn in
                try txn.scan(environment.database(StoreLayout.reservations)) { _, value in
                    formats[try ProjectionCodec.decodeReservation(value).id.description] = value[0]
                    return true
                }
            }
            return formats
        }
        #expect(try formats() == ["r0": 3, "r1": 3, "r2": 3])
        do {
            let environment = try LMDBEnvironment(directory: fixture.directory + "/projections", mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            let reservations = environment.database(StoreLayout.reservations)
            try environment.write { txn in
                for (id, newest) in [("r0", .spelled), ("r1", .masked), ("r2", .spelled)] as [(ReservationID, ProjectionCodec.ReservationLayout)] {
                    let reservation = try ProjectionCodec.decodeReservation(try #require(try txn.get(reservations, StoreLayout.reservationKey(id))))
                    try txn.put(reservations, StoreLayout.reservationKey(id), ProjectionCodec.encode(reservation, newest: newest))
                }
            }
        }
        #expect(try formats() == ["r0": 1, "r1": 2, "r2": 1])
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
        store = try fixture.open()
        #expect(try store.reservation("r0")?.status == .committed)
        #expect(try store.reservation("r1")?.estimate == Amount(10))
        _ = try store.executeBlocking(StoreFixture.commit("r1", 4)).get()
        #expect(try store.budget(Self.key)?.spent == 11)
        store.close()
        #expect(try formats() == ["r0": 1, "r1": 3, "r2": 1])
        #expect(try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now).isClean)
    }

    @Test func verifyComparesALongHistoryChunkByChunkAndNamesWhatDiffers() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        // 8,400 events: the settled history is compared with the store (and dropped) past the first 8,192.
        for index in 0..<4_200 {
            _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", 10)).get()
            _ = try store.executeBlocking(StoreFixture.commit("r\(index)", 7)).get()
        }
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
        do {
            let environment = try LMDBEnvironment(directory: fixture.directory + "/projections", mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            let reservations = environment.database(StoreLayout.reservations)
            var settled = try #require(try environment.read { txn in
                try txn.get(reservations, StoreLayout.reservationKey("r5")).map(ProjectionCodec.decodeReservation)
            })
            settled.estimate = Amount(11)
            var forged = settled
            forged.id = "forged"
            try environment.write { txn in
                try txn.put(reservations, StoreLayout.reservationKey("r5"), ProjectionCodec.encode(settled))
                try txn.put(reservations, StoreLayout.reservationKey("forged"), ProjectionCodec.encode(forged))
                let idempotency = environment.database(StoreLayout.idempotency)
                let wanted = IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "key-r4100")
                var row: [UInt8]?
                try txn.scan(idempotency) { key, value in
                    if try Projections.idempotencyEntry(value).0 == wanted { row = key }
                    return row == nil
                }
                try txn.delete(idempotency, try #require(row))
            }
        }
        let report = try Maintenance.verify(directory: fixture.directory, now: fixture.clock.now)
        #expect(Set(report.findings) == [
            "reservation r5: differs from the replayed log",
            "idempotency record acme/reserve/key-r4100: missing from the projection",
            "reservations: 1 settled ones in the projection were not produced by the log",
        ])

        #expect(try Maintenance.rebuild(directory: fixture.directory) == 2 + 8_400)
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)

        // A rebuild that stopped after clearing the projections leaves them without a format version: the
        // next open rebuilds them from the (untrimmed) log.
        do {
            let environment = try LMDBEnvironment(directory: fixture.directory + "/projections", mapSizeBytes: 1 << 26, databaseNames: StoreLayout.projectionTables)
            try environment.write { txn in
                for name in StoreLayout.projections { try txn.clear(environment.database(name)) }
                try txn.delete(environment.database(StoreLayout.meta), StoreLayout.metaFormat)
            }
        }
        let reopened = try fixture.open()
        defer { reopened.close() }
        #expect(try reopened.reservation("r5")?.estimate == Amount(10) && reopened.reservation("forged") == nil)
        #expect(try reopened.reservation("r4100")?.status == .committed)
        #expect(try reopened.idempotencyRecord(IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "key-r4100")) != nil)
        #expect(try reopened.budget(Self.key)?.spent == Amount(7 * 4_200))
    }

    @Test func aFullMapFailsTheBatchCleanlyAndReadsKeepWorking() throws {
        let fixture = StoreFixture()
        let options = fixture.options(mapSizeBytes: 256 * 1024, mapSizeBytesMax: 256 * 1024)
        let store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, Int64.max)])
        var acknowledged: [String] = []
        var failure: StoreError?
        for index in 0..<5_000 where failure == nil {
            do {
                let result = try store.executeBlocking(StoreFixture.reserve("r\(index)-" + String(repeating: "x", count: 100), 1))
                if result.errorCode == nil { acknowledged.append("r\(index)") }
            } catch {
                failure = error
            }
        }
        let error = try #require(failure)
        #expect(error.kind == .storageFull)
        #expect(try store.budget(Self.key)?.reserved.value == Int64(acknowledged.count), "reads still work and show exactly what was acknowledged")
        // Here the projections filled up after the log was written: while they cannot catch up, the log keeps
        // every event they still need (a trim is refused, nothing is deleted).
        let first = try #require(try store.events(from: 1, limit: 1).first)
        #expect(throws: StoreError.self) { _ = try store.trimLogBlocking(through: 1, chain: first.chain) }
        #expect(try store.events(from: 1, limit: 1).first?.event.sequence == 1)
        store.close()
        #expect(try Maintenance.verify(directory: fixture.directory).isClean)
        let grown = try fixture.open(fixture.options(mapSizeBytes: 256 * 1024, mapSizeBytesMax: 1 << 26))
        defer { grown.close() }
        #expect(try grown.executeBlocking(StoreFixture.reserve("after", 1)).errorCode == nil, "with room to grow the map the writer recovers")
    }

    @Test func aFormatFromAnotherVersionIsRefused() throws {
        let fixture = StoreFixture()
        try fixture.open().close()
        do {
            let environment = try LMDBEnvironment(directory: fixture.directory, mapSizeBytes: 1 << 26, databaseNames: StoreLayout.logTables)
            try environment.write { txn in
                try txn.put(environment.database(StoreLayout.meta), StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(99)))
            }
        }
        #expect(performing: { try fixture.open() }, throws: { ($0 as? StoreError)?.kind == .formatMismatch })
    }
}

/// SplitMix64, for reproducible store workloads.
struct StoreRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Result where Success == Decision, Failure == Refusal {
    var errorCode: ErrorCode? {
        if case .failure(let refusal) = self { return refusal.code }
        return nil
    }
}
