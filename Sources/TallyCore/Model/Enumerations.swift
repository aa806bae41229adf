// The small closed vocabularies of the ledger live together here: each is a handful of lines, and their
// raw values are frozen in the same way (they are stored in events), so one file keeps them reviewable.

/// What happens when a commit or direct debit costs more than is left (semantics section 3).
public enum OveragePolicy: UInt8, CaseIterable, Sendable, Hashable {
    case reject = 1
    case allowIfAvailable = 2
    case allowWithOverdraft = 3

    public var cyclesName: String {
        switch self {
        case .reject: "REJECT"
        case .allowIfAvailable: "ALLOW_IF_AVAILABLE"
        case .allowWithOverdraft: "ALLOW_WITH_OVERDRAFT"
        }
    }

    public init?(cyclesName: String) {
        guard let value = Self.allCases.first(where: { $0.cyclesName == cyclesName }) else { return nil }
        self = value
    }
}

public enum BudgetStatus: UInt8, CaseIterable, Sendable, Hashable {
    case active = 1
    case frozen = 2
    case closed = 3

    public var cyclesName: String {
        switch self {
        case .active: "ACTIVE"
        case .frozen: "FROZEN"
        case .closed: "CLOSED"
        }
    }
}

public enum TenantStatus: UInt8, CaseIterable, Sendable, Hashable {
    case active = 1
    case suspended = 2
    case closed = 3

    public var cyclesName: String {
        switch self {
        case .active: "ACTIVE"
        case .suspended: "SUSPENDED"
        case .closed: "CLOSED"
        }
    }

    public init?(cyclesName: String) {
        guard let value = Self.allCases.first(where: { $0.cyclesName == cyclesName }) else { return nil }
        self = value
    }
}

public enum ReservationStatus: UInt8, CaseIterable, Sendable, Hashable {
    case active = 1
    case committed = 2
    case released = 3
    case expired = 4

    public var cyclesName: String {
        switch self {
        case .active: "ACTIVE"
        case .committed: "COMMITTED"
        case .released: "RELEASED"
        case .expired: "EXPIRED"
        }
    }

    public var isTerminal: Bool { self != .active }
}

public enum ApiKeyStatus: UInt8, CaseIterable, Sendable, Hashable {
    case active = 1
    case revoked = 2

    public var cyclesName: String { self == .active ? "ACTIVE" : "REVOKED" }
}

/// Cycles `decision` on reserve, dry-run and decide.
public enum DecisionKind: UInt8, CaseIterable, Sendable, Hashable {
    case allow = 1
    case allowWithCaps = 2
    case deny = 3

    public var cyclesName: String {
        switch self {
        case .allow: "ALLOW"
        case .allowWithCaps: "ALLOW_WITH_CAPS"
        case .deny: "DENY"
        }
    }
}

/// Why a dry-run or decide answered DENY (Cycles `DecisionReasonCode`, an open string on the wire).
public enum DenyReason: UInt8, CaseIterable, Sendable, Hashable {
    case budgetExceeded = 1
    case budgetFrozen = 2
    case budgetClosed = 3
    case budgetNotFound = 4
    case overdraftLimitExceeded = 5
    case debtOutstanding = 6
    case tenantClosed = 7

    public var cyclesName: String {
        switch self {
        case .budgetExceeded: "BUDGET_EXCEEDED"
        case .budgetFrozen: "BUDGET_FROZEN"
        case .budgetClosed: "BUDGET_CLOSED"
        case .budgetNotFound: "BUDGET_NOT_FOUND"
        case .overdraftLimitExceeded: "OVERDRAFT_LIMIT_EXCEEDED"
        case .debtOutstanding: "DEBT_OUTSTANDING"
        case .tenantClosed: "TENANT_CLOSED"
        }
    }

    /// The live-path error that corresponds to this reason (a live reserve answers 409, never DENY).
    public var errorCode: ErrorCode {
        switch self {
        case .budgetExceeded: .budgetExceeded
        case .budgetFrozen: .budgetFrozen
        case .budgetClosed: .budgetClosed
        case .budgetNotFound: .notFound
        case .overdraftLimitExceeded: .overdraftLimitExceeded
        case .debtOutstanding: .debtOutstanding
        case .tenantClosed: .tenantClosed
        }
    }
}

/// The five admin funding operations (semantics section 5.7).
public enum FundingOperation: UInt8, CaseIterable, Sendable, Hashable {
    case credit = 1
    case debit = 2
    case reset = 3
    case resetSpent = 4
    case repayDebt = 5

    public var cyclesName: String {
        switch self {
        case .credit: "CREDIT"
        case .debit: "DEBIT"
        case .reset: "RESET"
        case .resetSpent: "RESET_SPENT"
        case .repayDebt: "REPAY_DEBT"
        }
    }

    public init?(cyclesName: String) {
        guard let value = Self.allCases.first(where: { $0.cyclesName == cyclesName }) else { return nil }
        self = value
    }
}

/// Stored only; Tally does not roll budgets over on its own.
public enum RolloverPolicy: UInt8, CaseIterable, Sendable, Hashable {
    case none = 1
    case carryForward = 2
    case capAtAllocated = 3

    public var cyclesName: String {
        switch self {
        case .none: "NONE"
        case .carryForward: "CARRY_FORWARD"
        case .capAtAllocated: "CAP_AT_ALLOCATED"
        }
    }
}

/// Tenant `reservation_expiry_policy`. Decision 14: only AUTO_RELEASE is implemented; the other values
/// exist so that a request naming them can be refused with a precise message.
public enum ExpiryPolicy: UInt8, CaseIterable, Sendable, Hashable {
    case autoRelease = 1
    case manualCleanup = 2
    case graceOnly = 3

    public var cyclesName: String {
        switch self {
        case .autoRelease: "AUTO_RELEASE"
        case .manualCleanup: "MANUAL_CLEANUP"
        case .graceOnly: "GRACE_ONLY"
        }
    }
}
