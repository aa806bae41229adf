import TallyCore

/// Spend found in the history, summed by scope, agent, action kind and tenant, per time bucket and unit.
///
/// A charge counts once for its tenant, agent and action kind, and once for every budgeted scope it was
/// charged to, so a workspace's figure includes its agents' (a roll-up, as the budgets themselves count).
/// Sums are exact `Int64`; a sum that would overflow is recorded in `overflows` instead of wrapping.
public struct SpendLedger: Sendable {
    public enum Grouping: String, CaseIterable, Sendable {
        case scope, agent, action, tenant
    }

    public struct Key: Sendable, Hashable {
        public var grouping: Grouping
        public var group: String
        /// Start of the bucket (Unix milliseconds).
        public var bucketStart: Int64
        public var unit: Unit
    }

    public struct Total: Sendable, Hashable {
        public var charged: Int64 = 0
        public var events: Int = 0

        /// Counts one charge; false (and unchanged) when the sum would leave the Int64 range.
        mutating func add(_ amount: Int64) -> Bool {
            let (sum, overflow) = charged.addingReportingOverflow(amount)
            if overflow { return false }
            charged = sum
            events += 1
            return true
        }
    }

    public let bucketMilliseconds: Int64
    public private(set) var totals: [Key: Total] = [:]
    /// Groups whose sum left the Int64 range (reported by the audit as discrepancies).
    public private(set) var overflows: [Key] = []

    public init(bucketMilliseconds: Int64) {
        precondition(bucketMilliseconds > 0, "a bucket has a positive length")
        self.bucketMilliseconds = bucketMilliseconds
    }

    /// Sums counted elsewhere (`SpendTally`).
    init(bucketMilliseconds: Int64, totals: [Key: Total], overflows: [Key]) {
        self.init(bucketMilliseconds: bucketMilliseconds)
        self.totals = totals
        self.overflows = overflows
    }

    /// Counts the charge of a `Committed` or `DebitRecorded` event; call it before the event is applied
    /// (a commit's subject and unit are read from its reservation in `state`).
    mutating func record(_ event: Event, in state: LedgerState) {
        let bucket = event.timestampMilliseconds - ((event.timestampMilliseconds % bucketMilliseconds) + bucketMilliseconds) % bucketMilliseconds
        switch event.body {
        case .committed(let committed):
            guard let reservation = state.reservations[committed.reservationID] else { return }
            add(committed.charged.value, reservation.tenant, reservation.subject.agent, reservation.action.kind,
                committed.deltas.map(\.scope), reservation.unit, bucket)
        case .debitRecorded(let debit):
            add(debit.charged.value, debit.tenant, debit.subject.agent, debit.action.kind, debit.deltas.map(\.scope), debit.unit, bucket)
        default:
            return
        }
    }

    private mutating func add(
        _ amount: Int64, _ tenant: String, _ agent: String?, _ action: String, _ scopes: [ScopePath], _ unit: Unit, _ bucket: Int64
    ) {
        var keys = [
            Key(grouping: .tenant, group: tenant, bucketStart: bucket, unit: unit),
            Key(grouping: .agent, group: agent ?? "(none)", bucketStart: bucket, unit: unit),
            Key(grouping: .action, group: action, bucketStart: bucket, unit: unit),
        ]
        keys += scopes.map { Key(grouping: .scope, group: $0.rawValue, bucketStart: bucket, unit: unit) }
        for key in keys {
            if !totals[key, default: Total()].add(amount) { overflows.append(key) }
        }
    }

    /// Rows of one grouping, by group, then bucket, then unit.
    public func rows(_ grouping: Grouping) -> [(key: Key, total: Total)] {
        totals.filter { $0.key.grouping == grouping }
            .sorted { ($0.key.group, $0.key.bucketStart, $0.key.unit.rawValue) < ($1.key.group, $1.key.bucketStart, $1.key.unit.rawValue) }
            .map { ($0.key, $0.value) }
    }
}
