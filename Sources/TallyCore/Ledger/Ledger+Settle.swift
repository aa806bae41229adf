// Commit, release, extend and expiry of reservations: semantics 2.4-2.6 and 4.

extension Ledger {
    // MARK: Commit

    /// Validation, existence (404), ownership (403), then a same-key replay on a COMMITTED reservation.
    static func commitReplay(_ command: CommitCommand, _ state: LedgerState) throws(Refusal) -> Decision? {
        try command.idempotency.validate()
        try validateReservationID(command.reservationID)
        try validateNonNegative(command.actual.amount, field: "actual.amount")
        try command.metrics?.validate()
        try command.metadata?.validate(field: "metadata")
        if command.caller == .admin { throw Refusal(.forbidden, "the admin key cannot commit reservations") }
        let reservation = try ownedReservation(command.reservationID, by: command.caller, state)
        guard case .committed(let settlement)? = reservation.settlement,
              settlement.idempotencyKey == command.idempotency.key else { return nil }
        guard settlement.payloadHash == command.idempotency.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(command.idempotency.key)' was used with a different commit of \(reservation.id)")
        }
        return Decision(events: [], reply: .committed(settlement.reply), isReplay: true)
    }

    /// Then: closed tenant (409), reservation state (410 expired, 409 finalized), unit (400), settle
    /// deadline (410), and the overage policy frozen on the reservation.
    static func decideCommit(_ command: CommitCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        let reservation = state.reservations[command.reservationID]!
        try requireSettleable(reservation, state, now: now, unit: command.actual.unit)
        let budgets = state.budgets(of: reservation.budgetedScopes, unit: reservation.unit)
        let estimate = reservation.estimate
        let actual = command.actual.amount
        let overage = try actual.subtracting(estimate)
        var deltas: [ScopeDelta]
        let charged: Amount
        if overage.value <= 0 {
            deltas = budgets.map { ScopeDelta(scope: $0.scope, remaining: Amount(-overage.value), spent: actual) }
            charged = actual
        } else {
            let spread = try spreadOverage(overage, over: budgets, policy: reservation.overagePolicy)
            deltas = spread.deltas
            charged = try estimate.adding(spread.applied)
        }
        // The base step on every scope: the hold goes away and the estimate itself is spent.
        for index in deltas.indices where overage.value > 0 {
            deltas[index].spent = try deltas[index].spent.adding(estimate)
        }
        for index in deltas.indices {
            deltas[index].reserved = Amount(-estimate.value)
            _ = try budgets[index].applying(deltas[index])
        }
        return [.committed(Committed(
            reservationID: reservation.id, actual: actual, charged: charged, deltas: deltas,
            idempotency: command.idempotency, metrics: command.metrics, metadata: command.metadata,
            caller: command.caller, atMilliseconds: now))]
    }

    // MARK: Release

    static func releaseReplay(_ command: ReleaseCommand, _ state: LedgerState) throws(Refusal) -> Decision? {
        try command.idempotency.validate()
        try validateReservationID(command.reservationID)
        try validateText(command.reason, field: "reason", max: Limits.releaseReasonLengthMax)
        let reservation = try ownedReservation(command.reservationID, by: command.caller, state)
        guard case .released(let settlement)? = reservation.settlement,
              settlement.idempotencyKey == command.idempotency.key else { return nil }
        guard settlement.payloadHash == command.idempotency.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(command.idempotency.key)' was used with a different release of \(reservation.id)")
        }
        return Decision(events: [], reply: .released(settlement.reply), isReplay: true)
    }

    static func decideRelease(_ command: ReleaseCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        let reservation = state.reservations[command.reservationID]!
        try requireSettleable(reservation, state, now: now, unit: nil)
        return [.released(Released(
            reservationID: reservation.id, amount: reservation.estimate, reason: command.reason, cause: .request,
            idempotency: command.idempotency, caller: command.caller, atMilliseconds: now))]
    }

    // MARK: Extend

    /// Extend checks its replay first (the key namespace is per reservation), then existence and ownership.
    static func extendReplay(_ command: ExtendCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> Decision? {
        try command.idempotency.validate()
        try validateReservationID(command.reservationID)
        if !(Limits.extendByMillisecondsMin...Limits.extendByMillisecondsMax).contains(command.extendByMilliseconds) {
            throw Refusal(.invalidRequest, "extend_by_ms must be \(Limits.extendByMillisecondsMin)-\(Limits.extendByMillisecondsMax)")
        }
        try command.metadata?.validate(field: "metadata")
        guard let tenant = command.caller.tenantID else { throw Refusal(.forbidden, "only the owning tenant's key can extend a reservation") }
        let key = IdempotencyKey(tenant: tenant, endpoint: .extend, qualifier: command.reservationID.description, stamp: command.idempotency)
        guard let record = state.idempotencyRecord(key, now: now) else { return nil }
        guard record.payloadHash == command.idempotency.payloadHash else {
            throw Refusal(.idempotencyMismatch, "idempotency_key '\(command.idempotency.key)' was used with a different extend of \(command.reservationID)")
        }
        return Decision(events: [], reply: storedReply(record.reply, now: now, reservations: state), isReplay: true)
    }

    /// Extend moves `expires_at` (not now) forward, only while ACTIVE and before `expires_at` (no grace),
    /// and at most `max_extensions` times (snapshotted from the tenant at reserve time).
    static func decideExtend(_ command: ExtendCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        let reservation = try ownedReservation(command.reservationID, by: command.caller, state)
        try requireTenantNotClosed(reservation.tenant, state)
        try requireActive(reservation)
        if now > reservation.expiresAtMilliseconds {
            throw Refusal(.reservationExpired, "reservation \(reservation.id) expired; extend has no grace period")
        }
        if reservation.extensionCount >= reservation.maxExtensions {
            throw Refusal(.maxExtensionsExceeded, "reservation \(reservation.id) was already extended \(reservation.extensionCount) times (the maximum)")
        }
        let (newExpiry, overflow) = reservation.expiresAtMilliseconds.addingReportingOverflow(command.extendByMilliseconds)
        if overflow { throw Refusal(.invalidRequest, "extend_by_ms moves expires_at out of range") }
        return [.extended(Extended(
            reservationID: reservation.id, tenant: reservation.tenant, newExpiresAtMilliseconds: newExpiry,
            extensionCount: reservation.extensionCount + 1, idempotency: command.idempotency,
            replayRetainUntilMilliseconds: instant(newExpiry, plus: reservation.graceMilliseconds),
            caller: command.caller, atMilliseconds: now))]
    }

    // MARK: Expiry

    /// Expires each candidate that is still ACTIVE and past `expires_at + grace`; anything else is skipped,
    /// so a stale or repeated candidate can never return a hold twice.
    static func decideExpiry(_ command: ExpireCommand, _ state: LedgerState, now: Int64) -> [EventBody] {
        var seen = Set<ReservationID>()
        var events: [EventBody] = []
        for id in command.candidates.prefix(Limits.expirySweepCountMax) where seen.insert(id).inserted {
            guard let reservation = state.reservations[id], reservation.status == .active,
                  now > reservation.settleDeadlineMilliseconds else { continue }
            events.append(.expired(Expired(reservationID: id, amount: reservation.estimate, atMilliseconds: now)))
        }
        return events
    }

    // MARK: Shared checks

    static func ownedReservation(_ id: ReservationID, by caller: Caller, _ state: LedgerState) throws(Refusal) -> Reservation {
        guard let reservation = state.reservations[id] else { throw Refusal(.notFound, "reservation \(id) not found") }
        try requireOwner(caller, owns: reservation.tenant, what: "reservation \(id)")
        return reservation
    }

    private static func requireActive(_ reservation: Reservation) throws(Refusal) {
        switch reservation.status {
        case .active: return
        case .expired: throw Refusal(.reservationExpired, "reservation \(reservation.id) has expired")
        case .committed, .released:
            throw Refusal(.reservationFinalized, "reservation \(reservation.id) is already \(reservation.status.cyclesName)")
        }
    }

    /// The commit and release checks after the replay: tenant guard, state, unit (commit only), deadline.
    private static func requireSettleable(_ reservation: Reservation, _ state: LedgerState, now: Int64, unit: Unit?) throws(Refusal) {
        try requireTenantNotClosed(reservation.tenant, state)
        try requireActive(reservation)
        if let unit, unit != reservation.unit {
            throw Refusal(.unitMismatch, "reservation \(reservation.id) is in \(reservation.unit.cyclesName), not \(unit.cyclesName)")
        }
        if now > reservation.settleDeadlineMilliseconds {
            throw Refusal(.reservationExpired, "reservation \(reservation.id) expired (past expires_at + grace)")
        }
    }
}
