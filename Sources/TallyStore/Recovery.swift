import TallyCore

/// What opening a data directory checks before the writer starts.
enum Recovery {
    static func open(_ files: StoreFiles, directory: String, limitBytes: Int, progress: (@Sendable (String) -> Void)? = nil) throws(StoreError) -> (LedgerState, LogPosition) {
        let environment = files.log
        let projections = files.projections
        let meta = files.logMeta
        let events = environment.database(StoreLayout.events)
        do {
            let hasFormat = try environment.read { txn in try txn.get(meta, StoreLayout.metaFormat) }
            if hasFormat == nil {
                let empty = try environment.read { txn in try txn.count(events) == 0 }
                guard empty else {
                    throw StoreError(.corrupt, "the log has events but no format version; the data directory is damaged")
                }
                let projected = try projections.environment.read { txn in
                    try txn.count(projections.reservations) + txn.count(projections.idempotency) + txn.count(projections.budgets)
                }
                guard projected == 0 else {
                    throw StoreError(.corrupt, "the directory holds projections but no format version: a restore that did not finish? Restore again into a new directory")
                }
                try environment.write { txn in
                    try txn.put(meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.formatVersion)))
                    try LogPosition().write(to: meta, txn)
                }
            }
            let position = try environment.read { txn throws -> LogPosition in
                try checkFormat(txn, meta)
                let position = try LogPosition.current(events: events, meta: meta, txn)
                try checkLogEnd(txn, events, position, try LogBase.read(from: meta, txn))
                return position
            }
            try files.prepareProjections(directory, limitBytes: limitBytes, progress: progress)
            let state = try projections.environment.read { txn in try projections.loadWorkingSet(txn) }
            return (state, position)
        } catch {
            throw StoreError(error, doing: "opening the store", otherwise: .corrupt)
        }
    }

    static func checkFormat(_ txn: borrowing LMDBReadTransaction, _ meta: LMDBDatabase) throws {
        guard let bytes = try txn.get(meta, StoreLayout.metaFormat), let version = StoreLayout.uint64(bytes) else {
            throw StoreError(.corrupt, "meta.format_version is missing")
        }
        guard version == UInt64(StoreLayout.formatVersion) else {
            throw StoreError(.formatMismatch, "the data directory has format \(version); this Tally reads format \(StoreLayout.formatVersion)")
        }
    }

    /// The same for the projections' `meta` (their own format since format 3, `StoreLayout.projectionsFormatVersion`).
    static func checkProjectionsFormat(_ txn: borrowing LMDBReadTransaction, _ meta: LMDBDatabase) throws {
        guard let bytes = try txn.get(meta, StoreLayout.metaFormat), let version = StoreLayout.uint64(bytes) else {
            throw StoreError(.corrupt, "the projections' meta.format_version is missing")
        }
        if version == UInt64(StoreLayout.projectionsFormatWithKeyOrderedRecords) {
            throw StoreError(.formatMismatch, """
                the projections have format \(version) (idempotency records ordered by key): open the directory once with tallyd \
                to convert them to format \(StoreLayout.projectionsFormatVersion)
                """)
        }
        guard version == UInt64(StoreLayout.projectionsFormatVersion) else {
            throw StoreError(.formatMismatch, "the projections have format \(version); this Tally reads format \(StoreLayout.projectionsFormatVersion)")
        }
    }

    /// The log's position (`LogPosition.current`) must be exactly at its last event, with that event's chain
    /// value, linked from its predecessor (or from the trim base when the log was trimmed
    /// right up to it; a log trimmed empty must end exactly at its base).
    static func checkLogEnd(_ txn: borrowing LMDBReadTransaction, _ events: LMDBDatabase, _ position: LogPosition, _ base: LogBase) throws {
        guard let last = try txn.last(events) else {
            guard position.lastSequence == base.sequence else {
                throw StoreError(.corrupt, "meta says the log ends at \(position.lastSequence) but the log is empty (trimmed through \(base.sequence))")
            }
            guard position.chainHead == base.chain else { throw StoreError(.corrupt, "meta.chain_head does not match the trim base") }
            return
        }
        guard let sequence = StoreLayout.sequence(fromKey: last.key), let (chain, record) = EventChain.split(last.value) else {
            throw StoreError(.corrupt, "the last log entry is malformed")
        }
        guard sequence == position.lastSequence else {
            throw StoreError(.corrupt, "meta says the log ends at \(position.lastSequence) but its last event is \(sequence); the data directory is damaged")
        }
        guard chain == position.chainHead else { throw StoreError(.corrupt, "meta.chain_head does not match the last event \(sequence)") }
        guard sequence > base.sequence else {
            throw StoreError(.corrupt, "the log ends at \(sequence), below its trim base \(base.sequence)")
        }
        var previous = base.chain
        if sequence - 1 > base.sequence {
            guard let stored = try txn.get(events, StoreLayout.sequenceKey(sequence - 1)), let (chain, _) = EventChain.split(stored) else {
                throw StoreError(.corrupt, "event \(sequence - 1) is missing")
            }
            previous = chain
        }
        guard EventChain.link(previous, record) == chain else {
            throw StoreError(.corrupt, "event \(sequence) does not link to event \(sequence - 1): the chain is broken")
        }
    }
}
