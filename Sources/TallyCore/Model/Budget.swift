/// The identity of one budget ledger: a scope and a unit. Each pair is independent (Cycles 1.3).
public struct BudgetKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var scope: ScopePath
    public var unit: Unit

    public init(_ scope: ScopePath, _ unit: Unit) {
        self.scope = scope
        self.unit = unit
    }

    public var description: String { "\(scope) [\(unit.cyclesName)]" }

    /// The scope path's kept hash with the unit folded in (`KeyHash`).
    public func _rawHashValue(seed: Int) -> Int {
        KeyHash.mix(UInt64(bitPattern: Int64(scope.hashCode)) ^ UInt64(unit.rawValue) &* 0x9E37_79B9_7F4A_7C15, seed: seed)
    }

    public static func < (lhs: BudgetKey, rhs: BudgetKey) -> Bool {
        lhs.scope != rhs.scope ? lhs.scope < rhs.scope : lhs.unit < rhs.unit
    }
}

/// One budget ledger on a (scope, unit).
///
/// Invariant, kept by every event: `remaining == allocated - spent - reserved - debt`, with `allocated`,
/// `reserved`, `spent`, `debt` and `overdraftLimit` never negative (`remaining` may be).
public struct Budget: Sendable, Hashable {
    public var key: BudgetKey
    public var tenant: String
    public var allocated: Amount
    public var remaining: Amount
    public var reserved: Amount
    public var spent: Amount
    public var debt: Amount
    public var overdraftLimit: Amount
    public var isOverLimit: Bool
    public var status: BudgetStatus
    public var commitOveragePolicy: OveragePolicy?
    public var rolloverPolicy: RolloverPolicy
    public var caps: Caps?
    public var periodStartMilliseconds: Int64?
    public var periodEndMilliseconds: Int64?
    public var metadata: JSONText?
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64

    public init(
        key: BudgetKey, tenant: String, allocated: Amount, remaining: Amount, reserved: Amount = .zero,
        spent: Amount = .zero, debt: Amount = .zero, overdraftLimit: Amount = .zero, isOverLimit: Bool = false,
        status: BudgetStatus = .active, commitOveragePolicy: OveragePolicy? = nil,
        rolloverPolicy: RolloverPolicy = .none, caps: Caps? = nil, periodStartMilliseconds: Int64? = nil,
        periodEndMilliseconds: Int64? = nil, metadata: JSONText? = nil, createdAtMilliseconds: Int64,
        updatedAtMilliseconds: Int64
    ) {
        self.key = key
        self.tenant = tenant
        self.allocated = allocated
        self.remaining = remaining
        self.reserved = reserved
        self.spent = spent
        self.debt = debt
        self.overdraftLimit = overdraftLimit
        self.isOverLimit = isOverLimit
        self.status = status
        self.commitOveragePolicy = commitOveragePolicy
        self.rolloverPolicy = rolloverPolicy
        self.caps = caps
        self.periodStartMilliseconds = periodStartMilliseconds
        self.periodEndMilliseconds = periodEndMilliseconds
        self.metadata = metadata
        self.createdAtMilliseconds = createdAtMilliseconds
        self.updatedAtMilliseconds = updatedAtMilliseconds
    }

    public var scope: ScopePath { key.scope }
    public var unit: Unit { key.unit }

    /// The ledger figures that funding replies report before and after.
    public var figures: LedgerFigures {
        LedgerFigures(allocated: allocated, remaining: remaining, reserved: reserved, spent: spent, debt: debt)
    }

    /// The balance as replies show it.
    public var balance: Balance {
        Balance(
            scope: key.scope, unit: key.unit, allocated: allocated, remaining: remaining, reserved: reserved,
            spent: spent, debt: debt, overdraftLimit: overdraftLimit, isOverLimit: isOverLimit, status: status)
    }

    /// Whether `remaining == allocated - spent - reserved - debt` holds (computed without overflow).
    public var satisfiesInvariant: Bool {
        let expected = Int128(allocated.value) - Int128(spent.value) - Int128(reserved.value) - Int128(debt.value)
        return expected == Int128(remaining.value) && allocated.value >= 0 && reserved.value >= 0
            && spent.value >= 0 && debt.value >= 0 && overdraftLimit.value >= 0
    }

    /// The budget after one recorded per-scope change; overflow is refused, never wrapped.
    public func applying(_ delta: ScopeDelta) throws(Refusal) -> Budget {
        var next = self
        try next.apply(delta)
        return next
    }

    /// The same in place (the ledger applies each event's deltas to the budgets where they are stored). On an
    /// overflow it throws before changing anything.
    public mutating func apply(_ delta: ScopeDelta) throws(Refusal) {
        let remaining = try remaining.adding(delta.remaining)
        let reserved = try reserved.adding(delta.reserved)
        let spent = try spent.adding(delta.spent)
        let debt = try debt.adding(delta.debt)
        self.remaining = remaining
        self.reserved = reserved
        self.spent = spent
        self.debt = debt
        if delta.marksOverLimit { isOverLimit = true }
    }
}

/// The five ledger figures, as funding events and replies record them before and after.
public struct LedgerFigures: Sendable, Hashable {
    public var allocated: Amount
    public var remaining: Amount
    public var reserved: Amount
    public var spent: Amount
    public var debt: Amount

    public init(allocated: Amount, remaining: Amount, reserved: Amount, spent: Amount, debt: Amount) {
        self.allocated = allocated
        self.remaining = remaining
        self.reserved = reserved
        self.spent = spent
        self.debt = debt
    }
}

/// A budget's balance as a reply shows it (Cycles `Balance` plus the ledger fields of decision 1).
public struct Balance: Sendable, Hashable {
    public var scope: ScopePath
    public var unit: Unit
    public var allocated: Amount
    public var remaining: Amount
    public var reserved: Amount
    public var spent: Amount
    public var debt: Amount
    public var overdraftLimit: Amount
    public var isOverLimit: Bool
    public var status: BudgetStatus

    public init(
        scope: ScopePath, unit: Unit, allocated: Amount, remaining: Amount, reserved: Amount, spent: Amount,
        debt: Amount, overdraftLimit: Amount, isOverLimit: Bool, status: BudgetStatus
    ) {
        self.scope = scope
        self.unit = unit
        self.allocated = allocated
        self.remaining = remaining
        self.reserved = reserved
        self.spent = spent
        self.debt = debt
        self.overdraftLimit = overdraftLimit
        self.isOverLimit = isOverLimit
        self.status = status
    }
}

/// What one event did to one budget: signed deltas decided once, applied as plain arithmetic.
public struct ScopeDelta: Sendable, Hashable {
    public var scope: ScopePath
    public var remaining: Amount
    public var reserved: Amount
    public var spent: Amount
    public var debt: Amount
    /// The decision set `is_over_limit` on this scope (capped overage or debt above the limit).
    public var marksOverLimit: Bool

    public init(
        scope: ScopePath, remaining: Amount = .zero, reserved: Amount = .zero, spent: Amount = .zero,
        debt: Amount = .zero, marksOverLimit: Bool = false
    ) {
        self.scope = scope
        self.remaining = remaining
        self.reserved = reserved
        self.spent = spent
        self.debt = debt
        self.marksOverLimit = marksOverLimit
    }
}
