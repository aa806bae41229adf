/// The puts and deletes of one batch, as bytes, in the order they were decided.
///
/// The writer builds it while it decides (encoding events and projections on its own thread) and the
/// flusher replays it inside one write transaction: building and writing are separate steps so that the
/// writer can decide the next batch while this one is being made durable. Replaying a write set is
/// idempotent within a fresh transaction, which is what lets a batch be retried after the map has grown.
struct WriteSet: Sendable {
    enum Operation: Sendable {
        case put(LMDBDatabase, key: [UInt8], value: [UInt8], append: Bool)
        case delete(LMDBDatabase, key: [UInt8])
    }

    private(set) var operations: [Operation] = []

    var isEmpty: Bool { operations.isEmpty }

    mutating func put(_ database: LMDBDatabase, _ key: [UInt8], _ value: [UInt8], append: Bool = false) {
        operations.append(.put(database, key: key, value: value, append: append))
    }

    mutating func delete(_ database: LMDBDatabase, _ key: [UInt8]) {
        operations.append(.delete(database, key: key))
    }

    func apply(_ txn: borrowing LMDBWriteTransaction) throws(LMDBError) {
        for operation in operations {
            switch operation {
            case .put(let database, let key, let value, let append): try txn.put(database, key, value, append: append)
            case .delete(let database, let key): try txn.delete(database, key)
            }
        }
    }
}
