// The answers of successful operations. Each is a value built from recorded facts, so that a same-key
// replay can return exactly the original answer; only `remaining_ttl_ms` is recomputed at replay time.

/// A live reservation was created (Cycles `ReservationCreateResponse`).
public struct ReserveReply: Sendable, Hashable {
    public var decision: DecisionKind
    public var reservationID: ReservationID
    public var reserved: Quantity
    public var expiresAtMilliseconds: Int64
    public var scopePath: ScopePath
    public var affectedScopes: [ScopePath]
    public var caps: Caps?
    /// Balances after the hold, on every budgeted scope, in canonical order.
    public var balances: [Balance]

    public init(
        decision: DecisionKind, reservationID: ReservationID, reserved: Quantity, expiresAtMilliseconds: Int64,
        scopePath: ScopePath, affectedScopes: [ScopePath], caps: Caps?, balances: [Balance]
    ) {
        self.decision = decision
        self.reservationID = reservationID
        self.reserved = reserved
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.scopePath = scopePath
        self.affectedScopes = affectedScopes
        self.caps = caps
        self.balances = balances
    }
}

/// Whether an evaluation came from a dry-run reserve or from decide; both never change a balance.
public enum EvaluationKind: UInt8, CaseIterable, Sendable, Hashable {
    case dryRun = 1
    case decide = 2
}

/// The answer of a dry-run reserve or a decide: ALLOW, ALLOW_WITH_CAPS or DENY with a reason.
public struct EvaluationReply: Sendable, Hashable {
    public var kind: EvaluationKind
    public var decision: DecisionKind
    public var reasonCode: DenyReason?
    public var caps: Caps?
    public var scopePath: ScopePath
    public var affectedScopes: [ScopePath]
    /// Dry-run ALLOW only: the estimate that would be held.
    public var reserved: Quantity?
    /// Dry-run ALLOW only: the current, unmutated balances of the budgeted scopes.
    public var balances: [Balance]

    public init(
        kind: EvaluationKind, decision: DecisionKind, reasonCode: DenyReason?, caps: Caps?, scopePath: ScopePath,
        affectedScopes: [ScopePath], reserved: Quantity?, balances: [Balance]
    ) {
        self.kind = kind
        self.decision = decision
        self.reasonCode = reasonCode
        self.caps = caps
        self.scopePath = scopePath
        self.affectedScopes = affectedScopes
        self.reserved = reserved
        self.balances = balances
    }
}

public struct CommitReply: Sendable, Hashable {
    public var charged: Quantity
    /// Present only when the actual was below the estimate.
    public var released: Quantity?
    public var balances: [Balance]

    public init(charged: Quantity, released: Quantity?, balances: [Balance]) {
        self.charged = charged
        self.released = released
        self.balances = balances
    }
}

public struct ReleaseReply: Sendable, Hashable {
    public var released: Quantity
    public var balances: [Balance]

    public init(released: Quantity, balances: [Balance]) {
        self.released = released
        self.balances = balances
    }
}

public struct ExtendReply: Sendable, Hashable {
    public var reservationID: ReservationID
    public var expiresAtMilliseconds: Int64
    public var balances: [Balance]

    public init(reservationID: ReservationID, expiresAtMilliseconds: Int64, balances: [Balance]) {
        self.reservationID = reservationID
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.balances = balances
    }
}

/// A direct debit was applied (Cycles `EventCreateResponse`, status APPLIED).
public struct DebitReply: Sendable, Hashable {
    public var eventID: String
    /// Present only when the applied amount is below the actual (capped by the overage policy).
    public var charged: Quantity?
    public var balances: [Balance]

    public init(eventID: String, charged: Quantity?, balances: [Balance]) {
        self.eventID = eventID
        self.charged = charged
        self.balances = balances
    }
}

/// An admin funding operation (Cycles `BudgetFundingResponse`).
public struct FundingReply: Sendable, Hashable {
    public var key: BudgetKey
    public var operation: FundingOperation
    public var previous: LedgerFigures
    public var new: LedgerFigures
    public var atMilliseconds: Int64

    public init(
        key: BudgetKey, operation: FundingOperation, previous: LedgerFigures, new: LedgerFigures,
        atMilliseconds: Int64
    ) {
        self.key = key
        self.operation = operation
        self.previous = previous
        self.new = new
        self.atMilliseconds = atMilliseconds
    }
}

/// The answer to any successful command.
public enum Reply: Sendable, Hashable {
    case reserved(ReserveReply, remainingTTLMilliseconds: Int64)
    case evaluated(EvaluationReply)
    case committed(CommitReply)
    case released(ReleaseReply)
    case extended(ExtendReply, remainingTTLMilliseconds: Int64)
    case debitRecorded(DebitReply)
    case tenant(Tenant, created: Bool)
    case apiKey(ApiKey)
    case budget(Budget)
    case funded(FundingReply)
    /// The ids the expiry sweep settled, in the order they were expired.
    case expired([ReservationID])
}
