// Commands: one per operation of the runtime and admin planes. A command carries everything `decide`
// needs that the ledger cannot derive: the caller (already authenticated), caller-generated ids, and the
// idempotency stamp whose payload fingerprint the gateway computed. Time is not in the command; it is the
// `now` argument of `decide`.

public enum Command: Sendable, Hashable {
    case reserve(ReserveCommand)
    case decide(DecideCommand)
    case commit(CommitCommand)
    case release(ReleaseCommand)
    case extend(ExtendCommand)
    case recordDebit(DebitCommand)
    case expireReservations(ExpireCommand)
    case createTenant(CreateTenantCommand)
    case updateTenant(UpdateTenantCommand)
    case createApiKey(CreateApiKeyCommand)
    case revokeApiKey(RevokeApiKeyCommand)
    case updateApiKey(UpdateApiKeyCommand)
    case createBudget(CreateBudgetCommand)
    case fundBudget(FundBudgetCommand)
    case updateBudget(UpdateBudgetCommand)
    case freezeBudget(BudgetStatusCommand)
    case unfreezeBudget(BudgetStatusCommand)
}

/// Reserve, live or dry run (`dryRun`), for the effective tenant of `caller`.
public struct ReserveCommand: Sendable, Hashable {
    public var tenant: String
    public var caller: Caller
    public var reservationID: ReservationID
    public var idempotency: IdempotencyStamp
    public var subject: Subject
    public var action: Action
    public var estimate: Quantity
    public var ttlMilliseconds: Int64?
    public var graceMilliseconds: Int64?
    public var overagePolicy: OveragePolicy?
    public var dryRun: Bool
    public var metadata: JSONText?

    public init(
        tenant: String, caller: Caller, reservationID: ReservationID, idempotency: IdempotencyStamp, subject: Subject,
        action: Action, estimate: Quantity, ttlMilliseconds: Int64? = nil, graceMilliseconds: Int64? = nil,
        overagePolicy: OveragePolicy? = nil, dryRun: Bool = false, metadata: JSONText? = nil
    ) {
        self.tenant = tenant
        self.caller = caller
        self.reservationID = reservationID
        self.idempotency = idempotency
        self.subject = subject
        self.action = action
        self.estimate = estimate
        self.ttlMilliseconds = ttlMilliseconds
        self.graceMilliseconds = graceMilliseconds
        self.overagePolicy = overagePolicy
        self.dryRun = dryRun
        self.metadata = metadata
    }
}

public struct DecideCommand: Sendable, Hashable {
    public var tenant: String
    public var caller: Caller
    public var idempotency: IdempotencyStamp
    public var subject: Subject
    public var action: Action
    public var estimate: Quantity
    public var metadata: JSONText?

    public init(
        tenant: String, caller: Caller, idempotency: IdempotencyStamp, subject: Subject, action: Action,
        estimate: Quantity, metadata: JSONText? = nil
    ) {
        self.tenant = tenant
        self.caller = caller
        self.idempotency = idempotency
        self.subject = subject
        self.action = action
        self.estimate = estimate
        self.metadata = metadata
    }
}

public struct CommitCommand: Sendable, Hashable {
    public var caller: Caller
    public var reservationID: ReservationID
    public var idempotency: IdempotencyStamp
    public var actual: Quantity
    public var metrics: StandardMetrics?
    public var metadata: JSONText?

    public init(
        caller: Caller, reservationID: ReservationID, idempotency: IdempotencyStamp, actual: Quantity,
        metrics: StandardMetrics? = nil, metadata: JSONText? = nil
    ) {
        self.caller = caller
        self.reservationID = reservationID
        self.idempotency = idempotency
        self.actual = actual
        self.metrics = metrics
        self.metadata = metadata
    }
}

/// Release by the owning tenant's key, or by the admin key (force release, any tenant).
public struct ReleaseCommand: Sendable, Hashable {
    public var caller: Caller
    public var reservationID: ReservationID
    public var idempotency: IdempotencyStamp
    public var reason: String?

    public init(caller: Caller, reservationID: ReservationID, idempotency: IdempotencyStamp, reason: String? = nil) {
        self.caller = caller
        self.reservationID = reservationID
        self.idempotency = idempotency
        self.reason = reason
    }
}

public struct ExtendCommand: Sendable, Hashable {
    public var caller: Caller
    public var reservationID: ReservationID
    public var idempotency: IdempotencyStamp
    public var extendByMilliseconds: Int64
    public var metadata: JSONText?

    public init(
        caller: Caller, reservationID: ReservationID, idempotency: IdempotencyStamp, extendByMilliseconds: Int64,
        metadata: JSONText? = nil
    ) {
        self.caller = caller
        self.reservationID = reservationID
        self.idempotency = idempotency
        self.extendByMilliseconds = extendByMilliseconds
        self.metadata = metadata
    }
}

/// A direct debit (Cycles `POST /v1/events`): spend recorded without a reservation.
public struct DebitCommand: Sendable, Hashable {
    public var tenant: String
    public var caller: Caller
    public var eventID: String
    public var idempotency: IdempotencyStamp
    public var subject: Subject
    public var action: Action
    public var actual: Quantity
    public var overagePolicy: OveragePolicy?
    public var metrics: StandardMetrics?
    /// Advisory only: never used for expiry, idempotency or budget decisions.
    public var clientTimeMilliseconds: Int64?
    public var metadata: JSONText?

    public init(
        tenant: String, caller: Caller, eventID: String, idempotency: IdempotencyStamp, subject: Subject,
        action: Action, actual: Quantity, overagePolicy: OveragePolicy? = nil, metrics: StandardMetrics? = nil,
        clientTimeMilliseconds: Int64? = nil, metadata: JSONText? = nil
    ) {
        self.tenant = tenant
        self.caller = caller
        self.eventID = eventID
        self.idempotency = idempotency
        self.subject = subject
        self.action = action
        self.actual = actual
        self.overagePolicy = overagePolicy
        self.metrics = metrics
        self.clientTimeMilliseconds = clientTimeMilliseconds
        self.metadata = metadata
    }
}

/// The expiry sweep: the store names candidates from its expiry index; `decide` re-checks each one
/// (still ACTIVE, deadline passed) so a stale index entry can never settle a reservation twice.
public struct ExpireCommand: Sendable, Hashable {
    public var candidates: [ReservationID]

    public init(candidates: [ReservationID]) { self.candidates = candidates }
}

public struct CreateTenantCommand: Sendable, Hashable {
    public var tenantID: String
    public var name: String
    public var parentTenantID: String?
    public var defaultOveragePolicy: OveragePolicy?
    public var defaultTTLMilliseconds: Int64?
    public var maxTTLMilliseconds: Int64?
    public var maxExtensions: Int?
    public var expiryPolicy: ExpiryPolicy?
    public var metadata: JSONText?

    public init(
        tenantID: String, name: String, parentTenantID: String? = nil, defaultOveragePolicy: OveragePolicy? = nil,
        defaultTTLMilliseconds: Int64? = nil, maxTTLMilliseconds: Int64? = nil, maxExtensions: Int? = nil,
        expiryPolicy: ExpiryPolicy? = nil, metadata: JSONText? = nil
    ) {
        self.tenantID = tenantID
        self.name = name
        self.parentTenantID = parentTenantID
        self.defaultOveragePolicy = defaultOveragePolicy
        self.defaultTTLMilliseconds = defaultTTLMilliseconds
        self.maxTTLMilliseconds = maxTTLMilliseconds
        self.maxExtensions = maxExtensions
        self.expiryPolicy = expiryPolicy
        self.metadata = metadata
    }
}

/// A PATCH of a tenant: `nil` fields stay as they are. Setting `status` to CLOSED runs the cascade.
public struct UpdateTenantCommand: Sendable, Hashable {
    public var tenantID: String
    public var name: String?
    public var status: TenantStatus?
    public var defaultOveragePolicy: OveragePolicy?
    public var defaultTTLMilliseconds: Int64?
    public var maxTTLMilliseconds: Int64?
    public var maxExtensions: Int?
    public var expiryPolicy: ExpiryPolicy?
    public var metadata: JSONText?

    public init(
        tenantID: String, name: String? = nil, status: TenantStatus? = nil, defaultOveragePolicy: OveragePolicy? = nil,
        defaultTTLMilliseconds: Int64? = nil, maxTTLMilliseconds: Int64? = nil, maxExtensions: Int? = nil,
        expiryPolicy: ExpiryPolicy? = nil, metadata: JSONText? = nil
    ) {
        self.tenantID = tenantID
        self.name = name
        self.status = status
        self.defaultOveragePolicy = defaultOveragePolicy
        self.defaultTTLMilliseconds = defaultTTLMilliseconds
        self.maxTTLMilliseconds = maxTTLMilliseconds
        self.maxExtensions = maxExtensions
        self.expiryPolicy = expiryPolicy
        self.metadata = metadata
    }
}

/// Create a key: the server generated the secret and passes only its SHA-256 and display prefix.
public struct CreateApiKeyCommand: Sendable, Hashable {
    public var keyID: String
    public var tenantID: String
    public var name: String
    public var description: String?
    public var secretHash: Digest256
    public var prefix: String
    public var permissions: [Permission]?
    public var scopeFilter: [String]
    public var expiresAtMilliseconds: Int64?
    public var metadata: JSONText?

    public init(
        keyID: String, tenantID: String, name: String, description: String? = nil, secretHash: Digest256,
        prefix: String, permissions: [Permission]? = nil, scopeFilter: [String] = [],
        expiresAtMilliseconds: Int64? = nil, metadata: JSONText? = nil
    ) {
        self.keyID = keyID
        self.tenantID = tenantID
        self.name = name
        self.description = description
        self.secretHash = secretHash
        self.prefix = prefix
        self.permissions = permissions
        self.scopeFilter = scopeFilter
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.metadata = metadata
    }
}

public struct RevokeApiKeyCommand: Sendable, Hashable {
    public var keyID: String
    public var reason: String?

    public init(keyID: String, reason: String? = nil) {
        self.keyID = keyID
        self.reason = reason
    }
}

/// A PATCH of an API key (Cycles 5.9): `nil` fields stay as they are; tenant, secret, expiry and status
/// cannot change.
public struct UpdateApiKeyCommand: Sendable, Hashable {
    public var keyID: String
    public var name: String?
    public var description: String?
    public var permissions: [Permission]?
    public var scopeFilter: [String]?
    public var metadata: JSONText?

    public init(
        keyID: String, name: String? = nil, description: String? = nil, permissions: [Permission]? = nil,
        scopeFilter: [String]? = nil, metadata: JSONText? = nil
    ) {
        self.keyID = keyID
        self.name = name
        self.description = description
        self.permissions = permissions
        self.scopeFilter = scopeFilter
        self.metadata = metadata
    }
}

public struct CreateBudgetCommand: Sendable, Hashable {
    public var caller: Caller
    /// The tenant the budget belongs to: `tenant_id` with the admin key, the key's tenant otherwise.
    public var tenantID: String
    /// Operator-written scope; parsed and lower-cased by `decide`.
    public var scope: String
    public var unit: Unit
    public var allocated: Amount
    public var overdraftLimit: Amount
    public var commitOveragePolicy: OveragePolicy?
    public var rolloverPolicy: RolloverPolicy
    public var caps: Caps?
    public var periodStartMilliseconds: Int64?
    public var periodEndMilliseconds: Int64?
    public var metadata: JSONText?

    public init(
        caller: Caller, tenantID: String, scope: String, unit: Unit, allocated: Amount, overdraftLimit: Amount = .zero,
        commitOveragePolicy: OveragePolicy? = nil, rolloverPolicy: RolloverPolicy = .none, caps: Caps? = nil,
        periodStartMilliseconds: Int64? = nil, periodEndMilliseconds: Int64? = nil, metadata: JSONText? = nil
    ) {
        self.caller = caller
        self.tenantID = tenantID
        self.scope = scope
        self.unit = unit
        self.allocated = allocated
        self.overdraftLimit = overdraftLimit
        self.commitOveragePolicy = commitOveragePolicy
        self.rolloverPolicy = rolloverPolicy
        self.caps = caps
        self.periodStartMilliseconds = periodStartMilliseconds
        self.periodEndMilliseconds = periodEndMilliseconds
        self.metadata = metadata
    }
}

public struct FundBudgetCommand: Sendable, Hashable {
    public var caller: Caller
    public var scope: String
    public var unit: Unit
    public var operation: FundingOperation
    public var amount: Amount
    /// RESET_SPENT only; refused with any other operation.
    public var spent: Amount?
    public var reason: String?
    public var idempotency: IdempotencyStamp?

    public init(
        caller: Caller, scope: String, unit: Unit, operation: FundingOperation, amount: Amount, spent: Amount? = nil,
        reason: String? = nil, idempotency: IdempotencyStamp? = nil
    ) {
        self.caller = caller
        self.scope = scope
        self.unit = unit
        self.operation = operation
        self.amount = amount
        self.spent = spent
        self.reason = reason
        self.idempotency = idempotency
    }
}

/// A PATCH of a budget's properties: `nil` fields stay. An empty `Caps()` removes the budget's caps.
public struct UpdateBudgetCommand: Sendable, Hashable {
    public var caller: Caller
    public var scope: String
    public var unit: Unit
    public var overdraftLimit: Amount?
    public var commitOveragePolicy: OveragePolicy?
    public var caps: Caps?
    public var metadata: JSONText?

    public init(
        caller: Caller, scope: String, unit: Unit, overdraftLimit: Amount? = nil,
        commitOveragePolicy: OveragePolicy? = nil, caps: Caps? = nil, metadata: JSONText? = nil
    ) {
        self.caller = caller
        self.scope = scope
        self.unit = unit
        self.overdraftLimit = overdraftLimit
        self.commitOveragePolicy = commitOveragePolicy
        self.caps = caps
        self.metadata = metadata
    }
}

/// Freeze or unfreeze one budget.
public struct BudgetStatusCommand: Sendable, Hashable {
    public var caller: Caller
    public var scope: String
    public var unit: Unit
    public var reason: String?

    public init(caller: Caller, scope: String, unit: Unit, reason: String? = nil) {
        self.caller = caller
        self.scope = scope
        self.unit = unit
        self.reason = reason
    }
}
