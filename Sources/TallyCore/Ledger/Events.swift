// The event catalogue. An event records an outcome that `decide` already settled, never an intention:
// `apply` folds it into state with plain arithmetic and never re-runs a policy, so replaying the log gives
// the same balances even after the rules change. The meaning of a recorded event never changes; new facts
// get new event types.

/// One stored event: its place in the log, the writer's timestamp, and what happened.
public struct Event: Sendable, Hashable {
    /// Position in the log: the first event is 1 and there are no gaps.
    public var sequence: UInt64
    /// Stamped by the writer; non-decreasing along the log.
    public var timestampMilliseconds: Int64
    public var body: EventBody

    public init(sequence: UInt64, timestampMilliseconds: Int64, body: EventBody) {
        self.sequence = sequence
        self.timestampMilliseconds = timestampMilliseconds
        self.body = body
    }
}

public enum EventBody: Sendable, Hashable {
    case tenantCreated(Tenant)
    /// The tenant as it is after the change (name, status, defaults).
    case tenantUpdated(Tenant)
    case apiKeyCreated(ApiKey)
    case apiKeyRevoked(ApiKeyRevoked)
    case budgetCreated(Budget)
    case budgetFunded(BudgetFunded)
    case budgetUpdated(BudgetUpdated)
    case reserved(Reserved)
    case committed(Committed)
    case released(Released)
    case extended(Extended)
    case expired(Expired)
    case debitRecorded(DebitRecorded)
    case evaluationRecorded(EvaluationRecorded)
    /// The key as it is after an admin update (name, description, permissions, scope filter, metadata).
    case apiKeyUpdated(ApiKey)

    /// The stable type tag stored in the log and archives (append-only).
    public var typeCode: UInt8 {
        switch self {
        case .tenantCreated: 1
        case .tenantUpdated: 2
        case .apiKeyCreated: 3
        case .apiKeyRevoked: 4
        case .budgetCreated: 5
        case .budgetFunded: 6
        case .budgetUpdated: 7
        case .reserved: 8
        case .committed: 9
        case .released: 10
        case .extended: 11
        case .expired: 12
        case .debitRecorded: 13
        case .evaluationRecorded: 14
        case .apiKeyUpdated: 15
        }
    }

    /// The name used in logs, the CLI and the protocol documents.
    public var typeName: String {
        switch self {
        case .tenantCreated: "TenantCreated"
        case .tenantUpdated: "TenantUpdated"
        case .apiKeyCreated: "ApiKeyCreated"
        case .apiKeyRevoked: "ApiKeyRevoked"
        case .budgetCreated: "BudgetCreated"
        case .budgetFunded: "BudgetFunded"
        case .budgetUpdated: "BudgetUpdated"
        case .reserved: "Reserved"
        case .committed: "Committed"
        case .released: "Released"
        case .extended: "Extended"
        case .expired: "Expired"
        case .debitRecorded: "DebitRecorded"
        case .evaluationRecorded: "EvaluationRecorded"
        case .apiKeyUpdated: "ApiKeyUpdated"
        }
    }
}

public struct ApiKeyRevoked: Sendable, Hashable {
    public var keyID: String
    public var tenant: String
    public var atMilliseconds: Int64
    public var reason: String?
    public var cause: ReleaseCause
}

/// A funding operation with the figures before and after; `apply` sets the after figures.
public struct BudgetFunded: Sendable, Hashable {
    public var key: BudgetKey
    public var operation: FundingOperation
    public var amount: Amount
    /// RESET_SPENT only: the spent figure the operator asked for (nil means the default 0).
    public var spentOverride: Amount?
    public var before: LedgerFigures
    public var after: LedgerFigures
    public var isOverLimitAfter: Bool
    public var reason: String?
    public var idempotency: IdempotencyStamp?
    public var replayRetainUntilMilliseconds: Int64
    public var caller: Caller
    public var atMilliseconds: Int64
}

/// What kind of budget change a `BudgetUpdated` records.
public enum BudgetChange: UInt8, CaseIterable, Sendable, Hashable {
    case properties = 1
    case freeze = 2
    case unfreeze = 3
    /// Closed by the tenant-close cascade.
    case close = 4
}

/// A budget's mutable properties as they are after the change.
public struct BudgetUpdated: Sendable, Hashable {
    public var key: BudgetKey
    public var change: BudgetChange
    public var overdraftLimit: Amount
    public var commitOveragePolicy: OveragePolicy?
    public var caps: Caps?
    public var metadata: JSONText?
    public var status: BudgetStatus
    public var isOverLimit: Bool
    public var reason: String?
    public var caller: Caller
    public var atMilliseconds: Int64
}

/// A live reservation: the hold of `amount` on every scope of `budgetedScopes`.
public struct Reserved: Sendable, Hashable {
    public var reservationID: ReservationID
    public var tenant: String
    public var subject: Subject
    public var action: Action
    public var unit: Unit
    public var amount: Amount
    public var scopePath: ScopePath
    public var affectedScopes: [ScopePath]
    public var budgetedScopes: [ScopePath]
    public var createdAtMilliseconds: Int64
    public var expiresAtMilliseconds: Int64
    public var graceMilliseconds: Int64
    public var overagePolicy: OveragePolicy
    public var maxExtensions: Int
    public var caps: Caps?
    public var idempotency: IdempotencyStamp
    public var replayRetainUntilMilliseconds: Int64
    public var metadata: JSONText?
    public var caller: Caller
}

/// A commit with the charge and the per-scope effects the overage policy decided.
public struct Committed: Sendable, Hashable {
    public var reservationID: ReservationID
    public var actual: Amount
    public var charged: Amount
    public var deltas: [ScopeDelta]
    public var idempotency: IdempotencyStamp
    public var metrics: StandardMetrics?
    public var metadata: JSONText?
    public var caller: Caller
    public var atMilliseconds: Int64
}

/// The hold of a reservation returned to each of its budgeted scopes.
public struct Released: Sendable, Hashable {
    public var reservationID: ReservationID
    public var amount: Amount
    public var reason: String?
    public var cause: ReleaseCause
    public var idempotency: IdempotencyStamp?
    public var caller: Caller
    public var atMilliseconds: Int64
}

public struct Extended: Sendable, Hashable {
    public var reservationID: ReservationID
    /// The tenant whose idempotency namespace holds the extend key.
    public var tenant: String
    public var newExpiresAtMilliseconds: Int64
    public var extensionCount: Int
    public var idempotency: IdempotencyStamp
    public var replayRetainUntilMilliseconds: Int64
    public var caller: Caller
    public var atMilliseconds: Int64
}

/// The expiry sweep returned a reservation's hold after `expires_at + grace`.
public struct Expired: Sendable, Hashable {
    public var reservationID: ReservationID
    public var amount: Amount
    public var atMilliseconds: Int64
}

/// Spend without a reservation (Cycles `POST /v1/events`), with the per-scope effects decided.
public struct DebitRecorded: Sendable, Hashable {
    public var eventID: String
    public var tenant: String
    public var subject: Subject
    public var action: Action
    public var unit: Unit
    public var actual: Amount
    public var charged: Amount
    public var overagePolicy: OveragePolicy
    public var scopePath: ScopePath
    public var deltas: [ScopeDelta]
    public var idempotency: IdempotencyStamp
    public var replayRetainUntilMilliseconds: Int64
    public var metrics: StandardMetrics?
    public var clientTimeMilliseconds: Int64?
    public var metadata: JSONText?
    public var caller: Caller
    public var atMilliseconds: Int64
}

/// A dry-run or decide answer remembered for idempotent replay; no balance changes.
public struct EvaluationRecorded: Sendable, Hashable {
    public var tenant: String
    public var idempotency: IdempotencyStamp
    public var replayRetainUntilMilliseconds: Int64
    public var reply: EvaluationReply
    public var caller: Caller
    public var atMilliseconds: Int64
}
