// Budgets on the admin plane: create, the five funding operations, update, freeze and unfreeze
// (semantics 5.6, 5.7; decisions 4, 5 and 11).

extension Ledger {
    static func decideCreateBudget(_ command: CreateBudgetCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        let scope = try ScopePath(parsing: command.scope)
        try validateNonNegative(command.allocated, field: "allocated.amount")
        try validateNonNegative(command.overdraftLimit, field: "overdraft_limit.amount")
        try command.caps?.validate()
        try command.metadata?.validate(field: "metadata")
        if let start = command.periodStartMilliseconds, let end = command.periodEndMilliseconds, start > end {
            throw Refusal(.invalidRequest, "period_start must not be after period_end")
        }
        if scope.tenant != command.tenantID {
            throw Refusal(.invalidRequest, "scope \(scope) does not start with tenant:\(command.tenantID)")
        }
        try requireOwner(command.caller, owns: command.tenantID, what: "scope \(scope)")
        guard let tenant = state.tenants[command.tenantID] else {
            throw Refusal(.tenantNotFound, "tenant \(command.tenantID) not found; create it first (tally tenant create --id \(command.tenantID) --name ...)")
        }
        if tenant.status == .closed { throw Refusal(.tenantClosed, "tenant \(tenant.id) is closed") }
        if tenant.status != .active {
            throw Refusal(.invalidRequest, "tenant \(tenant.id) is \(tenant.status.cyclesName); budgets can only be created for ACTIVE tenants")
        }
        let key = BudgetKey(scope, command.unit)
        if state.budgets[key] != nil { throw Refusal(.duplicateResource, "a budget for \(key) already exists") }
        return [.budgetCreated(Budget(
            key: key, tenant: tenant.id, allocated: command.allocated, remaining: command.allocated,
            overdraftLimit: command.overdraftLimit, commitOveragePolicy: command.commitOveragePolicy,
            rolloverPolicy: command.rolloverPolicy, caps: command.caps.flatMap { $0 == Caps() ? nil : $0 },
            periodStartMilliseconds: command.periodStartMilliseconds, periodEndMilliseconds: command.periodEndMilliseconds,
            metadata: command.metadata, createdAtMilliseconds: now, updatedAtMilliseconds: now))]
    }

    /// The budget an admin command names, with the owner check: 404 `BUDGET_NOT_FOUND`, then 403.
    private static func namedBudget(_ scopeText: String, _ unit: Unit, caller: Caller, _ state: LedgerState) throws(Refusal) -> Budget {
        let key = BudgetKey(try ScopePath(parsing: scopeText), unit)
        guard let budget = state.budgets[key] else { throw Refusal(.budgetNotFound, "no budget for \(key)") }
        try requireOwner(caller, owns: budget.tenant, what: "budget \(key)")
        return budget
    }

    private static func validateFund(_ command: FundBudgetCommand) throws(Refusal) {
        try validateNonNegative(command.amount, field: "amount.amount")
        if let spent = command.spent {
            if command.operation != .resetSpent { throw Refusal(.invalidRequest, "spent is only accepted with RESET_SPENT") }
            try validateNonNegative(spent, field: "spent.amount")
        }
        try validateText(command.reason, field: "reason", max: Limits.adminReasonLengthMax)
        try command.idempotency?.validate()
    }

    /// Validation, existence and ownership, then a same-key replay (per tenant, decision 11).
    static func fundReplay(_ command: FundBudgetCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> Decision? {
        try validateFund(command)
        let budget = try namedBudget(command.scope, command.unit, caller: command.caller, state)
        guard let stamp = command.idempotency else { return nil }
        let key = IdempotencyKey(tenant: budget.tenant, endpoint: .fund, stamp: stamp)
        guard let record = state.idempotencyRecord(key, now: now) else { return nil }
        guard record.payloadHash == stamp.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(stamp.key)' was used with a different funding request")
        }
        return Decision(events: [], reply: storedReply(record.reply, now: now, reservations: state), isReplay: true)
    }

    /// Then: closed tenant, FROZEN, CLOSED, and the operation's arithmetic. Every operation ends by
    /// recomputing `is_over_limit = debt > overdraft_limit` (decision 5).
    static func decideFundBudget(_ command: FundBudgetCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        let budget = try namedBudget(command.scope, command.unit, caller: command.caller, state)
        try requireTenantNotClosed(budget.tenant, state)
        try requireOpen(budget)
        let before = budget.figures
        var after = before
        let amount = command.amount
        switch command.operation {
        case .credit:
            // Decision 4: CREDIT leaves debt alone; REPAY_DEBT is how debt goes down.
            after.allocated = try before.allocated.adding(amount)
            after.remaining = try before.remaining.adding(amount)
        case .debit:
            if before.remaining < amount {
                throw Refusal(.budgetExceeded, "insufficient funds: budget \(budget.key) cannot be debited by more than it has remaining")
            }
            after.allocated = try before.allocated.subtracting(amount)
            after.remaining = try before.remaining.subtracting(amount)
            if after.allocated.isNegative { throw Refusal(.invalidRequest, "DEBIT would make allocated negative") }
        case .reset:
            after.allocated = amount
            after.remaining = try amount.subtracting(before.reserved).subtracting(before.spent).subtracting(before.debt)
        case .resetSpent:
            after.allocated = amount
            after.spent = command.spent ?? .zero
            after.remaining = try amount.subtracting(after.spent).subtracting(before.reserved).subtracting(before.debt)
        case .repayDebt:
            let repaid = min(before.debt, amount)
            let excess = try amount.subtracting(repaid)
            after.debt = try before.debt.subtracting(repaid)
            after.allocated = try before.allocated.adding(excess)
            after.remaining = try before.remaining.adding(repaid).adding(excess)
        }
        let stamp = command.idempotency
        return [.budgetFunded(BudgetFunded(
            key: budget.key, operation: command.operation, amount: amount, spentOverride: command.spent, before: before,
            after: after, isOverLimitAfter: after.debt > budget.overdraftLimit, reason: command.reason,
            idempotency: stamp, replayRetainUntilMilliseconds: instant(now, plus: Limits.fundReplayRetentionMilliseconds),
            caller: command.caller, atMilliseconds: now))]
    }

    /// Property updates are allowed on FROZEN budgets but not on CLOSED ones; `is_over_limit` is recomputed.
    static func decideUpdateBudget(_ command: UpdateBudgetCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        if let limit = command.overdraftLimit { try validateNonNegative(limit, field: "overdraft_limit.amount") }
        try command.caps?.validate()
        try command.metadata?.validate(field: "metadata")
        let budget = try namedBudget(command.scope, command.unit, caller: command.caller, state)
        try requireTenantNotClosed(budget.tenant, state)
        if budget.status == .closed { throw Refusal(.budgetClosed, "budget \(budget.key) is closed") }
        let limit = command.overdraftLimit ?? budget.overdraftLimit
        let caps = command.caps.map { $0 == Caps() ? nil : $0 } ?? budget.caps
        return [.budgetUpdated(BudgetUpdated(
            key: budget.key, change: .properties, overdraftLimit: limit,
            commitOveragePolicy: command.commitOveragePolicy ?? budget.commitOveragePolicy, caps: caps,
            metadata: command.metadata ?? budget.metadata, status: budget.status, isOverLimit: budget.debt > limit,
            reason: nil, caller: command.caller, atMilliseconds: now))]
    }

    /// ACTIVE to FROZEN and back only; repeating the move is `INVALID_TRANSITION`, a CLOSED budget is
    /// `BUDGET_CLOSED`.
    static func decideBudgetStatus(_ command: BudgetStatusCommand, freeze: Bool, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        try validateText(command.reason, field: "reason", max: Limits.adminReasonLengthMax)
        let budget = try namedBudget(command.scope, command.unit, caller: command.caller, state)
        try requireTenantNotClosed(budget.tenant, state)
        if budget.status == .closed { throw Refusal(.budgetClosed, "budget \(budget.key) is closed") }
        let from: BudgetStatus = freeze ? .active : .frozen
        guard budget.status == from else {
            throw Refusal(.invalidTransition, "budget \(budget.key) is already \(budget.status.cyclesName)")
        }
        return [.budgetUpdated(BudgetUpdated(
            key: budget.key, change: freeze ? .freeze : .unfreeze, overdraftLimit: budget.overdraftLimit,
            commitOveragePolicy: budget.commitOveragePolicy, caps: budget.caps, metadata: budget.metadata,
            status: freeze ? .frozen : .active, isOverLimit: budget.isOverLimit, reason: command.reason,
            caller: command.caller, atMilliseconds: now))]
    }

    private static func requireOpen(_ budget: Budget) throws(Refusal) {
        if budget.status == .frozen { throw Refusal(.budgetFrozen, "budget \(budget.key) is frozen") }
        if budget.status == .closed { throw Refusal(.budgetClosed, "budget \(budget.key) is closed") }
    }
}
