import TallyCore

/// `SpendLedger`'s sums kept under small numbers while a `WorkingSetFold` reports charges: a commit
/// counts for its tenant, agent, action kind and each budget charged, and looking those up as strings
/// (hashing each, building each from the record) would cost more than the rest of the audit's fold.
/// `ledger(budgets:)` gives the same `SpendLedger` that `SpendLedger.record` builds from the events.
struct SpendTally: FoldSink {
    static var takesCharges: Bool { true }
    let bucketMilliseconds: Int64
    private var names = InternedStrings()
    private var totals: [Key: SpendLedger.Total] = [:]
    private var overflows: [Key] = []
    /// The name counted for a charge whose subject has no agent.
    private let noAgent: Int32

    /// A group by number: a name from `names`, or a budget slot of the fold for `.scope`.
    private struct Key: Hashable {
        var grouping: SpendLedger.Grouping
        var group: Int32
        var bucketStart: Int64
        var unit: Unit
    }

    init(bucketMilliseconds: Int64) {
        precondition(bucketMilliseconds > 0, "a bucket has a positive length")
        self.bucketMilliseconds = bucketMilliseconds
        var names = InternedStrings()
        noAgent = Array("(none)".utf8).withUnsafeBytes { names.intern($0) }
        self.names = names
    }

    mutating func charge(_ charge: borrowing Charge) {
        let time = charge.timestampMilliseconds
        let bucket = time - ((time % bucketMilliseconds) + bucketMilliseconds) % bucketMilliseconds
        add(.tenant, names.intern(charge.tenant), charge, bucket)
        add(.agent, charge.agent.map { names.intern($0) } ?? noAgent, charge, bucket)
        add(.action, names.intern(charge.actionKind), charge, bucket)
        for slot in charge.budgets { add(.scope, slot, charge, bucket) }
    }

    private mutating func add(_ grouping: SpendLedger.Grouping, _ group: Int32, _ charge: borrowing Charge, _ bucket: Int64) {
        let key = Key(grouping: grouping, group: group, bucketStart: bucket, unit: charge.unit)
        if !totals[key, default: SpendLedger.Total()].add(charge.amount) { overflows.append(key) }
    }

    /// The sums by name; `budgets` names a budget slot (the fold's `budgetKey`).
    func ledger(budgets: (Int32) -> BudgetKey) -> SpendLedger {
        func key(_ key: Key) -> SpendLedger.Key {
            let group = key.grouping == .scope ? budgets(key.group).scope.rawValue : names.string(key.group)
            return SpendLedger.Key(grouping: key.grouping, group: group, bucketStart: key.bucketStart, unit: key.unit)
        }
        return SpendLedger(
            bucketMilliseconds: bucketMilliseconds,
            totals: Dictionary(uniqueKeysWithValues: totals.map { (key($0.key), $0.value) }),
            overflows: overflows.map(key))
    }
}
