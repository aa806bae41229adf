import HTTPTypes
import TallyCore
import TallyStore
import TallyWire

/// The runtime plane (semantics 2): reservations, decide, direct debits, reads.
extension HTTPGateway {
    /// The plane's reads. Its commands (POST) never come here: `startCommand` serves them without a task.
    func runtime(_ endpoint: [String], _ method: HTTPRequest.Method, _ request: inout Request, _ query: HTTPQuery, _ exchange: inout Exchange) async throws -> Response? {
        switch (method, endpoint.count) {
        case (.get, 2) where endpoint[0] == "reservations":
            let principal = try authenticate(request, &exchange, admin: .allowed)
            guard case .reservation(let reservation) = try await perform(.getReservation(reservationID: try reservationID(endpoint[1])), principal) else {
                throw WireError(code: .internalError, message: "unexpected answer to a reservation read")
            }
            return json { CyclesResponses.reservation(&$0, reservation) }
        case (.get, 1) where endpoint == ["reservations"]:
            let principal = try authenticate(request, &exchange, admin: .allowed)
            return try await listReservations(query, principal)
        default:
            return nil
        }
    }

    /// The runtime plane's ledger commands, each a POST (the path's reservation id not yet checked).
    enum CommandEndpoint: Equatable {
        case reserve, decide, debit
        case commit(String), release(String), extend(String)
    }

    /// The command endpoint `endpoint` (the path after `v1`) names, if any.
    static func commandEndpoint(_ endpoint: ArraySlice<String>) -> CommandEndpoint? {
        switch endpoint.count {
        case 1:
            switch endpoint.first {
            case "reservations": return .reserve
            case "decide": return .decide
            case "events": return .debit
            default: return nil
            }
        case 3 where endpoint.first == "reservations":
            let id = endpoint[endpoint.startIndex + 1]
            switch endpoint.last {
            case "commit": return .commit(id)
            case "release": return .release(id)
            case "extend": return .extend(id)
            default: return nil
            }
        default:
            return nil
        }
    }

    /// A command endpoint's request for the router, the principal it runs for and the status of a success
    /// (201 for direct debits): authenticated, its body parsed and its idempotency header checked, in that
    /// order. Synchronous, so that `startCommand` serves these on the event loop without a task.
    func commandRequest(_ endpoint: CommandEndpoint, _ request: inout Request, _ exchange: inout Exchange) throws -> (TallyWire.Request, Principal, HTTPResponse.Status) {
        switch endpoint {
        case .reserve:
            return try parsed(&request, &exchange, CyclesRequests.reserve, key: { $0.idempotencyKey }, as: TallyWire.Request.reserve)
        case .decide:
            return try parsed(&request, &exchange, CyclesRequests.decide, key: { $0.idempotencyKey }, as: TallyWire.Request.decide)
        case .debit:
            return try parsed(&request, &exchange, status: .created, CyclesRequests.debit, key: { $0.idempotencyKey }, as: TallyWire.Request.debit)
        case .commit(let path):
            let id = try reservationID(path)
            return try parsed(&request, &exchange, { try CyclesRequests.commit($0, reservationID: id) }, key: { $0.idempotencyKey }, as: TallyWire.Request.commit)
        case .release(let path):
            let id = try reservationID(path)
            // The admin key may force-release any tenant's reservation (semantics 5.2).
            return try parsed(&request, &exchange, admin: .allowed, { try CyclesRequests.release($0, reservationID: id) }, key: { $0.idempotencyKey }, as: TallyWire.Request.release)
        case .extend(let path):
            let id = try reservationID(path)
            return try parsed(&request, &exchange, { try CyclesRequests.extend($0, reservationID: id) }, key: { $0.idempotencyKey }, as: TallyWire.Request.extend)
        }
    }

    /// One command endpoint's steps: the principal (tenant keys only unless `admin` says otherwise), the body
    /// parsed by `parse`, the `X-Idempotency-Key` header checked against its key, and the router's request.
    private func parsed<Body>(
        _ request: inout Request, _ exchange: inout Exchange, admin: AdminKeyUse = .refused, status: HTTPResponse.Status = .ok,
        _ parse: (JSONValue) throws -> Body, key: (Body) -> String?, as wireRequest: (Body) -> TallyWire.Request
    ) throws -> (TallyWire.Request, Principal, HTTPResponse.Status) {
        let principal = try authenticate(request, &exchange, admin: admin)
        let parsedBody = try parse(try body(&request)!)
        try checkIdempotencyHeader(request, body: key(parsedBody))
        return (wireRequest(parsedBody), principal, status)
    }

    /// Semantics 2.4: path ids are 1-128 characters.
    private func reservationID(_ text: String) throws(WireError) -> ReservationID {
        guard !text.isEmpty, text.unicodeScalars.count <= 128 else {
            throw WireError(code: .invalidRequest, message: "reservation_id must be 1-128 characters")
        }
        return ReservationID(text)
    }

    /// Runs a command-backed request (the admin plane's) and renders the reply.
    func command(_ request: TallyWire.Request, _ principal: Principal, status: HTTPResponse.Status = .ok) async throws -> Response {
        try rendered(try await perform(request, principal), status: status)
    }

    /// A command's answer as the HTTP response (`status` for a success).
    func rendered(_ response: TallyWire.Response, status: HTTPResponse.Status) throws(WireError) -> Response {
        switch response {
        case .reply(let reply):
            return json(status: status) { CyclesResponses.reply(reply, into: &$0) }
        case .apiKeyCreated(let key, let secret):
            return json(status: .created) { CyclesResponses.apiKey(&$0, key, secret: secret) }
        default:
            throw WireError(code: .internalError, message: "unexpected answer to a command")
        }
    }

    // MARK: Listings

    /// `GET /v1/reservations` (semantics 2.8).
    private func listReservations(_ query: HTTPQuery, _ principal: Principal) async throws -> Response {
        let filters = query.filterFingerprint()
        var list = ListReservationsRequest(
            tenant: query["tenant"], idempotencyKey: query["idempotency_key"],
            status: try query.enumeration("status", ReservationStatus.allCases, \.cyclesName), segments: query.segments())
        (list.createdFrom, list.createdTo) = (try query.instant("from"), try query.instant("to"))
        (list.expiresFrom, list.expiresTo) = (try query.instant("expires_from"), try query.instant("expires_to"))
        (list.finalizedFrom, list.finalizedTo) = (try query.instant("finalized_from"), try query.instant("finalized_to"))
        let sortKeys: [(String, ReservationSortKey)] = [
            ("reservation_id", .reservationID), ("tenant", .tenant), ("scope_path", .scopePath), ("status", .status),
            ("reserved", .reserved), ("created_at_ms", .createdAt), ("expires_at_ms", .expiresAt),
        ]
        if let sortBy = query["sort_by"] {
            guard let key = sortKeys.first(where: { $0.0 == sortBy })?.1 else {
                throw WireError(code: .invalidRequest, message: "sort_by must be one of \(sortKeys.map(\.0).joined(separator: ", ")), not \"\(sortBy)\"")
            }
            list.sortKey = key
        }
        if let direction = query["sort_dir"] {
            guard direction == "asc" || direction == "desc" else {
                throw WireError(code: .invalidRequest, message: "sort_dir must be asc or desc, not \"\(direction)\"")
            }
            list.ascending = direction == "asc"
        }
        list.limit = UInt32(try query.integer("limit", in: 1...Int64(shared.listLimitMax)) ?? 50)
        list.after = try PageCursor.position(query["cursor"], filters: filters)
        let include = Set((query["include"] ?? "").split(separator: ",").map { String($0.filter { $0 != " " }) })
        guard case .reservations(let rows, let hasMore) = try await perform(.listReservations(list), principal) else {
            throw WireError(code: .internalError, message: "unexpected answer to a reservation listing")
        }
        return page("reservations", rows, next: hasMore ? rows.last.map { PageCursor.make(position: $0.id.description, filters: filters) } : nil) { CyclesResponses.reservation(&$0, $1, include: include) }
    }

    /// `GET /v1/balances` (semantics 2.9, decision 1): the runtime subject filters or the admin
    /// `scope_prefix`/`unit` set; items with the runtime fields plus the full ledger fields.
    func balances(_ query: HTTPQuery, _ principal: Principal) async throws -> Response {
        let segments = query.segments()
        let tenant = query["tenant"] ?? query["tenant_id"]
        guard tenant != nil || !segments.isEmpty || query["scope_prefix"] != nil || query["unit"] != nil else {
            throw WireError(code: .invalidRequest, message: "give at least one filter: tenant, workspace, app, workflow, agent, toolset, scope_prefix or unit")
        }
        var request = BalancesRequest(
            tenant: tenant, scopePrefix: query["scope_prefix"], unit: try query.unit(),
            status: try query.enumeration("status", BudgetStatus.allCases, \.cyclesName), segments: segments)
        if case .tenant(let id, _, _) = principal, query["tenant"] == nil, query["tenant_id"] != nil {
            // The admin-plane contract ignores `tenant_id` and always uses the key's tenant.
            request.tenant = id
        }
        let limit = Int(try query.integer("limit", in: 1...Int64(shared.listLimitMax)) ?? 50)
        let filters = query.filterFingerprint()
        let after = try PageCursor.position(query["cursor"], filters: filters)
        guard case .budgets(let budgets) = try await perform(.balances(request), principal) else {
            throw WireError(code: .internalError, message: "unexpected answer to a balance read")
        }
        let paged = Paged(budgets, limit: limit, after: after, filters: filters) { "\($0.scope.rawValue)|\($0.unit.cyclesName)" }
        return page("balances", paged.rows, next: paged.nextCursor) { CyclesResponses.balance(&$0, $1.balance, ledger: true) }
    }
}
