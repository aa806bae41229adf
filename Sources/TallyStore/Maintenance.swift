import Foundation
import TallyCore

/// What `verify` found: how much it read and every discrepancy, each naming where it is.
public struct VerifyReport: Sendable {
    public var eventsChecked: UInt64 = 0
    public var findings: [String] = []
    /// Events at the log's end that the projections do not cover yet: a running server writes them right
    /// after the log, and after a crash the next open replays them. Not a finding.
    public var eventsBehind: UInt64 = 0
    /// The machine stopped while a server wrote the projections without waiting for the disk: they may be
    /// damaged (findings about them are expected), and `tallyd` rebuilds them at its next start.
    public var projectionsMayBeDamaged = false
    /// Called now and then with the number of events replayed so far (for a progress line).
    public var progress: (@Sendable (UInt64) -> Void)?
    public var isClean: Bool { findings.isEmpty }
}

/// The state a replay of the live log starts from: empty for an untrimmed log, otherwise the state as of
/// the trim base (from an archive checkpoint), which must be exactly at the base `meta` records.
public struct ReplayOrigin: Sendable {
    public var base: LogBase
    public var lastTimestampMilliseconds: Int64
    public var state: LedgerState

    public init(base: LogBase = LogBase(), lastTimestampMilliseconds: Int64 = 0, state: LedgerState = LedgerState()) {
        self.base = base
        self.lastTimestampMilliseconds = lastTimestampMilliseconds
        self.state = state
    }
}

/// `tally verify` and `tally rebuild`: replay the log in memory, check the chain, compare with (or
/// rewrite) the stored projections.
public enum Maintenance {
    /// Where the live log of `directory` starts (after any trimming), so a caller can find the origin.
    public static func logBase(directory: String) throws(StoreError) -> LogBase {
        try StoreFiles.requireStore(directory)
        let environment = try StoreFiles.openLog(directory, readOnly: true)
        defer { environment.close() }
        do {
            return try environment.read { txn in try LogBase.read(from: environment.database(StoreLayout.meta), txn) }
        } catch {
            throw StoreError(error, doing: "reading \(directory)")
        }
    }

    /// Replays the log read-only and compares it with the stored projections. Safe while `tallyd` runs:
    /// it only reads (LMDB readers never block the writer). Memory stays bounded by the working set: the
    /// settled history is compared with the store as the replay goes. Idempotency records that aged out
    /// before `now` (epoch milliseconds; the system clock unless given) may be missing: a server deletes them.
    public static func verify(
        directory: String, origin: ReplayOrigin = ReplayOrigin(), now: Int64 = StoreOptions.wallClockMilliseconds(),
        progress: (@Sendable (UInt64) -> Void)? = nil
    ) throws(StoreError) -> VerifyReport {
        let files = try StoreFiles.open(directory, readOnly: true)
        defer { files.close() }
        let environment = files.log
        let projections = files.projections
        var report = VerifyReport()
        report.progress = progress
        report.projectionsMayBeDamaged = !StoreFiles.projectionsSurvivedLastRun(directory)
        do {
            // One read transaction in each environment: a running server writes the log first and the
            // projections after it, so the projections' transaction, begun first, is never ahead of the log's.
            try projections.environment.read { txn in
                try environment.read { logTxn in
                    // The history is compared with the store chunk by chunk and dropped, so verifying a long
                    // log needs memory for its working set only.
                    var history = HistoryComparison(recordsAgedOutBefore: now)
                    let covered = try LogPosition.read(from: projections.meta, txn)
                    let (state, position) = try replay(logTxn, environment, origin, &report, through: covered.lastSequence) { state in
                        try history.compare(
                            state, reservations: { try projections.storedReservations($0, txn) }, records: { try projections.storedRecords($0, txn) })
                        state.dropHistory()
                    }
                    let meta = environment.database(StoreLayout.meta)
                    try Recovery.checkFormat(logTxn, meta)
                    try Recovery.checkProjectionsFormat(txn, projections.meta)
                    let stored = try LogPosition.read(from: meta, logTxn)
                    if stored.lastSequence > position.lastSequence {
                        report.findings.append("meta.last_sequence is \(stored.lastSequence) but the log ends at \(position.lastSequence)")
                    } else if stored.lastSequence == position.lastSequence, stored.chainHead != position.chainHead {
                        report.findings.append("meta.chain_head does not match the chain computed over the log")
                    }
                    if covered.lastSequence > position.lastSequence {
                        report.findings.append("the projections cover sequence \(covered.lastSequence), past the log's end at \(position.lastSequence)")
                    } else if covered.lastSequence == position.lastSequence, covered.chainHead != position.chainHead {
                        report.findings.append("the projections' chain head does not match the log's")
                    }
                    report.eventsBehind = position.lastSequence - min(position.lastSequence, covered.lastSequence)
                    let actual = try projections.loadWorkingSet(txn)
                    report.findings += differences(expected: state, actual: actual)
                    report.findings += try history.differences(
                        storedSettledReservations: try txn.count(projections.reservations) - actual.reservations.count,
                        storedRecords: try { () throws -> Int in
                            try projections.indexRecordsIfNeeded(txn)
                            return try projections.storedRecordCount(txn)
                        }(),
                        reservations: { try projections.storedReservations($0, txn) }, records: { try projections.storedRecords($0, txn) })
                    report.findings += try expiryIndexDifferences(state, projections, txn)
                }
            }
        } catch {
            throw StoreError(error, doing: "verifying \(directory)")
        }
        return report
    }

    /// Drops every projection and rebuilds it from the log. Refuses while another process holds the
    /// directory, and refuses a log whose chain or events do not check out (then nothing is changed).
    ///
    /// Two passes, each in memory bounded by the working set: the first checks the log; the second clears
    /// the projections and their format version, writes the settled history chunk by chunk as the replay
    /// drops it, and writes the working set, the position covered and the format version last. Until that
    /// last transaction the projections have no format version, so an interrupted rebuild is done again at
    /// the next open (from the log, when it is untrimmed) or refused there with what to run.
    /// Idempotency records that aged out before `now` (the system clock unless given) are left out, as a server
    /// would delete them (`IdempotencySweep`).
    @available(*, noasync, message: "a rebuild runs write transactions")
    public static func rebuild(
        directory: String, origin: ReplayOrigin = ReplayOrigin(), now: Int64 = StoreOptions.wallClockMilliseconds(),
        progress: (@Sendable (UInt64) -> Void)? = nil
    ) throws(StoreError) -> UInt64 {
        let lock = try DirectoryLock(directory: directory)
        defer { withExtendedLifetime(lock) {} }
        let files = try StoreFiles.open(directory, readOnly: false)
        defer { files.close() }
        let environment = files.log
        let projections = files.projections
        var report = VerifyReport()
        report.progress = progress
        let doing = "rebuilding \(directory)"
        do {
            let (_, position) = try environment.read { txn in
                try replay(txn, environment, origin, &report) { state in state.dropHistory() }
            }
            guard report.isClean else {
                throw StoreError(.corrupt, "the log itself is damaged, nothing was rebuilt:\n" + report.findings.joined(separator: "\n"))
            }
            let meta = projections.meta
            try projections.environment.writeGrowing(doing: doing, limitBytes: toolMapSizeBytesMax) { txn in
                for name in StoreLayout.projectionTables { try txn.clear(projections.environment.database(name)) }
            }
            var state = origin.state
            var next = origin.base.sequence + 1
            while next <= position.lastSequence {
                let events = try environment.readEvents(from: next, limit: 8_192)
                guard let last = events.last?.event.sequence, events.first?.event.sequence == next else {
                    throw StoreError(.corrupt, "event \(next) is missing from the log on the second pass")
                }
                for stored in events where stored.event.sequence <= position.lastSequence {
                    try Ledger.apply(stored.event.body, to: &state)
                }
                next = last + 1
                try projections.environment.writeGrowing(doing: doing, limitBytes: toolMapSizeBytesMax) { txn in
                    try projections.write(IdempotencySweep.droppingAgedOutRecords(state.historyKeys, of: state, now: now), from: state, oldDeadlines: [:], in: txn)
                }
                state.dropHistory()
            }
            try projections.environment.writeGrowing(doing: doing, limitBytes: toolMapSizeBytesMax) { txn in
                try projections.write(
                    IdempotencySweep.droppingAgedOutRecords(everything(in: state), of: state, now: now), from: state, oldDeadlines: [:], in: txn)
                try txn.put(meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.projectionsFormatVersion)))
                try position.write(to: meta, txn)
            }
            // Written with a wait for the disk: nothing unsynced is left of an earlier server's run.
            StoreFiles.markSynced(directory)
            return position.lastSequence
        } catch {
            throw StoreError(error, doing: doing)
        }
    }

    /// How far a rebuild or a restore may grow the map.
    static let toolMapSizeBytesMax = 1 << 40

    /// Creates a new data directory whose live log is empty and trimmed through `origin` (disaster
    /// recovery from archives): the projections are the origin's state and the log continues after its
    /// base, linking to its chain. Refuses a directory that already holds a store. Idempotency records that aged
    /// out before `now` are left out.
    @available(*, noasync, message: "a restore runs write transactions")
    public static func restore(
        directory: String, origin: ReplayOrigin, now: Int64 = StoreOptions.wallClockMilliseconds()
    ) throws(StoreError) {
        try RestoringStore(directory: directory, now: now).finish(origin: origin)
    }

    /// Every key of every projection in `state`, to write a state out whole.
    static func everything(in state: LedgerState) -> TouchedKeys {
        var keys = TouchedKeys()
        keys.tenants = Set(state.tenants.keys)
        keys.apiKeys = Set(state.apiKeys.keys)
        keys.budgets = Set(state.budgets.keys)
        keys.reservations = Set(state.reservations.keys)
        keys.idempotency = Set(state.idempotency.keys)
        return keys
    }

    /// Folds the whole live log onto the origin, checking sequence continuity, timestamps and the chain
    /// as it goes. A trimmed log needs the origin at its base: anything else cannot link.
    /// Replays the live log from `origin` in `txn`, checking its chain. `everyChunk` sees the state every
    /// 8,192 events and at the end (it may drop history from it).
    /// Events past `through` are checked (sequence, chain, decoding) but not applied: the state returned
    /// is the one at `through` (where the projections are), the position the log's end.
    static func replay(
        _ txn: borrowing LMDBReadTransaction, _ environment: LMDBEnvironment, _ origin: ReplayOrigin, _ report: inout VerifyReport,
        through: UInt64 = .max, everyChunk: (inout LedgerState) throws -> Void = { _ in }
    ) throws -> (LedgerState, LogPosition) {
        let base = try LogBase.read(from: environment.database(StoreLayout.meta), txn)
        guard base == origin.base else {
            throw StoreError(
                .corrupt,
                base.sequence > 0
                    ? "the live log is trimmed through sequence \(base.sequence); replaying it needs the archive's state at that sequence"
                    : "the replay origin is at sequence \(origin.base.sequence) but the live log is not trimmed")
        }
        var state = origin.state
        var position = LogPosition(lastSequence: base.sequence, chainHead: base.chain, lastTimestamp: origin.lastTimestampMilliseconds)
        var findings: [String] = []
        try txn.scan(environment.database(StoreLayout.events)) { key, value in
            let expected = position.lastSequence + 1
            guard let sequence = StoreLayout.sequence(fromKey: key), let (chain, record) = EventChain.split(value) else {
                findings.append("event after \(position.lastSequence): malformed log entry")
                return false
            }
            if sequence != expected { findings.append("event \(sequence): expected sequence \(expected) (a gap in the log)") }
            let linked = EventChain.link(position.chainHead, record)
            if linked != chain { findings.append("event \(sequence): chain value does not link to event \(sequence - 1)") }
            do {
                let event = try EventCodec.decode(record)
                if event.sequence != sequence { findings.append("event \(sequence): record says sequence \(event.sequence)") }
                if event.timestampMilliseconds < position.lastTimestamp { findings.append("event \(sequence): timestamp goes backwards") }
                if sequence <= through { try Ledger.apply(event.body, to: &state) }
                position.lastTimestamp = event.timestampMilliseconds
            } catch {
                findings.append("event \(sequence): \(error)")
                return false
            }
            position.lastSequence = sequence
            position.chainHead = chain
            if (sequence - base.sequence) % 8_192 == 0 { try everyChunk(&state) }
            if let progress = report.progress, (sequence - base.sequence) % 65_536 == 0 { progress(sequence - base.sequence) }
            return true
        }
        try everyChunk(&state)
        report.eventsChecked = position.lastSequence - base.sequence
        report.findings += findings
        return (state, position)
    }

    /// Every entry in which two states differ, named by table and key (verify, audit).
    public static func differences(expected: LedgerState, actual: LedgerState) -> [String] {
        var findings: [String] = []
        func compare<Key: Hashable, Value: Equatable>(_ table: String, _ expected: [Key: Value], _ actual: [Key: Value], _ name: (Key) -> String) {
            for (key, value) in expected where actual[key] != value {
                findings.append(actual[key] == nil ? "\(table) \(name(key)): missing from the projection" : "\(table) \(name(key)): differs from the replayed log")
            }
            for key in actual.keys where expected[key] == nil {
                findings.append("\(table) \(name(key)): in the projection but not produced by the log")
            }
        }
        compare("tenant", expected.tenants, actual.tenants) { $0 }
        compare("api key", expected.apiKeys, actual.apiKeys) { $0 }
        compare("budget", expected.budgets, actual.budgets) { $0.description }
        compare("reservation", expected.reservations, actual.reservations) { $0.description }
        compare("idempotency record", expected.idempotency, actual.idempotency) { "\($0.tenant)/\($0.endpoint)/\($0.key)" }
        return findings
    }

    private static func expiryIndexDifferences(_ state: LedgerState, _ projections: Projections, _ txn: borrowing LMDBReadTransaction) throws -> [String] {
        var indexed: [ReservationID: Int64] = [:]
        try txn.scan(projections.expiry) { key, value in
            // Bytes that are not UTF-8 are reported under their lossy text (as an id that is not ACTIVE).
            let id = value.withUnsafeBytes { ReservationID(utf8: $0) } ?? ReservationID(String(decoding: value, as: UTF8.self))
            indexed[id] = StoreLayout.deadline(fromExpiryKey: key)
            return true
        }
        var findings: [String] = []
        for reservation in state.reservations.values where reservation.status == .active {
            if indexed.removeValue(forKey: reservation.id) != reservation.settleDeadlineMilliseconds {
                findings.append("expiry index: reservation \(reservation.id) is missing or has the wrong deadline")
            }
        }
        for id in indexed.keys { findings.append("expiry index: reservation \(id) is not ACTIVE") }
        return findings
    }
}
