/// Where the log ends: the last sequence, the chain value after it, and the last writer timestamp.
/// Stored in `meta` in the same write transaction as the events, so it always matches them.
struct LogPosition: Sendable, Equatable {
    var lastSequence: UInt64 = 0
    var chainHead: [UInt8] = EventChain.genesis
    var lastTimestamp: Int64 = 0

    func write(to meta: LMDBDatabase, _ txn: borrowing LMDBWriteTransaction) throws {
        try txn.put(meta, StoreLayout.metaLastSequence, StoreLayout.bigEndian(lastSequence))
        try txn.put(meta, StoreLayout.metaChainHead, chainHead)
        try txn.put(meta, StoreLayout.metaLastTimestamp, StoreLayout.bigEndian(lastTimestamp))
    }

    func write(to meta: LMDBDatabase, _ writes: inout WriteSet) {
        writes.put(meta, StoreLayout.metaLastSequence, StoreLayout.bigEndian(lastSequence))
        writes.put(meta, StoreLayout.metaChainHead, chainHead)
        writes.put(meta, StoreLayout.metaLastTimestamp, StoreLayout.bigEndian(lastTimestamp))
    }

    static func read(from meta: LMDBDatabase, _ txn: borrowing LMDBReadTransaction) throws -> LogPosition {
        var position = LogPosition()
        if let bytes = try txn.get(meta, StoreLayout.metaLastSequence) {
            guard let value = StoreLayout.uint64(bytes) else { throw StoreError(.corrupt, "meta.last_sequence is malformed") }
            position.lastSequence = value
        }
        if let bytes = try txn.get(meta, StoreLayout.metaChainHead) {
            guard bytes.count == 32 else { throw StoreError(.corrupt, "meta.chain_head is malformed") }
            position.chainHead = bytes
        }
        if let bytes = try txn.get(meta, StoreLayout.metaLastTimestamp) {
            guard let value = StoreLayout.uint64(bytes) else { throw StoreError(.corrupt, "meta.last_timestamp is malformed") }
            position.lastTimestamp = Int64(bitPattern: value)
        }
        return position
    }
}
