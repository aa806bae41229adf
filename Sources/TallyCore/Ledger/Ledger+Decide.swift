extension Ledger {
    /// Decides a command against a state at the instant `now` (epoch milliseconds, the writer's clock).
    ///
    /// Returns the events that record the outcome and the reply, or the refusal that the semantics
    /// prescribe, with checks in their defined order. Never changes anything: the caller appends the events
    /// and folds them in with `apply`. A refusal is never remembered (a retry is a fresh evaluation).
    public static func decide(_ state: LedgerState, _ command: Command, now: Int64) -> Result<Decision, Refusal> {
        switch draft(state, command, now: now) {
        case .failure(let refusal):
            return .failure(refusal)
        case .success(.replay(let decision)):
            return .success(decision)
        case .success(.fresh(let events)):
            let scratch = scratchState(for: events, base: state)
            let reply = reply(to: command, events: events, after: scratch, base: state, now: now)
            return .success(Decision(events: events, reply: reply))
        }
    }

    /// What `draft` concluded: a finished replay, or the events of a fresh success whose reply is still to
    /// be read back from the state they produce.
    package enum Draft: Sendable {
        case replay(Decision)
        case fresh([EventBody])
    }

    /// `decide` without building the reply of a fresh success, for a caller that applies the events to its
    /// own state anyway (the store's writer, `execute`): it then reads the reply from that state with
    /// `reply(to:events:after:base:now:)` and skips the scratch copy that `decide` needs to stay pure.
    /// `derivations`, when given, remembers the subjects' scope paths from one command to the next.
    package static func draft(
        _ state: LedgerState, _ command: Command, now: Int64, derivations: ScopeDerivations? = nil
    ) -> Result<Draft, Refusal> {
        do throws(Refusal) {
            return .success(try draftThrowing(state, command, now: now, derivations: derivations))
        } catch {
            return .failure(error)
        }
    }

    private static func draftThrowing(
        _ state: LedgerState, _ command: Command, now: Int64, derivations: ScopeDerivations?
    ) throws(Refusal) -> Draft {
        let events: [EventBody]
        switch command {
        case .reserve(let reserve):
            if let replay = try reserveReplay(reserve, state, now: now) { return .replay(replay) }
            events = reserve.dryRun
                ? [try recordedEvaluation(
                    .dryRun, reserve.tenant, reserve.caller, reserve.idempotency, subject: reserve.subject,
                    estimate: reserve.estimate, retainedFor: Limits.reserveReplayRetentionMilliseconds, state, now: now,
                    derivations: derivations)]
                : try decideReserve(reserve, state, now: now, derivations: derivations)
        case .decide(let decide):
            if let replay = try decideReplay(decide, state, now: now) { return .replay(replay) }
            events = [try recordedEvaluation(
                .decide, decide.tenant, decide.caller, decide.idempotency, subject: decide.subject,
                estimate: decide.estimate, retainedFor: Limits.decideReplayRetentionMilliseconds, state, now: now,
                derivations: derivations)]
        case .commit(let commit):
            if let replay = try commitReplay(commit, state) { return .replay(replay) }
            events = try decideCommit(commit, state, now: now)
        case .release(let release):
            if let replay = try releaseReplay(release, state) { return .replay(replay) }
            events = try decideRelease(release, state, now: now)
        case .extend(let extend):
            if let replay = try extendReplay(extend, state, now: now) { return .replay(replay) }
            events = try decideExtend(extend, state, now: now)
        case .recordDebit(let debit):
            if let replay = try debitReplay(debit, state, now: now) { return .replay(replay) }
            events = try decideDebit(debit, state, now: now, derivations: derivations)
        case .expireReservations(let expire):
            events = decideExpiry(expire, state, now: now)
        case .createTenant(let create):
            if let existing = try existingTenant(create, state) { return .replay(existing) }
            events = try decideCreateTenant(create, state, now: now)
        case .updateTenant(let update):
            events = try decideUpdateTenant(update, state, now: now)
        case .createApiKey(let create):
            events = try decideCreateApiKey(create, state, now: now)
        case .revokeApiKey(let revoke):
            events = try decideRevokeApiKey(revoke, state, now: now)
        case .updateApiKey(let update):
            events = try decideUpdateApiKey(update, state, now: now)
        case .createBudget(let create):
            events = try decideCreateBudget(create, state, now: now)
        case .fundBudget(let fund):
            if let replay = try fundReplay(fund, state, now: now) { return .replay(replay) }
            events = try decideFundBudget(fund, state, now: now)
        case .updateBudget(let update):
            events = try decideUpdateBudget(update, state, now: now)
        case .freezeBudget(let freeze):
            events = try decideBudgetStatus(freeze, freeze: true, state, now: now)
        case .unfreezeBudget(let unfreeze):
            events = try decideBudgetStatus(unfreeze, freeze: false, state, now: now)
        }
        return .fresh(events)
    }

    // MARK: Replies

    /// The reply to a fresh command, read back from `scratch`, a state that `events` (drafted for `command`
    /// against `base`) have been applied to: exactly as `apply` stores it, so the reply and the stored replay
    /// record can never disagree. `scratch` may hold only the entries the events touch (`decide`) or be the
    /// whole state right after the events (the writer); `base` answers for a tenant the events left alone.
    package static func reply(
        to command: Command, events: [EventBody], after scratch: LedgerState, base: LedgerState, now: Int64
    ) -> Reply {
        switch command {
        case .reserve(let reserve):
            let key = IdempotencyKey(tenant: reserve.tenant, endpoint: .reserve, stamp: reserve.idempotency)
            return storedReply(scratch.idempotency[key]!.reply, now: now, reservations: scratch)
        case .decide(let decide):
            let key = IdempotencyKey(tenant: decide.tenant, endpoint: .decide, stamp: decide.idempotency)
            return storedReply(scratch.idempotency[key]!.reply, now: now, reservations: scratch)
        case .commit(let commit):
            guard case .committed(let settlement)? = scratch.reservations[commit.reservationID]?.settlement else {
                preconditionFailure("a fresh commit must settle its reservation")
            }
            return .committed(settlement.reply)
        case .release(let release):
            guard case .released(let settlement)? = scratch.reservations[release.reservationID]?.settlement else {
                preconditionFailure("a fresh release must settle its reservation")
            }
            return .released(settlement.reply)
        case .extend(let extend):
            guard case .extended(let extended)? = events.first else { preconditionFailure("extend yields Extended") }
            let key = IdempotencyKey(tenant: extended.tenant, endpoint: .extend, qualifier: extend.reservationID.description, stamp: extend.idempotency)
            return storedReply(scratch.idempotency[key]!.reply, now: now, reservations: scratch)
        case .recordDebit(let debit):
            let key = IdempotencyKey(tenant: debit.tenant, endpoint: .event, stamp: debit.idempotency)
            return storedReply(scratch.idempotency[key]!.reply, now: now, reservations: scratch)
        case .expireReservations:
            return .expired(events.compactMap { if case .expired(let expired) = $0 { expired.reservationID } else { nil } })
        case .createTenant(let create):
            return .tenant(scratch.tenants[create.tenantID]!, created: true)
        case .updateTenant(let update):
            return .tenant(scratch.tenants[update.tenantID] ?? base.tenants[update.tenantID]!, created: false)
        case .createApiKey(let create):
            return .apiKey(scratch.apiKeys[create.keyID]!)
        case .revokeApiKey(let revoke):
            return .apiKey(scratch.apiKeys[revoke.keyID]!)
        case .updateApiKey(let update):
            return .apiKey(scratch.apiKeys[update.keyID]!)
        case .createBudget, .updateBudget, .freezeBudget, .unfreezeBudget:
            guard let key = events.compactMap(\.budgetKey).first else { preconditionFailure("budget commands yield a budget event") }
            return .budget(scratch.budgets[key]!)
        case .fundBudget:
            guard case .budgetFunded(let funded)? = events.first else { preconditionFailure("fund yields BudgetFunded") }
            return .funded(fundingReply(funded))
        }
    }

    /// A stored reply as the caller sees it now: `remaining_ttl_ms` is recomputed as
    /// `max(0, expires_at - now)`, and 0 once the reservation is no longer ACTIVE (semantics 4.1).
    static func storedReply(_ stored: StoredReply, now: Int64, reservations state: LedgerState) -> Reply {
        func remainingTTL(_ id: ReservationID, _ expiresAt: Int64) -> Int64 {
            guard state.reservations[id]?.status == .active else { return 0 }
            return max(0, expiresAt &- now)
        }
        switch stored {
        case .reserve(let reply):
            return .reserved(reply, remainingTTLMilliseconds: remainingTTL(reply.reservationID, reply.expiresAtMilliseconds))
        case .evaluation(let reply):
            return .evaluated(reply)
        case .extend(let reply):
            return .extended(reply, remainingTTLMilliseconds: remainingTTL(reply.reservationID, reply.expiresAtMilliseconds))
        case .debit(let reply):
            return .debitRecorded(reply)
        case .funding(let reply):
            return .funded(reply)
        }
    }

    /// `events` applied to a small copy of just the entries of `base` they touch.
    private static func scratchState(for events: [EventBody], base: LedgerState) -> LedgerState {
        var touched = TouchedKeys()
        for event in events { event.touch(&touched, in: base) }
        var scratch = LedgerState()
        for id in touched.tenants { scratch.tenants[id] = base.tenants[id] }
        for id in touched.apiKeys { scratch.apiKeys[id] = base.apiKeys[id] }
        for key in touched.budgets { scratch.budgets[key] = base.budgets[key] }
        for id in touched.reservations { scratch.reservations[id] = base.reservations[id] }
        for event in events {
            do { try apply(event, to: &scratch) } catch {
                preconditionFailure("decide produced an inconsistent event: \(error)")
            }
        }
        return scratch
    }

    // MARK: Guards shared by several operations

    /// Refuses a subject whose `tenant` names another tenant than the caller's (semantics 5.1: 403).
    static func requireSubjectTenant(_ subject: Subject, effectiveTenant: String) throws(Refusal) {
        if let named = subject.presentValue(at: .tenant), named.lowercased() != effectiveTenant {
            throw Refusal(.forbidden, "subject.tenant '\(named)' is not the tenant of the API key (\(effectiveTenant))")
        }
    }

    /// The closed-tenant guard (semantics 5.3): fresh persisting operations of a CLOSED tenant are refused.
    /// An absent tenant record means no governance plane and no guard.
    static func requireTenantNotClosed(_ tenantID: String, _ state: LedgerState) throws(Refusal) {
        if state.tenants[tenantID]?.status == .closed {
            throw Refusal(.tenantClosed, "tenant \(tenantID) is closed")
        }
    }

    /// A tenant key may only touch its own tenant's objects; the admin key and the system may touch any.
    /// `what` is built only for the refusal (an interpolated string per commit was measurable in the writer).
    static func requireOwner(_ caller: Caller, owns tenantID: String, what: @autoclosure () -> String) throws(Refusal) {
        if let callerTenant = caller.tenantID, callerTenant != tenantID {
            throw Refusal(.forbidden, "\(what()) belongs to another tenant")
        }
    }

    static func validateReservationID(_ id: ReservationID) throws(Refusal) {
        if id.isEmpty || id.scalarCount > Limits.reservationIDLengthMax {
            throw Refusal(.invalidRequest, "reservation_id must be 1-\(Limits.reservationIDLengthMax) characters")
        }
    }

    static func validateNonNegative(_ amount: Amount, field: String) throws(Refusal) {
        if amount.isNegative { throw Refusal(.invalidRequest, "\(field) must be >= 0") }
    }

    static func validateText(_ text: String?, field: String, max: Int) throws(Refusal) {
        if let text, text.hasMoreScalars(than: max) {
            throw Refusal(.invalidRequest, "\(field) is longer than \(max) characters")
        }
    }

    /// `now + duration`, saturating: retention and expiry instants never wrap.
    static func instant(_ now: Int64, plus duration: Int64) -> Int64 {
        let (sum, overflow) = now.addingReportingOverflow(duration)
        return overflow ? Int64.max : sum
    }
}

extension EventBody {
    /// The budget an admin budget event is about.
    var budgetKey: BudgetKey? {
        switch self {
        case .budgetCreated(let budget): budget.key
        case .budgetUpdated(let updated): updated.key
        case .budgetFunded(let funded): funded.key
        default: nil
        }
    }
}
