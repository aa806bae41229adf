/// Where the live log starts after trimming: every event up to `sequence` has been removed (it lives in
/// the archive), and `chain` is the chain value after it, to which the first remaining event links.
/// An untrimmed log has base 0 and the genesis chain. Stored in `meta`; absent means untrimmed.
public struct LogBase: Sendable, Hashable {
    public var sequence: UInt64 = 0
    public var chain: [UInt8] = EventChain.genesis

    public init() {}

    public init(sequence: UInt64, chain: [UInt8]) {
        precondition(chain.count == 32, "a chain value is 32 bytes")
        self.sequence = sequence
        self.chain = chain
    }

    func write(to meta: LMDBDatabase, _ txn: borrowing LMDBWriteTransaction) throws {
        try txn.put(meta, StoreLayout.metaBaseSequence, StoreLayout.bigEndian(sequence))
        try txn.put(meta, StoreLayout.metaBaseChain, chain)
    }

    /// Events deleted per write transaction while trimming, so a large trim never holds the writer's
    /// commands for long and never outgrows one transaction's dirty pages.
    static let trimChunkEvents: UInt64 = 10_000

    /// Deletes the next chunk (at most `trimChunkEvents`) of events up to `through` and moves the base up
    /// with them; returns the new base (below `through` when more chunks remain). The chain value stored
    /// with event `through` must be `chain` (the archive's), or nothing is deleted.
    static func trimChunk(
        through: UInt64, chain: [UInt8], lastSequence: UInt64, events: LMDBDatabase, meta: LMDBDatabase,
        _ txn: borrowing LMDBWriteTransaction
    ) throws -> LogBase {
        let base = try LogBase.read(from: meta, txn)
        guard through > base.sequence else { return base }
        guard through <= lastSequence else {
            throw StoreError(.corrupt, "cannot trim through \(through): the log ends at \(lastSequence)")
        }
        guard let stored = try txn.get(events, StoreLayout.sequenceKey(through)), let (storedChain, _) = EventChain.split(stored),
              storedChain == chain else {
            throw StoreError(.corrupt, "event \(through) does not carry the chain value the archive recorded; nothing trimmed")
        }
        let end = min(through, base.sequence + trimChunkEvents)
        guard let endStored = try txn.get(events, StoreLayout.sequenceKey(end)), let (endChain, _) = EventChain.split(endStored) else {
            throw StoreError(.corrupt, "event \(end) is missing from the log")
        }
        // The log's position is its last event; should the trim remove every event, `meta` must hold it.
        let position = try LogPosition.current(events: events, meta: meta, txn)
        for sequence in (base.sequence + 1)...end { try txn.delete(events, StoreLayout.sequenceKey(sequence)) }
        let moved = LogBase(sequence: end, chain: endChain)
        try moved.write(to: meta, txn)
        try position.write(to: meta, txn)
        return moved
    }

    static func read(from meta: LMDBDatabase, _ txn: borrowing LMDBReadTransaction) throws -> LogBase {
        try parse(try txn.get(meta, StoreLayout.metaBaseSequence), try txn.get(meta, StoreLayout.metaBaseChain))
    }

    static func read(from meta: LMDBDatabase, _ txn: borrowing LMDBWriteTransaction) throws -> LogBase {
        try parse(try txn.get(meta, StoreLayout.metaBaseSequence), try txn.get(meta, StoreLayout.metaBaseChain))
    }

    private static func parse(_ sequenceBytes: [UInt8]?, _ chainBytes: [UInt8]?) throws -> LogBase {
        var base = LogBase()
        if let sequenceBytes {
            guard let value = StoreLayout.uint64(sequenceBytes) else { throw StoreError(.corrupt, "meta.base_sequence is malformed") }
            base.sequence = value
        }
        if let chainBytes {
            guard chainBytes.count == 32 else { throw StoreError(.corrupt, "meta.base_chain is malformed") }
            base.chain = chainBytes
        }
        return base
    }
}

/// What a reader needs to know about the live log as a whole: where it starts (after trimming) and ends.
public struct LogBounds: Sendable, Hashable {
    public var base: LogBase
    public var lastSequence: UInt64
    public var chainHead: [UInt8]
    public var lastTimestampMilliseconds: Int64
}

/// Read access to a live event log, from the store that writes it or from a read-only view beside it.
public protocol EventLog: Sendable {
    /// Events from `sequence` on (at most `limit`), with their chain values and records.
    func events(from sequence: UInt64, limit: Int) throws -> [StoredEvent]
    /// The same entries undecoded: for checks of the chain alone, which need only the record bytes.
    func rawEvents(from sequence: UInt64, limit: Int) throws -> [RawStoredEvent]
    /// The same entries in place, in one read: `visit` gets each one's sequence, chain value (32 bytes) and
    /// record, in memory valid only until it returns (copy what it keeps; do little else, the read is open).
    func visitRawEvents(
        from sequence: UInt64, limit: Int, _ visit: (UInt64, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws
    func bounds() throws -> LogBounds
}

extension EventLog {
    public func rawEvents(from sequence: UInt64, limit: Int) throws -> [RawStoredEvent] {
        try events(from: sequence, limit: limit).map { RawStoredEvent(sequence: $0.event.sequence, chain: $0.chain, record: $0.record) }
    }

    public func visitRawEvents(
        from sequence: UInt64, limit: Int, _ visit: (UInt64, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        for event in try rawEvents(from: sequence, limit: limit) {
            try event.chain.withUnsafeBytes { chain in try event.record.withUnsafeBytes { record in try visit(event.sequence, chain, record) } }
        }
    }
}

/// A log entry as stored: its sequence (from the key), chain value and encoded record, not decoded.
public struct RawStoredEvent: Sendable, Hashable {
    public var sequence: UInt64
    public var chain: [UInt8]
    public var record: [UInt8]

    public init(sequence: UInt64, chain: [UInt8], record: [UInt8]) {
        self.sequence = sequence
        self.chain = chain
        self.record = record
    }
}
