import Foundation
import TallyCore

/// What `verify` found: how much it read and every discrepancy, each naming where it is.
public struct VerifyReport: Sendable {
    public var eventsChecked: UInt64 = 0
    public var findings: [String] = []
    public var isClean: Bool { findings.isEmpty }
}

/// `tally verify` and `tally rebuild`: replay the log in memory, check the chain, compare with (or
/// rewrite) the stored projections.
public enum Maintenance {
    /// Replays the log read-only and compares it with the stored projections. Safe while `tallyd` runs:
    /// it only reads (LMDB readers never block the writer).
    public static func verify(directory: String) throws(StoreError) -> VerifyReport {
        let environment = try openExisting(directory, readOnly: true)
        var report = VerifyReport()
        do {
            try environment.read { txn in
                let (state, position) = try replay(txn, environment, &report)
                let meta = environment.database(StoreLayout.meta)
                try Recovery.checkFormat(txn, meta)
                let stored = try LogPosition.read(from: meta, txn)
                if stored.lastSequence != position.lastSequence {
                    report.findings.append("meta.last_sequence is \(stored.lastSequence) but the log ends at \(position.lastSequence)")
                }
                if stored.chainHead != position.chainHead {
                    report.findings.append("meta.chain_head does not match the chain computed over the log")
                }
                let projections = Projections(environment)
                let actual = try projections.loadEverything(txn)
                report.findings += differences(expected: state, actual: actual)
                report.findings += try expiryIndexDifferences(state, projections, txn)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "verifying \(directory): \(error)")
        }
        return report
    }

    /// Drops every projection and rebuilds it from the log. Refuses while another process holds the
    /// directory, and refuses a log whose chain or events do not check out.
    public static func rebuild(directory: String) throws(StoreError) -> UInt64 {
        let lock = try DirectoryLock(directory: directory)
        defer { withExtendedLifetime(lock) {} }
        let environment = try openExisting(directory, readOnly: false)
        var report = VerifyReport()
        do {
            let (state, position) = try environment.read { txn in try replay(txn, environment, &report) }
            guard report.isClean else {
                throw StoreError(.corrupt, "the log itself is damaged, nothing was rebuilt:\n" + report.findings.joined(separator: "\n"))
            }
            let projections = Projections(environment)
            try environment.write { txn in
                for name in StoreLayout.projections { try txn.clear(environment.database(name)) }
                var everything = TouchedKeys()
                everything.tenants = Set(state.tenants.keys)
                everything.apiKeys = Set(state.apiKeys.keys)
                everything.budgets = Set(state.budgets.keys)
                everything.reservations = Set(state.reservations.keys)
                everything.idempotency = Set(state.idempotency.keys)
                try projections.write(everything, from: state, oldDeadlines: [:], in: txn)
                let meta = environment.database(StoreLayout.meta)
                try txn.put(meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.formatVersion)))
                try position.write(to: meta, txn)
            }
            return position.lastSequence
        } catch let error as StoreError {
            throw error
        } catch let error as LMDBError {
            throw StoreError(error, doing: "rebuilding \(directory)")
        } catch {
            throw StoreError(.io, "rebuilding \(directory): \(error)")
        }
    }

    private static func openExisting(_ directory: String, readOnly: Bool) throws(StoreError) -> LMDBEnvironment {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw StoreError(.io, "\(directory) holds no Tally data (no data.mdb)")
        }
        do {
            return try LMDBEnvironment(directory: directory, mapSizeBytes: 1 << 30, databaseNames: StoreLayout.all, readOnly: readOnly)
        } catch {
            throw StoreError(error, doing: "opening \(directory)")
        }
    }

    /// Folds the whole log, checking sequence continuity, timestamps and the chain as it goes.
    static func replay(_ txn: borrowing LMDBReadTransaction, _ environment: LMDBEnvironment, _ report: inout VerifyReport) throws -> (LedgerState, LogPosition) {
        var state = LedgerState()
        var position = LogPosition()
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
                try Ledger.apply(event.body, to: &state)
                position.lastTimestamp = event.timestampMilliseconds
            } catch {
                findings.append("event \(sequence): \(error)")
                return false
            }
            position.lastSequence = sequence
            position.chainHead = chain
            return true
        }
        report.eventsChecked = position.lastSequence
        report.findings += findings
        return (state, position)
    }

    static func differences(expected: LedgerState, actual: LedgerState) -> [String] {
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
        compare("reservation", expected.reservations, actual.reservations) { $0 }
        compare("idempotency record", expected.idempotency, actual.idempotency) { "\($0.tenant)/\($0.endpoint)/\($0.key)" }
        return findings
    }

    private static func expiryIndexDifferences(_ state: LedgerState, _ projections: Projections, _ txn: borrowing LMDBReadTransaction) throws -> [String] {
        var indexed: [String: Int64] = [:]
        try txn.scan(projections.expiry) { key, value in
            indexed[String(decoding: value, as: UTF8.self)] = StoreLayout.deadline(fromExpiryKey: key)
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
