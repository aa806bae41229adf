import TallyCore
import TallyWire

/// Ledger values written as the Cycles JSON shapes: snake_case, integer amounts in `{unit, amount}`
/// objects, epoch milliseconds (`*_ms`) on the runtime plane and ISO-8601 strings on the admin plane,
/// absent optional fields omitted. Members are written in a fixed order, so the same reply always gives
/// the same bytes (idempotent replays are byte for byte).
enum CyclesResponses {
    // MARK: Values

    static func amount(_ w: inout JSONWriter, _ key: StaticString, _ amount: Amount, _ unit: TallyCore.Unit) {
        w.key(literal: key)
        w.beginObject()
        w.key(literal: "unit")
        w.string(unit.cyclesName)
        w.key(literal: "amount")
        w.integer(amount.value)
        w.endObject()
    }

    static func quantity(_ w: inout JSONWriter, _ key: StaticString, _ quantity: Quantity) {
        amount(&w, key, quantity.amount, quantity.unit)
    }

    static func integer(_ w: inout JSONWriter, _ key: StaticString, _ value: Int64?) {
        guard let value else { return }
        w.key(literal: key)
        w.integer(value)
    }

    static func string(_ w: inout JSONWriter, _ key: StaticString, _ value: String?) {
        guard let value else { return }
        w.key(literal: key)
        w.string(value)
    }

    static func time(_ w: inout JSONWriter, _ key: StaticString, _ milliseconds: Int64?) {
        guard let milliseconds else { return }
        w.key(literal: key)
        w.string(ISOTime.format(milliseconds))
    }

    static func strings(_ w: inout JSONWriter, _ key: StaticString, _ values: [String]) {
        w.key(literal: key)
        w.beginArray()
        for value in values { w.string(value) }
        w.endArray()
    }

    /// Free JSON stored by the ledger, embedded as JSON (it was validated as such when it came in).
    static func freeJSON(_ w: inout JSONWriter, _ key: StaticString, _ text: JSONText?) {
        guard let text else { return }
        w.key(literal: key)
        if let value = try? JSONParser.parse(Array(text.text.utf8)) {
            w.value(value)
        } else {
            w.string(text.text)
        }
    }

    /// The runtime `Balance` (decision 18: the leaf segment in `scope`, the path in `scope_path`).
    /// `ledger` adds the full ledger fields that `GET /v1/balances` reports (decision 1).
    static func balance(_ w: inout JSONWriter, _ balance: Balance, ledger: Bool = false) {
        let unit = balance.unit
        w.beginObject()
        w.key(literal: "scope")
        w.string(balance.scope.leaf)
        w.key(literal: "scope_path")
        w.string(balance.scope.rawValue)
        if ledger {
            w.key(literal: "unit")
            w.string(unit.cyclesName)
            w.key(literal: "status")
            w.string(balance.status.cyclesName)
        }
        amount(&w, "remaining", balance.remaining, unit)
        amount(&w, "reserved", balance.reserved, unit)
        amount(&w, "spent", balance.spent, unit)
        amount(&w, "allocated", balance.allocated, unit)
        if ledger || balance.debt.value != 0 { amount(&w, "debt", balance.debt, unit) }
        if ledger || balance.overdraftLimit.value != 0 { amount(&w, "overdraft_limit", balance.overdraftLimit, unit) }
        if ledger || balance.isOverLimit {
            w.key(literal: "is_over_limit")
            w.bool(balance.isOverLimit)
        }
        w.endObject()
    }

    static func balances(_ w: inout JSONWriter, _ key: StaticString, _ list: [Balance]) {
        w.key(literal: key)
        w.beginArray()
        for item in list { balance(&w, item) }
        w.endArray()
    }

    static func caps(_ w: inout JSONWriter, _ key: StaticString, _ caps: Caps?) {
        guard let caps else { return }
        w.key(literal: key)
        w.beginObject()
        integer(&w, "max_tokens", caps.maxTokens)
        integer(&w, "max_steps_remaining", caps.maxStepsRemaining)
        if let list = caps.toolAllowlist { strings(&w, "tool_allowlist", list) }
        if let list = caps.toolDenylist { strings(&w, "tool_denylist", list) }
        integer(&w, "cooldown_ms", caps.cooldownMilliseconds)
        w.endObject()
    }

    static func subject(_ w: inout JSONWriter, _ key: StaticString, _ subject: Subject) {
        w.key(literal: key)
        w.beginObject()
        for level in ScopeLevel.allCases {
            guard let value = subject.value(at: level) else { continue }
            w.key(level.name)
            w.string(value)
        }
        if !subject.dimensions.isEmpty {
            w.key(literal: "dimensions")
            w.beginObject()
            for name in subject.dimensions.keys.sorted() {
                w.key(name)
                w.string(subject.dimensions[name] ?? "")
            }
            w.endObject()
        }
        w.endObject()
    }

    static func action(_ w: inout JSONWriter, _ key: StaticString, _ action: Action) {
        w.key(literal: key)
        w.beginObject()
        w.key(literal: "kind")
        w.string(action.kind)
        w.key(literal: "name")
        w.string(action.name)
        if !action.tags.isEmpty { strings(&w, "tags", action.tags) }
        w.endObject()
    }

    static func metrics(_ w: inout JSONWriter, _ key: StaticString, _ metrics: StandardMetrics?) {
        guard let metrics else { return }
        w.key(literal: key)
        w.beginObject()
        integer(&w, "tokens_input", metrics.tokensInput)
        integer(&w, "tokens_output", metrics.tokensOutput)
        integer(&w, "latency_ms", metrics.latencyMilliseconds)
        string(&w, "model_version", metrics.modelVersion)
        freeJSON(&w, "custom", metrics.custom)
        w.endObject()
    }

    static func scopes(_ w: inout JSONWriter, _ key: StaticString, _ scopes: [ScopePath]) {
        strings(&w, key, scopes.map(\.rawValue))
    }

    // MARK: Runtime replies

    /// The body of a successful command; the HTTP status is 201 for a direct debit, 200 otherwise.
    static func reply(_ reply: Reply, into w: inout JSONWriter) {
        switch reply {
        case .reserved(let reserved, let remainingTTL):
            w.beginObject()
            w.key(literal: "decision")
            w.string(reserved.decision.cyclesName)
            w.key(literal: "reservation_id")
            w.string(reserved.reservationID)
            quantity(&w, "reserved", reserved.reserved)
            integer(&w, "expires_at_ms", reserved.expiresAtMilliseconds)
            integer(&w, "remaining_ttl_ms", remainingTTL)
            w.key(literal: "scope_path")
            w.string(reserved.scopePath.rawValue)
            scopes(&w, "affected_scopes", reserved.affectedScopes)
            caps(&w, "caps", reserved.caps)
            balances(&w, "balances", reserved.balances)
            w.endObject()
        case .evaluated(let evaluation):
            evaluated(evaluation, into: &w)
        case .committed(let commit):
            w.beginObject()
            w.key(literal: "status")
            w.string("COMMITTED")
            quantity(&w, "charged", commit.charged)
            if let released = commit.released { quantity(&w, "released", released) }
            balances(&w, "balances", commit.balances)
            w.endObject()
        case .released(let release):
            w.beginObject()
            w.key(literal: "status")
            w.string("RELEASED")
            quantity(&w, "released", release.released)
            balances(&w, "balances", release.balances)
            w.endObject()
        case .extended(let extend, let remainingTTL):
            w.beginObject()
            w.key(literal: "status")
            w.string("ACTIVE")
            integer(&w, "expires_at_ms", extend.expiresAtMilliseconds)
            integer(&w, "remaining_ttl_ms", remainingTTL)
            balances(&w, "balances", extend.balances)
            w.endObject()
        case .debitRecorded(let debit):
            w.beginObject()
            w.key(literal: "status")
            w.string("APPLIED")
            w.key(literal: "event_id")
            w.string(debit.eventID)
            if let charged = debit.charged { quantity(&w, "charged", charged) }
            balances(&w, "balances", debit.balances)
            w.endObject()
        case .tenant(let value, _):
            tenant(&w, value)
        case .apiKey(let key):
            apiKey(&w, key, secret: nil)
        case .budget(let value):
            budget(&w, value)
        case .funded(let funding):
            funded(&w, funding)
        case .expired(let ids):
            w.beginObject()
            strings(&w, "expired_reservation_ids", ids.map(\.description))
            w.endObject()
        }
    }

    /// Dry run (semantics 2.2) and decide (2.3): DENY carries only the decision, its reason and the scopes.
    static func evaluated(_ evaluation: EvaluationReply, into w: inout JSONWriter) {
        w.beginObject()
        w.key(literal: "decision")
        w.string(evaluation.decision.cyclesName)
        if let reason = evaluation.reasonCode {
            w.key(literal: "reason_code")
            w.string(reason.cyclesName)
        }
        caps(&w, "caps", evaluation.caps)
        if evaluation.kind == .dryRun {
            w.key(literal: "scope_path")
            w.string(evaluation.scopePath.rawValue)
        }
        scopes(&w, "affected_scopes", evaluation.affectedScopes)
        if evaluation.kind == .dryRun, evaluation.decision != .deny {
            if let reserved = evaluation.reserved { quantity(&w, "reserved", reserved) }
            balances(&w, "balances", evaluation.balances)
        }
        w.endObject()
    }

    /// `ReservationDetail` / `ReservationSummary` (semantics 1.6), with Tally's extra bookkeeping fields.
    static func reservation(_ w: inout JSONWriter, _ reservation: Reservation, include: Set<String> = ["metadata", "committed_metadata"]) {
        let unit = reservation.unit
        w.beginObject()
        w.key(literal: "reservation_id")
        w.string(reservation.id)
        w.key(literal: "status")
        w.string(reservation.status.cyclesName)
        w.key(literal: "tenant")
        w.string(reservation.tenant)
        w.key(literal: "idempotency_key")
        w.string(reservation.idempotencyKey)
        subject(&w, "subject", reservation.subject)
        action(&w, "action", reservation.action)
        amount(&w, "reserved", reservation.estimate, unit)
        if case .committed(let commit) = reservation.settlement {
            amount(&w, "committed", commit.reply.charged.amount, unit)
        }
        integer(&w, "created_at_ms", reservation.createdAtMilliseconds)
        integer(&w, "expires_at_ms", reservation.expiresAtMilliseconds)
        integer(&w, "finalized_at_ms", reservation.finalizedAtMilliseconds)
        w.key(literal: "scope_path")
        w.string(reservation.scopePath.rawValue)
        scopes(&w, "affected_scopes", reservation.affectedScopes)
        scopes(&w, "budgeted_scopes", reservation.budgetedScopes)
        integer(&w, "grace_period_ms", reservation.graceMilliseconds)
        w.key(literal: "overage_policy")
        w.string(reservation.overagePolicy.cyclesName)
        integer(&w, "extension_count", Int64(reservation.extensionCount))
        integer(&w, "max_extensions", Int64(reservation.maxExtensions))
        caps(&w, "caps", reservation.caps)
        if include.contains("metadata") { freeJSON(&w, "metadata", reservation.metadata) }
        switch reservation.settlement {
        case .committed(let commit):
            amount(&w, "actual", commit.actual, unit)
            metrics(&w, "metrics", commit.metrics)
            if include.contains("committed_metadata") { freeJSON(&w, "committed_metadata", commit.metadata) }
        case .released(let release):
            string(&w, "release_reason", release.reason)
        case .expired(let at):
            integer(&w, "expired_at_ms", at)
        case nil:
            break
        }
        w.endObject()
    }

    // MARK: Admin plane

    static func tenant(_ w: inout JSONWriter, _ tenant: Tenant) {
        w.beginObject()
        w.key(literal: "tenant_id")
        w.string(tenant.id)
        w.key(literal: "name")
        w.string(tenant.name)
        w.key(literal: "status")
        w.string(tenant.status.cyclesName)
        string(&w, "parent_tenant_id", tenant.parentTenantID)
        w.key(literal: "default_commit_overage_policy")
        w.string(tenant.defaultOveragePolicy.cyclesName)
        integer(&w, "default_reservation_ttl_ms", tenant.defaultTTLMilliseconds)
        integer(&w, "max_reservation_ttl_ms", tenant.maxTTLMilliseconds)
        integer(&w, "max_reservation_extensions", Int64(tenant.maxExtensions))
        w.key(literal: "reservation_expiry_policy")
        w.string(tenant.expiryPolicy.cyclesName)
        freeJSON(&w, "metadata", tenant.metadata)
        time(&w, "created_at", tenant.createdAtMilliseconds)
        time(&w, "updated_at", tenant.updatedAtMilliseconds)
        w.endObject()
    }

    /// An API key; `secret` only in the create response (the one time it is shown).
    static func apiKey(_ w: inout JSONWriter, _ key: ApiKey, secret: String?) {
        w.beginObject()
        w.key(literal: "key_id")
        w.string(key.id)
        string(&w, "key_secret", secret)
        w.key(literal: "key_prefix")
        w.string(key.prefix)
        w.key(literal: "tenant_id")
        w.string(key.tenant)
        w.key(literal: "name")
        w.string(key.name)
        string(&w, "description", key.description)
        w.key(literal: "status")
        w.string(key.status.cyclesName)
        strings(&w, "permissions", key.permissions.map(\.rawValue))
        strings(&w, "scope_filter", key.scopeFilter)
        time(&w, "created_at", key.createdAtMilliseconds)
        time(&w, "expires_at", key.expiresAtMilliseconds)
        time(&w, "revoked_at", key.revokedAtMilliseconds)
        string(&w, "revoked_reason", key.revokeReason)
        freeJSON(&w, "metadata", key.metadata)
        w.endObject()
    }

    /// The admin `BudgetLedger`: the full path in `scope`.
    static func budget(_ w: inout JSONWriter, _ budget: Budget) {
        let unit = budget.unit
        w.beginObject()
        w.key(literal: "ledger_id")
        w.string("\(budget.scope.rawValue):\(unit.cyclesName)")
        w.key(literal: "scope")
        w.string(budget.scope.rawValue)
        w.key(literal: "unit")
        w.string(unit.cyclesName)
        w.key(literal: "tenant_id")
        w.string(budget.tenant)
        w.key(literal: "status")
        w.string(budget.status.cyclesName)
        amount(&w, "allocated", budget.allocated, unit)
        amount(&w, "remaining", budget.remaining, unit)
        amount(&w, "reserved", budget.reserved, unit)
        amount(&w, "spent", budget.spent, unit)
        amount(&w, "debt", budget.debt, unit)
        amount(&w, "overdraft_limit", budget.overdraftLimit, unit)
        w.key(literal: "is_over_limit")
        w.bool(budget.isOverLimit)
        string(&w, "commit_overage_policy", budget.commitOveragePolicy?.cyclesName)
        w.key(literal: "rollover_policy")
        w.string(budget.rolloverPolicy.cyclesName)
        caps(&w, "caps", budget.caps)
        time(&w, "period_start", budget.periodStartMilliseconds)
        time(&w, "period_end", budget.periodEndMilliseconds)
        freeJSON(&w, "metadata", budget.metadata)
        time(&w, "created_at", budget.createdAtMilliseconds)
        time(&w, "updated_at", budget.updatedAtMilliseconds)
        w.endObject()
    }

    static func funded(_ w: inout JSONWriter, _ funding: FundingReply) {
        let unit = funding.key.unit
        w.beginObject()
        w.key(literal: "operation")
        w.string(funding.operation.cyclesName)
        w.key(literal: "scope")
        w.string(funding.key.scope.rawValue)
        w.key(literal: "unit")
        w.string(unit.cyclesName)
        let figures: [(StaticString, StaticString, KeyPath<LedgerFigures, Amount>)] = [
            ("previous_allocated", "new_allocated", \.allocated), ("previous_remaining", "new_remaining", \.remaining),
            ("previous_reserved", "new_reserved", \.reserved), ("previous_spent", "new_spent", \.spent), ("previous_debt", "new_debt", \.debt),
        ]
        for (previous, new, path) in figures {
            amount(&w, previous, funding.previous[keyPath: path], unit)
            amount(&w, new, funding.new[keyPath: path], unit)
        }
        time(&w, "timestamp", funding.atMilliseconds)
        w.endObject()
    }

    // MARK: Errors

    /// `ErrorResponse` (semantics 2.0): `error`, `message`, `request_id`, `trace_id`, and `details` for a
    /// unit mismatch (`scope`, `requested_unit`, `expected_units`).
    static func error(_ error: WireError, requestID: String, traceID: String) -> [UInt8] {
        var w = JSONWriter(capacity: 192)
        w.beginObject()
        w.key(literal: "error")
        w.string(error.code.cyclesName)
        w.key(literal: "message")
        w.string(error.message)
        w.key(literal: "request_id")
        w.string(requestID)
        w.key(literal: "trace_id")
        w.string(traceID)
        if let details = error.unitMismatch {
            w.key(literal: "details")
            w.beginObject()
            w.key(literal: "scope")
            w.string(details.scope.rawValue)
            w.key(literal: "requested_unit")
            w.string(details.requestedUnit.cyclesName)
            strings(&w, "expected_units", details.expectedUnits.map(\.cyclesName))
            w.endObject()
        }
        w.endObject()
        return w.bytes
    }
}
