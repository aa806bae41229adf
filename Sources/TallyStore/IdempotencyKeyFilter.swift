import Foundation
import Synchronization

/// What the writer knows of the idempotency table's keys without reading it: a Bloom filter of every key the
/// table may hold. A reserve (decide, debit, extend, fund) with a new key used to look its key up in the table
/// before deciding, a miss that walks a large B-tree keyed by random client keys (about 7% of the writer's time
/// under load); a key the filter has never seen cannot be in the table, so that lookup is skipped.
///
/// The filter must never say "absent" for a key the table holds: that would decide a retry afresh (a second
/// reservation for one request). Two sources put keys in the table while a store is open, and both feed it:
/// - the writer itself: `Projections.write` adds each key whose record it writes, at the moment the batch is
///   decided (before anything reaches the table; `StoreFiles.catchUp` after a failed batch rewrites only
///   records of batches this writer decided, so added already);
/// - whatever was in the table at open: a scan on a thread of its own reads every key, in chunks of short
///   read transactions (a resize of the map waits for readers), into a filter of its own that the writer
///   merges, between batches, with the keys it added meanwhile. Until then the filter is not `complete` and
///   every key is looked up as before. A key that stays in the table is in every chunk's snapshot at its
///   place in key order, so a chunked scan misses none; keys written meanwhile come from the writer.
/// Nothing else writes the table of an open store (`tally rebuild` and restores need the directory lock).
/// Deleted keys stay in the filter: a false "may hold" costs only the lookup.
///
/// When more keys have been added than the filter was sized for, a larger one is started the same way (fed
/// from then on, filled by a new scan, and given the keys of batches not yet written, which that scan may
/// not see) and replaces it once the scan is merged, up to `capacityMax`; past that the filter only gets
/// less selective.
///
/// Belongs, like the writer's state, to whoever runs the writer's work; only the scans run elsewhere.
final class IdempotencyKeyFilter {
    private let environment: LMDBEnvironment
    private let table: LMDBDatabase
    private let capacityMin: Int
    private let scanChunkKeys: Int
    /// Holds every key of the table once `complete`; fed with each key written.
    private var current: BlockedBloomFilter
    /// The filter that replaces `current` once its scan is merged, fed meanwhile: the first one (the same size,
    /// while not `complete`) or a larger one.
    private var growing: (filter: BlockedBloomFilter, scan: IdempotencyKeyScan)?
    /// Cleared when a scan fails (see `refresh`).
    private var mayGrow = true
    private let counters = Counters()

    /// At most this many keys are planned for (12 bits each: 48 MiB).
    static let capacityMax = 1 << 25

    /// `keysAtOpen` sizes the first filter (twice as many, at least `capacityMin`; nil if it could not be
    /// counted); an empty table needs no scan, so the filter is complete at once (a new store).
    init(environment: LMDBEnvironment, table: LMDBDatabase, keysAtOpen: Int?, capacityMin: Int, scanChunkKeys: Int) {
        self.environment = environment
        self.table = table
        self.capacityMin = max(1, capacityMin)
        self.scanChunkKeys = max(1, scanChunkKeys)
        current = BlockedBloomFilter(capacity: Self.capacity(for: keysAtOpen ?? 0, minimum: self.capacityMin))
        counters.complete.store(keysAtOpen == 0, ordering: .relaxed)
    }

    /// Whether `current` holds every key of the table (before that, every key is looked up).
    private var complete: Bool { counters.complete.load(ordering: .relaxed) }

    /// Starts the scan of the keys at open, if there are any (nothing is unwritten yet).
    func start() {
        guard !complete, growing == nil else { return }
        startScan(capacity: current.capacity, unwritten: [])
    }

    /// Merges a scan that has ended (the writer calls it before each batch).
    func refresh() {
        guard let (filter, scan) = growing, let scanned = scan.take() else { return }
        growing = nil
        guard var scanned else {
            // The table could not be read, and a scan per batch would not help: a complete filter stays
            // complete (only less selective as keys are added); one whose first scan failed stays incomplete,
            // so every key is still looked up.
            mayGrow = false
            return
        }
        scanned.formUnion(filter)
        current = scanned
        counters.complete.store(true, ordering: .relaxed)
        counters.scansMerged.add(1, ordering: .relaxed)
    }

    /// Whether the table may hold `key` (the bytes `StoreLayout.idempotencyKey` gives). False means it does not.
    func mayHold(_ key: [UInt8]) -> Bool {
        guard complete else { return true }
        if current.mayContain(BlockedBloomFilter.hash(key)) { return true }
        counters.skipped.add(1, ordering: .relaxed)
        return false
    }

    /// Notes a key whose record is about to be written to the table.
    func add(_ key: [UInt8]) {
        key.withUnsafeBytes { add($0) }
    }

    func add(_ key: UnsafeRawBufferPointer) {
        let hash = BlockedBloomFilter.hash(key)
        current.insert(hash)
        growing?.filter.insert(hash)
    }

    /// Whether more keys were added than the filter was sized for (and it may still grow).
    var wantsToGrow: Bool {
        complete && mayGrow && growing == nil && current.count > current.capacity && current.capacity < Self.capacityMax
    }

    /// Starts a larger filter and the scan that will fill it. `unwritten` must include every key added
    /// before now whose record may not be in the table yet (the writer passes the records it holds in
    /// memory: those of batches not yet written, which the scan's snapshots may not see).
    func grow(unwritten: some Sequence<[UInt8]>) {
        guard wantsToGrow else { return }
        startScan(capacity: Self.capacity(for: current.count, minimum: capacityMin), unwritten: unwritten)
    }

    private func startScan(capacity: Int, unwritten: some Sequence<[UInt8]>) {
        var filter = BlockedBloomFilter(capacity: capacity)
        for key in unwritten { filter.insert(BlockedBloomFilter.hash(key)) }
        growing = (filter, IdempotencyKeyScan.start(environment: environment, table: table, capacity: capacity, chunkKeys: scanChunkKeys))
    }

    /// Stops a scan under way and waits for its thread (before the environment closes).
    func stop() {
        growing?.scan.cancelAndWait()
        growing = nil
    }

    /// What tests and statistics may read from any thread.
    var statistics: IdempotencyFilterStatistics {
        IdempotencyFilterStatistics(
            complete: complete, lookupsSkipped: counters.skipped.load(ordering: .relaxed),
            scansMerged: counters.scansMerged.load(ordering: .relaxed))
    }

    private static func capacity(for keys: Int, minimum: Int) -> Int {
        min(max(keys.multipliedReportingOverflow(by: 2).overflow ? capacityMax : keys * 2, minimum), capacityMax)
    }

    private final class Counters: Sendable {
        let complete = Atomic<Bool>(false)
        let skipped = Atomic<UInt64>(0)
        let scansMerged = Atomic<UInt64>(0)
    }
}

/// How the idempotency key filter has served so far.
struct IdempotencyFilterStatistics: Sendable, Hashable {
    /// Whether it holds every key of the table (before that, every key is looked up).
    var complete: Bool
    /// Lookups of new keys it made unnecessary.
    var lookupsSkipped: UInt64
    /// Scans of the table merged into it (the one at open, then one per growth).
    var scansMerged: UInt64
}

/// One scan of the idempotency table's keys into a filter, on a thread of its own.
final class IdempotencyKeyScan: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let ended = DispatchSemaphore(value: 0)
    /// Set once the thread is done: the filter, or nil if the scan was cancelled or failed.
    private let outcome = Mutex<BlockedBloomFilter??>(nil)

    private init() {}

    /// `chunkKeys` keys are read per read transaction (`StoreOptions.idempotencyScanChunkKeys`, 20,000: a few
    /// milliseconds, so a resize of the map never waits long for a chunk).
    static func start(environment: LMDBEnvironment, table: LMDBDatabase, capacity: Int, chunkKeys: Int) -> IdempotencyKeyScan {
        let scan = IdempotencyKeyScan()
        let thread = Thread {
            ThreadName.setCurrent("tally-idem-scan")
            let filter = scan.run(environment: environment, table: table, capacity: capacity, chunkKeys: chunkKeys)
            scan.outcome.withLock { $0 = .some(filter) }
            scan.ended.signal()
        }
        thread.name = "tally-idem-scan"
        thread.start()
        return scan
    }

    private func run(environment: LMDBEnvironment, table: LMDBDatabase, capacity: Int, chunkKeys: Int) -> BlockedBloomFilter? {
        var filter = BlockedBloomFilter(capacity: capacity)
        var from: [UInt8]?
        while !cancelled.load(ordering: .relaxed) {
            var resumeAt: [UInt8]?
            do {
                try environment.read { txn in
                    var visited = 0
                    try txn.scanInPlace(table, from: from) { key, _ in
                        filter.insert(BlockedBloomFilter.hash(key))
                        visited += 1
                        guard visited < chunkKeys else {
                            resumeAt = Array(key)  // visited again by the next chunk: harmless
                            return false
                        }
                        return true
                    }
                }
            } catch {
                return nil  // the store is closing or unreadable: the writer goes on looking every key up
            }
            guard let resumeAt else { return filter }
            from = resumeAt
        }
        return nil
    }

    /// The outcome once the scan has ended: `.some(filter)` or `.some(nil)` (cancelled or failed); nil while it runs.
    func take() -> BlockedBloomFilter?? {
        outcome.withLock { $0 }
    }

    func cancelAndWait() {
        cancelled.store(true, ordering: .relaxed)
        ended.wait()
        ended.signal()  // a second wait (stop after stop) returns at once
    }
}

/// A Bloom filter whose bits for one key all lie in one 512-bit block (one cache line): a lookup costs one
/// memory access rather than one per bit, at a slightly higher false-positive rate than a plain Bloom filter
/// (about 1% at 12 bits per key with 6 bits set).
struct BlockedBloomFilter: Sendable {
    private var words: [UInt64]
    private let blocks: Int
    /// The number of keys it is sized for.
    let capacity: Int
    /// Keys inserted (a key inserted twice counts twice).
    private(set) var count = 0

    static let bitsPerKey = 12
    static let bitsPerKeySet = 6

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        blocks = max(1, (self.capacity * Self.bitsPerKey + 511) / 512)
        words = Array(repeating: 0, count: blocks * 8)
    }

    /// The key's 64-bit hash, seeded per process (as Swift's `Hasher` is): a client cannot choose keys that
    /// collide here, and the filter never leaves the process.
    static func hash(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBytes { hash($0) }
    }

    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(bytes: key)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    mutating func insert(_ hash: UInt64) {
        count += 1
        let base = block(hash) * 8
        words.withUnsafeMutableBufferPointer { words in
            for bit in Self.bits(hash) { words[base + bit >> 6] |= 1 << UInt64(bit & 63) }
        }
    }

    func mayContain(_ hash: UInt64) -> Bool {
        let base = block(hash) * 8
        return words.withUnsafeBufferPointer { words in
            for bit in Self.bits(hash) where words[base + bit >> 6] & (1 << UInt64(bit & 63)) == 0 { return false }
            return true
        }
    }

    /// Adds every key of `other`, which must be sized alike.
    mutating func formUnion(_ other: BlockedBloomFilter) {
        precondition(other.blocks == blocks, "filters of different sizes cannot be merged")
        words.withUnsafeMutableBufferPointer { words in
            other.words.withUnsafeBufferPointer { theirs in
                for index in words.indices { words[index] |= theirs[index] }
            }
        }
        count += other.count
    }

    /// The block: the hash's high half scaled to the number of blocks (no division).
    private func block(_ hash: UInt64) -> Int {
        Int(((hash >> 32) &* UInt64(blocks)) >> 32)
    }

    /// The bits within the block: double hashing of the low half (an odd step visits distinct bits).
    private static func bits(_ hash: UInt64) -> some Sequence<Int> {
        let start = Int(hash & 511)
        let step = Int((hash >> 9) & 511) | 1
        return (0..<bitsPerKeySet).lazy.map { (start + $0 * step) & 511 }
    }
}
