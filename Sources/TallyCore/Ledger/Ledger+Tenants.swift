// Tenants and API keys on the admin plane: semantics 5.5, 5.9 and the close cascade of 5.10.

extension Ledger {
    private static func validateTenantDefaults(
        defaultTTL: Int64?, maxTTL: Int64?, maxExtensions: Int?, expiryPolicy: ExpiryPolicy?
    ) throws(Refusal) {
        let ttlRange = Limits.ttlMillisecondsMin...Limits.ttlMillisecondsMax
        if let defaultTTL, !ttlRange.contains(defaultTTL) {
            throw Refusal(.invalidRequest, "default_reservation_ttl_ms must be \(ttlRange.lowerBound)-\(ttlRange.upperBound)")
        }
        if let maxTTL, !ttlRange.contains(maxTTL) {
            throw Refusal(.invalidRequest, "max_reservation_ttl_ms must be \(ttlRange.lowerBound)-\(ttlRange.upperBound)")
        }
        if let maxExtensions, !(0...Limits.extensionsMax).contains(maxExtensions) {
            throw Refusal(.invalidRequest, "max_reservation_extensions must be 0-\(Limits.extensionsMax)")
        }
        if let expiryPolicy, expiryPolicy != .autoRelease {
            throw Refusal(.invalidRequest, "reservation_expiry_policy \(expiryPolicy.cyclesName) is not supported; Tally implements AUTO_RELEASE only")
        }
    }

    private static func validateTenantName(_ name: String) throws(Refusal) {
        if name.isEmpty || name.hasMoreScalars(than: Limits.nameLengthMax) {
            throw Refusal(.invalidRequest, "name must be 1-\(Limits.nameLengthMax) characters")
        }
    }

    /// Tenant create is idempotent by id: the same id and name answer with the existing tenant (200);
    /// the same id with another name is `DUPLICATE_RESOURCE`.
    static func existingTenant(_ command: CreateTenantCommand, _ state: LedgerState) throws(Refusal) -> Decision? {
        if !Tenant.isValidID(command.tenantID) {
            throw Refusal(.invalidRequest, "tenant_id must match ^[a-z0-9-]+$ and be \(Limits.tenantIDLengthMin)-\(Limits.tenantIDLengthMax) characters")
        }
        try validateTenantName(command.name)
        if let parent = command.parentTenantID, !Tenant.isValidID(parent) {
            throw Refusal(.invalidRequest, "parent_tenant_id is not a valid tenant id")
        }
        try validateTenantDefaults(
            defaultTTL: command.defaultTTLMilliseconds, maxTTL: command.maxTTLMilliseconds,
            maxExtensions: command.maxExtensions, expiryPolicy: command.expiryPolicy)
        try command.metadata?.validate(field: "metadata")
        guard let existing = state.tenants[command.tenantID] else { return nil }
        guard existing.name == command.name else {
            throw Refusal(.duplicateResource, "tenant \(command.tenantID) already exists with another name")
        }
        return Decision(events: [], reply: .tenant(existing, created: false), isReplay: true)
    }

    static func decideCreateTenant(_ command: CreateTenantCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        let tenant = Tenant(
            id: command.tenantID, name: command.name, parentTenantID: command.parentTenantID,
            defaultOveragePolicy: command.defaultOveragePolicy ?? .allowIfAvailable,
            defaultTTLMilliseconds: command.defaultTTLMilliseconds ?? Limits.ttlMillisecondsDefault,
            maxTTLMilliseconds: command.maxTTLMilliseconds ?? Limits.ttlMillisecondsCapDefault,
            maxExtensions: command.maxExtensions ?? Limits.extensionsDefault, metadata: command.metadata,
            createdAtMilliseconds: now, updatedAtMilliseconds: now)
        return [.tenantCreated(tenant)]
    }

    /// ACTIVE and SUSPENDED switch freely; any status may go to CLOSED (irreversible, with the cascade);
    /// nothing leaves CLOSED (400), a CLOSED tenant refuses other changes (409), and closing it again is a
    /// no-op that answers with the tenant.
    static func decideUpdateTenant(_ command: UpdateTenantCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        if let name = command.name { try validateTenantName(name) }
        try validateTenantDefaults(
            defaultTTL: command.defaultTTLMilliseconds, maxTTL: command.maxTTLMilliseconds,
            maxExtensions: command.maxExtensions, expiryPolicy: command.expiryPolicy)
        try command.metadata?.validate(field: "metadata")
        guard let current = state.tenants[command.tenantID] else {
            throw Refusal(.tenantNotFound, "tenant \(command.tenantID) not found")
        }
        if current.status == .closed {
            if let status = command.status, status != .closed {
                throw Refusal(.invalidRequest, "tenant \(current.id) is CLOSED; a closed tenant cannot become \(status.cyclesName)")
            }
            let onlyCloses = command.name == nil && command.defaultOveragePolicy == nil
                && command.defaultTTLMilliseconds == nil && command.maxTTLMilliseconds == nil
                && command.maxExtensions == nil && command.expiryPolicy == nil && command.metadata == nil
            guard command.status == .closed, onlyCloses else { throw Refusal(.tenantClosed, "tenant \(current.id) is closed") }
            return closeCascade(of: current.id, state, now: now)
        }
        var next = current
        if let name = command.name { next.name = name }
        if let policy = command.defaultOveragePolicy { next.defaultOveragePolicy = policy }
        if let ttl = command.defaultTTLMilliseconds { next.defaultTTLMilliseconds = ttl }
        if let ttl = command.maxTTLMilliseconds { next.maxTTLMilliseconds = ttl }
        if let extensions = command.maxExtensions { next.maxExtensions = extensions }
        if let metadata = command.metadata { next.metadata = metadata }
        if let status = command.status { next.status = status }
        guard next != current else { return [] }
        next.updatedAtMilliseconds = now
        if next.status == .closed {
            return closeCascade(of: current.id, state, now: now) + [.tenantUpdated(next)]
        }
        return [.tenantUpdated(next)]
    }

    /// Decision 15: one atomic batch. ACTIVE reservations are released (their holds return to every
    /// budgeted scope, which drains `reserved`), then budgets close, then keys are revoked; the caller
    /// appends the tenant's own CLOSED flip last. Each object is settled once, so re-running finds nothing.
    private static func closeCascade(of tenantID: String, _ state: LedgerState, now: Int64) -> [EventBody] {
        var events: [EventBody] = []
        let reservations = state.reservations.values.filter { $0.tenant == tenantID && $0.status == .active }
        for reservation in reservations.sorted(by: { $0.id < $1.id }) {
            events.append(.released(Released(
                reservationID: reservation.id, amount: reservation.estimate, reason: "tenant closed",
                cause: .tenantClosed, idempotency: nil, caller: .admin, atMilliseconds: now)))
        }
        let budgets = state.budgets.values.filter { $0.tenant == tenantID && $0.status != .closed }
        for budget in budgets.sorted(by: { $0.key < $1.key }) {
            events.append(.budgetUpdated(BudgetUpdated(
                key: budget.key, change: .close, overdraftLimit: budget.overdraftLimit,
                commitOveragePolicy: budget.commitOveragePolicy, caps: budget.caps, metadata: budget.metadata,
                status: .closed, isOverLimit: budget.isOverLimit, reason: "tenant closed", caller: .admin,
                atMilliseconds: now)))
        }
        let keys = state.apiKeys.values.filter { $0.tenant == tenantID && $0.status == .active }
        for key in keys.sorted(by: { $0.id < $1.id }) {
            events.append(.apiKeyRevoked(ApiKeyRevoked(
                keyID: key.id, tenant: tenantID, atMilliseconds: now, reason: "tenant closed", cause: .tenantClosed)))
        }
        return events
    }

    // MARK: API keys

    static func decideCreateApiKey(_ command: CreateApiKeyCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        if command.keyID.isEmpty || command.keyID.hasMoreScalars(than: Limits.keyIDLengthMax) {
            throw Refusal(.invalidRequest, "key id must be 1-\(Limits.keyIDLengthMax) characters")
        }
        try validateTenantName(command.name)
        try validateText(command.description, field: "description", max: Limits.nameLengthMax)
        if command.prefix.hasMoreScalars(than: Limits.keyPrefixLengthMax) {
            throw Refusal(.invalidRequest, "key prefix is longer than \(Limits.keyPrefixLengthMax) characters")
        }
        if command.scopeFilter.count > Limits.scopeFilterCountMax {
            throw Refusal(.invalidRequest, "scope_filter has more than \(Limits.scopeFilterCountMax) patterns")
        }
        if command.scopeFilter.contains(where: { $0.isEmpty || $0.utf8.count > Limits.scopePathLengthMax }) {
            throw Refusal(.invalidRequest, "scope_filter patterns must be 1-\(Limits.scopePathLengthMax) bytes")
        }
        if let expiry = command.expiresAtMilliseconds, expiry <= now {
            throw Refusal(.invalidRequest, "expires_at must be in the future")
        }
        try command.metadata?.validate(field: "metadata")
        guard let tenant = state.tenants[command.tenantID] else {
            throw Refusal(.tenantNotFound, "tenant \(command.tenantID) not found")
        }
        if tenant.status == .closed { throw Refusal(.tenantClosed, "tenant \(tenant.id) is closed") }
        if tenant.status != .active { throw Refusal(.invalidRequest, "tenant \(tenant.id) is \(tenant.status.cyclesName); keys can only be created for ACTIVE tenants") }
        if state.apiKeys[command.keyID] != nil || state.apiKeyIDsByHash[command.secretHash] != nil {
            throw Refusal(.duplicateResource, "an API key with this id or secret already exists")
        }
        let permissions = Array(Set(command.permissions ?? Permission.defaultSet)).sorted()
        return [.apiKeyCreated(ApiKey(
            id: command.keyID, tenant: tenant.id, name: command.name, description: command.description,
            secretHash: command.secretHash, prefix: command.prefix, permissions: permissions,
            scopeFilter: command.scopeFilter, expiresAtMilliseconds: command.expiresAtMilliseconds,
            metadata: command.metadata, createdAtMilliseconds: now))]
    }

    static func decideRevokeApiKey(_ command: RevokeApiKeyCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        try validateText(command.reason, field: "reason", max: Limits.adminReasonLengthMax)
        guard let key = state.apiKeys[command.keyID] else { throw Refusal(.notFound, "API key \(command.keyID) not found") }
        try requireTenantNotClosed(key.tenant, state)
        if key.status == .revoked { throw Refusal(.invalidTransition, "API key \(key.id) is already revoked") }
        return [.apiKeyRevoked(ApiKeyRevoked(
            keyID: key.id, tenant: key.tenant, atMilliseconds: now, reason: command.reason, cause: .request))]
    }

    static func decideUpdateApiKey(_ command: UpdateApiKeyCommand, _ state: LedgerState, now: Int64) throws(Refusal) -> [EventBody] {
        guard var key = state.apiKeys[command.keyID] else { throw Refusal(.notFound, "API key \(command.keyID) not found") }
        if let name = command.name { try validateTenantName(name) }
        try validateText(command.description, field: "description", max: Limits.nameLengthMax)
        if let filter = command.scopeFilter {
            if filter.count > Limits.scopeFilterCountMax {
                throw Refusal(.invalidRequest, "scope_filter has more than \(Limits.scopeFilterCountMax) patterns")
            }
            if filter.contains(where: { $0.isEmpty || $0.utf8.count > Limits.scopePathLengthMax }) {
                throw Refusal(.invalidRequest, "scope_filter patterns must be 1-\(Limits.scopePathLengthMax) bytes")
            }
        }
        try command.metadata?.validate(field: "metadata")
        try requireTenantNotClosed(key.tenant, state)
        if key.status == .revoked { throw Refusal(.invalidTransition, "API key \(key.id) is revoked and cannot be changed") }
        if let expiry = key.expiresAtMilliseconds, expiry <= now {
            throw Refusal(.invalidTransition, "API key \(key.id) has expired and cannot be changed")
        }
        if let name = command.name { key.name = name }
        if let description = command.description { key.description = description }
        if let permissions = command.permissions { key.permissions = Array(Set(permissions)).sorted() }
        if let filter = command.scopeFilter { key.scopeFilter = filter }
        if let metadata = command.metadata { key.metadata = metadata }
        return [.apiKeyUpdated(key)]
    }
}
