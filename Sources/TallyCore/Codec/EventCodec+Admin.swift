// Bodies of the admin-plane events: tenants, API keys and budgets (type codes 1-7).

private typealias Limit = EventCodec.FieldLimit

extension ByteWriter {
    /// `Int` fields are written as i64: every `Int` a 64-bit platform holds fits, so writing cannot fail.
    public mutating func write(_ tenant: Tenant) {
        writeString(tenant.id, bytesMax: Limit.tenantIDBytesMax, field: "tenant.id")
        writeString(tenant.name, bytesMax: Limit.nameBytesMax, field: "tenant.name")
        writeU8(tenant.status.rawValue)
        writeOptionalString(tenant.parentTenantID, bytesMax: Limit.tenantIDBytesMax, field: "tenant.parent_tenant_id")
        writeU8(tenant.defaultOveragePolicy.rawValue)
        writeI64(tenant.defaultTTLMilliseconds)
        writeI64(tenant.maxTTLMilliseconds)
        writeI64(Int64(tenant.maxExtensions))
        writeU8(tenant.expiryPolicy.rawValue)
        writeOptional(tenant.metadata, field: "tenant.metadata")
        writeI64(tenant.createdAtMilliseconds)
        writeI64(tenant.updatedAtMilliseconds)
    }

    public mutating func write(_ key: ApiKey) {
        writeString(key.id, bytesMax: Limit.keyIDBytesMax, field: "api_key.id")
        writeString(key.tenant, bytesMax: Limit.tenantIDBytesMax, field: "api_key.tenant")
        writeString(key.name, bytesMax: Limit.nameBytesMax, field: "api_key.name")
        writeOptionalString(key.description, bytesMax: Limit.nameBytesMax, field: "api_key.description")
        write(key.secretHash)
        writeString(key.prefix, bytesMax: Limit.keyPrefixBytesMax, field: "api_key.prefix")
        writeArray(key.permissions, countMax: Limit.permissionsCountMax, field: "api_key.permissions") {
            $0.writeU8($1.code)
        }
        writeArray(key.scopeFilter, countMax: Limit.scopeFilterCountMax, field: "api_key.scope_filter") {
            $0.writeString($1, bytesMax: Limit.scopeFilterPatternBytesMax, field: "scope filter pattern")
        }
        writeU8(key.status.rawValue)
        writeOptionalI64(key.expiresAtMilliseconds)
        writeOptional(key.metadata, field: "api_key.metadata")
        writeI64(key.createdAtMilliseconds)
        writeOptionalI64(key.revokedAtMilliseconds)
        writeOptionalString(key.revokeReason, bytesMax: Limit.adminReasonBytesMax, field: "api_key.revoke_reason")
    }

    mutating func write(_ revoked: ApiKeyRevoked) {
        writeString(revoked.keyID, bytesMax: Limit.keyIDBytesMax, field: "api_key_revoked.key_id")
        writeString(revoked.tenant, bytesMax: Limit.tenantIDBytesMax, field: "api_key_revoked.tenant")
        writeI64(revoked.atMilliseconds)
        writeOptionalString(revoked.reason, bytesMax: Limit.adminReasonBytesMax, field: "api_key_revoked.reason")
        writeU8(revoked.cause.rawValue)
    }

    public mutating func write(_ budget: Budget) {
        write(budget.key)
        writeString(budget.tenant, bytesMax: Limit.tenantIDBytesMax, field: "budget.tenant")
        for amount in [budget.allocated, budget.remaining, budget.reserved, budget.spent, budget.debt,
                       budget.overdraftLimit] {
            write(amount)
        }
        writeBool(budget.isOverLimit)
        writeU8(budget.status.rawValue)
        writeOptional(budget.commitOveragePolicy) { $0.writeU8($1.rawValue) }
        writeU8(budget.rolloverPolicy.rawValue)
        writeOptional(budget.caps)
        writeOptionalI64(budget.periodStartMilliseconds)
        writeOptionalI64(budget.periodEndMilliseconds)
        writeOptional(budget.metadata, field: "budget.metadata")
        writeI64(budget.createdAtMilliseconds)
        writeI64(budget.updatedAtMilliseconds)
    }

    mutating func write(_ funded: BudgetFunded) {
        write(funded.key)
        writeU8(funded.operation.rawValue)
        write(funded.amount)
        writeOptional(funded.spentOverride) { $0.write($1) }
        write(funded.before)
        write(funded.after)
        writeBool(funded.isOverLimitAfter)
        writeOptionalString(funded.reason, bytesMax: Limit.adminReasonBytesMax, field: "budget_funded.reason")
        writeOptional(funded.idempotency) { $0.write($1) }
        writeI64(funded.replayRetainUntilMilliseconds)
        write(funded.caller)
        writeI64(funded.atMilliseconds)
    }

    mutating func write(_ updated: BudgetUpdated) {
        write(updated.key)
        writeU8(updated.change.rawValue)
        write(updated.overdraftLimit)
        writeOptional(updated.commitOveragePolicy) { $0.writeU8($1.rawValue) }
        writeOptional(updated.caps)
        writeOptional(updated.metadata, field: "budget_updated.metadata")
        writeU8(updated.status.rawValue)
        writeBool(updated.isOverLimit)
        writeOptionalString(updated.reason, bytesMax: Limit.adminReasonBytesMax, field: "budget_updated.reason")
        write(updated.caller)
        writeI64(updated.atMilliseconds)
    }
}

extension ByteReader {
    public mutating func readOptionalOveragePolicy(
        _ field: @autoclosure () -> String
    ) throws(EventCodecError) -> OveragePolicy? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readEnum(OveragePolicy.self, field())
        }
    }

    public mutating func readTenant() throws(EventCodecError) -> Tenant {
        Tenant(
            id: try readString("tenant.id", bytesMax: Limit.tenantIDBytesMax),
            name: try readString("tenant.name", bytesMax: Limit.nameBytesMax),
            status: try readEnum(TenantStatus.self, "tenant.status"),
            parentTenantID: try readOptionalString("tenant.parent_tenant_id", bytesMax: Limit.tenantIDBytesMax),
            defaultOveragePolicy: try readEnum(OveragePolicy.self, "tenant.default_overage_policy"),
            defaultTTLMilliseconds: try readI64("tenant.default_ttl_ms"),
            maxTTLMilliseconds: try readI64("tenant.max_ttl_ms"),
            maxExtensions: try readInt("tenant.max_extensions"),
            expiryPolicy: try readEnum(ExpiryPolicy.self, "tenant.expiry_policy"),
            metadata: try readOptionalJSON("tenant.metadata"),
            createdAtMilliseconds: try readI64("tenant.created_at_ms"),
            updatedAtMilliseconds: try readI64("tenant.updated_at_ms"))
    }

    public mutating func readPermission() throws(EventCodecError) -> Permission {
        let start = offset
        let code = try readU8("permission")
        guard let permission = Permission(code: code) else {
            throw EventCodecError(
                .unknownEnumValue, offset: start, reason: "permission at offset \(start) has unknown code \(code)")
        }
        return permission
    }

    public mutating func readApiKey() throws(EventCodecError) -> ApiKey {
        ApiKey(
            id: try readString("api_key.id", bytesMax: Limit.keyIDBytesMax),
            tenant: try readString("api_key.tenant", bytesMax: Limit.tenantIDBytesMax),
            name: try readString("api_key.name", bytesMax: Limit.nameBytesMax),
            description: try readOptionalString("api_key.description", bytesMax: Limit.nameBytesMax),
            secretHash: try readDigest("api_key.secret_hash"),
            prefix: try readString("api_key.prefix", bytesMax: Limit.keyPrefixBytesMax),
            permissions: try readArray("api_key.permissions", countMax: Limit.permissionsCountMax) {
                (reader: inout ByteReader) throws(EventCodecError) in try reader.readPermission()
            },
            scopeFilter: try readArray("api_key.scope_filter", countMax: Limit.scopeFilterCountMax) {
                (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readString("scope filter pattern", bytesMax: Limit.scopeFilterPatternBytesMax)
            },
            status: try readEnum(ApiKeyStatus.self, "api_key.status"),
            expiresAtMilliseconds: try readOptionalI64("api_key.expires_at_ms"),
            metadata: try readOptionalJSON("api_key.metadata"),
            createdAtMilliseconds: try readI64("api_key.created_at_ms"),
            revokedAtMilliseconds: try readOptionalI64("api_key.revoked_at_ms"),
            revokeReason: try readOptionalString("api_key.revoke_reason", bytesMax: Limit.adminReasonBytesMax))
    }

    mutating func readApiKeyRevoked() throws(EventCodecError) -> ApiKeyRevoked {
        ApiKeyRevoked(
            keyID: try readString("api_key_revoked.key_id", bytesMax: Limit.keyIDBytesMax),
            tenant: try readString("api_key_revoked.tenant", bytesMax: Limit.tenantIDBytesMax),
            atMilliseconds: try readI64("api_key_revoked.at_ms"),
            reason: try readOptionalString("api_key_revoked.reason", bytesMax: Limit.adminReasonBytesMax),
            cause: try readEnum(ReleaseCause.self, "api_key_revoked.cause"))
    }

    public mutating func readBudget() throws(EventCodecError) -> Budget {
        Budget(
            key: try readBudgetKey(),
            tenant: try readString("budget.tenant", bytesMax: Limit.tenantIDBytesMax),
            allocated: try readAmount("budget.allocated"), remaining: try readAmount("budget.remaining"),
            reserved: try readAmount("budget.reserved"), spent: try readAmount("budget.spent"),
            debt: try readAmount("budget.debt"), overdraftLimit: try readAmount("budget.overdraft_limit"),
            isOverLimit: try readBool("budget.is_over_limit"),
            status: try readEnum(BudgetStatus.self, "budget.status"),
            commitOveragePolicy: try readOptionalOveragePolicy("budget.commit_overage_policy"),
            rolloverPolicy: try readEnum(RolloverPolicy.self, "budget.rollover_policy"),
            caps: try readOptionalCaps(),
            periodStartMilliseconds: try readOptionalI64("budget.period_start_ms"),
            periodEndMilliseconds: try readOptionalI64("budget.period_end_ms"),
            metadata: try readOptionalJSON("budget.metadata"),
            createdAtMilliseconds: try readI64("budget.created_at_ms"),
            updatedAtMilliseconds: try readI64("budget.updated_at_ms"))
    }

    mutating func readBudgetFunded() throws(EventCodecError) -> BudgetFunded {
        BudgetFunded(
            key: try readBudgetKey(),
            operation: try readEnum(FundingOperation.self, "budget_funded.operation"),
            amount: try readAmount("budget_funded.amount"),
            spentOverride: try readOptionalAmount("budget_funded.spent_override"),
            before: try readFigures("budget_funded.before"),
            after: try readFigures("budget_funded.after"),
            isOverLimitAfter: try readBool("budget_funded.is_over_limit_after"),
            reason: try readOptionalString("budget_funded.reason", bytesMax: Limit.adminReasonBytesMax),
            idempotency: try readOptionalIdempotencyStamp(),
            replayRetainUntilMilliseconds: try readI64("budget_funded.replay_retain_until_ms"),
            caller: try readCaller(),
            atMilliseconds: try readI64("budget_funded.at_ms"))
    }

    mutating func readBudgetUpdated() throws(EventCodecError) -> BudgetUpdated {
        BudgetUpdated(
            key: try readBudgetKey(),
            change: try readEnum(BudgetChange.self, "budget_updated.change"),
            overdraftLimit: try readAmount("budget_updated.overdraft_limit"),
            commitOveragePolicy: try readOptionalOveragePolicy("budget_updated.commit_overage_policy"),
            caps: try readOptionalCaps(),
            metadata: try readOptionalJSON("budget_updated.metadata"),
            status: try readEnum(BudgetStatus.self, "budget_updated.status"),
            isOverLimit: try readBool("budget_updated.is_over_limit"),
            reason: try readOptionalString("budget_updated.reason", bytesMax: Limit.adminReasonBytesMax),
            caller: try readCaller(),
            atMilliseconds: try readI64("budget_updated.at_ms"))
    }
}
