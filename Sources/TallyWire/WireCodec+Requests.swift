import TallyCore

// Request bodies (protocol/wire.md section 5): each struct's fields in declaration order, with the event
// codec's primitives. Writer and reader of each message sit in the same order so a reviewer can compare.

private typealias Limit = EventCodec.FieldLimit

extension ByteWriter {
    mutating func writeBody(of request: Request) {
        switch request {
        case .hello(let hello):
            write(hello.credential)
            writeString(hello.clientName, bytesMax: WireLimits.peerNameBytesMax, field: "hello.client_name")
        case .reserve(let reserve): write(reserve)
        case .commit(let commit): write(commit)
        case .release(let release):
            writeReservationID(release.reservationID)
            writeIdempotencyKey(release.idempotencyKey)
            writeOptionalString(release.reason, bytesMax: Limit.releaseReasonBytesMax, field: "release.reason")
        case .extend(let extend):
            writeReservationID(extend.reservationID)
            writeIdempotencyKey(extend.idempotencyKey)
            writeI64(extend.extendByMilliseconds)
            writeOptional(extend.metadata, field: "extend.metadata")
        case .decide(let decide):
            writeIdempotencyKey(decide.idempotencyKey)
            write(decide.subject)
            write(decide.action)
            write(decide.estimate)
            writeOptional(decide.metadata, field: "decide.metadata")
        case .debit(let debit): write(debit)
        case .getReservation(let reservationID): writeReservationID(reservationID)
        case .listReservations(let list): write(list)
        case .balances(let balances):
            writeOptionalString(balances.tenant, bytesMax: Limit.tenantIDBytesMax, field: "balances.tenant")
            writeOptionalString(balances.scopePrefix, bytesMax: Limit.scopePathBytesMax, field: "balances.scope_prefix")
            writeOptional(balances.unit) { $0.writeU8($1.rawValue) }
            writeOptional(balances.status) { $0.writeU8($1.rawValue) }
            write(segments: balances.segments)
        default: writeAdminBody(of: request)
        }
    }

    private mutating func writeAdminBody(of request: Request) {
        switch request {
        case .createTenant(let create): write(create)
        case .updateTenant(let update): write(update)
        case .listTenants(let status): writeOptional(status) { $0.writeU8($1.rawValue) }
        case .createApiKey(let create): write(create)
        case .revokeApiKey(let revoke):
            writeString(revoke.keyID, bytesMax: Limit.keyIDBytesMax, field: "revoke_api_key.key_id")
            writeOptionalString(revoke.reason, bytesMax: Limit.adminReasonBytesMax, field: "revoke_api_key.reason")
        case .createBudget(let create): write(create)
        case .fundBudget(let fund): write(fund)
        case .updateBudget(let update):
            writeScopeText(update.scope)
            writeU8(update.unit.rawValue)
            writeOptional(update.overdraftLimit) { $0.write($1) }
            writeOptional(update.commitOveragePolicy) { $0.writeU8($1.rawValue) }
            writeOptional(update.caps)
            writeOptional(update.metadata, field: "update_budget.metadata")
        case .freezeBudget(let change), .unfreezeBudget(let change):
            writeScopeText(change.scope)
            writeU8(change.unit.rawValue)
            writeOptionalString(change.reason, bytesMax: Limit.adminReasonBytesMax, field: "budget_status.reason")
        case .listApiKeys(let tenantID):
            writeOptionalString(tenantID, bytesMax: Limit.tenantIDBytesMax, field: "list_api_keys.tenant_id")
        case .subscribe(let fromSequence, let credit):
            writeU64(fromSequence)
            writeU32(credit)
        case .grantCredit(let credit): writeU32(credit)
        case .hello, .reserve, .commit, .release, .extend, .decide, .debit, .getReservation, .listReservations,
             .balances:
            preconditionFailure("runtime requests are written by writeBody(of:)")
        }
    }

    mutating func write(_ credential: Credential) {
        switch credential {
        case .tenantKey(let secret):
            writeU8(1)
            writeString(secret, bytesMax: WireLimits.secretBytesMax, field: "credential.secret")
        case .adminKey(let secret):
            writeU8(2)
            writeString(secret, bytesMax: WireLimits.secretBytesMax, field: "credential.secret")
        }
    }

    mutating func writeReservationID(_ id: ReservationID) {
        writeReservationID(id, bytesMax: Limit.reservationIDBytesMax, field: "reservation_id")
    }

    mutating func writeIdempotencyKey(_ key: String) {
        writeString(key, bytesMax: Limit.idempotencyKeyBytesMax, field: "idempotency_key")
    }

    /// A scope as an operator wrote it: text, not yet a `ScopePath` (the server parses and lower-cases it).
    mutating func writeScopeText(_ scope: String) {
        writeString(scope, bytesMax: Limit.scopePathBytesMax, field: "scope")
    }

    /// Sorted by level, so a dictionary has one encoding.
    mutating func write(segments: [ScopeLevel: String]) {
        let sorted = segments.sorted { $0.key < $1.key }
        writeArray(sorted, countMax: WireLimits.segmentsCountMax, field: "segments") { writer, segment in
            writer.writeU8(segment.key.rawValue)
            writer.writeString(segment.value, bytesMax: Limit.subjectValueBytesMax, field: "segment value")
        }
    }

    private mutating func write(_ reserve: ReserveRequest) {
        write(reserve, graceMilliseconds: reserve.graceMilliseconds)
    }

    /// A reserve's body with `graceMilliseconds` in place of its own (`RequestFingerprint` fills in a default).
    mutating func write(_ reserve: ReserveRequest, graceMilliseconds: Int64?) {
        writeIdempotencyKey(reserve.idempotencyKey)
        write(reserve.subject)
        write(reserve.action)
        write(reserve.estimate)
        writeOptionalI64(reserve.ttlMilliseconds)
        writeOptionalI64(graceMilliseconds)
        writeOptional(reserve.overagePolicy) { $0.writeU8($1.rawValue) }
        writeBool(reserve.dryRun)
        writeOptional(reserve.metadata, field: "reserve.metadata")
    }

    private mutating func write(_ commit: CommitRequest) {
        writeReservationID(commit.reservationID)
        writeIdempotencyKey(commit.idempotencyKey)
        write(commit.actual)
        writeOptional(commit.metrics) { $0.write($1) }
        writeOptional(commit.metadata, field: "commit.metadata")
    }

    private mutating func write(_ debit: DebitRequest) {
        writeIdempotencyKey(debit.idempotencyKey)
        write(debit.subject)
        write(debit.action)
        write(debit.actual)
        writeOptional(debit.overagePolicy) { $0.writeU8($1.rawValue) }
        writeOptional(debit.metrics) { $0.write($1) }
        writeOptionalI64(debit.clientTimeMilliseconds)
        writeOptional(debit.metadata, field: "debit.metadata")
    }

    private mutating func write(_ list: ListReservationsRequest) {
        writeOptionalString(list.tenant, bytesMax: Limit.tenantIDBytesMax, field: "list_reservations.tenant")
        writeOptionalString(list.idempotencyKey, bytesMax: Limit.idempotencyKeyBytesMax, field: "list_reservations.idempotency_key")
        writeOptional(list.status) { $0.writeU8($1.rawValue) }
        write(segments: list.segments)
        for bound in [list.createdFrom, list.createdTo, list.expiresFrom, list.expiresTo, list.finalizedFrom,
                      list.finalizedTo] {
            writeOptionalI64(bound)
        }
        writeU8(list.sortKey.rawValue)
        writeBool(list.ascending)
        writeU32(list.limit)
        writeOptionalString(list.after, bytesMax: WireLimits.cursorBytesMax, field: "list_reservations.after")
    }

    private mutating func write(_ create: CreateTenantCommand) {
        writeString(create.tenantID, bytesMax: Limit.tenantIDBytesMax, field: "create_tenant.tenant_id")
        writeString(create.name, bytesMax: Limit.nameBytesMax, field: "create_tenant.name")
        writeOptionalString(create.parentTenantID, bytesMax: Limit.tenantIDBytesMax, field: "create_tenant.parent_tenant_id")
        writeOptional(create.defaultOveragePolicy) { $0.writeU8($1.rawValue) }
        writeOptionalI64(create.defaultTTLMilliseconds)
        writeOptionalI64(create.maxTTLMilliseconds)
        writeOptionalI64(create.maxExtensions.map(Int64.init))
        writeOptional(create.expiryPolicy) { $0.writeU8($1.rawValue) }
        writeOptional(create.metadata, field: "create_tenant.metadata")
    }

    private mutating func write(_ update: UpdateTenantCommand) {
        writeString(update.tenantID, bytesMax: Limit.tenantIDBytesMax, field: "update_tenant.tenant_id")
        writeOptionalString(update.name, bytesMax: Limit.nameBytesMax, field: "update_tenant.name")
        writeOptional(update.status) { $0.writeU8($1.rawValue) }
        writeOptional(update.defaultOveragePolicy) { $0.writeU8($1.rawValue) }
        writeOptionalI64(update.defaultTTLMilliseconds)
        writeOptionalI64(update.maxTTLMilliseconds)
        writeOptionalI64(update.maxExtensions.map(Int64.init))
        writeOptional(update.expiryPolicy) { $0.writeU8($1.rawValue) }
        writeOptional(update.metadata, field: "update_tenant.metadata")
    }

    private mutating func write(_ create: CreateApiKeyRequest) {
        writeString(create.tenantID, bytesMax: Limit.tenantIDBytesMax, field: "create_api_key.tenant_id")
        writeString(create.name, bytesMax: Limit.nameBytesMax, field: "create_api_key.name")
        writeOptionalString(create.description, bytesMax: Limit.nameBytesMax, field: "create_api_key.description")
        writeOptional(create.permissions) { writer, permissions in writer.write(permissions: permissions) }
        writeArray(create.scopeFilter, countMax: Limit.scopeFilterCountMax, field: "create_api_key.scope_filter") {
            $0.writeString($1, bytesMax: Limit.scopeFilterPatternBytesMax, field: "scope filter pattern")
        }
        writeOptionalI64(create.expiresAtMilliseconds)
        writeOptional(create.metadata, field: "create_api_key.metadata")
    }

    mutating func write(permissions: [Permission]) {
        writeArray(permissions, countMax: Limit.permissionsCountMax, field: "permissions") { $0.writeU8($1.code) }
    }

    private mutating func write(_ create: CreateBudgetRequest) {
        writeOptionalString(create.tenantID, bytesMax: Limit.tenantIDBytesMax, field: "create_budget.tenant_id")
        writeScopeText(create.scope)
        writeU8(create.unit.rawValue)
        write(create.allocated)
        write(create.overdraftLimit)
        writeOptional(create.commitOveragePolicy) { $0.writeU8($1.rawValue) }
        writeU8(create.rolloverPolicy.rawValue)
        writeOptional(create.caps)
        writeOptionalI64(create.periodStartMilliseconds)
        writeOptionalI64(create.periodEndMilliseconds)
        writeOptional(create.metadata, field: "create_budget.metadata")
    }

    private mutating func write(_ fund: FundBudgetRequest) {
        writeScopeText(fund.scope)
        writeU8(fund.unit.rawValue)
        writeU8(fund.operation.rawValue)
        write(fund.amount)
        writeOptional(fund.spent) { $0.write($1) }
        writeOptionalString(fund.reason, bytesMax: Limit.adminReasonBytesMax, field: "fund_budget.reason")
        writeOptionalString(fund.idempotencyKey, bytesMax: Limit.idempotencyKeyBytesMax, field: "fund_budget.idempotency_key")
    }
}

extension ByteReader {
    mutating func readRequestBody(_ kind: RequestKind) throws(EventCodecError) -> Request {
        switch kind {
        case .hello:
            let credential = try readCredential()
            return .hello(Hello(credential: credential, clientName: try readString("hello.client_name", bytesMax: WireLimits.peerNameBytesMax)))
        case .reserve: return .reserve(try readReserve())
        case .commit: return .commit(try readCommit())
        case .release:
            return .release(ReleaseRequest(
                reservationID: try readReservationID(), idempotencyKey: try readIdempotencyKey(),
                reason: try readOptionalString("release.reason", bytesMax: Limit.releaseReasonBytesMax)))
        case .extend:
            return .extend(ExtendRequest(
                reservationID: try readReservationID(), idempotencyKey: try readIdempotencyKey(),
                extendByMilliseconds: try readI64("extend.extend_by_ms"), metadata: try readOptionalJSON("extend.metadata")))
        case .decide:
            return .decide(DecideRequest(
                idempotencyKey: try readIdempotencyKey(), subject: try readSubject(), action: try readAction(),
                estimate: try readQuantity("decide.estimate"), metadata: try readOptionalJSON("decide.metadata")))
        case .debit: return .debit(try readDebit())
        case .getReservation: return .getReservation(reservationID: try readReservationID())
        case .listReservations: return .listReservations(try readListReservations())
        case .balances:
            return .balances(BalancesRequest(
                tenant: try readOptionalString("balances.tenant", bytesMax: Limit.tenantIDBytesMax),
                scopePrefix: try readOptionalString("balances.scope_prefix", bytesMax: Limit.scopePathBytesMax),
                unit: try readOptionalEnum(Unit.self, "balances.unit"),
                status: try readOptionalEnum(BudgetStatus.self, "balances.status"),
                segments: try readSegments()))
        default: return try readAdminRequestBody(kind)
        }
    }

    private mutating func readAdminRequestBody(_ kind: RequestKind) throws(EventCodecError) -> Request {
        switch kind {
        case .createTenant: return .createTenant(try readCreateTenant())
        case .updateTenant: return .updateTenant(try readUpdateTenant())
        case .listTenants: return .listTenants(status: try readOptionalEnum(TenantStatus.self, "list_tenants.status"))
        case .createApiKey: return .createApiKey(try readCreateApiKey())
        case .revokeApiKey:
            return .revokeApiKey(RevokeApiKeyCommand(
                keyID: try readString("revoke_api_key.key_id", bytesMax: Limit.keyIDBytesMax),
                reason: try readOptionalString("revoke_api_key.reason", bytesMax: Limit.adminReasonBytesMax)))
        case .createBudget: return .createBudget(try readCreateBudget())
        case .fundBudget: return .fundBudget(try readFundBudget())
        case .updateBudget:
            return .updateBudget(UpdateBudgetRequest(
                scope: try readScopeText(), unit: try readEnum(Unit.self, "update_budget.unit"),
                overdraftLimit: try readOptionalAmount("update_budget.overdraft_limit"),
                commitOveragePolicy: try readOptionalOveragePolicy("update_budget.commit_overage_policy"),
                caps: try readOptionalCaps(), metadata: try readOptionalJSON("update_budget.metadata")))
        case .freezeBudget: return .freezeBudget(try readBudgetStatusRequest())
        case .unfreezeBudget: return .unfreezeBudget(try readBudgetStatusRequest())
        case .listApiKeys:
            return .listApiKeys(tenantID: try readOptionalString("list_api_keys.tenant_id", bytesMax: Limit.tenantIDBytesMax))
        case .subscribe:
            return .subscribe(fromSequence: try readU64("subscribe.from_sequence"), credit: try readU32("subscribe.credit"))
        case .grantCredit: return .grantCredit(try readU32("grant_credit.credit"))
        case .hello, .reserve, .commit, .release, .extend, .decide, .debit, .getReservation, .listReservations,
             .balances:
            preconditionFailure("runtime requests are read by readRequestBody(_:)")
        }
    }

    mutating func readCredential() throws(EventCodecError) -> Credential {
        let start = offset
        switch try readU8("credential tag") {
        case 1: return .tenantKey(try readString("credential.secret", bytesMax: WireLimits.secretBytesMax))
        case 2: return .adminKey(try readString("credential.secret", bytesMax: WireLimits.secretBytesMax))
        case let tag:
            throw EventCodecError(.unknownEnumValue, offset: start, reason: "credential tag at offset \(start) has unknown value \(tag)")
        }
    }

    mutating func readReservationID() throws(EventCodecError) -> ReservationID {
        try readReservationID("reservation_id", bytesMax: Limit.reservationIDBytesMax)
    }

    mutating func readIdempotencyKey() throws(EventCodecError) -> String {
        try readString("idempotency_key", bytesMax: Limit.idempotencyKeyBytesMax)
    }

    mutating func readScopeText() throws(EventCodecError) -> String {
        try readString("scope", bytesMax: Limit.scopePathBytesMax)
    }

    mutating func readOptionalEnum<Value: RawRepresentable>(
        _ type: Value.Type, _ field: @autoclosure () -> String
    ) throws(EventCodecError) -> Value? where Value.RawValue == UInt8 {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in try reader.readEnum(type, field()) }
    }

    /// Levels must strictly increase, the order the writer uses, so each filter has one encoding.
    mutating func readSegments() throws(EventCodecError) -> [ScopeLevel: String] {
        let count = try readCount("segments", countMax: WireLimits.segmentsCountMax)
        var segments: [ScopeLevel: String] = [:]
        var previous: ScopeLevel?
        for _ in 0..<count {
            let start = offset
            let level = try readEnum(ScopeLevel.self, "segment level")
            guard previous.map({ $0 < level }) ?? true else {
                throw EventCodecError(
                    .nonCanonicalKeys, offset: start, reason: "segment level at offset \(start) is not after the previous level")
            }
            previous = level
            segments[level] = try readString("segment value", bytesMax: Limit.subjectValueBytesMax)
        }
        return segments
    }

    private mutating func readReserve() throws(EventCodecError) -> ReserveRequest {
        ReserveRequest(
            idempotencyKey: try readIdempotencyKey(), subject: try readSubject(), action: try readAction(),
            estimate: try readQuantity("reserve.estimate"), ttlMilliseconds: try readOptionalI64("reserve.ttl_ms"),
            graceMilliseconds: try readOptionalI64("reserve.grace_ms"),
            overagePolicy: try readOptionalOveragePolicy("reserve.overage_policy"),
            dryRun: try readBool("reserve.dry_run"), metadata: try readOptionalJSON("reserve.metadata"))
    }

    private mutating func readCommit() throws(EventCodecError) -> CommitRequest {
        CommitRequest(
            reservationID: try readReservationID(), idempotencyKey: try readIdempotencyKey(),
            actual: try readQuantity("commit.actual"), metrics: try readOptionalMetrics(),
            metadata: try readOptionalJSON("commit.metadata"))
    }

    private mutating func readDebit() throws(EventCodecError) -> DebitRequest {
        DebitRequest(
            idempotencyKey: try readIdempotencyKey(), subject: try readSubject(), action: try readAction(),
            actual: try readQuantity("debit.actual"), overagePolicy: try readOptionalOveragePolicy("debit.overage_policy"),
            metrics: try readOptionalMetrics(), clientTimeMilliseconds: try readOptionalI64("debit.client_time_ms"),
            metadata: try readOptionalJSON("debit.metadata"))
    }

    private mutating func readListReservations() throws(EventCodecError) -> ListReservationsRequest {
        ListReservationsRequest(
            tenant: try readOptionalString("list_reservations.tenant", bytesMax: Limit.tenantIDBytesMax),
            idempotencyKey: try readOptionalString("list_reservations.idempotency_key", bytesMax: Limit.idempotencyKeyBytesMax),
            status: try readOptionalEnum(ReservationStatus.self, "list_reservations.status"),
            segments: try readSegments(),
            createdFrom: try readOptionalI64("list_reservations.created_from"),
            createdTo: try readOptionalI64("list_reservations.created_to"),
            expiresFrom: try readOptionalI64("list_reservations.expires_from"),
            expiresTo: try readOptionalI64("list_reservations.expires_to"),
            finalizedFrom: try readOptionalI64("list_reservations.finalized_from"),
            finalizedTo: try readOptionalI64("list_reservations.finalized_to"),
            sortKey: try readEnum(ReservationSortKey.self, "list_reservations.sort_key"),
            ascending: try readBool("list_reservations.ascending"),
            limit: try readU32("list_reservations.limit"),
            after: try readOptionalString("list_reservations.after", bytesMax: WireLimits.cursorBytesMax))
    }

    private mutating func readOptionalInt(_ field: @autoclosure () -> String) throws(EventCodecError) -> Int? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in try reader.readInt(field()) }
    }

    private mutating func readCreateTenant() throws(EventCodecError) -> CreateTenantCommand {
        CreateTenantCommand(
            tenantID: try readString("create_tenant.tenant_id", bytesMax: Limit.tenantIDBytesMax),
            name: try readString("create_tenant.name", bytesMax: Limit.nameBytesMax),
            parentTenantID: try readOptionalString("create_tenant.parent_tenant_id", bytesMax: Limit.tenantIDBytesMax),
            defaultOveragePolicy: try readOptionalOveragePolicy("create_tenant.default_overage_policy"),
            defaultTTLMilliseconds: try readOptionalI64("create_tenant.default_ttl_ms"),
            maxTTLMilliseconds: try readOptionalI64("create_tenant.max_ttl_ms"),
            maxExtensions: try readOptionalInt("create_tenant.max_extensions"),
            expiryPolicy: try readOptionalEnum(ExpiryPolicy.self, "create_tenant.expiry_policy"),
            metadata: try readOptionalJSON("create_tenant.metadata"))
    }

    private mutating func readUpdateTenant() throws(EventCodecError) -> UpdateTenantCommand {
        UpdateTenantCommand(
            tenantID: try readString("update_tenant.tenant_id", bytesMax: Limit.tenantIDBytesMax),
            name: try readOptionalString("update_tenant.name", bytesMax: Limit.nameBytesMax),
            status: try readOptionalEnum(TenantStatus.self, "update_tenant.status"),
            defaultOveragePolicy: try readOptionalOveragePolicy("update_tenant.default_overage_policy"),
            defaultTTLMilliseconds: try readOptionalI64("update_tenant.default_ttl_ms"),
            maxTTLMilliseconds: try readOptionalI64("update_tenant.max_ttl_ms"),
            maxExtensions: try readOptionalInt("update_tenant.max_extensions"),
            expiryPolicy: try readOptionalEnum(ExpiryPolicy.self, "update_tenant.expiry_policy"),
            metadata: try readOptionalJSON("update_tenant.metadata"))
    }

    private mutating func readCreateApiKey() throws(EventCodecError) -> CreateApiKeyRequest {
        CreateApiKeyRequest(
            tenantID: try readString("create_api_key.tenant_id", bytesMax: Limit.tenantIDBytesMax),
            name: try readString("create_api_key.name", bytesMax: Limit.nameBytesMax),
            description: try readOptionalString("create_api_key.description", bytesMax: Limit.nameBytesMax),
            permissions: try readOptional("create_api_key.permissions") { (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readPermissions()
            },
            scopeFilter: try readArray("create_api_key.scope_filter", countMax: Limit.scopeFilterCountMax) {
                (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readString("scope filter pattern", bytesMax: Limit.scopeFilterPatternBytesMax)
            },
            expiresAtMilliseconds: try readOptionalI64("create_api_key.expires_at_ms"),
            metadata: try readOptionalJSON("create_api_key.metadata"))
    }

    mutating func readPermissions() throws(EventCodecError) -> [Permission] {
        try readArray("permissions", countMax: Limit.permissionsCountMax) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readPermission()
        }
    }

    private mutating func readCreateBudget() throws(EventCodecError) -> CreateBudgetRequest {
        CreateBudgetRequest(
            tenantID: try readOptionalString("create_budget.tenant_id", bytesMax: Limit.tenantIDBytesMax),
            scope: try readScopeText(), unit: try readEnum(Unit.self, "create_budget.unit"),
            allocated: try readAmount("create_budget.allocated"),
            overdraftLimit: try readAmount("create_budget.overdraft_limit"),
            commitOveragePolicy: try readOptionalOveragePolicy("create_budget.commit_overage_policy"),
            rolloverPolicy: try readEnum(RolloverPolicy.self, "create_budget.rollover_policy"),
            caps: try readOptionalCaps(),
            periodStartMilliseconds: try readOptionalI64("create_budget.period_start_ms"),
            periodEndMilliseconds: try readOptionalI64("create_budget.period_end_ms"),
            metadata: try readOptionalJSON("create_budget.metadata"))
    }

    private mutating func readFundBudget() throws(EventCodecError) -> FundBudgetRequest {
        FundBudgetRequest(
            scope: try readScopeText(), unit: try readEnum(Unit.self, "fund_budget.unit"),
            operation: try readEnum(FundingOperation.self, "fund_budget.operation"),
            amount: try readAmount("fund_budget.amount"), spent: try readOptionalAmount("fund_budget.spent"),
            reason: try readOptionalString("fund_budget.reason", bytesMax: Limit.adminReasonBytesMax),
            idempotencyKey: try readOptionalString("fund_budget.idempotency_key", bytesMax: Limit.idempotencyKeyBytesMax))
    }

    private mutating func readBudgetStatusRequest() throws(EventCodecError) -> BudgetStatusRequest {
        BudgetStatusRequest(
            scope: try readScopeText(), unit: try readEnum(Unit.self, "budget_status.unit"),
            reason: try readOptionalString("budget_status.reason", bytesMax: Limit.adminReasonBytesMax))
    }
}
