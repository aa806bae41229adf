import Foundation
import TallyCore

/// A new data directory being filled from archives (disaster recovery): settled history first, in batches
/// as a replay drops it, then the working set and the log's base. Nothing but the restore ever held it, and
/// it becomes a store only when `finish` writes its metadata, so an interrupted restore is a directory
/// without a store format that `LedgerStore` refuses to open rather than a store with missing history.
@available(*, noasync, message: "a restore runs write transactions")
public final class RestoringStore {
    public let directory: String
    private let lock: DirectoryLock
    private let files: StoreFiles
    private var finished = false
    /// Idempotency records that aged out by then (epoch milliseconds) are not written (`IdempotencySweep`).
    private let now: Int64

    /// Creates the directory; refuses one that already holds a store. Idempotency records that aged out before
    /// `now` (the system clock unless given) are left out, as a server would delete them.
    public init(directory: String, now: Int64 = StoreOptions.wallClockMilliseconds()) throws(StoreError) {
        self.now = now
        guard !FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw StoreError(.io, "\(directory) already holds a Tally store; restore into a new directory")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.io, "cannot create \(directory): \(error)")
        }
        self.directory = directory
        lock = try DirectoryLock(directory: directory)
        do {
            files = try StoreFiles.openBoth(directory, readOnly: false)
        } catch {
            lock.release()
            throw error
        }
    }

    deinit {
        files.close()
        lock.release()
    }

    /// Writes the settled reservations and idempotency records of `history` (later batches overwrite
    /// earlier ones, as a reused idempotency key does in the ledger).
    public func writeHistory(_ history: LedgerState) throws(StoreError) {
        try write(history.historyKeys, from: history) { _ in }
    }

    /// Writes the working set of `origin` (its history too, if it still holds any) with the position the
    /// projections cover, then the log's base and position, which makes the directory a store.
    public func finish(origin: ReplayOrigin) throws(StoreError) {
        precondition(!finished, "a restore finishes once")
        let position = LogPosition(lastSequence: origin.base.sequence, chainHead: origin.base.chain, lastTimestamp: origin.lastTimestampMilliseconds)
        let projections = files.projections
        try write(Maintenance.everything(in: origin.state), from: origin.state) { txn in
            try txn.put(projections.meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.projectionsFormatVersion)))
            try position.write(to: projections.meta, txn)
        }
        let meta = files.logMeta
        try files.log.writeGrowing(doing: "restoring into \(directory)", limitBytes: Maintenance.toolMapSizeBytesMax) { txn in
            try txn.put(meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.formatVersion)))
            try origin.base.write(to: meta, txn)
            try position.write(to: meta, txn)
        }
        finished = true
    }

    private func write(_ keys: TouchedKeys, from state: LedgerState, then: (borrowing LMDBWriteTransaction) throws -> Void) throws(StoreError) {
        precondition(!finished, "nothing is written after a restore finished")
        let projections = files.projections
        try projections.environment.writeGrowing(doing: "restoring into \(directory)", limitBytes: Maintenance.toolMapSizeBytesMax) { txn in
            try projections.write(IdempotencySweep.droppingAgedOutRecords(keys, of: state, now: now), from: state, oldDeadlines: [:], in: txn)
            try then(txn)
        }
    }
}

extension LMDBEnvironment {
    /// One write transaction for tools that fill a store in many batches (restore, rebuild): when the map is
    /// full it is doubled (up to `limitBytes`) and the transaction retried. Only where no other transaction
    /// of this environment is open (growing waits for them).
    @available(*, noasync, message: "runs write transactions")
    func writeGrowing(doing: String, limitBytes: Int, _ body: (borrowing LMDBWriteTransaction) throws -> Void) throws(StoreError) {
        // Each retry doubles the map, so a few dozen reach any size the limit allows.
        for _ in 0..<64 {
            do {
                try write { txn in try body(txn) }
                return
            } catch let error as LMDBError where error.isMapFull {
                let grown: Bool
                do { grown = try growMap(limitBytes: limitBytes) } catch { throw StoreError(error, doing: doing) }
                guard grown else { throw StoreError(error, doing: doing) }
            } catch {
                throw StoreError(error, doing: doing)
            }
        }
        throw StoreError(.io, "\(doing): the map did not grow enough")
    }
}
