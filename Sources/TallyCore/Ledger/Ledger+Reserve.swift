// Reserve (live and dry run) and decide: semantics 2.1-2.3.

/// The budgets a subject reaches in one unit: every derived scope, and those of them with a budget.
struct ScopeResolution {
    var affectedScopes: [ScopePath]
    /// Budgets in the requested unit on derived scopes, in canonical order (tenant first).
    var budgets: [Budget]

    var scopePath: ScopePath { affectedScopes[affectedScopes.count - 1] }

    init(subject: Subject, tenant: String, unit: Unit, state: LedgerState, derivations: ScopeDerivations? = nil) {
        affectedScopes = derivations?.paths(subject: subject, tenant: tenant) ?? ScopePath.derive(subject: subject, tenant: tenant)
        budgets = state.budgets(of: affectedScopes, unit: unit)
    }

    /// With no budget in the requested unit: `UNIT_MISMATCH` (with details) if a derived scope has a
    /// budget in another unit. The first such scope in canonical order is named.
    func unitMismatch(requested unit: Unit, state: LedgerState) -> Refusal? {
        for scope in affectedScopes {
            let units = Unit.allCases.filter { $0 != unit && state.budgets[BudgetKey(scope, $0)] != nil }
            if !units.isEmpty {
                return Refusal(
                    .unitMismatch, "scope \(scope) has no \(unit.cyclesName) budget; it is budgeted in \(units.map(\.cyclesName).joined(separator: ", "))",
                    unitMismatch: UnitMismatchDetails(scope: scope, requestedUnit: unit, expectedUnits: units))
            }
        }
        return nil
    }

    /// The first reason, scope by scope in canonical order, that a new hold of `amount` is not allowed:
    /// FROZEN, CLOSED, over limit, debt without overdraft, then insufficient remaining (semantics 2.1 step 3).
    func firstDenial(holding amount: Amount) -> (reason: DenyReason, scope: ScopePath)? {
        for budget in budgets {
            if budget.status == .frozen { return (.budgetFrozen, budget.scope) }
            if budget.status == .closed { return (.budgetClosed, budget.scope) }
            if budget.isOverLimit { return (.overdraftLimitExceeded, budget.scope) }
            if budget.debt.value > 0 && budget.overdraftLimit.value == 0 { return (.debtOutstanding, budget.scope) }
            if budget.remaining < amount { return (.budgetExceeded, budget.scope) }
        }
        return nil
    }

    /// Decision 7: the caps of the deepest budgeted scope, if it carries any.
    var caps: Caps? { budgets.last?.caps }
}

extension DenyReason {
    func refusal(at scope: ScopePath, unit: Unit) -> Refusal {
        let message = switch self {
        case .budgetExceeded: "insufficient budget at scope \(scope) (\(unit.cyclesName))"
        case .budgetFrozen: "budget at scope \(scope) (\(unit.cyclesName)) is frozen"
        case .budgetClosed: "budget at scope \(scope) (\(unit.cyclesName)) is closed"
        case .overdraftLimitExceeded: "scope \(scope) (\(unit.cyclesName)) is over its overdraft limit"
        case .debtOutstanding: "scope \(scope) (\(unit.cyclesName)) has outstanding debt and no overdraft limit"
        case .budgetNotFound: "Budget not found for provided scope: \(scope)"
        case .tenantClosed: "tenant is closed"
        }
        return Refusal(errorCode, message)
    }
}

extension Ledger {
    static func validateReserve(_ command: ReserveCommand) throws(Refusal) {
        try command.idempotency.validate()
        try validateReservationID(command.reservationID)
        try command.subject.validate()
        try command.action.validate()
        try validateNonNegative(command.estimate.amount, field: "estimate.amount")
        if let ttl = command.ttlMilliseconds, !(Limits.ttlMillisecondsMin...Limits.ttlMillisecondsMax).contains(ttl) {
            throw Refusal(.invalidRequest, "ttl_ms must be \(Limits.ttlMillisecondsMin)-\(Limits.ttlMillisecondsMax)")
        }
        if let grace = command.graceMilliseconds,
           !(Limits.graceMillisecondsMin...Limits.graceMillisecondsMax).contains(grace) {
            throw Refusal(.invalidRequest, "grace_period_ms must be \(Limits.graceMillisecondsMin)-\(Limits.graceMillisecondsMax)")
        }
        try command.metadata?.validate(field: "metadata")
    }

    /// Validation (400), subject tenant (403), then a same-key replay or `IDEMPOTENCY_MISMATCH`. Live and
    /// dry-run share the namespace; a record of the other kind is a mismatch whatever the fingerprint.
    static func reserveReplay(_ command: ReserveCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> Decision? {
        try validateReserve(command)
        try requireSubjectTenant(command.subject, effectiveTenant: command.tenant)
        let key = IdempotencyKey(tenant: command.tenant, endpoint: .reserve, stamp: command.idempotency)
        guard let record = state.idempotencyRecord(key, now: now) else { return nil }
        let sameKind: Bool
        switch record.reply {
        case .reserve: sameKind = !command.dryRun
        case .evaluation(let evaluation): sameKind = command.dryRun && evaluation.kind == .dryRun
        default: sameKind = false
        }
        guard sameKind, record.payloadHash == command.idempotency.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(command.idempotency.key)' was used with a different reserve request")
        }
        return Decision(events: [], reply: storedReply(record.reply, now: now, reservations: state), isReplay: true)
    }

    /// A fresh live reserve: tenant guard, per-scope checks in canonical order, unit probe, then the hold
    /// on every budgeted scope with the tenant's TTL, grace, policy and extension defaults frozen on it.
    static func decideReserve(
        _ command: ReserveCommand, _ state: LedgerState, now: Int64, derivations: ScopeDerivations? = nil
    ) throws(Refusal) -> [EventBody] {
        try requireTenantNotClosed(command.tenant, state)
        let unit = command.estimate.unit
        let amount = command.estimate.amount
        let resolution = ScopeResolution(
            subject: command.subject, tenant: command.tenant, unit: unit, state: state, derivations: derivations)
        if let (reason, scope) = resolution.firstDenial(holding: amount) {
            throw reason.refusal(at: scope, unit: unit)
        }
        if resolution.budgets.isEmpty {
            throw resolution.unitMismatch(requested: unit, state: state)
                ?? DenyReason.budgetNotFound.refusal(at: resolution.scopePath, unit: unit)
        }
        if state.reservations[command.reservationID] != nil {
            throw Refusal(.internalError, "reservation id \(command.reservationID) is already taken; retry with the same idempotency_key")
        }
        for budget in resolution.budgets {
            _ = try budget.reserved.adding(amount)
        }
        let tenant = state.tenants[command.tenant]
        let requestedTTL = command.ttlMilliseconds ?? tenant?.defaultTTLMilliseconds ?? Limits.ttlMillisecondsDefault
        let ttl = min(requestedTTL, tenant?.maxTTLMilliseconds ?? Limits.ttlMillisecondsCapDefault)
        let grace = command.graceMilliseconds ?? Limits.graceMillisecondsDefault
        let expiresAt = instant(now, plus: ttl)
        let reserved = Reserved(
            reservationID: command.reservationID, tenant: command.tenant, subject: command.subject,
            action: command.action, unit: unit, amount: amount, scopePath: resolution.scopePath,
            affectedScopes: resolution.affectedScopes, budgetedScopes: resolution.budgets.map(\.scope),
            createdAtMilliseconds: now, expiresAtMilliseconds: expiresAt, graceMilliseconds: grace,
            overagePolicy: command.overagePolicy ?? tenant?.defaultOveragePolicy ?? .allowIfAvailable,
            maxExtensions: tenant?.maxExtensions ?? Limits.extensionsDefault, caps: resolution.caps,
            idempotency: command.idempotency,
            replayRetainUntilMilliseconds: instant(now, plus: max(ttl + grace, Limits.reserveReplayRetentionMilliseconds)),
            metadata: command.metadata, caller: command.caller)
        return [.reserved(reserved)]
    }

    static func decideReplay(_ command: DecideCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> Decision? {
        try command.idempotency.validate()
        try command.subject.validate()
        try command.action.validate()
        try validateNonNegative(command.estimate.amount, field: "estimate.amount")
        try command.metadata?.validate(field: "metadata")
        try requireSubjectTenant(command.subject, effectiveTenant: command.tenant)
        let key = IdempotencyKey(tenant: command.tenant, endpoint: .decide, stamp: command.idempotency)
        guard let record = state.idempotencyRecord(key, now: now) else { return nil }
        guard record.payloadHash == command.idempotency.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(command.idempotency.key)' was used with a different decide request")
        }
        return Decision(events: [], reply: storedReply(record.reply, now: now, reservations: state), isReplay: true)
    }

    /// A fresh dry run or decide: the live checks, reported as DENY with a reason instead of 409 (a wrong unit
    /// is still 400), with no hold. The answer is recorded (`EvaluationRecorded`) for replays `retainedFor` long.
    static func recordedEvaluation(
        _ kind: EvaluationKind, _ tenant: String, _ caller: Caller, _ idempotency: IdempotencyStamp, subject: Subject,
        estimate: Quantity, retainedFor retention: Int64, _ state: LedgerState, now: Int64, derivations: ScopeDerivations?
    ) throws(Refusal) -> EventBody {
        let reply = try evaluation(kind, tenant: tenant, subject: subject, estimate: estimate, state: state, derivations: derivations)
        return .evaluationRecorded(EvaluationRecorded(
            tenant: tenant, idempotency: idempotency, replayRetainUntilMilliseconds: instant(now, plus: retention),
            reply: reply, caller: caller, atMilliseconds: now))
    }

    private static func evaluation(
        _ kind: EvaluationKind, tenant: String, subject: Subject, estimate: Quantity, state: LedgerState,
        derivations: ScopeDerivations?
    ) throws(Refusal) -> EvaluationReply {
        let resolution = ScopeResolution(
            subject: subject, tenant: tenant, unit: estimate.unit, state: state, derivations: derivations)
        var reply = EvaluationReply(
            kind: kind, decision: .deny, reasonCode: nil, caps: nil, scopePath: resolution.scopePath,
            affectedScopes: resolution.affectedScopes, reserved: nil, balances: [])
        if state.tenants[tenant]?.status == .closed {
            reply.reasonCode = .tenantClosed
        } else if let (reason, _) = resolution.firstDenial(holding: estimate.amount) {
            reply.reasonCode = reason
        } else if resolution.budgets.isEmpty {
            if let mismatch = resolution.unitMismatch(requested: estimate.unit, state: state) { throw mismatch }
            reply.reasonCode = .budgetNotFound
        } else {
            reply.caps = resolution.caps
            reply.decision = reply.caps == nil ? .allow : .allowWithCaps
            if kind == .dryRun {
                reply.reserved = estimate
                reply.balances = resolution.budgets.map(\.balance)
            }
        }
        return reply
    }
}
