extension Ledger {
    /// Folds one event into state: plain arithmetic on the facts the event records, never a policy.
    ///
    /// Also writes the idempotency records and settlement replies that the event implies, built from the
    /// state right after the event, so that a replayed log reproduces every stored reply exactly.
    public static func apply(_ event: EventBody, to state: inout LedgerState) throws(InconsistentEvent) {
        switch event {
        case .tenantCreated(let tenant), .tenantUpdated(let tenant):
            state.tenants[tenant.id] = tenant
        case .apiKeyCreated(let key):
            state.apiKeys[key.id] = key
            state.apiKeyIDsByHash[key.secretHash] = key.id
        case .apiKeyRevoked(let revoked):
            guard var key = state.apiKeys[revoked.keyID] else { throw InconsistentEvent("ApiKeyRevoked for unknown key \(revoked.keyID)") }
            key.status = .revoked
            key.revokedAtMilliseconds = revoked.atMilliseconds
            key.revokeReason = revoked.reason
            state.apiKeys[key.id] = key
        case .budgetCreated(let budget):
            state.budgets[budget.key] = budget
        case .budgetFunded(let funded):
            try applyFunded(funded, to: &state)
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
            try applyReserved(reserved, to: &state)
        case .committed(let committed):
            try applyCommitted(committed, to: &state)
        case .released(let released):
            try applyReleased(released, to: &state)
        case .extended(let extended):
            try applyExtended(extended, to: &state)
        case .expired(let expired):
            var reservation = try activeReservation(expired.reservationID, in: state, event: "Expired")
            try requireWholeHold(expired.amount, of: reservation, event: "Expired")
            try applyDeltas(holdReturned(reservation, amount: expired.amount), unit: reservation.unit, to: &state)
            reservation.status = .expired
            reservation.settlement = .expired(atMilliseconds: expired.atMilliseconds)
            state.reservations[reservation.id] = reservation
        case .debitRecorded(let debit):
            try applyDeltas(debit.deltas, unit: debit.unit, to: &state)
            let reply = DebitReply(
                eventID: debit.eventID,
                charged: debit.charged < debit.actual ? Quantity(debit.unit, debit.charged) : nil,
                balances: state.balances(of: debit.deltas.map(\.scope), unit: debit.unit))
            state.idempotency[IdempotencyKey(tenant: debit.tenant, endpoint: .event, key: debit.idempotency.key)] =
                IdempotencyRecord(
                    payloadHash: debit.idempotency.payloadHash,
                    retainUntilMilliseconds: debit.replayRetainUntilMilliseconds, reply: .debit(reply))
        case .evaluationRecorded(let evaluation):
            let endpoint: IdempotencyEndpoint = evaluation.reply.kind == .decide ? .decide : .reserve
            state.idempotency[IdempotencyKey(tenant: evaluation.tenant, endpoint: endpoint, key: evaluation.idempotency.key)] =
                IdempotencyRecord(
                    payloadHash: evaluation.idempotency.payloadHash,
                    retainUntilMilliseconds: evaluation.replayRetainUntilMilliseconds, reply: .evaluation(evaluation.reply))
        }
    }

    private static func applyFunded(_ funded: BudgetFunded, to state: inout LedgerState) throws(InconsistentEvent) {
        guard var budget = state.budgets[funded.key] else { throw InconsistentEvent("BudgetFunded for unknown budget \(funded.key)") }
        budget.allocated = funded.after.allocated
        budget.remaining = funded.after.remaining
        budget.reserved = funded.after.reserved
        budget.spent = funded.after.spent
        budget.debt = funded.after.debt
        budget.isOverLimit = funded.isOverLimitAfter
        budget.updatedAtMilliseconds = funded.atMilliseconds
        state.budgets[budget.key] = budget
        if let stamp = funded.idempotency {
            state.idempotency[IdempotencyKey(tenant: budget.tenant, endpoint: .fund, key: stamp.key)] = IdempotencyRecord(
                payloadHash: stamp.payloadHash, retainUntilMilliseconds: funded.replayRetainUntilMilliseconds,
                reply: .funding(fundingReply(funded)))
        }
    }

    static func fundingReply(_ funded: BudgetFunded) -> FundingReply {
        FundingReply(
            key: funded.key, operation: funded.operation, previous: funded.before, new: funded.after,
            atMilliseconds: funded.atMilliseconds)
    }

    private static func applyReserved(_ reserved: Reserved, to state: inout LedgerState) throws(InconsistentEvent) {
        if state.reservations[reserved.reservationID] != nil {
            throw InconsistentEvent("Reserved reuses reservation id \(reserved.reservationID)")
        }
        if reserved.amount.isNegative || reserved.budgetedScopes.isEmpty {
            throw InconsistentEvent("Reserved \(reserved.reservationID) has a negative amount or no budgeted scope")
        }
        let deltas = reserved.budgetedScopes.map { ScopeDelta(scope: $0, remaining: Amount(-reserved.amount.value), reserved: reserved.amount) }
        try applyDeltas(deltas, unit: reserved.unit, to: &state)
        state.reservations[reserved.reservationID] = Reservation(
            id: reserved.reservationID, tenant: reserved.tenant, subject: reserved.subject, action: reserved.action,
            unit: reserved.unit, estimate: reserved.amount, scopePath: reserved.scopePath,
            affectedScopes: reserved.affectedScopes, budgetedScopes: reserved.budgetedScopes,
            createdAtMilliseconds: reserved.createdAtMilliseconds, expiresAtMilliseconds: reserved.expiresAtMilliseconds,
            graceMilliseconds: reserved.graceMilliseconds, overagePolicy: reserved.overagePolicy,
            maxExtensions: reserved.maxExtensions, idempotencyKey: reserved.idempotency.key, caps: reserved.caps,
            metadata: reserved.metadata, createdBy: reserved.caller)
        let reply = ReserveReply(
            decision: reserved.caps == nil ? .allow : .allowWithCaps, reservationID: reserved.reservationID,
            reserved: Quantity(reserved.unit, reserved.amount), expiresAtMilliseconds: reserved.expiresAtMilliseconds,
            scopePath: reserved.scopePath, affectedScopes: reserved.affectedScopes, caps: reserved.caps,
            balances: state.balances(of: reserved.budgetedScopes, unit: reserved.unit))
        state.idempotency[IdempotencyKey(tenant: reserved.tenant, endpoint: .reserve, key: reserved.idempotency.key)] =
            IdempotencyRecord(
                payloadHash: reserved.idempotency.payloadHash,
                retainUntilMilliseconds: reserved.replayRetainUntilMilliseconds, reply: .reserve(reply))
    }

    private static func applyCommitted(_ committed: Committed, to state: inout LedgerState) throws(InconsistentEvent) {
        var reservation = try activeReservation(committed.reservationID, in: state, event: "Committed")
        try applyDeltas(committed.deltas, unit: reservation.unit, to: &state)
        let released = reservation.estimate.value - committed.actual.value
        let reply = CommitReply(
            charged: Quantity(reservation.unit, committed.charged),
            released: released > 0 ? Quantity(reservation.unit, Amount(released)) : nil,
            balances: state.balances(of: reservation.budgetedScopes, unit: reservation.unit))
        reservation.status = .committed
        reservation.settlement = .committed(Reservation.CommitSettlement(
            atMilliseconds: committed.atMilliseconds, actual: committed.actual, idempotencyKey: committed.idempotency.key,
            payloadHash: committed.idempotency.payloadHash, metrics: committed.metrics, metadata: committed.metadata,
            reply: reply))
        state.reservations[reservation.id] = reservation
    }

    private static func applyReleased(_ released: Released, to state: inout LedgerState) throws(InconsistentEvent) {
        var reservation = try activeReservation(released.reservationID, in: state, event: "Released")
        try requireWholeHold(released.amount, of: reservation, event: "Released")
        try applyDeltas(holdReturned(reservation, amount: released.amount), unit: reservation.unit, to: &state)
        let reply = ReleaseReply(
            released: Quantity(reservation.unit, released.amount),
            balances: state.balances(of: reservation.budgetedScopes, unit: reservation.unit))
        reservation.status = .released
        reservation.settlement = .released(Reservation.ReleaseSettlement(
            atMilliseconds: released.atMilliseconds, reason: released.reason, releasedBy: released.caller,
            cause: released.cause, idempotencyKey: released.idempotency?.key,
            payloadHash: released.idempotency?.payloadHash, reply: reply))
        state.reservations[reservation.id] = reservation
    }

    private static func applyExtended(_ extended: Extended, to state: inout LedgerState) throws(InconsistentEvent) {
        var reservation = try activeReservation(extended.reservationID, in: state, event: "Extended")
        reservation.expiresAtMilliseconds = extended.newExpiresAtMilliseconds
        reservation.extensionCount = extended.extensionCount
        state.reservations[reservation.id] = reservation
        let reply = ExtendReply(
            reservationID: reservation.id, expiresAtMilliseconds: extended.newExpiresAtMilliseconds,
            balances: state.balances(of: reservation.budgetedScopes, unit: reservation.unit))
        let key = IdempotencyKey(
            tenant: extended.tenant, endpoint: .extend, qualifier: reservation.id, key: extended.idempotency.key)
        state.idempotency[key] = IdempotencyRecord(
            payloadHash: extended.idempotency.payloadHash,
            retainUntilMilliseconds: extended.replayRetainUntilMilliseconds, reply: .extend(reply))
    }

    private static func activeReservation(_ id: String, in state: LedgerState, event: String) throws(InconsistentEvent) -> Reservation {
        guard let reservation = state.reservations[id] else { throw InconsistentEvent("\(event) for unknown reservation \(id)") }
        guard reservation.status == .active else {
            throw InconsistentEvent("\(event) for reservation \(id), which is already \(reservation.status.cyclesName)")
        }
        return reservation
    }

    private static func requireWholeHold(_ amount: Amount, of reservation: Reservation, event: String) throws(InconsistentEvent) {
        guard amount == reservation.estimate else {
            throw InconsistentEvent("\(event) returns \(amount) but reservation \(reservation.id) holds \(reservation.estimate)")
        }
    }

    /// The per-scope effect of returning a hold: `reserved -= E`, `remaining += E` on every budgeted scope.
    static func holdReturned(_ reservation: Reservation, amount: Amount) -> [ScopeDelta] {
        reservation.budgetedScopes.map { ScopeDelta(scope: $0, remaining: amount, reserved: Amount(-amount.value)) }
    }

    private static func applyDeltas(_ deltas: [ScopeDelta], unit: Unit, to state: inout LedgerState) throws(InconsistentEvent) {
        for delta in deltas {
            let key = BudgetKey(delta.scope, unit)
            guard let budget = state.budgets[key] else { throw InconsistentEvent("event touches unknown budget \(key)") }
            do {
                state.budgets[key] = try budget.applying(delta)
            } catch {
                throw InconsistentEvent("event overflows budget \(key): \(error.message)")
            }
        }
    }
}
