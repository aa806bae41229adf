@testable import TallyCore

// The admin plane of the reference model: tenants (5.5, 5.10), API keys (5.9), budgets (5.6) and funding
// (5.7 with decisions 4 and 5). Where the semantics leave a status code open the choice is commented.
extension ReferenceLedger {
    static func validTenantID(_ id: String) -> Bool {
        id.utf8.count >= 3 && id.utf8.count <= 64
            && id.unicodeScalars.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }
    }

    static func validTTL(_ value: Int64?) -> Bool { value.map { $0 >= 1_000 && $0 <= 86_400_000 } ?? true }

    func createTenant(_ c: CreateTenantCommand, now: Int64) -> ModelOutcome {
        guard Self.validTenantID(c.tenantID), !c.name.isEmpty, c.name.count <= 256,
              Self.validTTL(c.defaultTTLMilliseconds), Self.validTTL(c.maxTTLMilliseconds),
              c.maxExtensions.map({ $0 >= 0 && $0 <= 10_000 }) ?? true,
              c.expiryPolicy.map({ $0 == .autoRelease }) ?? true  // decision 14
        else { return .refused(.invalidRequest) }
        if let existing = tenant(c.tenantID) {
            // 5.5: same id and same name is an idempotent create; another name is a conflict.
            return existing.name == c.name ? .replied(.tenant(existing, created: false)) : .refused(.duplicateResource)
        }
        let created = Tenant(
            id: c.tenantID, name: c.name, parentTenantID: c.parentTenantID,
            defaultOveragePolicy: c.defaultOveragePolicy ?? .allowIfAvailable,
            defaultTTLMilliseconds: c.defaultTTLMilliseconds ?? 60_000,
            maxTTLMilliseconds: c.maxTTLMilliseconds ?? 3_600_000, maxExtensions: c.maxExtensions ?? 10,
            expiryPolicy: c.expiryPolicy ?? .autoRelease, metadata: c.metadata, createdAtMilliseconds: now,
            updatedAtMilliseconds: now)
        tenants.append(created)
        return .replied(.tenant(created, created: true))
    }

    func updateTenant(_ c: UpdateTenantCommand, now: Int64) -> ModelOutcome {
        if let name = c.name, name.isEmpty || name.count > 256 { return .refused(.invalidRequest) }
        guard Self.validTTL(c.defaultTTLMilliseconds), Self.validTTL(c.maxTTLMilliseconds),
              c.maxExtensions.map({ $0 >= 0 && $0 <= 10_000 }) ?? true,
              c.expiryPolicy.map({ $0 == .autoRelease }) ?? true
        else { return .refused(.invalidRequest) }
        guard let index = tenantIndex(c.tenantID) else { return .refused(.tenantNotFound) }
        var next = tenants[index]
        // 5.5: CLOSED is terminal; leaving it is a 400, re-closing re-runs the (idempotent) cascade.
        if next.status == .closed, let status = c.status, status != .closed { return .refused(.invalidRequest) }
        // Rule 2 of 5.10: a PATCH of anything but the status on a CLOSED tenant mutates a closed tenant.
        if next.status == .closed && (c.name != nil || c.defaultOveragePolicy != nil || c.defaultTTLMilliseconds != nil
            || c.maxTTLMilliseconds != nil || c.maxExtensions != nil || c.expiryPolicy != nil || c.metadata != nil)
        {
            return .refused(.tenantClosed)
        }
        if let name = c.name { next.name = name }
        if let status = c.status { next.status = status }
        if let policy = c.defaultOveragePolicy { next.defaultOveragePolicy = policy }
        if let ttl = c.defaultTTLMilliseconds { next.defaultTTLMilliseconds = ttl }
        if let ttl = c.maxTTLMilliseconds { next.maxTTLMilliseconds = ttl }
        if let count = c.maxExtensions { next.maxExtensions = count }
        if let policy = c.expiryPolicy { next.expiryPolicy = policy }
        if let metadata = c.metadata { next.metadata = metadata }
        // Unspecified by the semantics, chosen as the core does: a PATCH that changes nothing is a no-op
        // and leaves `updated_at` alone.
        if next != tenants[index] { next.updatedAtMilliseconds = now }
        tenants[index] = next
        if next.status == .closed { closeCascade(next.id, now: now) }
        return .replied(.tenant(next, created: false))
    }

    /// Decision 15: ACTIVE reservations RELEASED with their holds returned, budgets CLOSED, keys REVOKED.
    func closeCascade(_ tenantID: String, now: Int64) {
        for index in reservations.indices where reservations[index].tenant == tenantID {
            guard reservations[index].status == .active else { continue }
            let row = reservations[index]
            for scope in row.budgetedScopes {
                guard let b = budgetIndex(scope, row.unit) else { continue }
                budgets[b].reserved -= row.estimate
                budgets[b].remaining += row.estimate
            }
            finish(index, .released)
        }
        for index in budgets.indices where budgets[index].tenant == tenantID && budgets[index].status != .closed {
            budgets[index].status = .closed
        }
        for index in keys.indices where keys[index].tenant == tenantID && keys[index].status == .active {
            keys[index].status = .revoked
            keys[index].revokedAtMilliseconds = now
        }
    }

    func createApiKey(_ c: CreateApiKeyCommand, now: Int64) -> ModelOutcome {
        guard !c.keyID.isEmpty, c.keyID.count <= 128, !c.name.isEmpty, c.name.count <= 256, c.prefix.count <= 32
        else { return .refused(.invalidRequest) }
        guard let owner = tenant(c.tenantID) else { return .refused(.tenantNotFound) }
        if owner.status == .closed { return .refused(.tenantClosed) }
        // 5.9: "Target tenant must exist and be ACTIVE"; a SUSPENDED target is a 400 (code not pinned).
        if owner.status != .active { return .refused(.invalidRequest) }
        if keys.contains(where: { $0.id == c.keyID }) { return .refused(.duplicateResource) }
        let key = ApiKey(
            id: c.keyID, tenant: c.tenantID, name: c.name, description: c.description, secretHash: c.secretHash,
            prefix: c.prefix, permissions: c.permissions ?? Permission.defaultSet, scopeFilter: c.scopeFilter,
            expiresAtMilliseconds: c.expiresAtMilliseconds, metadata: c.metadata, createdAtMilliseconds: now)
        keys.append(key)
        return .replied(.apiKey(key))
    }

    func revokeApiKey(_ c: RevokeApiKeyCommand, now: Int64) -> ModelOutcome {
        guard let index = keys.firstIndex(where: { $0.id == c.keyID }) else { return .refused(.notFound) }
        // Rule 2 of 5.10 before the state check: objects of a CLOSED tenant answer TENANT_CLOSED.
        if tenant(keys[index].tenant)?.status == .closed { return .refused(.tenantClosed) }
        if keys[index].status == .revoked { return .refused(.invalidTransition) }
        keys[index].status = .revoked
        keys[index].revokedAtMilliseconds = now
        keys[index].revokeReason = c.reason
        return .replied(.apiKey(keys[index]))
    }

    func createBudget(_ c: CreateBudgetCommand, now: Int64) -> ModelOutcome {
        guard let scope = Self.parseBudgetScope(c.scope), c.allocated.value >= 0, c.overdraftLimit.value >= 0
        else { return .refused(.invalidRequest) }
        guard let owner = tenant(c.tenantID) else { return .refused(.tenantNotFound) }
        if owner.status == .closed { return .refused(.tenantClosed) }
        if owner.status != .active { return .refused(.invalidRequest) }
        if budgetIndex(scope, c.unit) != nil { return .refused(.duplicateResource) }
        let row = BudgetRow(
            scope: scope, unit: c.unit, tenant: c.tenantID, allocated: c.allocated.value,
            remaining: c.allocated.value, reserved: 0, spent: 0, debt: 0, overdraftLimit: c.overdraftLimit.value,
            isOverLimit: false, status: .active, commitOveragePolicy: c.commitOveragePolicy,
            rolloverPolicy: c.rolloverPolicy, caps: c.caps, periodStart: c.periodStartMilliseconds,
            periodEnd: c.periodEndMilliseconds, metadata: c.metadata, createdAt: now, updatedAt: now)
        budgets.append(row)
        return .replied(.budget(budgetValue(row)))
    }

    /// The admin scope grammar of 5.6, lower-cased; the generator only writes well-formed scopes with known
    /// levels, so this checks little more than the shape.
    static func parseBudgetScope(_ text: String) -> String? {
        let segments = text.split(separator: "/", omittingEmptySubsequences: false)
        guard let first = segments.first, first.lowercased().hasPrefix("tenant:") else { return nil }
        for segment in segments {
            guard let colon = segment.firstIndex(of: ":"), segment.index(after: colon) != segment.endIndex
            else { return nil }
        }
        return text.lowercased()
    }

    /// The (scope, unit) a budget command names, already lower-cased as the admin plane stores it.
    func namedBudget(_ scope: String, _ unit: Unit) -> Int? {
        Self.parseBudgetScope(scope).flatMap { budgetIndex($0, unit) }
    }

    func updateBudget(_ c: UpdateBudgetCommand, now: Int64) -> ModelOutcome {
        if let limit = c.overdraftLimit, limit.value < 0 { return .refused(.invalidRequest) }
        guard let index = namedBudget(c.scope, c.unit) else { return .refused(.budgetNotFound) }
        if tenant(budgets[index].tenant)?.status == .closed { return .refused(.tenantClosed) }
        if budgets[index].status == .closed { return .refused(.budgetClosed) }
        if let limit = c.overdraftLimit { budgets[index].overdraftLimit = limit.value }
        if let policy = c.commitOveragePolicy { budgets[index].commitOveragePolicy = policy }
        if let caps = c.caps { budgets[index].caps = caps == Caps() ? nil : caps }
        if let metadata = c.metadata { budgets[index].metadata = metadata }
        // Decision 5: every budget update recomputes the flag.
        budgets[index].isOverLimit = budgets[index].debt > budgets[index].overdraftLimit
        budgets[index].updatedAt = now
        return .replied(.budget(budgetValue(budgets[index])))
    }

    func setFrozen(_ c: BudgetStatusCommand, frozen: Bool, now: Int64) -> ModelOutcome {
        guard let index = namedBudget(c.scope, c.unit) else { return .refused(.budgetNotFound) }
        if tenant(budgets[index].tenant)?.status == .closed { return .refused(.tenantClosed) }
        if budgets[index].status == .closed { return .refused(.budgetClosed) }
        // 5.6: only ACTIVE->FROZEN and FROZEN->ACTIVE; repeating is a 409 (code not pinned by the text).
        if budgets[index].status == (frozen ? .frozen : .active) { return .refused(.invalidTransition) }
        budgets[index].status = frozen ? .frozen : .active
        budgets[index].updatedAt = now
        return .replied(.budget(budgetValue(budgets[index])))
    }

    func fundBudget(_ c: FundBudgetCommand, now: Int64) -> ModelOutcome {
        guard c.amount.value >= 0, c.spent == nil || c.operation == .resetSpent, (c.spent?.value ?? 0) >= 0,
              c.idempotency.map(Self.validKey) ?? true
        else { return .refused(.invalidRequest) }
        guard let index = namedBudget(c.scope, c.unit) else { return .refused(.budgetNotFound) }
        let owner = budgets[index].tenant
        if let stamp = c.idempotency, let row = remembered(owner, "fund", "", stamp.key, now: now) {
            return row.hash == stamp.payloadHash ? .replied(row.reply) : .refused(.idempotencyMismatch)
        }
        if tenant(owner)?.status == .closed { return .refused(.tenantClosed) }
        if budgets[index].status == .frozen { return .refused(.budgetFrozen) }
        if budgets[index].status == .closed { return .refused(.budgetClosed) }
        let b = budgets[index]
        let a = Int128(c.amount.value)
        var allocated = Int128(b.allocated), remaining = Int128(b.remaining)
        var spent = Int128(b.spent), debt = Int128(b.debt)
        let reserved = Int128(b.reserved)
        switch c.operation {
        case .credit:
            allocated += a
            remaining += a
        case .debit:
            if remaining < a { return .refused(.budgetExceeded) }
            allocated -= a
            remaining -= a
        case .reset:
            allocated = a
            remaining = a - reserved - spent - debt
        case .resetSpent:
            allocated = a
            spent = Int128(c.spent?.value ?? 0)
            remaining = allocated - spent - reserved - debt
        case .repayDebt:
            let repaid = min(debt, a)
            debt -= repaid
            remaining += a
            allocated += a - repaid
        }
        guard [allocated, remaining, spent, debt].allSatisfy(Self.fits) else { return .refused(.amountOverflow) }
        let before = LedgerFigures(
            allocated: Amount(b.allocated), remaining: Amount(b.remaining), reserved: Amount(b.reserved),
            spent: Amount(b.spent), debt: Amount(b.debt))
        budgets[index].allocated = Int64(allocated)
        budgets[index].remaining = Int64(remaining)
        budgets[index].spent = Int64(spent)
        budgets[index].debt = Int64(debt)
        budgets[index].isOverLimit = budgets[index].debt > budgets[index].overdraftLimit
        budgets[index].updatedAt = now
        let after = budgets[index]
        let reply = Reply.funded(FundingReply(
            key: BudgetKey(path(after.scope), after.unit), operation: c.operation, previous: before,
            new: LedgerFigures(
                allocated: Amount(after.allocated), remaining: Amount(after.remaining),
                reserved: Amount(after.reserved), spent: Amount(after.spent), debt: Amount(after.debt)),
            atMilliseconds: now))
        if let stamp = c.idempotency {
            remember(IdempotencyRow(
                tenant: owner, endpoint: "fund", qualifier: "", key: stamp.key, hash: stamp.payloadHash,
                retainUntil: now + 86_400_000, reply: reply))
        }
        return .replied(reply)
    }
}
