import TallyCore
import TallyWire

/// Cycles JSON request bodies turned into the same `Request` values the binary protocol decodes, so both
/// gateways share the router, the tenancy rules and the idempotency fingerprint. Only types, presence and
/// unknown members are checked here; ranges and lengths are the ledger's (`decide` refuses them with the
/// field's name), except where a value must be known before the ledger sees it.
enum CyclesRequests {
    static func reserve(_ body: JSONValue) throws(WireError) -> ReserveRequest {
        var fields = try JSONFields(body)
        let request = ReserveRequest(
            idempotencyKey: try fields.required("idempotency_key") { f, n throws(WireError) in try f.string(n) },
            subject: try fields.required("subject") { f, n throws(WireError) in try subject(&f, n) },
            action: try fields.required("action") { f, n throws(WireError) in try action(&f, n) },
            estimate: try fields.required("estimate") { f, n throws(WireError) in try quantity(&f, n) },
            ttlMilliseconds: try fields.integer("ttl_ms"),
            graceMilliseconds: try fields.integer("grace_period_ms"),
            overagePolicy: try overagePolicy(&fields, "overage_policy"),
            dryRun: try fields.bool("dry_run") ?? false,
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func decide(_ body: JSONValue) throws(WireError) -> DecideRequest {
        var fields = try JSONFields(body)
        let request = DecideRequest(
            idempotencyKey: try fields.required("idempotency_key") { f, n throws(WireError) in try f.string(n) },
            subject: try fields.required("subject") { f, n throws(WireError) in try subject(&f, n) },
            action: try fields.required("action") { f, n throws(WireError) in try action(&f, n) },
            estimate: try fields.required("estimate") { f, n throws(WireError) in try quantity(&f, n) },
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func commit(_ body: JSONValue, reservationID: ReservationID) throws(WireError) -> CommitRequest {
        var fields = try JSONFields(body)
        let request = CommitRequest(
            reservationID: reservationID,
            idempotencyKey: try fields.required("idempotency_key") { f, n throws(WireError) in try f.string(n) },
            actual: try fields.required("actual") { f, n throws(WireError) in try quantity(&f, n) },
            metrics: try metrics(&fields, "metrics"),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func release(_ body: JSONValue, reservationID: ReservationID) throws(WireError) -> ReleaseRequest {
        var fields = try JSONFields(body)
        let request = ReleaseRequest(
            reservationID: reservationID,
            idempotencyKey: try fields.required("idempotency_key") { f, n throws(WireError) in try f.string(n) },
            reason: try fields.string("reason"))
        try fields.finish()
        return request
    }

    static func extend(_ body: JSONValue, reservationID: ReservationID) throws(WireError) -> ExtendRequest {
        var fields = try JSONFields(body)
        let request = ExtendRequest(
            reservationID: reservationID,
            idempotencyKey: try fields.required("idempotency_key") { f, n throws(WireError) in try f.string(n) },
            extendByMilliseconds: try fields.required("extend_by_ms") { f, n throws(WireError) in try f.integer(n) },
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func debit(_ body: JSONValue) throws(WireError) -> DebitRequest {
        var fields = try JSONFields(body)
        let request = DebitRequest(
            idempotencyKey: try fields.required("idempotency_key") { f, n throws(WireError) in try f.string(n) },
            subject: try fields.required("subject") { f, n throws(WireError) in try subject(&f, n) },
            action: try fields.required("action") { f, n throws(WireError) in try action(&f, n) },
            actual: try fields.required("actual") { f, n throws(WireError) in try quantity(&f, n) },
            overagePolicy: try overagePolicy(&fields, "overage_policy"),
            metrics: try metrics(&fields, "metrics"),
            clientTimeMilliseconds: try fields.integer("client_time_ms"),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    // MARK: Admin plane

    static func createTenant(_ body: JSONValue) throws(WireError) -> CreateTenantCommand {
        var fields = try JSONFields(body)
        let command = CreateTenantCommand(
            tenantID: try fields.required("tenant_id") { f, n throws(WireError) in try f.string(n) },
            name: try fields.required("name") { f, n throws(WireError) in try f.string(n) },
            parentTenantID: try fields.string("parent_tenant_id"),
            defaultOveragePolicy: try overagePolicy(&fields, "default_commit_overage_policy"),
            defaultTTLMilliseconds: try fields.integer("default_reservation_ttl_ms"),
            maxTTLMilliseconds: try fields.integer("max_reservation_ttl_ms"),
            maxExtensions: try fields.integer("max_reservation_extensions", in: 0...Int64(Int32.max)).map { Int($0) },
            expiryPolicy: try fields.enumeration("reservation_expiry_policy", ExpiryPolicy.allCases, \.cyclesName),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return command
    }

    static func updateTenant(_ body: JSONValue, tenantID: String) throws(WireError) -> UpdateTenantCommand {
        var fields = try JSONFields(body)
        let command = UpdateTenantCommand(
            tenantID: tenantID,
            name: try fields.string("name"),
            status: try fields.enumeration("status", TenantStatus.allCases, \.cyclesName),
            defaultOveragePolicy: try overagePolicy(&fields, "default_commit_overage_policy"),
            defaultTTLMilliseconds: try fields.integer("default_reservation_ttl_ms"),
            maxTTLMilliseconds: try fields.integer("max_reservation_ttl_ms"),
            maxExtensions: try fields.integer("max_reservation_extensions", in: 0...Int64(Int32.max)).map { Int($0) },
            expiryPolicy: try fields.enumeration("reservation_expiry_policy", ExpiryPolicy.allCases, \.cyclesName),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return command
    }

    static func createApiKey(_ body: JSONValue) throws(WireError) -> CreateApiKeyRequest {
        var fields = try JSONFields(body)
        let request = CreateApiKeyRequest(
            tenantID: try fields.required("tenant_id") { f, n throws(WireError) in try f.string(n) },
            name: try fields.required("name") { f, n throws(WireError) in try f.string(n) },
            description: try fields.string("description"),
            permissions: try permissions(&fields, "permissions"),
            scopeFilter: try fields.strings("scope_filter") ?? [],
            expiresAtMilliseconds: try instant(&fields, "expires_at"),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func updateApiKey(_ body: JSONValue, keyID: String) throws(WireError) -> UpdateApiKeyCommand {
        var fields = try JSONFields(body)
        let command = UpdateApiKeyCommand(
            keyID: keyID, name: try fields.string("name"), description: try fields.string("description"),
            permissions: try permissions(&fields, "permissions"), scopeFilter: try fields.strings("scope_filter"),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return command
    }

    static func revokeReason(_ body: JSONValue?) throws(WireError) -> String? {
        guard let body else { return nil }
        var fields = try JSONFields(body)
        let reason = try fields.string("reason")
        try fields.finish()
        return reason
    }

    static func createBudget(_ body: JSONValue) throws(WireError) -> CreateBudgetRequest {
        var fields = try JSONFields(body)
        let unit = try fields.required("unit") { f, n throws(WireError) in try unitField(&f, n) }
        let allocated = try fields.required("allocated") { f, n throws(WireError) in try quantity(&f, n) }
        try requireUnit(allocated, "allocated", unit)
        let overdraft = try quantity(&fields, "overdraft_limit")
        try requireUnit(overdraft, "overdraft_limit", unit)
        let request = CreateBudgetRequest(
            tenantID: try fields.string("tenant_id"),
            scope: try fields.required("scope") { f, n throws(WireError) in try f.string(n) },
            unit: unit, allocated: allocated.amount, overdraftLimit: overdraft?.amount ?? .zero,
            commitOveragePolicy: try overagePolicy(&fields, "commit_overage_policy"),
            rolloverPolicy: try fields.enumeration("rollover_policy", RolloverPolicy.allCases, \.cyclesName) ?? .none,
            caps: try caps(&fields, "caps"),
            periodStartMilliseconds: try instant(&fields, "period_start"),
            periodEndMilliseconds: try instant(&fields, "period_end"),
            metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func updateBudget(_ body: JSONValue, scope: String, unit: TallyCore.Unit) throws(WireError) -> UpdateBudgetRequest {
        var fields = try JSONFields(body)
        let overdraft = try quantity(&fields, "overdraft_limit")
        try requireUnit(overdraft, "overdraft_limit", unit)
        let request = UpdateBudgetRequest(
            scope: scope, unit: unit, overdraftLimit: overdraft?.amount,
            commitOveragePolicy: try overagePolicy(&fields, "commit_overage_policy"),
            caps: try caps(&fields, "caps"), metadata: try fields.freeObject("metadata"))
        try fields.finish()
        return request
    }

    static func budgetStatus(_ body: JSONValue?, scope: String, unit: TallyCore.Unit) throws(WireError) -> BudgetStatusRequest {
        var reason: String?
        if let body {
            var fields = try JSONFields(body)
            reason = try fields.string("reason")
            _ = try fields.freeObject("metadata")
            try fields.finish()
        }
        return BudgetStatusRequest(scope: scope, unit: unit, reason: reason)
    }

    static func fundBudget(_ body: JSONValue, scope: String, unit: TallyCore.Unit) throws(WireError) -> FundBudgetRequest {
        var fields = try JSONFields(body)
        let operation = try fields.required("operation") { f, n throws(WireError) in
            try f.enumeration(n, FundingOperation.allCases, \.cyclesName)
        }
        let amount = try fields.required("amount") { f, n throws(WireError) in try quantity(&f, n) }
        try requireUnit(amount, "amount", unit)
        let spent = try quantity(&fields, "spent")
        try requireUnit(spent, "spent", unit)
        let request = FundBudgetRequest(
            scope: scope, unit: unit, operation: operation, amount: amount.amount, spent: spent?.amount,
            reason: try fields.string("reason"), idempotencyKey: try fields.string("idempotency_key"))
        _ = try fields.freeObject("metadata")
        try fields.finish()
        return request
    }

    // MARK: Values

    /// An amount of a budget request must be in the budget's unit.
    static func requireUnit(_ quantity: Quantity?, _ field: String, _ unit: TallyCore.Unit) throws(WireError) {
        guard let quantity, quantity.unit != unit else { return }
        throw WireError(code: .unitMismatch, message: "\(field).unit is \(quantity.unit.cyclesName) but the budget's unit is \(unit.cyclesName)")
    }

    static func unitField(_ fields: inout JSONFields, _ name: String) throws(WireError) -> TallyCore.Unit? {
        try fields.enumeration(name, TallyCore.Unit.allCases, \.cyclesName)
    }

    static func quantity(_ fields: inout JSONFields, _ name: String) throws(WireError) -> Quantity? {
        try fields.nested(name) { object throws(WireError) in
            let unit = try object.required("unit") { f, n throws(WireError) in try unitField(&f, n) }
            let amount = try object.required("amount") { f, n throws(WireError) in try f.integer(n) }
            guard amount >= 0 else { throw JSONFields.invalid("\(object.name("amount")) must be 0 or more, not \(amount)") }
            return Quantity(unit, Amount(amount))
        }
    }

    static func subject(_ fields: inout JSONFields, _ name: String) throws(WireError) -> Subject? {
        try fields.nested(name) { object throws(WireError) in
            Subject(
                tenant: try object.string("tenant"), workspace: try object.string("workspace"), app: try object.string("app"),
                workflow: try object.string("workflow"), agent: try object.string("agent"), toolset: try object.string("toolset"),
                dimensions: try object.stringMap("dimensions") ?? [:])
        }
    }

    static func action(_ fields: inout JSONFields, _ name: String) throws(WireError) -> Action? {
        try fields.nested(name) { object throws(WireError) in
            Action(
                kind: try object.required("kind") { f, n throws(WireError) in try f.string(n) },
                name: try object.required("name") { f, n throws(WireError) in try f.string(n) },
                tags: try object.strings("tags") ?? [])
        }
    }

    static func metrics(_ fields: inout JSONFields, _ name: String) throws(WireError) -> StandardMetrics? {
        try fields.nested(name) { object throws(WireError) in
            StandardMetrics(
                tokensInput: try object.integer("tokens_input"), tokensOutput: try object.integer("tokens_output"),
                latencyMilliseconds: try object.integer("latency_ms"), modelVersion: try object.string("model_version"),
                custom: try object.freeObject("custom"))
        }
    }

    static func caps(_ fields: inout JSONFields, _ name: String) throws(WireError) -> Caps? {
        try fields.nested(name) { object throws(WireError) in
            Caps(
                maxTokens: try object.integer("max_tokens"), maxStepsRemaining: try object.integer("max_steps_remaining"),
                toolAllowlist: try object.strings("tool_allowlist"), toolDenylist: try object.strings("tool_denylist"),
                cooldownMilliseconds: try object.integer("cooldown_ms"))
        }
    }

    static func overagePolicy(_ fields: inout JSONFields, _ name: String) throws(WireError) -> OveragePolicy? {
        try fields.enumeration(name, OveragePolicy.allCases, \.cyclesName)
    }

    static func permissions(_ fields: inout JSONFields, _ name: String) throws(WireError) -> [Permission]? {
        guard let names = try fields.strings(name) else { return nil }
        var permissions: [Permission] = []
        for text in names {
            guard let permission = Permission(rawValue: text) else {
                throw JSONFields.invalid("\(fields.name(name)) holds \"\(text)\", which is not a Cycles permission")
            }
            permissions.append(permission)
        }
        return permissions
    }

    /// An admin-plane time: an ISO-8601 string (or epoch milliseconds, which Tally also accepts).
    static func instant(_ fields: inout JSONFields, _ name: String) throws(WireError) -> Int64? {
        guard let value = fields.value(name) else { return nil }
        switch value {
        case .integer(let milliseconds): return milliseconds
        case .string(let text):
            guard let milliseconds = ISOTime.parse(text) else {
                throw JSONFields.invalid("\(fields.name(name)) must be an ISO-8601 time such as 2026-11-29T10:42:00Z, not \"\(text)\"")
            }
            return milliseconds
        default:
            throw JSONFields.invalid("\(fields.name(name)) must be an ISO-8601 time string, not \(value.typeName)")
        }
    }
}
