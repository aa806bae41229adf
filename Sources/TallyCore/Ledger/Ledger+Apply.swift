extension Ledger {
    /// Folds one event into state: plain arithmetic on the facts the event records, never a policy.
    ///
    /// Also writes the idempotency records and settlement replies that the event implies, built from the
    /// state right after the event, so that a replayed log reproduces every stored reply exactly.
    ///
    /// With `keepingHistory` false it keeps the working set only: no idempotency records or replies are
    /// built and a settled reservation is removed instead of being marked. The tenants, keys, budgets and
    /// ACTIVE reservations come out exactly the same (nothing in them depends on history), which is what
    /// point-in-time balance replays and archive sealing need, at a fraction of the allocations.
    public static func apply(_ event: EventBody, to state: inout LedgerState, keepingHistory: Bool = true) throws(InconsistentEvent) {
        switch event {
        case .tenantCreated(let tenant), .tenantUpdated(let tenant):
            state.tenants[tenant.id] = tenant
        case .apiKeyCreated(let key):
            state.apiKeys[key.id] = key
            state.apiKeyIDsByHash[key.secretHash] = key.id
        case .apiKeyUpdated(let key):
            guard let old = state.apiKeys[key.id], old.secretHash == key.secretHash else {
                throw InconsistentEvent("ApiKeyUpdated for unknown key \(key.id)")
            }
            state.apiKeys[key.id] = key
        case .apiKeyRevoked(let revoked):
            guard var key = state.apiKeys[revoked.keyID] else { throw InconsistentEvent("ApiKeyRevoked for unknown key \(revoked.keyID)") }
            key.status = .revoked
            key.revokedAtMilliseconds = revoked.atMilliseconds
            key.revokeReason = revoked.reason
            state.apiKeys[key.id] = key
        case .budgetCreated(let budget):
            state.budgets[budget.key] = budget
        case .budgetFunded(let funded):
            try applyFunded(funded, to: &state, keepingHistory: keepingHistory)
        case .budgetUpdated(let updated):
            guard var budget = state.budgets[updated.key] else { throw InconsistentEvent("BudgetUpdated for unknown budget \(updated.key)") }
            budget.overdraftLimit = updated.overdraftLimit
            budget.commitOveragePolicy = updated.commitOveragePolicy
            budget.caps = updated.caps
            budget.metadata = updated.metadata
            budget.status = updated.status
            budget.isOverLimit = updated.isOverLimit
            budget.updatedAtMilliseconds = updated.atMilliseconds
            state.budgets[budget.key] = budget
        case .reserved(let reserved):
            try applyReserved(reserved, to: &state, keepingHistory: keepingHistory)
        case .committed(let committed):
            try applyCommitted(committed, to: &state, keepingHistory: keepingHistory)
        case .released(let released):
            try applyReleased(released, to: &state, keepingHistory: keepingHistory)
        case .extended(let extended):
            try applyExtended(extended, to: &state, keepingHistory: keepingHistory)
        case .expired(let expired):
            let hold = try activeHold(expired.reservationID, in: &state, event: "Expired")
            try requireWholeHold(expired.amount, of: hold, event: "Expired")
            try applyDeltas(holdReturned(hold.budgetedScopes, amount: expired.amount), unit: hold.unit, to: &state)
            guard keepingHistory else { return forget(hold, in: &state) }
            settle(hold, in: &state, status: .expired, .expired(atMilliseconds: expired.atMilliseconds))
        case .debitRecorded(let debit):
            try applyDeltas(debit.deltas, unit: debit.unit, to: &state)
            guard keepingHistory else { return }
            let reply = DebitReply(
                eventID: debit.eventID,
                charged: debit.charged < debit.actual ? Quantity(debit.unit, debit.charged) : nil,
                balances: state.balances(of: debit.deltas.map(\.scope), unit: debit.unit))
            state.idempotency[IdempotencyKey(tenant: debit.tenant, endpoint: .event, stamp: debit.idempotency)] =
                IdempotencyRecord(
                    payloadHash: debit.idempotency.payloadHash,
                    retainUntilMilliseconds: debit.replayRetainUntilMilliseconds, reply: .debit(reply))
        case .evaluationRecorded(let evaluation):
            guard keepingHistory else { return }
            let endpoint: IdempotencyEndpoint = evaluation.reply.kind == .decide ? .decide : .reserve
            state.idempotency[IdempotencyKey(tenant: evaluation.tenant, endpoint: endpoint, stamp: evaluation.idempotency)] =
                IdempotencyRecord(
                    payloadHash: evaluation.idempotency.payloadHash,
                    retainUntilMilliseconds: evaluation.replayRetainUntilMilliseconds, reply: .evaluation(evaluation.reply))
        }
    }

    private static func applyFunded(_ funded: BudgetFunded, to state: inout LedgerState, keepingHistory: Bool) throws(InconsistentEvent) {
        guard var budget = state.budgets[funded.key] else { throw InconsistentEvent("BudgetFunded for unknown budget \(funded.key)") }
        budget.allocated = funded.after.allocated
        budget.remaining = funded.after.remaining
        budget.reserved = funded.after.reserved
        budget.spent = funded.after.spent
        budget.debt = funded.after.debt
        budget.isOverLimit = funded.isOverLimitAfter
        budget.updatedAtMilliseconds = funded.atMilliseconds
        state.budgets[budget.key] = budget
        if keepingHistory, let stamp = funded.idempotency {
            state.idempotency[IdempotencyKey(tenant: budget.tenant, endpoint: .fund, stamp: stamp)] = IdempotencyRecord(
                payloadHash: stamp.payloadHash, retainUntilMilliseconds: funded.replayRetainUntilMilliseconds,
                reply: .funding(fundingReply(funded)))
        }
    }

    static func fundingReply(_ funded: BudgetFunded) -> FundingReply {
        FundingReply(
            key: funded.key, operation: funded.operation, previous: funded.before, new: funded.after,
            atMilliseconds: funded.atMilliseconds)
    }

    private static func applyReserved(_ reserved: Reserved, to state: inout LedgerState, keepingHistory: Bool) throws(InconsistentEvent) {
        if state.reservations[reserved.reservationID] != nil {
            throw InconsistentEvent("Reserved reuses reservation id \(reserved.reservationID)")
        }
        if reserved.amount.isNegative || reserved.budgetedScopes.isEmpty {
            throw InconsistentEvent("Reserved \(reserved.reservationID) has a negative amount or no budgeted scope")
        }
        let deltas = reserved.budgetedScopes.map { ScopeDelta(scope: $0, remaining: Amount(-reserved.amount.value), reserved: reserved.amount) }
        try applyDeltas(deltas, unit: reserved.unit, to: &state)
        state.reservations[reserved.reservationID] = Reservation(reserved)
        guard keepingHistory else { return }
        let reply = ReserveReply(
            decision: reserved.caps == nil ? .allow : .allowWithCaps, reservationID: reserved.reservationID,
            reserved: Quantity(reserved.unit, reserved.amount), expiresAtMilliseconds: reserved.expiresAtMilliseconds,
            scopePath: reserved.scopePath, affectedScopes: reserved.affectedScopes, caps: reserved.caps,
            balances: state.balances(of: reserved.budgetedScopes, unit: reserved.unit))
        state.idempotency[IdempotencyKey(tenant: reserved.tenant, endpoint: .reserve, stamp: reserved.idempotency)] =
            IdempotencyRecord(
                payloadHash: reserved.idempotency.payloadHash,
                retainUntilMilliseconds: reserved.replayRetainUntilMilliseconds, reply: .reserve(reply))
    }

    private static func applyCommitted(_ committed: Committed, to state: inout LedgerState, keepingHistory: Bool) throws(InconsistentEvent) {
        let hold = try activeHold(committed.reservationID, in: &state, event: "Committed")
        try applyDeltas(committed.deltas, unit: hold.unit, to: &state)
        guard keepingHistory else { return forget(hold, in: &state) }
        let released = hold.estimate.value - committed.actual.value
        let reply = CommitReply(
            charged: Quantity(hold.unit, committed.charged),
            released: released > 0 ? Quantity(hold.unit, Amount(released)) : nil,
            balances: state.balances(of: hold.budgetedScopes, unit: hold.unit))
        settle(hold, in: &state, status: .committed, .committed(Reservation.CommitSettlement(
            atMilliseconds: committed.atMilliseconds, actual: committed.actual, idempotencyKey: committed.idempotency.key,
            payloadHash: committed.idempotency.payloadHash, metrics: committed.metrics, metadata: committed.metadata,
            reply: reply)))
    }

    private static func applyReleased(_ released: Released, to state: inout LedgerState, keepingHistory: Bool) throws(InconsistentEvent) {
        let hold = try activeHold(released.reservationID, in: &state, event: "Released")
        try requireWholeHold(released.amount, of: hold, event: "Released")
        try applyDeltas(holdReturned(hold.budgetedScopes, amount: released.amount), unit: hold.unit, to: &state)
        guard keepingHistory else { return forget(hold, in: &state) }
        let reply = ReleaseReply(
            released: Quantity(hold.unit, released.amount),
            balances: state.balances(of: hold.budgetedScopes, unit: hold.unit))
        settle(hold, in: &state, status: .released, .released(Reservation.ReleaseSettlement(
            atMilliseconds: released.atMilliseconds, reason: released.reason, releasedBy: released.caller,
            cause: released.cause, idempotencyKey: released.idempotency?.key,
            payloadHash: released.idempotency?.payloadHash, reply: reply)))
    }

    private static func applyExtended(_ extended: Extended, to state: inout LedgerState, keepingHistory: Bool) throws(InconsistentEvent) {
        let hold = try activeHold(extended.reservationID, in: &state, event: "Extended")
        state.reservations.values[hold.index].expiresAtMilliseconds = extended.newExpiresAtMilliseconds
        state.reservations.values[hold.index].extensionCount = extended.extensionCount
        guard keepingHistory else { return }
        let reply = ExtendReply(
            reservationID: extended.reservationID, expiresAtMilliseconds: extended.newExpiresAtMilliseconds,
            balances: state.balances(of: hold.budgetedScopes, unit: hold.unit))
        let key = IdempotencyKey(
            tenant: extended.tenant, endpoint: .extend, qualifier: extended.reservationID.description, stamp: extended.idempotency)
        state.idempotency[key] = IdempotencyRecord(
            payloadHash: extended.idempotency.payloadHash,
            retainUntilMilliseconds: extended.replayRetainUntilMilliseconds, reply: .extend(reply))
    }

    /// The facts of an ACTIVE reservation that settling or extending it needs, read in place where it is
    /// stored (`peekReservation`): a copy of the whole `Reservation` would retain and release every string,
    /// array and the settlement of it on each event. `index` stays valid until the dictionary's keys
    /// change, and `settle` writes through it in place.
    private struct ActiveHold {
        let id: ReservationID
        let index: Dictionary<ReservationID, Reservation>.Index
        let unit: Unit
        let estimate: Amount
        let budgetedScopes: [ScopePath]
    }

    private static func activeHold(_ id: ReservationID, in state: inout LedgerState, event: String) throws(InconsistentEvent) -> ActiveHold {
        guard let index = state.reservations.index(forKey: id) else { throw InconsistentEvent("\(event) for unknown reservation \(id)") }
        let (status, hold) = state.peekReservation(at: index) { reservation in
            (reservation.status, ActiveHold(
                id: id, index: index, unit: reservation.unit, estimate: reservation.estimate,
                budgetedScopes: reservation.budgetedScopes))
        }
        guard status == .active else {
            throw InconsistentEvent("\(event) for reservation \(id), which is already \(status.cyclesName)")
        }
        return hold
    }

    /// Moves a reservation to a terminal status in place (no copy-out and copy-in of the whole value).
    private static func settle(
        _ hold: ActiveHold, in state: inout LedgerState, status: ReservationStatus, _ settlement: Reservation.Settlement
    ) {
        state.reservations.values[hold.index].status = status
        state.reservations.values[hold.index].settlement = settlement
    }

    /// Removes a reservation that settled, for a replay that keeps the working set only.
    private static func forget(_ hold: ActiveHold, in state: inout LedgerState) {
        state.reservations.remove(at: hold.index)
    }

    private static func requireWholeHold(_ amount: Amount, of hold: ActiveHold, event: String) throws(InconsistentEvent) {
        guard amount == hold.estimate else {
            throw InconsistentEvent("\(event) returns \(amount) but reservation \(hold.id) holds \(hold.estimate)")
        }
    }

    /// The per-scope effect of returning a hold: `reserved -= E`, `remaining += E` on every budgeted scope.
    static func holdReturned(_ budgetedScopes: [ScopePath], amount: Amount) -> [ScopeDelta] {
        budgetedScopes.map { ScopeDelta(scope: $0, remaining: amount, reserved: Amount(-amount.value)) }
    }

    private static func applyDeltas(_ deltas: [ScopeDelta], unit: Unit, to state: inout LedgerState) throws(InconsistentEvent) {
        for delta in deltas {
            let key = BudgetKey(delta.scope, unit)
            // In place, through the dictionary's values: no copy of the budget out and back, one lookup.
            guard let index = state.budgets.index(forKey: key) else { throw InconsistentEvent("event touches unknown budget \(key)") }
            do {
                try state.budgets.values[index].apply(delta)
            } catch {
                throw InconsistentEvent("event overflows budget \(key): \(error.message)")
            }
        }
    }
}

extension Reservation {
    /// The ACTIVE reservation a `Reserved` event creates.
    init(_ reserved: Reserved) {
        self.init(
            id: reserved.reservationID, tenant: reserved.tenant, subject: reserved.subject, action: reserved.action,
            unit: reserved.unit, estimate: reserved.amount, scopePath: reserved.scopePath,
            affectedScopes: reserved.affectedScopes, budgetedScopes: reserved.budgetedScopes,
            createdAtMilliseconds: reserved.createdAtMilliseconds, expiresAtMilliseconds: reserved.expiresAtMilliseconds,
            graceMilliseconds: reserved.graceMilliseconds, overagePolicy: reserved.overagePolicy,
            maxExtensions: reserved.maxExtensions, idempotencyKey: reserved.idempotency.key, caps: reserved.caps,
            metadata: reserved.metadata, createdBy: reserved.caller)
    }
}
