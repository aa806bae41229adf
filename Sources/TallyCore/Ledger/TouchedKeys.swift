/// The projection entries that a set of events changes, or that a command may read.
///
/// The store uses it to write each dirty entry of a batch once, and to note what it loaded for a batch
/// (`Command.forEachLookup` names what a command needs that is not kept in memory).
public struct TouchedKeys: Sendable, Hashable {
    public var tenants: Set<String> = []
    public var apiKeys: Set<String> = []
    public var budgets: Set<BudgetKey> = []
    public var reservations: Set<ReservationID> = []
    public var idempotency: Set<IdempotencyKey> = []

    public init() {}

    public mutating func formUnion(_ other: TouchedKeys) {
        tenants.formUnion(other.tenants)
        apiKeys.formUnion(other.apiKeys)
        budgets.formUnion(other.budgets)
        reservations.formUnion(other.reservations)
        idempotency.formUnion(other.idempotency)
    }
}

extension EventBody {
    /// Adds the entries this event changes. `state` is the state the event is applied to (before or after
    /// it: the facts used, such as a reservation's budgeted scopes, do not change).
    public func touch(_ keys: inout TouchedKeys, in state: LedgerState) {
        func reservation(_ id: ReservationID) {
            keys.reservations.insert(id)
            // One copy of the reservation: each `values[index]` read would copy it out again.
            if let reservation = state.reservations[id] {
                for scope in reservation.budgetedScopes { keys.budgets.insert(BudgetKey(scope, reservation.unit)) }
            }
        }
        switch self {
        case .tenantCreated(let tenant), .tenantUpdated(let tenant): keys.tenants.insert(tenant.id)
        case .apiKeyCreated(let key), .apiKeyUpdated(let key): keys.apiKeys.insert(key.id)
        case .apiKeyRevoked(let revoked): keys.apiKeys.insert(revoked.keyID)
        case .budgetCreated(let budget): keys.budgets.insert(budget.key)
        case .budgetUpdated(let updated): keys.budgets.insert(updated.key)
        case .budgetFunded(let funded):
            keys.budgets.insert(funded.key)
            if let stamp = funded.idempotency, let tenant = state.budgets[funded.key]?.tenant {
                keys.idempotency.insert(IdempotencyKey(tenant: tenant, endpoint: .fund, stamp: stamp))
            }
        case .reserved(let reserved):
            keys.reservations.insert(reserved.reservationID)
            for scope in reserved.budgetedScopes { keys.budgets.insert(BudgetKey(scope, reserved.unit)) }
            keys.idempotency.insert(IdempotencyKey(tenant: reserved.tenant, endpoint: .reserve, stamp: reserved.idempotency))
        case .committed(let committed): reservation(committed.reservationID)
        case .released(let released): reservation(released.reservationID)
        case .expired(let expired): reservation(expired.reservationID)
        case .extended(let extended):
            reservation(extended.reservationID)
            keys.idempotency.insert(IdempotencyKey(
                tenant: extended.tenant, endpoint: .extend, qualifier: extended.reservationID.description, stamp: extended.idempotency))
        case .debitRecorded(let debit):
            for delta in debit.deltas { keys.budgets.insert(BudgetKey(delta.scope, debit.unit)) }
            keys.idempotency.insert(IdempotencyKey(tenant: debit.tenant, endpoint: .event, stamp: debit.idempotency))
        case .evaluationRecorded(let evaluation):
            let endpoint: IdempotencyEndpoint = evaluation.reply.kind == .decide ? .decide : .reserve
            keys.idempotency.insert(IdempotencyKey(tenant: evaluation.tenant, endpoint: endpoint, stamp: evaluation.idempotency))
        }
    }
}

extension EventBody {
    /// The reservation this event creates or changes, if any: the one `touch` adds to `reservations`. The
    /// writer uses it to note a reservation's deadline before the event moves it, without a `TouchedKeys`.
    package var reservationID: ReservationID? {
        switch self {
        case .reserved(let reserved): reserved.reservationID
        case .committed(let committed): committed.reservationID
        case .released(let released): released.reservationID
        case .extended(let extended): extended.reservationID
        case .expired(let expired): expired.reservationID
        case .tenantCreated, .tenantUpdated, .apiKeyCreated, .apiKeyRevoked, .apiKeyUpdated, .budgetCreated, .budgetFunded,
             .budgetUpdated, .debitRecorded, .evaluationRecorded:
            nil
        }
    }
}

extension Command {
    /// The reservations and idempotency records `decide` may consult for this command, beyond what a
    /// store keeps in memory (tenants, keys, budgets and ACTIVE reservations), one at a time: the writer
    /// asks for every command, and building sets for one or two keys each would cost more than the lookups.
    /// `budgets` (the state's) give a fund's tenant.
    public func forEachLookup(
        budgets: [BudgetKey: Budget], reservation: (ReservationID) throws -> Void, idempotency: (IdempotencyKey) throws -> Void
    ) rethrows {
        switch self {
        case .reserve(let reserve):
            try reservation(reserve.reservationID)
            try idempotency(IdempotencyKey(tenant: reserve.tenant, endpoint: .reserve, stamp: reserve.idempotency))
        case .decide(let decide):
            try idempotency(IdempotencyKey(tenant: decide.tenant, endpoint: .decide, stamp: decide.idempotency))
        case .commit(let commit): try reservation(commit.reservationID)
        case .release(let release): try reservation(release.reservationID)
        case .extend(let extend):
            try reservation(extend.reservationID)
            if let tenant = extend.caller.tenantID {
                try idempotency(IdempotencyKey(tenant: tenant, endpoint: .extend, qualifier: extend.reservationID.description, stamp: extend.idempotency))
            }
        case .recordDebit(let debit):
            try idempotency(IdempotencyKey(tenant: debit.tenant, endpoint: .event, stamp: debit.idempotency))
        case .fundBudget(let fund):
            if let stamp = fund.idempotency, let scope = try? ScopePath(parsing: fund.scope),
               let tenant = budgets[BudgetKey(scope, fund.unit)]?.tenant {
                try idempotency(IdempotencyKey(tenant: tenant, endpoint: .fund, stamp: stamp))
            }
        case .expireReservations(let expire):
            for id in expire.candidates { try reservation(id) }
        case .createTenant, .updateTenant, .createApiKey, .revokeApiKey, .updateApiKey, .createBudget, .updateBudget,
             .freezeBudget, .unfreezeBudget:
            break
        }
    }
}
