import TallyCore
import TallyStore

/// One discrepancy: where it is (file, byte offset, sequence) and what was expected and found.
public struct AuditFinding: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var offset: Int?
    public var sequence: UInt64?
    public var message: String

    public init(file: String, offset: Int? = nil, sequence: UInt64? = nil, _ message: String) {
        self.file = file
        self.offset = offset
        self.sequence = sequence
        self.message = message
    }

    init(_ error: ArchiveError) {
        self.init(file: error.file, offset: error.offset, sequence: error.sequence, error.message)
    }

    public var description: String {
        ArchiveError(.corrupt, file: file, offset: offset, sequence: sequence, message).description
    }
}

/// What `tally audit` found.
public struct AuditReport: Sendable {
    public var segmentsChecked = 0
    public var checkpointsChecked = 0
    public var eventsChecked: UInt64 = 0
    /// The last sequence the audit reached.
    public var lastSequence: UInt64 = 0
    public var findings: [AuditFinding] = []
    public var spend: SpendLedger
    public var isClean: Bool { findings.isEmpty }
}

/// Verifies the whole history: every segment (CRC, payload, chain link from its predecessor, the chain
/// over its events), every checkpoint against the replay at its sequence, the live log's chain and its
/// agreement with the archive, and the stored projections against the replay at their sequence. It also
/// sums spend as it goes. Reads only.
public struct Auditor {
    public let archive: ArchiveReader
    public let log: (any EventLog)?
    /// The stored projections, when the live store is audited too.
    public let stored: (any StoredProjections)?
    /// Idempotency records that aged out before this instant (epoch milliseconds) may be missing from the stored
    /// projections: a server deletes them.
    public let now: Int64

    public init(
        archive: ArchiveDirectory, log: (any EventLog)?, stored: (any StoredProjections)?,
        now: Int64 = StoreOptions.wallClockMilliseconds()
    ) {
        self.archive = ArchiveReader(directory: archive)
        self.log = log
        self.stored = stored
        self.now = now
    }

    /// Runs the audit. Throws only when it cannot run at all (the archive directory cannot be listed, the
    /// live log cannot be opened); everything found in the history is a finding in the report.
    public func run(bucketMilliseconds: Int64 = 3_600_000, progress: ((UInt64) -> Void)? = nil) throws(ArchiveError) -> AuditReport {
        let (segments, checkpoints) = try archive.directory.list()
        // The stored working set is read first: the history is compared with the store as the audit goes,
        // and the events are folded up to the sequence the projections are at.
        var storedWorkingSet: StoredWorkingSet?
        if let stored {
            do { storedWorkingSet = try stored.storedWorkingSet() } catch { throw ArchiveError(.io, file: "projections", "\(error)") }
        }
        var fold = AuditFold(
            archive: archive, checkpoints: checkpoints, spend: SpendLedger(bucketMilliseconds: bucketMilliseconds),
            stored: stored, now: now, progress: progress)
        let preparer = SegmentPreparer(archive, segments, decoding: stored != nil)
        for entry in segments {
            var prepared = preparer.next()
            fold.audit(entry, prepared)
            preparer.recycle(&prepared)
        }
        if let log { try fold.auditLive(log, through: storedWorkingSet?.lastSequence) }
        if let stored = storedWorkingSet, stored.lastSequence == fold.next - 1 {
            fold.dropHistory()
            if fold.stateKnown, let check = fold.historyCheck {
                var differences = Maintenance.differences(expected: fold.state, actual: stored.state)
                differences += try check.differences(
                    storedTerminalReservations: stored.terminalReservations, storedIdempotencyRecords: stored.idempotencyRecords)
                for difference in differences {
                    fold.findings.append(AuditFinding(file: "projections", sequence: stored.lastSequence, difference))
                }
            } else {
                fold.findings.append(AuditFinding(file: "projections", sequence: stored.lastSequence,
                                                  "not compared: the history before them could not be replayed"))
            }
        }
        for entry in checkpoints where entry.sequence >= fold.next {
            fold.findings.append(AuditFinding(file: archive.directory.filePath(entry.name), sequence: entry.sequence,
                                              "checkpoint beyond the end of the history (last event \(fold.next - 1))"))
        }
        let spend = fold.spendFound
        for key in spend.overflows {
            fold.findings.append(AuditFinding(file: "", "spend of \(key.grouping.rawValue) \(key.group) leaves the Int64 range"))
        }
        var report = AuditReport(spend: spend)
        report.segmentsChecked = segments.count
        report.checkpointsChecked = fold.checkpointsChecked
        report.eventsChecked = fold.eventsChecked
        report.lastSequence = fold.next - 1
        report.findings = fold.findings
        return report
    }
}
