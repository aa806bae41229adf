import Foundation
import Synchronization
import TallyCore

/// A view of a data directory's event log for tools (archive seal, replay, audit). Shared, it takes no lock
/// and never writes, so it is safe beside `tallyd` (LMDB readers do not block the writer). Exclusive, it
/// holds the directory like a store does, and may trim the log, but starts no writer: nothing else is
/// ever written through it.
public final class LogReader: EventLog {
    public let directory: String
    /// The log's environment.
    let environment: LMDBEnvironment
    private let lock: DirectoryLock?
    /// The projections' environment, opened the first time a projection is read (the archiver and replays
    /// read the log only).
    private let openedProjections = Mutex<Projections?>(nil)

    /// `exclusive` takes the directory's lock (and fails with `.locked` while `tallyd` runs).
    public init(directory: String, exclusive: Bool = false) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw StoreError(.io, "\(directory) holds no Tally data (no data.mdb)")
        }
        self.directory = directory
        lock = exclusive ? try DirectoryLock(directory: directory) : nil
        do {
            environment = try StoreFiles.openLog(directory, readOnly: !exclusive)
        } catch {
            lock?.release()
            throw error
        }
    }

    deinit {
        openedProjections.withLock { $0?.environment.close() }
        environment.close()
        lock?.release()
    }

    /// The projections, read-only.
    func projections() throws(StoreError) -> Projections {
        try openedProjections.withLock { (opened: inout Projections?) throws(StoreError) -> Projections in
            if let opened { return opened }
            let projections = try StoreFiles.openProjections(directory, readOnly: true)
            opened = projections
            return projections
        }
    }

    /// Removes archived events up to `sequence` from the log, as `LedgerStore.trimLog` does: the chain
    /// value after `sequence` must be `chain`, or nothing is removed. Only for an exclusive reader.
    @available(*, noasync, message: "trimming runs write transactions")
    public func trimLog(through sequence: UInt64, chain: [UInt8]) throws(StoreError) -> LogBase {
        guard lock != nil else { throw StoreError(.locked, "trimming \(directory) needs an exclusive reader") }
        let meta = environment.database(StoreLayout.meta)
        let events = environment.database(StoreLayout.events)
        do {
            let last = try environment.read { txn in try LogPosition.current(events: events, meta: meta, txn).lastSequence }
            var base = LogBase()
            var done = false
            while !done {
                base = try environment.write { txn in
                    try LogBase.trimChunk(through: sequence, chain: chain, lastSequence: last, events: events, meta: meta, txn)
                }
                done = base.sequence >= sequence
            }
            return base
        } catch {
            throw StoreError(error, doing: "trimming \(directory)")
        }
    }

    public func events(from sequence: UInt64, limit: Int) throws -> [StoredEvent] {
        try environment.readEvents(from: sequence, limit: limit)
    }

    public func rawEvents(from sequence: UInt64, limit: Int) throws -> [RawStoredEvent] {
        try environment.readRawEvents(from: sequence, limit: limit)
    }

    public func visitRawEvents(
        from sequence: UInt64, limit: Int, _ visit: (UInt64, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try environment.visitRawEvents(from: sequence, limit: limit, visit)
    }

    public func bounds() throws -> LogBounds {
        try environment.readBounds()
    }

    /// Every projection as stored and the log sequence they cover, read in one transaction so they agree
    /// even while `tallyd` keeps writing.
    public func storedState() throws -> (state: LedgerState, lastSequence: UInt64) {
        let projections = try projections()
        return try projections.environment.read { txn in
            let position = try LogPosition.read(from: projections.meta, txn)
            return (try projections.loadEverything(txn), position.lastSequence)
        }
    }
}

/// The stored working set, with the sequence the projections are at and the size of the stored history,
/// read in one transaction (what an audit compares without loading the history).
public struct StoredWorkingSet: Sendable {
    public var state: LedgerState
    public var lastSequence: UInt64
    /// Stored reservations that are not ACTIVE.
    public var terminalReservations: Int
    public var idempotencyRecords: Int
}

extension LogReader {
    public func storedWorkingSet() throws -> StoredWorkingSet {
        let projections = try projections()
        return try projections.environment.read { txn in
            let position = try LogPosition.read(from: projections.meta, txn)
            let state = try projections.loadWorkingSet(txn)
            return StoredWorkingSet(
                state: state, lastSequence: position.lastSequence,
                terminalReservations: try txn.count(projections.reservations) - state.reservations.count,
                idempotencyRecords: try txn.count(projections.idempotency))
        }
    }

    /// The stored encodings (`ProjectionCodec`) of these reservations, nil where none is stored, read in one
    /// transaction.
    public func storedReservations(_ ids: [ReservationID]) throws -> [[UInt8]?] {
        let projections = try projections()
        return try projections.environment.read { txn in try projections.storedReservations(ids, txn) }
    }

    /// The stored idempotency records under these keys, nil where none is stored, read in one transaction.
    public func storedIdempotencyRecords(_ keys: [IdempotencyKey]) throws -> [IdempotencyRecord?] {
        let projections = try projections()
        return try projections.environment.read { txn in try projections.storedRecords(keys, txn) }
    }
}

extension LedgerStore: EventLog {
    public func bounds() throws -> LogBounds {
        try environment.readBounds()
    }
}

extension LMDBEnvironment {
    func readEvents(from sequence: UInt64, limit: Int) throws -> [StoredEvent] {
        var result: [StoredEvent] = []
        let events = database(StoreLayout.events)
        try read { txn in
            try txn.scan(events, from: StoreLayout.sequenceKey(sequence)) { key, value in
                guard result.count < limit else { return false }
                result.append(try StoredEvent(key: key, value: value))
                return true
            }
        }
        return result
    }

    func visitRawEvents(
        from sequence: UInt64, limit: Int, _ visit: (UInt64, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var visited = 0
        let events = database(StoreLayout.events)
        try read { txn in
            try txn.scanInPlace(events, from: StoreLayout.sequenceKey(sequence)) { key, value in
                guard visited < limit else { return false }
                guard let sequence = StoreLayout.sequence(fromKey: key), let (chain, record) = EventChain.split(value) else {
                    throw StoreError(.corrupt, "a log entry is malformed")
                }
                try visit(sequence, chain, record)
                visited += 1
                return true
            }
        }
    }

    /// `visitRawEvents`, each entry copied out.
    func readRawEvents(from sequence: UInt64, limit: Int) throws -> [RawStoredEvent] {
        var result: [RawStoredEvent] = []
        try visitRawEvents(from: sequence, limit: limit) { sequence, chain, record in
            result.append(RawStoredEvent(sequence: sequence, chain: Array(chain), record: Array(record)))
        }
        return result
    }

    func readBounds() throws -> LogBounds {
        let meta = database(StoreLayout.meta)
        return try read { txn in
            let position = try LogPosition.current(events: database(StoreLayout.events), meta: meta, txn)
            return LogBounds(
                base: try LogBase.read(from: meta, txn), lastSequence: position.lastSequence,
                chainHead: position.chainHead, lastTimestampMilliseconds: position.lastTimestamp)
        }
    }
}
