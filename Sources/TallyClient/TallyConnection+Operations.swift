import TallyCore
import TallyWire

// Typed calls over `send(_:)`: each sends one request and unwraps the response kind it calls for, so a
// caller never switches over `Response` itself. Refusals are thrown as `WireError`.

extension TallyConnection {
    // MARK: Runtime plane (tenant API key; the admin key may read and release)

    /// A live reservation (`Reply.reserved`) or, with `dryRun`, an evaluation (`Reply.evaluated`).
    public func reserve(_ request: ReserveRequest) async throws -> Reply {
        try await reply(to: .reserve(request))
    }

    public func commit(_ request: CommitRequest) async throws -> Reply {
        try await reply(to: .commit(request))
    }

    public func release(_ request: ReleaseRequest) async throws -> Reply {
        try await reply(to: .release(request))
    }

    public func extend(_ request: ExtendRequest) async throws -> Reply {
        try await reply(to: .extend(request))
    }

    public func decide(_ request: DecideRequest) async throws -> Reply {
        try await reply(to: .decide(request))
    }

    public func debit(_ request: DebitRequest) async throws -> Reply {
        try await reply(to: .debit(request))
    }

    public func balances(_ request: BalancesRequest) async throws -> [Budget] {
        let response = try await send(.balances(request))
        guard case .budgets(let budgets) = response else { throw unexpected(response, "budgets") }
        return budgets
    }

    public func reservation(id: ReservationID) async throws -> Reservation {
        let response = try await send(.getReservation(reservationID: id))
        guard case .reservation(let reservation) = response else { throw unexpected(response, "reservation") }
        return reservation
    }

    /// One page of reservations; with `hasMore`, ask again with `after` set to the last id of this page.
    public func reservations(_ request: ListReservationsRequest) async throws -> ([Reservation], hasMore: Bool) {
        let response = try await send(.listReservations(request))
        guard case .reservations(let reservations, let hasMore) = response else {
            throw unexpected(response, "reservations")
        }
        return (reservations, hasMore)
    }

    // MARK: Admin plane (admin key; budget creation and funding also accept a key with budgets:write)

    public func createTenant(_ command: CreateTenantCommand) async throws -> (tenant: Tenant, created: Bool) {
        let answer = try await reply(to: .createTenant(command))
        guard case .tenant(let tenant, let created) = answer else { throw unexpected(answer, "tenant") }
        return (tenant, created)
    }

    public func updateTenant(_ command: UpdateTenantCommand) async throws -> Tenant {
        let answer = try await reply(to: .updateTenant(command))
        guard case .tenant(let tenant, _) = answer else { throw unexpected(answer, "tenant") }
        return tenant
    }

    public func tenants(status: TenantStatus? = nil) async throws -> [Tenant] {
        let response = try await send(.listTenants(status: status))
        guard case .tenants(let tenants) = response else { throw unexpected(response, "tenants") }
        return tenants
    }

    /// The new key and its secret; the server keeps only the secret's hash, so this is the one chance to see it.
    public func createApiKey(_ request: CreateApiKeyRequest) async throws -> (ApiKey, secret: String) {
        let response = try await send(.createApiKey(request))
        guard case .apiKeyCreated(let key, let secret) = response else { throw unexpected(response, "api_key_created") }
        return (key, secret)
    }

    public func revokeApiKey(_ command: RevokeApiKeyCommand) async throws -> ApiKey {
        let answer = try await reply(to: .revokeApiKey(command))
        guard case .apiKey(let key) = answer else { throw unexpected(answer, "api key") }
        return key
    }

    /// The keys of one tenant, or of every tenant when `tenantID` is `nil`.
    public func apiKeys(tenantID: String? = nil) async throws -> [ApiKey] {
        let response = try await send(.listApiKeys(tenantID: tenantID))
        guard case .apiKeys(let keys) = response else { throw unexpected(response, "api_keys") }
        return keys
    }

    public func createBudget(_ request: CreateBudgetRequest) async throws -> Budget {
        try await budget(from: .createBudget(request))
    }

    public func fundBudget(_ request: FundBudgetRequest) async throws -> FundingReply {
        let answer = try await reply(to: .fundBudget(request))
        guard case .funded(let funded) = answer else { throw unexpected(answer, "funding") }
        return funded
    }

    public func updateBudget(_ request: UpdateBudgetRequest) async throws -> Budget {
        try await budget(from: .updateBudget(request))
    }

    public func freezeBudget(_ request: BudgetStatusRequest) async throws -> Budget {
        try await budget(from: .freezeBudget(request))
    }

    public func unfreezeBudget(_ request: BudgetStatusRequest) async throws -> Budget {
        try await budget(from: .unfreezeBudget(request))
    }

    // MARK: Unwrapping

    private func reply(to request: Request) async throws -> Reply {
        let response = try await send(request)
        guard case .reply(let reply) = response else { throw unexpected(response, "reply") }
        return reply
    }

    private func budget(from request: Request) async throws -> Budget {
        let answer = try await reply(to: request)
        guard case .budget(let budget) = answer else { throw unexpected(answer, "budget") }
        return budget
    }

    private func unexpected(_ response: Response, _ expected: String) -> TallyClientError {
        .unexpectedResponse(expected: expected, received: response.kindName)
    }

    private func unexpected(_ reply: Reply, _ expected: String) -> TallyClientError {
        .unexpectedResponse(expected: expected + " reply", received: "\(reply)".prefix(while: { $0 != "(" }) + " reply")
    }
}
