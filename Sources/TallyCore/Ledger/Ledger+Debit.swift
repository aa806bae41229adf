// Direct debit, Cycles `POST /v1/events`: spend recorded without a reservation (semantics 2.10, 3.4).

extension Ledger {
    static func debitReplay(_ command: DebitCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> Decision? {
        try command.idempotency.validate()
        if command.eventID.isEmpty || command.eventID.hasMoreScalars(than: Limits.eventIDLengthMax) {
            throw Refusal(.invalidRequest, "event id must be 1-\(Limits.eventIDLengthMax) characters")
        }
        try command.subject.validate()
        try command.action.validate()
        try validateNonNegative(command.actual.amount, field: "actual.amount")
        if let clientTime = command.clientTimeMilliseconds, clientTime < 0 {
            throw Refusal(.invalidRequest, "client_time_ms must be >= 0")
        }
        try command.metrics?.validate()
        try command.metadata?.validate(field: "metadata")
        try requireSubjectTenant(command.subject, effectiveTenant: command.tenant)
        let key = IdempotencyKey(tenant: command.tenant, endpoint: .event, stamp: command.idempotency)
        guard let record = state.idempotencyRecord(key, now: now) else { return nil }
        guard record.payloadHash == command.idempotency.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(command.idempotency.key)' was used with a different event")
        }
        return Decision(events: [], reply: storedReply(record.reply, now: now, reservations: state), isReplay: true)
    }

    /// Closed tenant (409, never a DENY), then per scope in canonical order: FROZEN, CLOSED, and under
    /// REJECT insufficient remaining; then the unit probe; then the policy spreads the whole amount. Debt
    /// and over-limit do not block a debit: the work already happened.
    static func decideDebit(
        _ command: DebitCommand, _ state: LedgerState, now: Int64, derivations: ScopeDerivations? = nil
    ) throws(Refusal) -> [EventBody] {
        try requireTenantNotClosed(command.tenant, state)
        let unit = command.actual.unit
        let actual = command.actual.amount
        let policy = command.overagePolicy ?? state.tenants[command.tenant]?.defaultOveragePolicy ?? .allowIfAvailable
        let resolution = ScopeResolution(
            subject: command.subject, tenant: command.tenant, unit: unit, state: state, derivations: derivations)
        for budget in resolution.budgets {
            if budget.status == .frozen { throw DenyReason.budgetFrozen.refusal(at: budget.scope, unit: unit) }
            if budget.status == .closed { throw DenyReason.budgetClosed.refusal(at: budget.scope, unit: unit) }
            if policy == .reject && budget.remaining < actual {
                throw Refusal(.budgetExceeded, "insufficient budget at scope \(budget.scope) (\(unit.cyclesName)) under REJECT")
            }
        }
        if resolution.budgets.isEmpty {
            throw resolution.unitMismatch(requested: unit, state: state)
                ?? DenyReason.budgetNotFound.refusal(at: resolution.scopePath, unit: unit)
        }
        let spread = try spreadOverage(actual, over: resolution.budgets, policy: policy)
        for (budget, delta) in zip(resolution.budgets, spread.deltas) { _ = try budget.applying(delta) }
        return [.debitRecorded(DebitRecorded(
            eventID: command.eventID, tenant: command.tenant, subject: command.subject, action: command.action,
            unit: unit, actual: actual, charged: spread.applied, overagePolicy: policy, scopePath: resolution.scopePath,
            deltas: spread.deltas, idempotency: command.idempotency,
            replayRetainUntilMilliseconds: instant(now, plus: Limits.eventReplayRetentionMilliseconds),
            metrics: command.metrics, clientTimeMilliseconds: command.clientTimeMilliseconds,
            metadata: command.metadata, caller: command.caller, atMilliseconds: now))]
    }
}
