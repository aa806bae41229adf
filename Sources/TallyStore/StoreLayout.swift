import Crypto
import TallyCore

/// The tables of a data directory and how their keys are built.
///
/// Keys are plain bytes that sort usefully (sequences big-endian, expiry deadlines biased so that signed
/// order is byte order). LMDB keys are at most 511 bytes, so a key that could be longer keeps its first
/// 478 bytes (for ordering and prefix scans), a 0xff byte, followed by the SHA-256 of the whole key.
enum StoreLayout {
    /// Format 2 keeps the projections in an environment of their own (`projections/`); format 1 kept
    /// every table in the data directory's environment and is upgraded at open (`StoreFiles`).
    static let formatVersion: UInt32 = 2
    static let formatVersionWithOneEnvironment: UInt32 = 1
    /// The projections' own format (their `meta`): 3 keeps idempotency records in the order they were written
    /// (`idempotencyRowKey`, found through `IdempotencyIndex`); 2 kept them ordered by their keys and is
    /// converted at open (`Projections.convertKeyOrderedRecords`). Before format 3 the projections carried the
    /// log's format number.
    static let projectionsFormatVersion: UInt32 = 3
    static let projectionsFormatWithKeyOrderedRecords: UInt32 = 2
    static let keyBytesMax = 511

    static let events = "events"
    static let budgets = "budgets"
    static let reservations = "reservations"
    static let expiry = "expiry"
    static let idempotency = "idempotency"
    static let tenants = "tenants"
    static let apiKeys = "api_keys"
    static let meta = "meta"
    static let projections = [budgets, reservations, expiry, idempotency, tenants, apiKeys]
    /// The log's environment (the data directory itself): events, and `meta` with the log's position and base.
    static let logTables = [events, meta]
    /// The projections' environment: the projections, and a `meta` of its own with the format and the log
    /// position they cover.
    static let projectionTables = projections + [meta]
    /// Subdirectory of a data directory that holds the projections' environment.
    static let projectionsDirectory = "projections"
    /// Present (holding the boot id) while a server writes projections without waiting for the disk.
    static let unsyncedMarker = "projections.unsynced"

    static let metaFormat: [UInt8] = Array("format_version".utf8)
    static let metaLastSequence: [UInt8] = Array("last_sequence".utf8)
    static let metaChainHead: [UInt8] = Array("chain_head".utf8)
    static let metaLastTimestamp: [UInt8] = Array("last_timestamp".utf8)
    static let metaBaseSequence: [UInt8] = Array("base_sequence".utf8)
    static let metaBaseChain: [UInt8] = Array("base_chain".utf8)

    static func bounded(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count > keyBytesMax else { return bytes }
        return Array(bytes.prefix(keyBytesMax - 33)) + [0xff] + Array(SHA256.hash(data: bytes))
    }

    /// `bounded` for a key appended to `bytes` from `start` on, in place.
    static func bound(_ bytes: inout [UInt8], keyFrom start: Int) {
        guard bytes.count - start > keyBytesMax else { return }
        let key = bounded(Array(bytes[start...]))
        bytes.removeSubrange(start...)
        bytes.append(contentsOf: key)
    }

    static func sequenceKey(_ sequence: UInt64) -> [UInt8] { bigEndian(sequence) }

    static func sequence(fromKey key: some Collection<UInt8>) -> UInt64? {
        guard key.count == 8 else { return nil }
        return key.reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func budgetKey(_ key: BudgetKey) -> [UInt8] { boundedKey { appendBudgetKey(key, to: &$0) } }

    static func reservationKey(_ id: ReservationID) -> [UInt8] { bounded(id.withUTF8 { Array($0) }) }

    /// The key a builder below appends, as an array of its own.
    private static func boundedKey(_ append: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes: [UInt8] = []
        append(&bytes)
        return bounded(bytes)
    }

    // The key builders append a key's bytes, before `bounded`, to a buffer: the writer's `WriteSet` builds its
    // keys in its own buffer this way, without an array per key.

    static func appendBudgetKey(_ key: BudgetKey, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: key.scope.rawValue.utf8)
        bytes.append(0)
        bytes.append(key.unit.rawValue)
    }

    static func appendReservationKey(_ id: ReservationID, to bytes: inout [UInt8]) { id.withUTF8 { bytes.append(contentsOf: $0) } }

    static func appendIdempotencyKey(_ key: IdempotencyKey, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: key.tenant.utf8)
        bytes.append(0)
        bytes.append(key.endpoint.rawValue)
        bytes.append(contentsOf: key.qualifier.utf8)
        bytes.append(0)
        bytes.append(contentsOf: key.key.utf8)
    }

    static func appendExpiryKey(deadline: Int64, id: ReservationID, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: (UInt64(bitPattern: deadline) ^ (1 << 63)).bigEndian) { bytes.append(contentsOf: $0) }
        id.withUTF8 { bytes.append(contentsOf: $0) }
    }

    static func tenantKey(_ id: String) -> [UInt8] { Array(id.utf8) }

    static func apiKeyKey(_ hash: Digest256) -> [UInt8] { hash.bytes }

    /// The key of an idempotency row: its ordinal, big-endian (rows sort in the order they were written).
    static func idempotencyRowKey(_ ordinal: UInt64) -> [UInt8] { bigEndian(ordinal) }

    static func ordinal(fromRowKey key: some Collection<UInt8>) -> UInt64? { sequence(fromKey: key) }

    static func appendRowKey(_ ordinal: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: ordinal.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// The table key of format 2 (ordered by the idempotency key), read only to convert such a table.
    static func idempotencyKey(_ key: IdempotencyKey) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(key.tenant.utf8.count + 2 + key.qualifier.utf8.count + 1 + key.key.utf8.count)
        appendIdempotencyKey(key, to: &bytes)
        return bounded(bytes)
    }

    /// Deadline first (biased so negative instants sort first), then the reservation id.
    static func expiryKey(deadline: Int64, id: ReservationID) -> [UInt8] { boundedKey { appendExpiryKey(deadline: deadline, id: id, to: &$0) } }

    static func deadline(fromExpiryKey key: [UInt8]) -> Int64 {
        let biased = key.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int64(bitPattern: biased ^ (1 << 63))
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    static func bigEndian(_ value: Int64) -> [UInt8] { bigEndian(UInt64(bitPattern: value)) }

    static func uint64(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// The hash chain over the log: `chain(n) = SHA-256(chain(n-1) || record(n))`, with 32 zero bytes before
/// the first event. A stored event is its chain value followed by its encoded record.
public enum EventChain {
    public static let genesis = [UInt8](repeating: 0, count: 32)

    public static func link(_ previous: [UInt8], _ record: [UInt8]) -> [UInt8] {
        record.withUnsafeBytes { link(previous, $0) }
    }

    public static func link(_ previous: [UInt8], _ record: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(bufferPointer: record)
        return hasher.finalize().withUnsafeBytes { Array($0) }  // one allocation (`Array(digest)` grows one by one)
    }

    /// The chain values after each of `count` records held in one buffer (record `index` at
    /// `range(index)`), back to back, 32 bytes each: a segment's chain without an array per event.
    /// `chains` is emptied first and keeps its capacity (a reader of many segments reuses one buffer).
    public static func links(
        from entry: [UInt8], records: UnsafeRawBufferPointer, count: Int, range: (Int) -> Range<Int>, into chains: inout [UInt8]
    ) {
        chains.removeAll(keepingCapacity: true)
        chains.reserveCapacity(32 * count)
        var hasher = SHA256()
        hasher.update(data: entry)
        for index in 0..<count {
            if index > 0 {
                hasher = SHA256()
                chains.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[(chains.count - 32)...])) }
            }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: records[range(index)]))
            hasher.finalize().withUnsafeBytes { chains.append(contentsOf: $0) }
        }
    }

    /// A stored log entry's chain value (its first 32 bytes) and record (the rest, never empty), copied out.
    static func split(_ stored: [UInt8]) -> (chain: [UInt8], record: [UInt8])? {
        stored.withUnsafeBytes { bytes in split(bytes).map { (Array($0.chain), Array($0.record)) } }
    }

    /// `split` in place, for entries read in LMDB's memory.
    static func split(_ stored: UnsafeRawBufferPointer) -> (chain: UnsafeRawBufferPointer, record: UnsafeRawBufferPointer)? {
        guard stored.count > 32 else { return nil }
        return (UnsafeRawBufferPointer(rebasing: stored[..<32]), UnsafeRawBufferPointer(rebasing: stored[32...]))
    }
}
