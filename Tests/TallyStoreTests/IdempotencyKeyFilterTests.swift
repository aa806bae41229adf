import Foundation
import Synchronization
import Testing
@testable import TallyCore
@testable import TallyStore

/// The writer's idempotency key filter (`IdempotencyKeyFilter`): new keys skip the table lookup, and no key the
/// table holds is ever taken for new, whether the writer wrote it, the store held it at open, or it was not
/// yet written when the filter grew.
@Suite struct IdempotencyKeyFilterTests {
    static let workspace = "tenant:acme/workspace:w"

    private static func randomKey(_ generator: inout SystemRandomNumberGenerator) -> [UInt8] {
        (0..<Int.random(in: 8...60, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    @Test func aBlockedBloomFilterKeepsEveryKeyAndRejectsMostOthers() {
        var generator = SystemRandomNumberGenerator()
        let inserted = (0..<20_000).map { _ in Self.randomKey(&generator) }
        var filter = BlockedBloomFilter(capacity: 20_000)
        var other = BlockedBloomFilter(capacity: 20_000)
        for (index, key) in inserted.enumerated() {
            if index.isMultiple(of: 2) { filter.insert(BlockedBloomFilter.hash(key)) } else { other.insert(BlockedBloomFilter.hash(key)) }
        }
        #expect(inserted.enumerated().allSatisfy { !$0.offset.isMultiple(of: 2) || filter.mayContain(BlockedBloomFilter.hash($0.element)) })
        filter.formUnion(other)
        #expect(filter.count == 20_000)
        #expect(inserted.allSatisfy { filter.mayContain(BlockedBloomFilter.hash($0)) }, "a union holds the keys of both")
        let strangers = (0..<20_000).map { _ in Self.randomKey(&generator) }
        let falsePositives = strangers.filter { filter.mayContain(BlockedBloomFilter.hash($0)) }.count
        #expect(falsePositives < 600, "\(falsePositives) of 20,000 at capacity (about 1% expected)")
        #expect(falsePositives > 0, "at capacity some strangers collide (about 200 expected): the filter does not answer false throughout")
    }

    /// Submits a reserve for each of `keys` without waiting; the closure returned waits for every answer and
    /// gives each key's reservation id.
    private static func submitReserves(_ store: LedgerStore, _ keys: [String], prefix: String) -> () -> [String: String] {
        let answered = DispatchGroup()
        let ids = Mutex<[String: String]>([:])
        for (index, key) in keys.enumerated() {
            answered.enter()
            store.submit(StoreFixture.reserve("\(prefix)\(index)", 1, key: key)) { outcome in
                if case .success(.success(let decision)) = outcome, case .reserved(let reply, _) = decision.reply {
                    ids.withLock { $0[key] = reply.reservationID.description }
                }
                answered.leave()
            }
        }
        return {
            answered.wait()
            return ids.withLock { $0 }
        }
    }

    /// Reserves `keys` concurrently (several batches, pipelined); returns each key's reservation id.
    private static func reserveConcurrently(_ store: LedgerStore, _ keys: [String], prefix: String) throws -> [String: String] {
        submitReserves(store, keys, prefix: prefix)()
    }

    /// Retries each key with another reservation id: every one must be a replay of the original.
    private static func expectReplays(_ store: LedgerStore, _ original: [String: String], _ comment: Comment) throws {
        let before = try store.lastSequence()
        for (key, id) in original.sorted(by: { $0.key < $1.key }) {
            let again = try store.executeBlocking(StoreFixture.reserve("retry-\(key)", 1, key: key)).get()
            guard case .reserved(let reply, _) = again.reply, again.isReplay else {
                Issue.record("\(key) was decided afresh: \(comment)")
                return
            }
            #expect(reply.reservationID.description == id, comment)
        }
        #expect(try store.lastSequence() == before, "a replay writes nothing")
    }

    @Test func newKeysSkipTheLookupAndEveryRetryIsStillAReplay() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        #expect(store.idempotencyFilterStatistics.complete, "a new store's table is empty: nothing to scan")
        let skippedBefore = store.idempotencyFilterStatistics.lookupsSkipped
        var original: [String: String] = [:]
        for index in 0..<40 {  // one at a time: each is evicted from memory once durable
            let decision = try store.executeBlocking(StoreFixture.reserve("single\(index)", 1, key: "single-\(index)")).get()
            guard case .reserved(let reply, _) = decision.reply else { throw StoreError(.io, "no reservation") }
            original["single-\(index)"] = reply.reservationID.description
        }
        original.merge(try Self.reserveConcurrently(store, (0..<400).map { "many-\($0)" }, prefix: "many"), uniquingKeysWith: { $1 })
        #expect(original.count == 440)
        #expect(store.idempotencyFilterStatistics.lookupsSkipped - skippedBefore >= 440, "each new key skipped its lookup")
        try Self.expectReplays(store, original, "keys the writer wrote")
        // Retries of keys in batches still in flight are answered from memory, never from the filter.
        let mixed = try Self.reserveConcurrently(store, (0..<100).map { "many-\($0)" } + (0..<100).map { "fresh-\($0)" }, prefix: "mixed")
        #expect((0..<100).allSatisfy { mixed["many-\($0)"] == original["many-\($0)"] })
    }

    @Test func keysTheStoreHeldAtOpenAreFoundBeforeAndAfterTheScan() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.idempotencyScanChunkKeys = 7  // many chunks, each resumed from the last key of the one before
        var store = try fixture.open(options)
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        let original = try Self.reserveConcurrently(store, (0..<300).map { "held-\($0)" }, prefix: "held")
        #expect(original.count == 300)
        store.close()
        store = try fixture.open(options)
        defer { store.close() }
        // Whether or not the scan has been merged yet, the table is consulted for what the filter cannot vouch for.
        try Self.expectReplays(store, original.filter { $0.key.hasSuffix("7") }, "retried right after the reopen")
        var probes = 0
        try #require(StoreFixture.eventually {
            probes += 1  // the writer merges a finished scan before its next batch
            _ = try? store.executeBlocking(StoreFixture.reserve("probe\(probes)", 1, key: "probe-\(probes)"))
            return store.idempotencyFilterStatistics.complete
        })
        let skipped = store.idempotencyFilterStatistics.lookupsSkipped
        try Self.expectReplays(store, original, "keys found by the scan")
        _ = try Self.reserveConcurrently(store, (0..<50).map { "after-\($0)" }, prefix: "after")
        #expect(store.idempotencyFilterStatistics.lookupsSkipped - skipped >= 50, "new keys skip the lookup once the scan is merged")
    }

    /// The filter alone, on a store's table, with `refresh` called by the test: the keys added while a scan runs
    /// (the one at open, then a growth's) are in the filter that replaces the old one, whenever the scan ends.
    @Test func keysAddedWhileAScanRunsSurviveItsMerge() throws {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        _ = try Self.reserveConcurrently(store, (0..<50).map { "stored-\($0)" }, prefix: "stored")
        store.close()
        let files = try StoreFiles.openBoth(fixture.directory, readOnly: false)
        defer { files.close() }
        let projections = files.projections
        let stored = try projections.environment.read { txn in
            var keys: [[UInt8]] = []
            try txn.scan(projections.idempotency) { key, _ in
                keys.append(key)
                return true
            }
            return keys
        }
        #expect(stored.count == 50)
        let filter = IdempotencyKeyFilter(
            environment: projections.environment, table: projections.idempotency, keysAtOpen: stored.count, capacityMin: 8,
            scanChunkKeys: 7)
        defer { filter.stop() }
        filter.start()
        let duringFirst = (0..<60).map { Array("during-first-\($0)".utf8) }
        for key in duringFirst { filter.add(key) }  // before any `refresh`: the scan cannot have been merged
        #expect(duringFirst.allSatisfy(filter.mayHold), "before the merge every key may be held")
        try #require(StoreFixture.eventually {
            filter.refresh()
            return filter.statistics.complete
        })
        #expect(stored.allSatisfy(filter.mayHold), "every key the table held")
        #expect(duringFirst.allSatisfy(filter.mayHold), "every key added while the first scan ran")
        #expect(filter.wantsToGrow, "110 keys in a filter sized for 100")
        filter.grow(unwritten: duringFirst)  // stand-ins for records not yet written: the scan cannot see them
        let duringGrowth = (0..<60).map { Array("during-growth-\($0)".utf8) }
        for key in duringGrowth { filter.add(key) }
        try #require(StoreFixture.eventually {
            filter.refresh()
            return filter.statistics.scansMerged == 2
        })
        #expect(stored.allSatisfy(filter.mayHold))
        #expect(duringFirst.allSatisfy(filter.mayHold), "added before the growth, not in the table, handed over as unwritten")
        #expect(duringGrowth.allSatisfy(filter.mayHold), "every key added while the growth's scan ran")
    }

    @Test func aFilterThatGrowsKeepsTheKeysOfBatchesNotYetWritten() throws {
        let fixture = StoreFixture()
        var options = fixture.options()
        options.idempotencyFilterKeysMin = 8
        let store = try fixture.open(options)
        defer { store.close() }
        try StoreFixture.setup(store, budgets: [(Self.workspace, 1_000_000)])
        var answers: () -> [String: String] = { [:] }
        try store.withFlusherHeld {
            store.withWriterHeld {
                // One batch of twelve new keys passes the filter's eight: it starts growing while deciding them, and
                // the scan that fills the larger filter runs while the flusher holds them, so it cannot see them.
                answers = Self.submitReserves(store, (0..<12).map { "grow-\($0)" }, prefix: "g")
            }
            try #require(StoreFixture.eventually { store.batchesWaitingForTheFlusher == 1 })
            Thread.sleep(forTimeInterval: 0.2)  // the scan of a table of a few keys ends long before this
        }
        let original = answers()
        #expect(original.count == 12)
        var probes = 0
        try #require(StoreFixture.eventually {
            probes += 1
            _ = try? store.executeBlocking(StoreFixture.reserve("probe\(probes)", 1, key: "probe-\(probes)"))
            return store.idempotencyFilterStatistics.scansMerged >= 1
        })
        try Self.expectReplays(store, original, "keys decided before the filter grew, written after its scan")
        // Growing again (to twice the keys it holds when it starts) keeps every key.
        let more = try Self.reserveConcurrently(store, (0..<500).map { "more-\($0)" }, prefix: "more")
        #expect(StoreFixture.eventually {
            probes += 1
            _ = try? store.executeBlocking(StoreFixture.reserve("probe\(probes)", 1, key: "probe-\(probes)"))
            return store.idempotencyFilterStatistics.scansMerged >= 2
        }, "\(store.idempotencyFilterStatistics)")
        try Self.expectReplays(store, more.merging(original, uniquingKeysWith: { $1 }), "after growing twice")
    }
}
