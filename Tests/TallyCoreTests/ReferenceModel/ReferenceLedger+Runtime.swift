@testable import TallyCore

// The runtime plane of the reference model: reserve and dry run (2.1, 2.2), decide (2.3), commit (2.4,
// section 3), release (2.5), extend (2.6), direct debit (2.10, 3.4) and the expiry sweep (4.4).
extension ReferenceLedger {
    /// One scope's share of a commit or debit, as exact deltas.
    struct Effect {
        var scope: String
        var remaining: Int128 = 0
        var reserved: Int128 = 0
        var spent: Int128 = 0
        var debt: Int128 = 0
        var marksOverLimit = false
    }

    struct ModelRefusal: Error {
        var code: ErrorCode
    }

    static let reserveRetention: Int64 = 86_400_000
    static let evaluationRetention: Int64 = 86_400_000
    static let eventRetention: Int64 = 7 * 86_400_000

    /// `subject.tenant` must be absent, blank or equal to the effective tenant (5.1).
    static func subjectTenantMatches(_ subject: Subject, _ tenant: String) -> Bool {
        guard let value = subject.tenant, !value.allSatisfy({ $0 == " " || $0 == "\t" }) else { return true }
        return value == tenant
    }

    /// The per-scope reserve-path checks of 2.1 step 3, in canonical order, first failure wins.
    func denyReason(budgeted: [String], unit: Unit, estimate: Int64) -> DenyReason? {
        for scope in budgeted {
            let b = budgets[budgetIndex(scope, unit)!]
            if b.status == .frozen { return .budgetFrozen }
            if b.status == .closed { return .budgetClosed }
            if b.isOverLimit { return .overdraftLimitExceeded }
            if b.debt > 0 && b.overdraftLimit == 0 { return .debtOutstanding }
            if b.remaining < estimate { return .budgetExceeded }
        }
        return nil
    }

    /// 2.1 step 4: with no budget in the unit, a budget in another unit is UNIT_MISMATCH, else not found.
    func anyOtherUnit(_ scopes: [String], _ unit: Unit) -> Bool {
        budgets.contains { row in row.unit != unit && scopes.contains(row.scope) }
    }

    /// Decision 7: caps of the deepest budgeted scope turn ALLOW into ALLOW_WITH_CAPS.
    func capsOfDeepest(_ budgeted: [String], _ unit: Unit) -> Caps? {
        budgeted.last.flatMap { budgetIndex($0, unit) }.flatMap { budgets[$0].caps }
    }

    func replayTTL(reservationID: ReservationID, expiresAt: Int64, now: Int64) -> Int64 {
        guard let index = reservationIndex(reservationID), reservations[index].status == .active else { return 0 }
        return max(0, expiresAt - now)
    }

    // MARK: Reserve, dry run, decide

    func reserve(_ c: ReserveCommand, now: Int64) -> ModelOutcome {
        guard Self.validSubject(c.subject), Self.validAction(c.action), c.estimate.amount.value >= 0,
              Self.validKey(c.idempotency), !c.reservationID.isEmpty, c.reservationID.scalarCount <= 128,
              c.ttlMilliseconds.map({ $0 >= 1_000 && $0 <= 86_400_000 }) ?? true,
              c.graceMilliseconds.map({ $0 >= 0 && $0 <= 60_000 }) ?? true
        else { return .refused(.invalidRequest) }
        if !Self.subjectTenantMatches(c.subject, c.tenant) { return .refused(.forbidden) }
        if let row = remembered(c.tenant, "reserve", "", c.idempotency.key, now: now) {
            guard row.hash == c.idempotency.payloadHash else { return .refused(.idempotencyMismatch) }
            if case .reserved(let original, _) = row.reply {
                let ttl = replayTTL(reservationID: original.reservationID, expiresAt: original.expiresAtMilliseconds, now: now)
                return .replied(.reserved(original, remainingTTLMilliseconds: ttl))
            }
            return .replied(row.reply)
        }
        let owner = tenant(c.tenant)
        let scopes = Self.derivedScopes(c.subject, tenant: c.tenant)
        let unit = c.estimate.unit
        if owner?.status == .closed {
            if c.dryRun { return evaluation(.dryRun, c.tenant, c.idempotency, scopes, .tenantClosed, now: now) }
            return .refused(.tenantClosed)
        }
        let budgeted = scopes.filter { budgetIndex($0, unit) != nil }
        if budgeted.isEmpty && anyOtherUnit(scopes, unit) { return .refused(.unitMismatch) }
        let reason = budgeted.isEmpty ? .budgetNotFound : denyReason(budgeted: budgeted, unit: unit, estimate: c.estimate.amount.value)
        if c.dryRun {
            return evaluation(.dryRun, c.tenant, c.idempotency, scopes, reason, estimate: c.estimate,
                              caps: capsOfDeepest(budgeted, unit), budgeted: budgeted, now: now)
        }
        if let reason { return .refused(reason.errorCode) }

        // 4.2 and 2.1: TTL from the request or the tenant default, capped silently at the tenant maximum.
        let ttl = min(c.ttlMilliseconds ?? owner?.defaultTTLMilliseconds ?? 60_000, owner?.maxTTLMilliseconds ?? 3_600_000)
        let grace = c.graceMilliseconds ?? 5_000
        let policy = c.overagePolicy ?? owner?.defaultOveragePolicy ?? .allowIfAvailable  // decision 6
        let estimate = c.estimate.amount.value
        for scope in budgeted {
            let b = budgetIndex(scope, unit)!
            budgets[b].reserved += estimate
            budgets[b].remaining -= estimate
        }
        addReservation(ReservationRow(
            id: c.reservationID, tenant: c.tenant, unit: unit, estimate: estimate, scopePath: scopes.last!,
            affectedScopes: scopes, budgetedScopes: budgeted, expiresAt: now + ttl, grace: grace, policy: policy,
            maxExtensions: owner?.maxExtensions ?? 10, extensionCount: 0, status: .active))
        let caps = capsOfDeepest(budgeted, unit)
        let reply = ReserveReply(
            decision: caps == nil ? .allow : .allowWithCaps, reservationID: c.reservationID, reserved: c.estimate,
            expiresAtMilliseconds: now + ttl, scopePath: path(scopes.last!), affectedScopes: scopes.map(path),
            caps: caps, balances: balances(budgeted, unit))
        let stored = Reply.reserved(reply, remainingTTLMilliseconds: ttl)
        remember(IdempotencyRow(
            tenant: c.tenant, endpoint: "reserve", qualifier: "", key: c.idempotency.key,
            hash: c.idempotency.payloadHash, retainUntil: now + max(ttl + grace, Self.reserveRetention), reply: stored))
        return .replied(stored)
    }

    /// A dry-run or decide answer (2.2, 2.3), remembered like a success, DENY included.
    func evaluation(
        _ kind: EvaluationKind, _ tenant: String, _ stamp: IdempotencyStamp, _ scopes: [String], _ reason: DenyReason?,
        estimate: Quantity? = nil, caps: Caps? = nil, budgeted: [String] = [], now: Int64
    ) -> ModelOutcome {
        let allow = reason == nil
        let reply = EvaluationReply(
            kind: kind, decision: reason != nil ? .deny : (caps == nil ? .allow : .allowWithCaps), reasonCode: reason,
            caps: allow ? caps : nil, scopePath: path(scopes.last!), affectedScopes: scopes.map(path),
            reserved: allow && kind == .dryRun ? estimate : nil,
            balances: allow && kind == .dryRun ? balances(budgeted, estimate!.unit) : [])
        remember(IdempotencyRow(
            tenant: tenant, endpoint: kind == .dryRun ? "reserve" : "decide", qualifier: "", key: stamp.key,
            hash: stamp.payloadHash, retainUntil: now + Self.evaluationRetention, reply: .evaluated(reply)))
        return .replied(.evaluated(reply))
    }

    func decide(_ c: DecideCommand, now: Int64) -> ModelOutcome {
        guard Self.validSubject(c.subject), Self.validAction(c.action), c.estimate.amount.value >= 0,
              Self.validKey(c.idempotency)
        else { return .refused(.invalidRequest) }
        if !Self.subjectTenantMatches(c.subject, c.tenant) { return .refused(.forbidden) }
        if let row = remembered(c.tenant, "decide", "", c.idempotency.key, now: now) {
            return row.hash == c.idempotency.payloadHash ? .replied(row.reply) : .refused(.idempotencyMismatch)
        }
        let scopes = Self.derivedScopes(c.subject, tenant: c.tenant)
        if tenant(c.tenant)?.status == .closed {
            return evaluation(.decide, c.tenant, c.idempotency, scopes, .tenantClosed, now: now)
        }
        let unit = c.estimate.unit
        let budgeted = scopes.filter { budgetIndex($0, unit) != nil }
        if budgeted.isEmpty && anyOtherUnit(scopes, unit) { return .refused(.unitMismatch) }
        let reason = budgeted.isEmpty ? .budgetNotFound : denyReason(budgeted: budgeted, unit: unit, estimate: c.estimate.amount.value)
        return evaluation(.decide, c.tenant, c.idempotency, scopes, reason, estimate: c.estimate,
                          caps: capsOfDeepest(budgeted, unit), budgeted: budgeted, now: now)
    }

    // MARK: Overage (section 3)

    /// Charges `amount` (a commit's overage delta or a whole debit) on `scopes` under `policy`, returning
    /// what was charged and the per-scope effects, or the refusal. Nothing is mutated here.
    func overage(_ policy: OveragePolicy, _ scopes: [String], _ unit: Unit, _ amount: Int64, isDebit: Bool)
        -> Result<(charged: Int128, effects: [Effect]), ModelRefusal>
    {
        let x = Int128(amount)
        let rows = scopes.map { budgets[budgetIndex($0, unit)!] }
        let r = rows.map { Int128($0.remaining) }
        let enough = r.allSatisfy { $0 >= x }
        if enough || policy == .reject {
            if !enough { return .failure(ModelRefusal(code: .budgetExceeded)) }
            return .success((x, scopes.map { Effect(scope: $0, remaining: -x, spent: x) }))
        }
        if policy == .allowIfAvailable {
            let capped = min(x, r.map { max($0, 0) }.min()!)
            let effects = scopes.indices.map { i in
                // 3.2 marks only when capped < delta; 3.4 (debits) marks every scope with R_s < X, which
                // differs only when X is 0 and a remaining is negative.
                Effect(scope: scopes[i], remaining: -capped, spent: capped, marksOverLimit: (capped < x || isDebit) && r[i] < x)
            }
            return .success((capped, effects))
        }
        // ALLOW_WITH_OVERDRAFT, the three phases of 3.2.
        var capped = x
        for i in rows.indices where rows[i].overdraftLimit == 0 && r[i] < x { capped = min(capped, max(r[i], 0)) }
        for i in rows.indices where rows[i].overdraftLimit > 0 && r[i] < capped {
            let deficit = capped - max(r[i], 0)
            if Int128(rows[i].debt) + deficit > Int128(rows[i].overdraftLimit) { return .failure(ModelRefusal(code: .overdraftLimitExceeded)) }
        }
        var effects: [Effect] = []
        for i in rows.indices {
            var e = Effect(scope: scopes[i], remaining: -capped)
            if r[i] >= capped {
                e.spent = capped
            } else {
                let funded = max(r[i], 0)
                e.spent = funded
                e.debt = capped - funded
                if Int128(rows[i].debt) + e.debt > Int128(rows[i].overdraftLimit) { e.marksOverLimit = true }
            }
            if capped < x && rows[i].overdraftLimit == 0 && r[i] < x { e.marksOverLimit = true }
            effects.append(e)
        }
        return .success((capped, effects))
    }

    /// Applies effects if every resulting figure stays in the `Int64` range; otherwise nothing changes.
    func applyEffects(_ effects: [Effect], _ unit: Unit) -> Bool {
        var next: [(Int, BudgetRow)] = []
        for e in effects {
            let index = budgetIndex(e.scope, unit)!
            let b = budgets[index]
            let remaining = Int128(b.remaining) + e.remaining, reserved = Int128(b.reserved) + e.reserved
            let spent = Int128(b.spent) + e.spent, debt = Int128(b.debt) + e.debt
            guard [remaining, reserved, spent, debt].allSatisfy(Self.fits) else { return false }
            var row = b
            row.remaining = Int64(remaining)
            row.reserved = Int64(reserved)
            row.spent = Int64(spent)
            row.debt = Int64(debt)
            if e.marksOverLimit { row.isOverLimit = true }
            next.append((index, row))
        }
        for (index, row) in next { budgets[index] = row }
        return true
    }

    // MARK: Commit, release, extend

    func commit(_ c: CommitCommand, now: Int64) -> ModelOutcome {
        guard Self.validKey(c.idempotency), c.actual.amount.value >= 0, !c.reservationID.isEmpty,
              c.reservationID.scalarCount <= 128
        else { return .refused(.invalidRequest) }
        guard let index = reservationIndex(c.reservationID) else { return .refused(.notFound) }
        let r = reservations[index]
        if let caller = c.caller.tenantID, caller != r.tenant { return .refused(.forbidden) }
        if r.status == .committed, r.commitKey == c.idempotency.key {
            return r.commitHash == c.idempotency.payloadHash ? .replied(.committed(r.commitReply!)) : .refused(.idempotencyMismatch)
        }
        if tenant(r.tenant)?.status == .closed { return .refused(.tenantClosed) }
        if r.status == .expired { return .refused(.reservationExpired) }
        if r.status != .active { return .refused(.reservationFinalized) }
        if c.actual.unit != r.unit { return .refused(.unitMismatch) }
        if now > r.expiresAt + r.grace { return .refused(.reservationExpired) }

        let e = Int128(r.estimate), a = Int128(c.actual.amount.value)
        var effects: [Effect]
        var charged: Int128
        if a <= e {
            charged = a
            effects = r.budgetedScopes.map { Effect(scope: $0, remaining: e - a, reserved: -e, spent: a) }
        } else {
            switch overage(r.policy, r.budgetedScopes, r.unit, Int64(a - e), isDebit: false) {
            case .failure(let refusal): return .refused(refusal.code)
            case .success(let result):
                charged = e + result.charged
                effects = result.effects.map { var x = $0; x.reserved -= e; x.spent += e; return x }
            }
        }
        guard applyEffects(effects, r.unit) else { return .refused(.amountOverflow) }
        let reply = CommitReply(
            charged: Quantity(r.unit, Amount(Int64(charged))),
            released: a < e ? Quantity(r.unit, Amount(Int64(e - a))) : nil, balances: balances(r.budgetedScopes, r.unit))
        finish(index, .committed)
        reservations[index].commitKey = c.idempotency.key
        reservations[index].commitHash = c.idempotency.payloadHash
        reservations[index].commitReply = reply
        return .replied(.committed(reply))
    }

    func release(_ c: ReleaseCommand, now: Int64) -> ModelOutcome {
        guard Self.validKey(c.idempotency), (c.reason?.count ?? 0) <= 256, !c.reservationID.isEmpty,
              c.reservationID.scalarCount <= 128
        else { return .refused(.invalidRequest) }
        guard let index = reservationIndex(c.reservationID) else { return .refused(.notFound) }
        let r = reservations[index]
        if let caller = c.caller.tenantID, caller != r.tenant { return .refused(.forbidden) }
        if r.status == .released, r.releaseKey == c.idempotency.key {
            return r.releaseHash == c.idempotency.payloadHash ? .replied(.released(r.releaseReply!)) : .refused(.idempotencyMismatch)
        }
        if tenant(r.tenant)?.status == .closed { return .refused(.tenantClosed) }
        if r.status == .expired { return .refused(.reservationExpired) }
        if r.status != .active { return .refused(.reservationFinalized) }
        if now > r.expiresAt + r.grace { return .refused(.reservationExpired) }
        let e = Int128(r.estimate)
        guard applyEffects(r.budgetedScopes.map { Effect(scope: $0, remaining: e, reserved: -e) }, r.unit)
        else { return .refused(.amountOverflow) }
        let reply = ReleaseReply(released: Quantity(r.unit, Amount(r.estimate)), balances: balances(r.budgetedScopes, r.unit))
        finish(index, .released)
        reservations[index].releaseKey = c.idempotency.key
        reservations[index].releaseHash = c.idempotency.payloadHash
        reservations[index].releaseReply = reply
        return .replied(.released(reply))
    }

    func extend(_ c: ExtendCommand, now: Int64) -> ModelOutcome {
        guard Self.validKey(c.idempotency), c.extendByMilliseconds >= 1, c.extendByMilliseconds <= 86_400_000,
              !c.reservationID.isEmpty, c.reservationID.scalarCount <= 128
        else { return .refused(.invalidRequest) }
        let namespace = c.caller.tenantID ?? ""
        if let row = remembered(namespace, "extend", c.reservationID.description, c.idempotency.key, now: now) {
            guard row.hash == c.idempotency.payloadHash else { return .refused(.idempotencyMismatch) }
            guard case .extended(let original, _) = row.reply else { preconditionFailure("extend namespace holds \(row.reply)") }
            let ttl = replayTTL(reservationID: original.reservationID, expiresAt: original.expiresAtMilliseconds, now: now)
            return .replied(.extended(original, remainingTTLMilliseconds: ttl))
        }
        guard let index = reservationIndex(c.reservationID) else { return .refused(.notFound) }
        let r = reservations[index]
        if let caller = c.caller.tenantID, caller != r.tenant { return .refused(.forbidden) }
        if tenant(r.tenant)?.status == .closed { return .refused(.tenantClosed) }
        if r.status == .expired { return .refused(.reservationExpired) }
        if r.status != .active { return .refused(.reservationFinalized) }
        if now > r.expiresAt { return .refused(.reservationExpired) }  // 4.3: extend never gets grace
        if r.extensionCount >= r.maxExtensions { return .refused(.maxExtensionsExceeded) }
        let newExpiry = r.expiresAt + c.extendByMilliseconds
        reservations[index].expiresAt = newExpiry
        reservations[index].extensionCount += 1
        let reply = ExtendReply(
            reservationID: r.id, expiresAtMilliseconds: newExpiry, balances: balances(r.budgetedScopes, r.unit))
        let stored = Reply.extended(reply, remainingTTLMilliseconds: newExpiry - now)
        // 4.1 table: an extend key is kept for the remaining lease after that extension, which the model
        // takes to include the grace period (the settle deadline).
        remember(IdempotencyRow(
            tenant: namespace, endpoint: "extend", qualifier: r.id.description, key: c.idempotency.key,
            hash: c.idempotency.payloadHash, retainUntil: newExpiry + r.grace, reply: stored))
        return .replied(stored)
    }

    // MARK: Direct debit and expiry

    func recordDebit(_ c: DebitCommand, now: Int64) -> ModelOutcome {
        guard Self.validSubject(c.subject), Self.validAction(c.action), c.actual.amount.value >= 0,
              Self.validKey(c.idempotency), !c.eventID.isEmpty, c.eventID.count <= 128,
              (c.clientTimeMilliseconds ?? 0) >= 0
        else { return .refused(.invalidRequest) }
        if !Self.subjectTenantMatches(c.subject, c.tenant) { return .refused(.forbidden) }
        if let row = remembered(c.tenant, "event", "", c.idempotency.key, now: now) {
            return row.hash == c.idempotency.payloadHash ? .replied(row.reply) : .refused(.idempotencyMismatch)
        }
        let owner = tenant(c.tenant)
        if owner?.status == .closed { return .refused(.tenantClosed) }
        let policy = c.overagePolicy ?? owner?.defaultOveragePolicy ?? .allowIfAvailable
        let unit = c.actual.unit
        let x = c.actual.amount.value
        let scopes = Self.derivedScopes(c.subject, tenant: c.tenant)
        let budgeted = scopes.filter { budgetIndex($0, unit) != nil }
        for scope in budgeted {
            let b = budgets[budgetIndex(scope, unit)!]
            if b.status == .frozen { return .refused(.budgetFrozen) }
            if b.status == .closed { return .refused(.budgetClosed) }
            if policy == .reject && b.remaining < x { return .refused(.budgetExceeded) }
        }
        if budgeted.isEmpty { return .refused(anyOtherUnit(scopes, unit) ? .unitMismatch : .notFound) }
        switch overage(policy, budgeted, unit, x, isDebit: true) {
        case .failure(let refusal): return .refused(refusal.code)
        case .success(let result):
            guard applyEffects(result.effects, unit) else { return .refused(.amountOverflow) }
            let reply = Reply.debitRecorded(DebitReply(
                eventID: c.eventID, charged: result.charged < Int128(x) ? Quantity(unit, Amount(Int64(result.charged))) : nil,
                balances: balances(budgeted, unit)))
            remember(IdempotencyRow(
                tenant: c.tenant, endpoint: "event", qualifier: "", key: c.idempotency.key,
                hash: c.idempotency.payloadHash, retainUntil: now + Self.eventRetention, reply: reply))
            return .replied(reply)
        }
    }

    func expire(_ c: ExpireCommand, now: Int64) -> ModelOutcome {
        var expired: [ReservationID] = []
        for id in c.candidates {
            guard let index = reservationIndex(id), reservations[index].status == .active,
                  now > reservations[index].expiresAt + reservations[index].grace
            else { continue }
            let r = reservations[index]
            for scope in r.budgetedScopes {
                let b = budgetIndex(scope, r.unit)!
                budgets[b].reserved -= r.estimate
                budgets[b].remaining += r.estimate
            }
            finish(index, .expired)
            expired.append(id)
        }
        return .replied(.expired(expired))
    }

    func execute(_ command: Command, now: Int64) -> ModelOutcome {
        switch command {
        case .reserve(let c): reserve(c, now: now)
        case .decide(let c): decide(c, now: now)
        case .commit(let c): commit(c, now: now)
        case .release(let c): release(c, now: now)
        case .extend(let c): extend(c, now: now)
        case .recordDebit(let c): recordDebit(c, now: now)
        case .expireReservations(let c): expire(c, now: now)
        case .createTenant(let c): createTenant(c, now: now)
        case .updateTenant(let c): updateTenant(c, now: now)
        case .createApiKey(let c): createApiKey(c, now: now)
        case .revokeApiKey(let c): revokeApiKey(c, now: now)
        case .updateApiKey: preconditionFailure("the model's generator does not make key updates (AdminPlaneTests cover them)")
        case .createBudget(let c): createBudget(c, now: now)
        case .fundBudget(let c): fundBudget(c, now: now)
        case .updateBudget(let c): updateBudget(c, now: now)
        case .freezeBudget(let c): setFrozen(c, frozen: true, now: now)
        case .unfreezeBudget(let c): setFrozen(c, frozen: false, now: now)
        }
    }
}
