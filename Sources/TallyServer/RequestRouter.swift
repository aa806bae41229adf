import Crypto
import Foundation
import TallyCore
import TallyStore
import TallyWire

/// What the connection does with one request.
enum Route {
    /// Hand to the writer; turn its decision into the response.
    case command(Command, answer: @Sendable (Decision) -> Response)
    /// Answer from a read transaction, on the connection's event loop.
    case read(@Sendable () throws -> Response)
    case subscribe(fromSequence: UInt64, credit: UInt32)
    case grantCredit(UInt32)
    case refuse(WireError)
}

/// Maps a request of an authenticated principal to a ledger command or a read, enforcing the tenancy
/// and permission rules of semantics 5.1-5.2 and decisions 22-23. Plain code: no NIO, no I/O except the
/// reads it returns as closures.
struct RequestRouter: Sendable {
    let store: LedgerStore
    let listLimitMax: Int

    func route(_ request: Request, principal: Principal) -> Route {
        do {
            return try routeThrowing(request, principal)
        } catch let error as WireError {
            return .refuse(error)
        } catch {
            return .refuse(WireError(code: .internalError, message: "\(error)"))
        }
    }

    private func routeThrowing(_ request: Request, _ principal: Principal) throws -> Route {
        // Only commands carry an idempotency key; reads never pay for the SHA-256.
        // Hashes `request` itself, without a copy (a retain and a release of each of its strings): only a reserve
        // has a default to fill in first, and `fingerprint(_:)` writes it in place.
        func stamp(_ key: String) -> IdempotencyStamp {
            IdempotencyStamp(key: key, payloadHash: RequestFingerprint.digest(request))
        }
        let reply: @Sendable (Decision) -> Response = { .reply($0.reply) }
        switch request {
        case .hello:
            throw WireError(code: .invalidRequest, message: "the handshake was already made on this connection")
        case .reserve(let r):
            let (tenant, caller) = try tenantCaller(principal, .reservationsCreate, "reserve")
            return .command(.reserve(ReserveCommand(
                tenant: tenant, caller: caller, reservationID: Self.newReservationID(),
                idempotency: IdempotencyStamp(key: r.idempotencyKey, payloadHash: Self.fingerprint(r)), subject: r.subject,
                action: r.action, estimate: r.estimate, ttlMilliseconds: r.ttlMilliseconds, graceMilliseconds: r.graceMilliseconds,
                overagePolicy: r.overagePolicy, dryRun: r.dryRun, metadata: r.metadata)), answer: reply)
        case .decide(let r):
            let (tenant, caller) = try tenantCaller(principal, .reservationsCreate, "decide")
            return .command(.decide(DecideCommand(
                tenant: tenant, caller: caller, idempotency: stamp(r.idempotencyKey), subject: r.subject, action: r.action,
                estimate: r.estimate, metadata: r.metadata)), answer: reply)
        case .commit(let r):
            let (_, caller) = try tenantCaller(principal, .reservationsCommit, "commit")
            return .command(.commit(CommitCommand(
                caller: caller, reservationID: r.reservationID, idempotency: stamp(r.idempotencyKey), actual: r.actual,
                metrics: r.metrics, metadata: r.metadata)), answer: reply)
        case .release(let r):
            // The admin key may force-release any tenant's reservation (semantics 5.2).
            let caller = principal == .admin ? Caller.admin : try tenantCaller(principal, .reservationsRelease, "release").1
            return .command(.release(ReleaseCommand(
                caller: caller, reservationID: r.reservationID, idempotency: stamp(r.idempotencyKey), reason: r.reason)), answer: reply)
        case .extend(let r):
            let (_, caller) = try tenantCaller(principal, .reservationsExtend, "extend")
            return .command(.extend(ExtendCommand(
                caller: caller, reservationID: r.reservationID, idempotency: stamp(r.idempotencyKey),
                extendByMilliseconds: r.extendByMilliseconds, metadata: r.metadata)), answer: reply)
        case .debit(let r):
            let (tenant, caller) = try tenantCaller(principal, .reservationsCommit, "debit")
            return .command(.recordDebit(DebitCommand(
                tenant: tenant, caller: caller, eventID: Self.newID(), idempotency: stamp(r.idempotencyKey), subject: r.subject,
                action: r.action, actual: r.actual, overagePolicy: r.overagePolicy, metrics: r.metrics,
                clientTimeMilliseconds: r.clientTimeMilliseconds, metadata: r.metadata)), answer: reply)
        case .getReservation(let id):
            let owner = try readerTenant(principal, .reservationsList, requested: nil, adminNeedsTenant: false)
            return .read { [store] in
                guard let reservation = try store.reservation(id) else {
                    throw WireError(code: .notFound, message: "reservation \(id) not found")
                }
                if let owner, reservation.tenant != owner { throw WireError(code: .forbidden, message: "reservation \(id) belongs to another tenant") }
                if reservation.status == .expired { throw WireError(code: .reservationExpired, message: "reservation \(id) has expired") }
                return .reservation(reservation)
            }
        case .listReservations(let r):
            let tenant = try readerTenant(principal, .reservationsList, requested: r.tenant, adminNeedsTenant: true)!
            let query = try reservationQuery(r, tenant: tenant)
            return .read { [store] in
                let page = try store.reservations(query)
                return .reservations(page.reservations, hasMore: page.hasMore)
            }
        case .balances(let r):
            let tenant = try readerTenant(principal, .balancesRead, requested: r.tenant, adminNeedsTenant: true)!
            return try budgetsRead(tenant: tenant, scopePrefix: r.scopePrefix, unit: r.unit, status: r.status, segments: r.segments)
        case .createTenant(let command):
            try requireAdmin(principal, "create tenants")
            return .command(.createTenant(command), answer: reply)
        case .updateTenant(let command):
            try requireAdmin(principal, "update tenants")
            return .command(.updateTenant(command), answer: reply)
        case .listTenants(let status):
            try requireAdmin(principal, "list tenants")
            return .read { [store] in .tenants(try Self.bounded(store.tenants().filter { status == nil || $0.status == status }, "tenants")) }
        case .createApiKey(let r):
            try requireAdmin(principal, "create API keys")
            return try createApiKey(r)
        case .revokeApiKey(let command):
            try requireAdmin(principal, "revoke API keys")
            return .command(.revokeApiKey(command), answer: reply)
        case .listApiKeys(let tenantID):
            try requireAdmin(principal, "list API keys")
            return .read { [store] in .apiKeys(try Self.bounded(store.apiKeys(tenant: tenantID), "API keys")) }
        case .createBudget(let r):
            return .command(.createBudget(try createBudget(r, principal)), answer: reply)
        case .fundBudget(let r):
            let caller = try budgetWriter(principal)
            return .command(.fundBudget(FundBudgetCommand(
                caller: caller, scope: r.scope, unit: r.unit, operation: r.operation, amount: r.amount, spent: r.spent,
                reason: r.reason, idempotency: r.idempotencyKey.map(stamp))), answer: reply)
        case .updateBudget(let r):
            try requireAdmin(principal, "update budgets")
            return .command(.updateBudget(UpdateBudgetCommand(
                caller: .admin, scope: r.scope, unit: r.unit, overdraftLimit: r.overdraftLimit,
                commitOveragePolicy: r.commitOveragePolicy, caps: r.caps, metadata: r.metadata)), answer: reply)
        case .freezeBudget(let r):
            try requireAdmin(principal, "freeze budgets")
            return .command(.freezeBudget(BudgetStatusCommand(caller: .admin, scope: r.scope, unit: r.unit, reason: r.reason)), answer: reply)
        case .unfreezeBudget(let r):
            try requireAdmin(principal, "unfreeze budgets")
            return .command(.unfreezeBudget(BudgetStatusCommand(caller: .admin, scope: r.scope, unit: r.unit, reason: r.reason)), answer: reply)
        case .subscribe(let from, let credit):
            try requireAdmin(principal, "subscribe to the event log")
            return .subscribe(fromSequence: max(1, from), credit: credit)
        case .grantCredit(let credit):
            return .grantCredit(credit)
        }
    }

    /// A reserve's fingerprint: defaults that do not depend on the tenant are filled in first, so an
    /// omitted `grace_period_ms` and an explicit 5000 are the same payload (as the reference hashes its
    /// parsed request with defaults). TTL and overage policy stay as sent: their defaults are the tenant's.
    static func fingerprint(_ reserve: ReserveRequest) -> Digest256 {
        RequestFingerprint.digest(reserve: reserve, graceMilliseconds: reserve.graceMilliseconds ?? Limits.graceMillisecondsDefault)
    }

    // MARK: Tenancy and permissions

    /// The runtime plane needs a tenant key holding `permission` (decision 23).
    private func tenantCaller(_ principal: Principal, _ permission: Permission, _ what: String) throws -> (String, Caller) {
        guard case .tenant(let id, let keyID, let permissions) = principal else {
            throw WireError(code: .unauthorized, message: "\(what) needs a tenant API key; the admin key may only read and release reservations")
        }
        try require(permission, in: permissions, what)
        return (id, .tenant(id: id, keyID: keyID))
    }

    /// Whose data a read may see: a tenant key sees its own tenant (a different `requested` tenant is 403);
    /// the admin key names the tenant (required for listings, semantics 2.8).
    private func readerTenant(_ principal: Principal, _ permission: Permission, requested: String?, adminNeedsTenant: Bool) throws -> String? {
        switch principal {
        case .tenant(let id, _, let permissions):
            try require(permission, in: permissions, "this read")
            if let requested, requested != id { throw WireError(code: .forbidden, message: "tenant \(requested) is not the tenant of this API key") }
            return id
        case .admin:
            if adminNeedsTenant && requested == nil {
                throw WireError(code: .invalidRequest, message: "tenant is required when using the admin key")
            }
            return requested
        }
    }

    private func require(_ permission: Permission, in permissions: [Permission], _ what: String) throws {
        guard permission.isGranted(by: permissions) else {
            throw WireError(code: .forbidden, message: "the API key lacks the \(permission.rawValue) permission needed for \(what)")
        }
    }

    private func requireAdmin(_ principal: Principal, _ what: String) throws {
        guard principal == .admin else {
            throw WireError(code: .insufficientPermissions, message: "only the admin key may \(what)")
        }
    }

    /// Budget creation and funding accept the admin key or a tenant key with `budgets:write` (Cycles 5.4).
    private func budgetWriter(_ principal: Principal) throws -> Caller {
        switch principal {
        case .admin: return .admin
        case .tenant(let id, let keyID, let permissions):
            guard Permission.budgetsWrite.isGranted(by: permissions) else {
                throw WireError(code: .insufficientPermissions, message: "the API key lacks the budgets:write permission")
            }
            return .tenant(id: id, keyID: keyID)
        }
    }

    // MARK: Builders

    private func createBudget(_ r: CreateBudgetRequest, _ principal: Principal) throws -> CreateBudgetCommand {
        let caller = try budgetWriter(principal)
        let tenantID: String
        if let keyTenant = caller.tenantID {
            if r.tenantID != nil { throw WireError(code: .invalidRequest, message: "tenant_id must not be given with a tenant API key") }
            tenantID = keyTenant
        } else if let given = r.tenantID {
            tenantID = given
        } else {
            // With the admin key and no tenant_id, the tenant is the scope's first segment.
            guard let scope = try? ScopePath(parsing: r.scope) else { throw WireError(code: .invalidRequest, message: "scope must start with tenant:<id>") }
            tenantID = scope.tenant
        }
        return CreateBudgetCommand(
            caller: caller, tenantID: tenantID, scope: r.scope, unit: r.unit, allocated: r.allocated, overdraftLimit: r.overdraftLimit,
            commitOveragePolicy: r.commitOveragePolicy, rolloverPolicy: r.rolloverPolicy, caps: r.caps,
            periodStartMilliseconds: r.periodStartMilliseconds, periodEndMilliseconds: r.periodEndMilliseconds, metadata: r.metadata)
    }

    private func createApiKey(_ r: CreateApiKeyRequest) throws -> Route {
        let secret = "tally_" + SecretGenerator.randomToken()
        let hash = SHA256.hash(data: Array(secret.utf8)).withUnsafeBytes { Digest256(bytes: $0) }!
        let command = CreateApiKeyCommand(
            keyID: Self.newID(), tenantID: r.tenantID, name: r.name, description: r.description, secretHash: hash,
            prefix: String(secret.prefix(14)), permissions: r.permissions, scopeFilter: r.scopeFilter,
            expiresAtMilliseconds: r.expiresAtMilliseconds, metadata: r.metadata)
        return .command(.createApiKey(command)) { decision in
            guard case .apiKey(let key) = decision.reply else { return .reply(decision.reply) }
            return .apiKeyCreated(key, secret: secret)
        }
    }

    private func budgetsRead(tenant: String, scopePrefix: String?, unit: TallyCore.Unit?, status: BudgetStatus?, segments: [ScopeLevel: String]) throws -> Route {
        var prefix: ScopePath?
        if let scopePrefix {
            do { prefix = try ScopePath(parsing: scopePrefix) } catch { throw WireError(error) }
        }
        if let prefix, prefix.tenant != tenant { throw WireError(code: .forbidden, message: "scope \(prefix) is outside tenant \(tenant)") }
        return .read { [store, prefix] in
            .budgets(try Self.bounded(store.budgets(tenant: tenant, under: prefix, unit: unit, segments: segments).filter { status == nil || $0.status == status }, "budgets"))
        }
    }

    private func reservationQuery(_ r: ListReservationsRequest, tenant: String) throws -> ReservationQuery {
        for (from, to, name) in [(r.createdFrom, r.createdTo, "created"), (r.expiresFrom, r.expiresTo, "expires"), (r.finalizedFrom, r.finalizedTo, "finalized")] {
            if let from, let to, from > to { throw WireError(code: .invalidRequest, message: "\(name)_from is after \(name)_to") }
        }
        guard r.limit >= 1, r.limit <= listLimitMax else { throw WireError(code: .invalidRequest, message: "limit must be 1-\(listLimitMax)") }
        var query = ReservationQuery(tenant: tenant)
        query.idempotencyKey = r.idempotencyKey
        query.status = r.status
        query.segments = r.segments
        (query.createdFrom, query.createdTo) = (r.createdFrom, r.createdTo)
        (query.expiresFrom, query.expiresTo) = (r.expiresFrom, r.expiresTo)
        (query.finalizedFrom, query.finalizedTo) = (r.finalizedFrom, r.finalizedTo)
        query.sortKey = ReservationQuery.SortKey.allCases[Int(r.sortKey.rawValue) - 1]
        query.ascending = r.ascending
        query.limit = Int(r.limit)
        query.after = r.after
        return query
    }

    /// Unpaged listings are refused rather than cut when they would not fit one frame's u16 count.
    static let unpagedRowsMax = 10_000

    static func bounded<T>(_ rows: [T], _ what: String) throws -> [T] {
        guard rows.count <= unpagedRowsMax else {
            throw WireError(code: .invalidRequest, message: "\(rows.count) \(what) match; narrow the request (scope prefix, unit, status)")
        }
        return rows
    }

    /// Server-generated ids (reservations, debit events, keys): lower-case UUIDs, as Cycles uses, of
    /// version 7 (time-ordered: README design decisions).
    static func newID() -> String { TimeOrderedUUID.make().description }
    static func newReservationID() -> ReservationID { TimeOrderedUUID.make() }
}
