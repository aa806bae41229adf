import HTTPTypes
import TallyCore
import TallyStore
import TallyWire

/// The admin plane (semantics 5): tenants, API keys, budgets and funding, the event log.
extension HTTPGateway {
    func admin(_ endpoint: [String], _ method: HTTPRequest.Method, _ request: inout Request, _ query: HTTPQuery, _ exchange: inout Exchange) async throws -> Response? {
        guard let resource = endpoint.first else { return nil }
        let rest = Array(endpoint.dropFirst())
        switch (resource, method, rest.count) {
        // Tenants: admin key only.
        case ("tenants", .post, 0):
            let principal = try authenticate(request, &exchange, admin: .required)
            let create = try CyclesRequests.createTenant(try body(&request)!)
            guard case .reply(.tenant(let tenant, let created)) = try await perform(.createTenant(create), principal) else {
                throw WireError(code: .internalError, message: "unexpected answer to a tenant create")
            }
            return json(status: created ? .created : .ok) { CyclesResponses.tenant(&$0, tenant) }
        case ("tenants", .get, 0):
            let principal = try authenticate(request, &exchange, admin: .required)
            return try await listTenants(query, principal)
        case ("tenants", .get, 1):
            _ = try authenticate(request, &exchange, admin: .required)
            guard let tenant = try shared.store.tenant(rest[0]) else {
                throw WireError(code: .tenantNotFound, message: "tenant \(rest[0]) not found")
            }
            return json { CyclesResponses.tenant(&$0, tenant) }
        case ("tenants", .patch, 1):
            let principal = try authenticate(request, &exchange, admin: .required)
            let update = try CyclesRequests.updateTenant(try body(&request)!, tenantID: rest[0])
            return try await command(.updateTenant(update), principal)

        // API keys: admin key only.
        case ("api-keys", .post, 0):
            let principal = try authenticate(request, &exchange, admin: .required)
            return try await command(.createApiKey(try CyclesRequests.createApiKey(try body(&request)!)), principal)
        case ("api-keys", .get, 0):
            let principal = try authenticate(request, &exchange, admin: .required)
            return try await listApiKeys(query, principal)
        case ("api-keys", .patch, 1):
            let principal = try authenticate(request, &exchange, admin: .required)
            let update = try CyclesRequests.updateApiKey(try body(&request)!, keyID: rest[0])
            return try await direct(.updateApiKey(update), principal)
        case ("api-keys", .delete, 1):
            let principal = try authenticate(request, &exchange, admin: .required)
            let reason = try CyclesRequests.revokeReason(try body(&request, required: false))
            return try await command(.revokeApiKey(RevokeApiKeyCommand(keyID: rest[0], reason: reason)), principal)

        // Budgets: create, list, lookup and fund also take a tenant key with the right permission.
        case ("budgets", .post, 0):
            let principal = try authenticate(request, &exchange, admin: .allowed)
            let create = try CyclesRequests.createBudget(try body(&request)!)
            do {
                guard case .reply(.budget(let budget)) = try await perform(.createBudget(create), principal) else {
                    throw WireError(code: .internalError, message: "unexpected answer to a budget create")
                }
                return json(status: .created) { CyclesResponses.budget(&$0, budget) }
            } catch let error as WireError where error.code == .tenantNotFound {
                let tenant = create.tenantID ?? (try? ScopePath(parsing: create.scope))?.tenant ?? "?"
                throw WireError(code: .tenantNotFound, message: """
                    tenant \(tenant) does not exist; create it first with POST /v1/admin/tenants \
                    {"tenant_id": "\(tenant)", "name": "..."} (or tally tenant create \(tenant) --name ...)
                    """)
            }
        case ("budgets", .get, 0):
            let principal = try authenticate(request, &exchange, admin: .allowed)
            return try await listBudgets(query, principal)
        case ("budgets", .patch, 0):
            let principal = try authenticate(request, &exchange, admin: .required)
            let (scope, unit) = try budgetKey(query)
            return try await budgetReply(.updateBudget(try CyclesRequests.updateBudget(try body(&request)!, scope: scope, unit: unit)), principal)
        case ("budgets", .get, 1) where rest[0] == "lookup":
            let principal = try authenticate(request, &exchange, admin: .allowed)
            return try lookupBudget(query, principal)
        case ("budgets", .post, 1) where rest[0] == "freeze" || rest[0] == "unfreeze":
            let principal = try authenticate(request, &exchange, admin: .required)
            let (scope, unit) = try budgetKey(query)
            let status = try CyclesRequests.budgetStatus(try body(&request, required: false), scope: scope, unit: unit)
            return try await budgetReply(rest[0] == "freeze" ? .freezeBudget(status) : .unfreezeBudget(status), principal)
        case ("budgets", .post, 1) where rest[0] == "fund":
            let principal = try authenticate(request, &exchange, admin: .allowed)
            let (scope, unit) = try budgetKey(query)
            if principal == .admin, let tenant = query["tenant_id"], (try? ScopePath(parsing: scope))?.tenant != tenant.lowercased() {
                throw WireError(code: .forbidden, message: "scope \(scope) does not belong to tenant \(tenant)")
            }
            return try await command(.fundBudget(try CyclesRequests.fundBudget(try body(&request)!, scope: scope, unit: unit)), principal)

        // The event log.
        case ("events", .get, 0):
            _ = try authenticate(request, &exchange, admin: .required)
            return try listEvents(query, tenant: query["tenant_id"])
        case ("events", .get, 1):
            _ = try authenticate(request, &exchange, admin: .required)
            return try event(rest[0])
        default:
            return nil
        }
    }

    private func budgetKey(_ query: HTTPQuery) throws(WireError) -> (String, TallyCore.Unit) {
        guard let scope = query["scope"] else { throw WireError(code: .invalidRequest, message: "the scope query parameter is required") }
        guard let unit = try query.unit() else { throw WireError(code: .invalidRequest, message: "the unit query parameter is required") }
        return (scope, unit)
    }

    private func budgetReply(_ request: TallyWire.Request, _ principal: Principal) async throws -> Response {
        try await command(request, principal)
    }

    /// Runs a command the binary protocol has no message for (it is built here, not by the router).
    private func direct(_ command: Command, _ principal: Principal) async throws -> Response {
        guard principal == .admin else { throw WireError(code: .insufficientPermissions, message: "only the admin key may do this") }
        let decision = try await shared.execute(command)
        return json { CyclesResponses.reply(decision.reply, into: &$0) }
    }

    // MARK: Reads

    private func lookupBudget(_ query: HTTPQuery, _ principal: Principal) throws -> Response {
        let (scopeText, unit) = try budgetKey(query)
        let scope: ScopePath
        do { scope = try ScopePath(parsing: scopeText) } catch { throw WireError(code: .invalidRequest, message: "scope: \(error)") }
        if case .tenant(let id, _, let permissions) = principal {
            guard Permission.budgetsRead.isGranted(by: permissions) || Permission.adminBudgetsRead.isGranted(by: permissions) else {
                throw WireError(code: .insufficientPermissions, message: "the API key lacks the budgets:read permission")
            }
            guard scope.tenant == id else { throw WireError(code: .forbidden, message: "scope \(scope) belongs to another tenant") }
        }
        guard let budget = try shared.store.budget(BudgetKey(scope, unit)) else {
            throw WireError(code: .budgetNotFound, message: "no \(unit.cyclesName) budget at \(scope)")
        }
        return json { CyclesResponses.budget(&$0, budget) }
    }

    private func listBudgets(_ query: HTTPQuery, _ principal: Principal) async throws -> Response {
        var tenants: [String]
        switch principal {
        case .tenant(let id, _, let permissions):
            guard Permission.budgetsRead.isGranted(by: permissions) || Permission.adminBudgetsRead.isGranted(by: permissions) else {
                throw WireError(code: .insufficientPermissions, message: "the API key lacks the budgets:read permission")
            }
            if let asked = query["tenant_id"], asked != id { throw WireError(code: .forbidden, message: "tenant \(asked) is not the tenant of this API key") }
            tenants = [id]
        case .admin:
            tenants = try query["tenant_id"].map { [$0] } ?? shared.store.tenants().map(\.id).sorted()
        }
        let status = try query.enumeration("status", BudgetStatus.allCases, \.cyclesName)
        let unit = try query.unit()
        let overLimit = try query.bool("over_limit")
        let hasDebt = try query.bool("has_debt")
        let utilizationMin = try query.decimal("utilization_min", in: 0...1)
        let utilizationMax = try query.decimal("utilization_max", in: 0...1)
        if let utilizationMin, let utilizationMax, utilizationMin > utilizationMax {
            throw WireError(code: .invalidRequest, message: "utilization_min is above utilization_max")
        }
        var prefix: ScopePath?
        if let text = query["scope_prefix"] {
            do { prefix = try ScopePath(parsing: text) } catch { throw WireError(code: .invalidRequest, message: "scope_prefix: \(error)") }
        }
        let search = query["search"]?.lowercased()
        func utilization(_ budget: Budget) -> Double {
            budget.allocated.value == 0 ? 0 : Double(budget.spent.value) / Double(budget.allocated.value)
        }
        var rows: [Budget] = []
        for tenant in tenants {
            for budget in try shared.store.budgets(tenant: tenant, under: prefix, unit: unit) {
                if let status, budget.status != status { continue }
                if let overLimit, budget.isOverLimit != overLimit { continue }
                if let hasDebt, (budget.debt.value > 0) != hasDebt { continue }
                if let utilizationMin, utilization(budget) < utilizationMin { continue }
                if let utilizationMax, utilization(budget) > utilizationMax { continue }
                if let search, !budget.scope.rawValue.contains(search) { continue }
                rows.append(budget)
            }
        }
        let sortKeys = ["tenant_id", "scope", "unit", "status", "commit_overage_policy", "utilization", "debt"]
        let sortBy = query["sort_by"] ?? "scope"
        guard sortKeys.contains(sortBy) else {
            throw WireError(code: .invalidRequest, message: "sort_by must be one of \(sortKeys.joined(separator: ", ")), not \"\(sortBy)\"")
        }
        let descending = try sortDirection(query, defaultDescending: false)
        func field(_ budget: Budget) -> String {
            switch sortBy {
            case "tenant_id": budget.tenant
            case "unit": budget.unit.cyclesName
            case "status": budget.status.cyclesName
            case "commit_overage_policy": budget.commitOveragePolicy?.cyclesName ?? ""
            default: budget.scope.rawValue
            }
        }
        rows.sort { lhs, rhs in
            let order: Bool?
            switch sortBy {
            case "utilization": order = utilization(lhs) == utilization(rhs) ? nil : utilization(lhs) < utilization(rhs)
            case "debt": order = lhs.debt == rhs.debt ? nil : lhs.debt < rhs.debt
            default: order = field(lhs) == field(rhs) ? nil : field(lhs) < field(rhs)
            }
            guard let order else { return lhs.key < rhs.key }
            return descending ? !order : order
        }
        let filters = query.filterFingerprint()
        let paged = Paged(rows, limit: Int(try query.integer("limit", in: 1...Int64(shared.listLimitMax)) ?? 50),
                         after: try PageCursor.position(query["cursor"], filters: filters), filters: filters) {
            "\($0.scope.rawValue)|\($0.unit.cyclesName)"
        }
        return page("ledgers", paged.rows, next: paged.nextCursor) { CyclesResponses.budget(&$0, $1) }
    }

    private func listTenants(_ query: HTTPQuery, _ principal: Principal) async throws -> Response {
        let status = try query.enumeration("status", TenantStatus.allCases, \.cyclesName)
        let search = query["search"]?.lowercased()
        var rows = try shared.store.tenants().filter { tenant in
            if let status, tenant.status != status { return false }
            if let parent = query["parent_tenant_id"], tenant.parentTenantID != parent { return false }
            if let search, !tenant.id.contains(search), !tenant.name.lowercased().contains(search) { return false }
            return true
        }
        let sortBy = query["sort_by"] ?? "tenant_id"
        let sortKeys = ["tenant_id", "name", "status", "created_at"]
        guard sortKeys.contains(sortBy) else {
            throw WireError(code: .invalidRequest, message: "sort_by must be one of \(sortKeys.joined(separator: ", ")), not \"\(sortBy)\"")
        }
        let descending = try sortDirection(query, defaultDescending: false)
        rows.sort { lhs, rhs in
            let order: Bool? = switch sortBy {
            case "name": lhs.name == rhs.name ? nil : lhs.name < rhs.name
            case "status": lhs.status == rhs.status ? nil : lhs.status.rawValue < rhs.status.rawValue
            case "created_at": lhs.createdAtMilliseconds == rhs.createdAtMilliseconds ? nil : lhs.createdAtMilliseconds < rhs.createdAtMilliseconds
            default: nil
            }
            guard let order else { return descending ? lhs.id > rhs.id : lhs.id < rhs.id }
            return descending ? !order : order
        }
        let filters = query.filterFingerprint()
        let paged = Paged(rows, limit: Int(try query.integer("limit", in: 1...100) ?? 50),
                         after: try PageCursor.position(query["cursor"], filters: filters), filters: filters) { $0.id }
        return page("tenants", paged.rows, next: paged.nextCursor) { CyclesResponses.tenant(&$0, $1) }
    }

    private func listApiKeys(_ query: HTTPQuery, _ principal: Principal) async throws -> Response {
        guard case .apiKeys(var keys) = try await perform(.listApiKeys(tenantID: query["tenant_id"]), principal) else {
            throw WireError(code: .internalError, message: "unexpected answer to a key listing")
        }
        if let status = try query.enumeration("status", ApiKeyStatus.allCases, \.cyclesName) { keys = keys.filter { $0.status == status } }
        let filters = query.filterFingerprint()
        let paged = Paged(keys, limit: Int(try query.integer("limit", in: 1...100) ?? 50),
                         after: try PageCursor.position(query["cursor"], filters: filters), filters: filters) { $0.id }
        return page("keys", paged.rows, next: paged.nextCursor) { CyclesResponses.apiKey(&$0, $1, secret: nil) }
    }

    private func sortDirection(_ query: HTTPQuery, defaultDescending: Bool) throws(WireError) -> Bool {
        guard let direction = query["sort_dir"] else { return defaultDescending }
        guard direction == "asc" || direction == "desc" else {
            throw WireError(code: .invalidRequest, message: "sort_dir must be asc or desc, not \"\(direction)\"")
        }
        return direction == "desc"
    }

    // MARK: Introspection

    /// `GET /v1/auth/introspect` (normative): who the credential is and what it may do.
    func introspect(_ request: Request, _ exchange: inout Exchange) throws -> Response {
        let principal = try authenticate(request, &exchange, admin: .allowed)
        return json { w in
            w.beginObject()
            w.key("authenticated")
            w.bool(true)
            switch principal {
            case .admin:
                w.key("auth_type")
                w.string("admin")
                CyclesResponses.strings(&w, "permissions", ["*"])
                w.key("capabilities")
                w.beginObject()
                for (name, _) in Self.capabilities {
                    w.key(name)
                    w.bool(true)
                }
                for name in Self.adminOnlyCapabilities {
                    w.key(name)
                    w.bool(true)
                }
                w.endObject()
            case .tenant(let id, let keyID, let permissions):
                w.key("auth_type")
                w.string("tenant")
                w.key("tenant_id")
                w.string(id)
                w.key("key_id")
                w.string(keyID)
                CyclesResponses.strings(&w, "permissions", permissions.map(\.rawValue))
                w.key("capabilities")
                w.beginObject()
                for (name, grants) in Self.capabilities {
                    w.key(name)
                    w.bool(grants.contains { $0.isGranted(by: permissions) })
                }
                for name in Self.adminOnlyCapabilities {
                    w.key(name)
                    w.bool(false)
                }
                w.endObject()
            }
            w.endObject()
        }
    }

    /// Tenant-key capabilities and the permissions that grant each (any one suffices).
    static let capabilities: [(String, [Permission])] = [
        ("view_budgets", [.budgetsRead, .adminBudgetsRead]),
        ("manage_budgets", [.budgetsWrite, .adminBudgetsWrite]),
        ("view_balances", [.balancesRead]),
        ("view_reservations", [.reservationsList]),
        ("manage_reservations", [.reservationsCreate, .reservationsCommit, .reservationsRelease, .reservationsExtend, .adminWrite]),
        ("view_policies", [.policiesRead, .adminPoliciesRead]),
        ("manage_policies", [.policiesWrite, .adminPoliciesWrite]),
        ("view_webhooks", [.webhooksRead, .adminWebhooksRead]),
        ("manage_webhooks", [.webhooksWrite, .adminWebhooksWrite]),
        ("view_events", [.eventsRead, .adminEventsRead]),
    ]

    /// Always false for tenant keys (Cycles' frozen table).
    static let adminOnlyCapabilities = ["view_tenants", "view_api_keys", "view_audit", "view_overview", "manage_tenants", "manage_api_keys"]
}
