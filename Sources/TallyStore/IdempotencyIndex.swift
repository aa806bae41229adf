import Synchronization
import TallyCore

/// Where the rows of the `idempotency` table are, by key: the table keeps its records in the order they were
/// written (each row keyed by an ordinal, `StoreLayout.idempotencyRowKey`), and this index, in memory, maps a
/// digest of each record's full key to the ordinals of the rows that hold that digest.
///
/// Why: client keys are random, so a table ordered by them put every new record on a leaf page of its own, and
/// each batch of N reserves copied and wrote about N pages of a large B-tree (with the branch pages above them):
/// about half of the flusher's work at 16 x 64 (BENCHMARKS.md, "Idempotency records in the order they were
/// written"). In arrival order a batch's records fill a few pages at the table's end. The price is this index:
/// 8 bytes of digest and 8 of ordinal per stored record (about 20 bytes measured, with the dictionary's free
/// slots), built by reading the whole table when a store opens.
///
/// A digest names candidates, never a record: a reader compares the full key stored in each candidate row, the
/// newest first. Several rows may hold one key: a key used again after its record aged out gets a new row, and
/// the newest row is the record (as the newest `apply` is in the ledger). A row that was never written (an
/// ordinal handed out for a batch that failed) is simply not found. The digest is the hash each
/// `IdempotencyKey` takes of its fields when it is made (`fieldsDigest`: the standard library's `Hasher`,
/// seeded per process), so a lookup hashes nothing more and no client can choose keys that pile onto one digest.
///
/// Every part of a store that reads or writes the table goes through one index, which is built before the
/// first lookup (`Projections.indexRecords`) and kept in step by whoever writes rows (`add`, then the rows
/// reach the table).
final class IdempotencyIndex: Sendable {
    private struct Storage {
        /// The newest ordinal for each digest.
        var newest: [UInt64: UInt64] = [:]
        /// Older ordinals of digests that have more than one row, newest first (rare: reuse or a collision).
        var older: [UInt64: [UInt64]] = [:]
        /// The ordinal the next row gets; 0 until it was read from the table.
        var nextOrdinal: UInt64 = 0
        var built = false
        var rows = 0
    }

    private let storage = Mutex(Storage())
    /// The digest of a key (tests replace it to force collisions).
    private let digestOf: (@Sendable (IdempotencyKey) -> UInt64)?

    init(digest: (@Sendable (IdempotencyKey) -> UInt64)? = nil) {
        digestOf = digest
    }

    func digest(_ key: IdempotencyKey) -> UInt64 { digestOf?(key) ?? key.fieldsDigest }

    var isBuilt: Bool { storage.withLock { $0.built } }

    /// The number of rows indexed (written and handed out).
    var rows: Int { storage.withLock { $0.rows } }

    /// Forgets everything and indexes the rows `scan` visits (ordinal and key), in any order.
    func build(_ scan: ((UInt64, IdempotencyKey) -> Void) throws -> Void) rethrows {
        var fresh = Storage()
        var last: UInt64 = 0
        try scan { ordinal, key in
            Self.insert(digest(key), ordinal, into: &fresh)
            last = max(last, ordinal)
        }
        fresh.nextOrdinal = last + 1
        fresh.built = true
        storage.withLock { $0 = fresh }
    }

    /// Hands out the ordinal of a new row for a key with this digest and indexes it: the caller writes the row.
    func add(digest: UInt64) -> UInt64 {
        storage.withLock { storage in
            precondition(storage.nextOrdinal > 0, "the idempotency index hands out ordinals only once it knows the table's end")
            let ordinal = storage.nextOrdinal
            storage.nextOrdinal += 1
            Self.insert(digest, ordinal, into: &storage)
            return ordinal
        }
    }

    /// Forgets a row that is being deleted (its record aged out, `IdempotencySweep`): lookups no longer read it.
    func remove(digest: UInt64, ordinal: UInt64) {
        storage.withLock { storage in
            if storage.newest[digest] == ordinal {
                if var older = storage.older[digest], !older.isEmpty {
                    storage.newest[digest] = older.removeFirst()
                    storage.older[digest] = older.isEmpty ? nil : older
                } else {
                    storage.newest[digest] = nil
                }
            } else if var older = storage.older[digest], let index = older.firstIndex(of: ordinal) {
                older.remove(at: index)
                storage.older[digest] = older.isEmpty ? nil : older
            } else {
                return
            }
            storage.rows -= 1
            Self.shrinkIfSparse(&storage)
        }
    }

    /// The dictionaries' room for digests (tests: `remove` gives memory back).
    var capacity: Int { storage.withLock { $0.newest.capacity + $0.older.capacity } }

    /// Dictionaries keep their room after removals: once the sweep has deleted most of a large backlog (a busy
    /// day followed by a quiet one), the index would hold the peak's memory until a restart. Copied into
    /// dictionaries of their present size when at most an eighth of the room is used; each copy halves the
    /// room at least, so the copies cost, in all, about as much as the insertions they follow.
    private static func shrinkIfSparse(_ storage: inout Storage) {
        shrinkIfSparse(&storage.newest)
        shrinkIfSparse(&storage.older)
    }

    private static func shrinkIfSparse<Value>(_ dictionary: inout [UInt64: Value]) {
        guard dictionary.capacity > shrinkCapacityMin, dictionary.count <= dictionary.capacity / 8 else { return }
        dictionary = dictionary.reduce(into: Dictionary(minimumCapacity: dictionary.count)) { $0[$1.key] = $1.value }
    }

    /// Below this room (a few kilobytes) a dictionary is left as it is.
    private static let shrinkCapacityMin = 1_024

    /// Makes sure the next ordinal follows the table's last row (`last` is read only when needed).
    func knowEnd(_ last: () throws -> UInt64?) rethrows {
        guard storage.withLock({ $0.nextOrdinal == 0 }) else { return }
        let next = (try last() ?? 0) + 1
        storage.withLock { storage in
            if storage.nextOrdinal == 0 { storage.nextOrdinal = next }
        }
    }

    /// The ordinals of rows whose key may have this digest, newest first; empty when no row can hold the key.
    /// Only a built index can say so.
    func candidates(_ digest: UInt64) -> Candidates {
        storage.withLock { storage in
            precondition(storage.built, "idempotency records are looked up through an index built first (Projections.indexRecords)")
            guard let newest = storage.newest[digest] else { return Candidates(newest: nil, older: nil) }
            return Candidates(newest: newest, older: storage.older[digest])
        }
    }

    private static func insert(_ digest: UInt64, _ ordinal: UInt64, into storage: inout Storage) {
        storage.rows += 1
        guard let previous = storage.newest[digest] else {
            storage.newest[digest] = ordinal
            return
        }
        // Rows are mostly added in ordinal order; a scan may visit them in any.
        let (newest, other) = ordinal > previous ? (ordinal, previous) : (previous, ordinal)
        storage.newest[digest] = newest
        var older = storage.older[digest] ?? []
        older.append(other)
        older.sort(by: >)
        storage.older[digest] = older
    }

    /// Candidate rows, newest first, without an array in the common case of one row or none.
    struct Candidates: Sequence {
        let newest: UInt64?
        let older: [UInt64]?

        var isEmpty: Bool { newest == nil }

        func makeIterator() -> Iterator { Iterator(candidates: self) }

        struct Iterator: IteratorProtocol {
            let candidates: Candidates
            var position = 0

            mutating func next() -> UInt64? {
                defer { position += 1 }
                if position == 0 { return candidates.newest }
                guard let older = candidates.older, position - 1 < older.count else { return nil }
                return older[position - 1]
            }
        }
    }
}
