// The overage policies (semantics section 3): how an amount that a scope may not be able to cover is
// spread over every budgeted scope at once, all or nothing.

/// The per-scope effect of spreading an overage, before any base step.
struct OverageSpread {
    var deltas: [ScopeDelta]
    /// The part of the amount actually charged (may be below it under capping).
    var applied: Amount
}

extension Ledger {
    /// Spreads `amount` (the commit's Δ = actual − estimate, or a direct debit's whole actual) over the
    /// budgets under `policy`. Each scope's `remaining` is read as it is now (already net of the commit's own
    /// hold). Throws `BUDGET_EXCEEDED` (REJECT) or `OVERDRAFT_LIMIT_EXCEEDED` (ALLOW_WITH_OVERDRAFT) with
    /// nothing changed.
    static func spreadOverage(_ amount: Amount, over budgets: [Budget], policy: OveragePolicy) throws(Refusal) -> OverageSpread {
        let fullyCovered = budgets.allSatisfy { $0.remaining >= amount }
        if fullyCovered {
            let deltas = budgets.map { ScopeDelta(scope: $0.scope, remaining: Amount(-amount.value), spent: amount) }
            return OverageSpread(deltas: deltas, applied: amount)
        }
        switch policy {
        case .reject:
            let short = budgets.first { $0.remaining < amount }!
            throw Refusal(.budgetExceeded, "insufficient budget at scope \(short.scope) (\(short.unit.cyclesName)) under REJECT")
        case .allowIfAvailable:
            // Never fails, never creates debt: charge what every scope can cover and flag the scopes that
            // could not cover the whole amount.
            let capped = min(amount, budgets.map(\.remaining.flooredAtZero).min() ?? amount)
            let deltas = budgets.map { budget in
                ScopeDelta(scope: budget.scope, remaining: Amount(-capped.value), spent: capped,
                           marksOverLimit: budget.remaining < amount)
            }
            return OverageSpread(deltas: deltas, applied: capped)
        case .allowWithOverdraft:
            return try spreadWithOverdraft(amount, over: budgets)
        }
    }

    /// ALLOW_WITH_OVERDRAFT in the reference's three phases: zero-limit scopes cap the amount as
    /// ALLOW_IF_AVAILABLE would; scopes with a limit fund what they can and take the rest as debt, unless
    /// that debt would pass the limit (decision 3: only the unfunded part counts; equal is allowed).
    private static func spreadWithOverdraft(_ amount: Amount, over budgets: [Budget]) throws(Refusal) -> OverageSpread {
        var capped = amount
        for budget in budgets where budget.overdraftLimit.value == 0 && budget.remaining < amount {
            capped = min(capped, budget.remaining.flooredAtZero)
        }
        var deltas: [ScopeDelta] = []
        for budget in budgets {
            if budget.remaining >= capped {
                deltas.append(ScopeDelta(
                    scope: budget.scope, remaining: Amount(-capped.value), spent: capped,
                    marksOverLimit: capped < amount && budget.overdraftLimit.value == 0 && budget.remaining < amount))
                continue
            }
            let funded = budget.remaining.flooredAtZero
            let deficit = try capped.subtracting(funded)
            // Only scopes with an overdraft limit take debt (phase 2). A zero-limit scope gets here only with a
            // negative remaining, and then phase 1 has capped the amount to 0, so its deficit is 0 too.
            // `limit - debt` cannot overflow (both are non-negative), so a deficit that would push debt past
            // Int64.max is reported as the limit breach it is, not as an overflow.
            if deficit.value > 0 && deficit.value > budget.overdraftLimit.value - budget.debt.value {
                throw Refusal(.overdraftLimitExceeded, "the overage would take scope \(budget.scope) (\(budget.unit.cyclesName)) past its overdraft limit")
            }
            deltas.append(ScopeDelta(
                scope: budget.scope, remaining: Amount(-capped.value), spent: funded, debt: deficit,
                marksOverLimit: capped < amount && budget.overdraftLimit.value == 0 && budget.remaining < amount))
        }
        return OverageSpread(deltas: deltas, applied: capped)
    }
}
