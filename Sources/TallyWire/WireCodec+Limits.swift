import TallyCore

// The limit check that callers holding untrusted values run before encoding or fingerprinting, since
// the encoder treats a value past a limit as a broken invariant and crashes (STYLE principle 5).

private typealias Limit = EventCodec.FieldLimit

extension WireCodec {
    /// Throws `invalidRequest` naming the first field of `request` that is over a byte or count limit of
    /// `protocol/wire.md`; when it returns, `encodeRequest` and `RequestFingerprint.digest` cannot trap.
    ///
    /// The HTTP gateway calls this before fingerprinting a request built from JSON; a client calls it on
    /// values its user typed. It checks encodability only; the ledger's own rules (character counts,
    /// ranges, formats) are still checked by the server.
    public static func checkLimits(_ request: Request) throws(WireError) {
        var check = LimitCheck()
        check.request(request)
        if let field = check.violation {
            throw WireError(code: .invalidRequest, message: "\(field) is over its wire limit (see protocol/wire.md)")
        }
    }
}

/// Records the first field over its limit; later checks are skipped once one is found.
private struct LimitCheck {
    var violation: String?

    mutating func string(_ value: String?, _ bytesMax: Int, _ field: @autoclosure () -> String) {
        guard violation == nil, let value, value.utf8.count > bytesMax else { return }
        violation = "\(field()) (\(value.utf8.count) bytes, limit \(bytesMax))"
    }

    mutating func reservationID(_ id: ReservationID, _ field: @autoclosure () -> String) {
        guard violation == nil, id.utf8Count > Limit.reservationIDBytesMax else { return }
        violation = "\(field()) (\(id.utf8Count) bytes, limit \(Limit.reservationIDBytesMax))"
    }

    mutating func count(_ count: Int, _ countMax: Int, _ field: @autoclosure () -> String) {
        guard violation == nil, count > countMax else { return }
        violation = "\(field()) (\(count) elements, limit \(countMax))"
    }

    mutating func strings(_ values: [String]?, countMax: Int, bytesMax: Int, _ field: String) {
        guard let values else { return }
        count(values.count, countMax, field)
        for value in values { string(value, bytesMax, "an element of \(field)") }
    }

    mutating func json(_ value: JSONText?, _ field: String) { string(value?.text, Limit.jsonTextBytesMax, field) }

    mutating func subject(_ subject: Subject) {
        for level in ScopeLevel.allCases {
            string(subject.value(at: level), Limit.subjectValueBytesMax, "subject.\(level.name)")
        }
        count(subject.dimensions.count, Limit.dimensionsCountMax, "subject.dimensions")
        for (key, value) in subject.dimensions {
            string(key, Limit.dimensionKeyBytesMax, "a subject.dimensions key")
            string(value, Limit.dimensionValueBytesMax, "subject.dimensions.\(key)")
        }
    }

    mutating func action(_ action: Action) {
        string(action.kind, Limit.actionKindBytesMax, "action.kind")
        string(action.name, Limit.actionNameBytesMax, "action.name")
        strings(action.tags, countMax: Limit.actionTagsCountMax, bytesMax: Limit.actionTagBytesMax, "action.tags")
    }

    mutating func caps(_ caps: Caps?) {
        guard let caps else { return }
        for (list, field) in [(caps.toolAllowlist, "caps.tool_allowlist"), (caps.toolDenylist, "caps.tool_denylist")] {
            strings(list, countMax: Limit.capsToolsCountMax, bytesMax: Limit.capsToolBytesMax, field)
        }
    }

    mutating func metrics(_ metrics: StandardMetrics?) {
        guard let metrics else { return }
        string(metrics.modelVersion, Limit.modelVersionBytesMax, "metrics.model_version")
        json(metrics.custom, "metrics.custom")
    }

    mutating func segments(_ segments: [ScopeLevel: String]) {
        for (level, value) in segments { string(value, Limit.subjectValueBytesMax, "the \(level.name) filter") }
    }

    mutating func request(_ request: Request) {
        let key = Limit.idempotencyKeyBytesMax
        switch request {
        case .hello(let hello):
            switch hello.credential {
            case .tenantKey(let secret), .adminKey(let secret): string(secret, WireLimits.secretBytesMax, "credential")
            }
            string(hello.clientName, WireLimits.peerNameBytesMax, "client_name")
        case .reserve(let reserve):
            string(reserve.idempotencyKey, key, "idempotency_key")
            subject(reserve.subject)
            action(reserve.action)
            json(reserve.metadata, "metadata")
        case .commit(let commit):
            reservationID(commit.reservationID, "reservation_id")
            string(commit.idempotencyKey, key, "idempotency_key")
            metrics(commit.metrics)
            json(commit.metadata, "metadata")
        case .release(let release):
            reservationID(release.reservationID, "reservation_id")
            string(release.idempotencyKey, key, "idempotency_key")
            string(release.reason, Limit.releaseReasonBytesMax, "reason")
        case .extend(let extend):
            reservationID(extend.reservationID, "reservation_id")
            string(extend.idempotencyKey, key, "idempotency_key")
            json(extend.metadata, "metadata")
        case .decide(let decide):
            string(decide.idempotencyKey, key, "idempotency_key")
            subject(decide.subject)
            action(decide.action)
            json(decide.metadata, "metadata")
        case .debit(let debit):
            string(debit.idempotencyKey, key, "idempotency_key")
            subject(debit.subject)
            action(debit.action)
            metrics(debit.metrics)
            json(debit.metadata, "metadata")
        case .getReservation(let id): reservationID(id, "reservation_id")
        case .listReservations(let list):
            string(list.tenant, Limit.tenantIDBytesMax, "tenant")
            string(list.idempotencyKey, key, "idempotency_key")
            segments(list.segments)
            string(list.after, WireLimits.cursorBytesMax, "cursor")
        case .balances(let balances):
            string(balances.tenant, Limit.tenantIDBytesMax, "tenant")
            string(balances.scopePrefix, Limit.scopePathBytesMax, "scope_prefix")
            segments(balances.segments)
        default: adminRequest(request)
        }
    }

    private mutating func adminRequest(_ request: Request) {
        let tenantID = Limit.tenantIDBytesMax
        switch request {
        case .createTenant(let create):
            string(create.tenantID, tenantID, "tenant_id")
            string(create.name, Limit.nameBytesMax, "name")
            string(create.parentTenantID, tenantID, "parent_tenant_id")
            json(create.metadata, "metadata")
        case .updateTenant(let update):
            string(update.tenantID, tenantID, "tenant_id")
            string(update.name, Limit.nameBytesMax, "name")
            json(update.metadata, "metadata")
        case .createApiKey(let create):
            string(create.tenantID, tenantID, "tenant_id")
            string(create.name, Limit.nameBytesMax, "name")
            string(create.description, Limit.nameBytesMax, "description")
            count(create.permissions?.count ?? 0, Limit.permissionsCountMax, "permissions")
            strings(create.scopeFilter, countMax: Limit.scopeFilterCountMax, bytesMax: Limit.scopeFilterPatternBytesMax, "scope_filter")
            json(create.metadata, "metadata")
        case .revokeApiKey(let revoke):
            string(revoke.keyID, Limit.keyIDBytesMax, "key_id")
            string(revoke.reason, Limit.adminReasonBytesMax, "reason")
        case .createBudget(let create):
            string(create.tenantID, tenantID, "tenant_id")
            string(create.scope, Limit.scopePathBytesMax, "scope")
            caps(create.caps)
            json(create.metadata, "metadata")
        case .fundBudget(let fund):
            string(fund.scope, Limit.scopePathBytesMax, "scope")
            string(fund.reason, Limit.adminReasonBytesMax, "reason")
            string(fund.idempotencyKey, Limit.idempotencyKeyBytesMax, "idempotency_key")
        case .updateBudget(let update):
            string(update.scope, Limit.scopePathBytesMax, "scope")
            caps(update.caps)
            json(update.metadata, "metadata")
        case .freezeBudget(let change), .unfreezeBudget(let change):
            string(change.scope, Limit.scopePathBytesMax, "scope")
            string(change.reason, Limit.adminReasonBytesMax, "reason")
        case .listApiKeys(let tenant): string(tenant, tenantID, "tenant_id")
        case .listTenants, .subscribe, .grantCredit: break
        case .hello, .reserve, .commit, .release, .extend, .decide, .debit, .getReservation, .listReservations,
             .balances:
            preconditionFailure("runtime requests are checked by request(_:)")
        }
    }
}
