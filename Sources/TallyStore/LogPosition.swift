import TallyCore

/// Where the log ends: the last sequence, the chain value after it, and the last writer timestamp.
///
/// The log's end is its last event (`current`): a batch writes nothing but its events to the log, one page
/// fewer to fsync than when `meta` was rewritten with every batch. The log's `meta` records a position only
/// when the log is created, restored or trimmed (when it may hold no event to derive it from): `current`
/// is the later of the two. The projections' `meta` records the position they cover with every batch.
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
        try parse(
            try txn.get(meta, StoreLayout.metaLastSequence), try txn.get(meta, StoreLayout.metaChainHead),
            try txn.get(meta, StoreLayout.metaLastTimestamp))
    }

    static func read(from meta: LMDBDatabase, _ txn: borrowing LMDBWriteTransaction) throws -> LogPosition {
        try parse(
            try txn.get(meta, StoreLayout.metaLastSequence), try txn.get(meta, StoreLayout.metaChainHead),
            try txn.get(meta, StoreLayout.metaLastTimestamp))
    }

    private static func parse(_ sequence: [UInt8]?, _ chain: [UInt8]?, _ timestamp: [UInt8]?) throws -> LogPosition {
        var position = LogPosition()
        if let sequence {
            guard let value = StoreLayout.uint64(sequence) else { throw StoreError(.corrupt, "meta.last_sequence is malformed") }
            position.lastSequence = value
        }
        if let chain {
            guard chain.count == 32 else { throw StoreError(.corrupt, "meta.chain_head is malformed") }
            position.chainHead = chain
        }
        if let timestamp {
            guard let value = StoreLayout.uint64(timestamp) else { throw StoreError(.corrupt, "meta.last_timestamp is malformed") }
            position.lastTimestamp = Int64(bitPattern: value)
        }
        return position
    }
}

extension LogPosition {
    /// The log's end: its last event, or the position `meta` recorded when no event lies past it.
    static func current(events: LMDBDatabase, meta: LMDBDatabase, _ txn: borrowing LMDBReadTransaction) throws -> LogPosition {
        try derive(floor: try read(from: meta, txn), last: try txn.last(events))
    }

    static func current(events: LMDBDatabase, meta: LMDBDatabase, _ txn: borrowing LMDBWriteTransaction) throws -> LogPosition {
        let floor = try read(from: meta, txn)
        return try derive(floor: floor, last: try txn.last(events))
    }

    private static func derive(floor: LogPosition, last: (key: [UInt8], value: [UInt8])?) throws -> LogPosition {
        guard let last else { return floor }
        guard let sequence = StoreLayout.sequence(fromKey: last.key), let (chain, record) = EventChain.split(last.value) else {
            throw StoreError(.corrupt, "the last log entry is malformed")
        }
        guard sequence > floor.lastSequence else {
            guard sequence == floor.lastSequence else {
                throw StoreError(.corrupt, "meta says the log reached sequence \(floor.lastSequence) but its last event is \(sequence)")
            }
            return floor
        }
        let event: Event
        do { event = try EventCodec.decode(record) } catch {
            throw StoreError(.corrupt, "the last log entry (sequence \(sequence)) cannot be decoded: \(error)")
        }
        return LogPosition(lastSequence: sequence, chainHead: chain, lastTimestamp: event.timestampMilliseconds)
    }
}
