import Testing
@testable import TallyCore

// Fixtures for the admin-plane and error-table tests. Every top-level name starts with `Admin`/`admin`
// because other suites add their own support files to the same test target.

/// A small ledger driven command by command, the way an operator and a few agents would drive it.
///
/// `run` calls `Ledger.decide` and folds the events of a success with `Ledger.apply`, exactly as the
/// writer does, so every refusal a test sees is one `decide` produced. The events are kept in `log` so a
/// test can also check that folding the log from scratch gives the same state.
struct AdminWorld {
    static let usd = Unit.usdMicrocents
    static let start: Int64 = 1_750_000_000_000
    static let prod = Subject(workspace: "prod")
    static let dev = Subject(workspace: "dev")
    static let action = Action(kind: "llm.completion", name: "openai:gpt-4o-mini")

    var state = LedgerState()
    var now: Int64 = AdminWorld.start
    var log: [EventBody] = []

    init() {}

    /// Tenant `acme` with its key `key-acme` (secret 1), a 10 000 budget on `tenant:acme` and a 1 000
    /// budget on `tenant:acme/workspace:prod`, both in USD microcents.
    static func acme() throws -> AdminWorld {
        var world = AdminWorld()
        try adminOK(world.tenant("acme"))
        try adminOK(world.key("key-acme", tenant: "acme", secret: 1))
        try adminOK(world.budget("tenant:acme", 10_000))
        try adminOK(world.budget("tenant:acme/workspace:prod", 1_000))
        return world
    }

    // MARK: Running commands

    @discardableResult
    mutating func run(_ command: Command) -> Result<Decision, Refusal> {
        let result = Ledger.decide(state, command, now: now)
        if case .success(let decision) = result {
            for event in decision.events {
                do { try Ledger.apply(event, to: &state) } catch {
                    preconditionFailure("decide produced an event that apply refuses: \(error)")
                }
            }
            log += decision.events
        }
        return result
    }

    mutating func advance(_ milliseconds: Int64) { now += milliseconds }

    /// Folding the whole log into an empty state gives exactly the state the commands built.
    var logReplaysToState: Bool { (try? LedgerState().applying(log)) == state }

    // MARK: Identities and stamps

    /// The SHA-256 of an API key secret, as the gateway would compute it; `n` names the secret.
    static func secret(_ n: UInt64) -> Digest256 { Digest256(words: (0x5ec2_e700_0000_0000 | n, 1, 2, 3)) }

    /// The fingerprint of a request payload; two stamps with the same `payload` are the same request.
    static func stamp(_ key: String, payload: UInt64 = 1) -> IdempotencyStamp {
        IdempotencyStamp(key: key, payloadHash: Digest256(words: (0x9a71_0ad0_0000_0000 | payload, 4, 5, 6)))
    }

    static func caller(_ tenant: String) -> Caller { .tenant(id: tenant, keyID: "key-\(tenant)") }

    static func scope(_ text: String) -> ScopePath {
        do { return try ScopePath(parsing: text) } catch { preconditionFailure("fixture scope \(text): \(error)") }
    }

    // MARK: Tenants and keys

    @discardableResult
    mutating func tenant(_ id: String, name: String? = nil, maxExtensions: Int? = nil) -> Result<Decision, Refusal> {
        run(.createTenant(CreateTenantCommand(
            tenantID: id, name: name ?? "Tenant \(id)", maxExtensions: maxExtensions)))
    }

    @discardableResult
    mutating func setStatus(_ tenant: String, _ status: TenantStatus) -> Result<Decision, Refusal> {
        run(.updateTenant(UpdateTenantCommand(tenantID: tenant, status: status)))
    }

    @discardableResult
    mutating func key(
        _ id: String, tenant: String, secret: UInt64, permissions: [Permission]? = nil, expiresAt: Int64? = nil
    ) -> Result<Decision, Refusal> {
        run(.createApiKey(CreateApiKeyCommand(
            keyID: id, tenantID: tenant, name: "key \(id)", secretHash: Self.secret(secret),
            prefix: "cyc_live_\(secret)", permissions: permissions, expiresAtMilliseconds: expiresAt)))
    }

    @discardableResult
    mutating func revoke(_ keyID: String) -> Result<Decision, Refusal> {
        run(.revokeApiKey(RevokeApiKeyCommand(keyID: keyID, reason: "rotated")))
    }

    // MARK: Budgets

    @discardableResult
    mutating func budget(
        _ scope: String, _ allocated: Int64, unit: Unit = usd, overdraft: Int64 = 0, tenant: String = "acme",
        caller: Caller = .admin, caps: Caps? = nil
    ) -> Result<Decision, Refusal> {
        run(.createBudget(CreateBudgetCommand(
            caller: caller, tenantID: tenant, scope: scope, unit: unit, allocated: Amount(allocated),
            overdraftLimit: Amount(overdraft), caps: caps)))
    }

    @discardableResult
    mutating func fund(
        _ scope: String, _ operation: FundingOperation, _ amount: Int64, spent: Int64? = nil, key: String? = nil,
        payload: UInt64 = 1, unit: Unit = usd, caller: Caller = .admin
    ) -> Result<Decision, Refusal> {
        run(.fundBudget(FundBudgetCommand(
            caller: caller, scope: scope, unit: unit, operation: operation, amount: Amount(amount),
            spent: spent.map { Amount($0) }, reason: "test funding",
            idempotency: key.map { Self.stamp($0, payload: payload) })))
    }

    @discardableResult
    mutating func updateBudget(
        _ scope: String, overdraft: Int64? = nil, caps: Caps? = nil, metadata: String? = nil, unit: Unit = usd,
        caller: Caller = .admin
    ) -> Result<Decision, Refusal> {
        run(.updateBudget(UpdateBudgetCommand(
            caller: caller, scope: scope, unit: unit, overdraftLimit: overdraft.map { Amount($0) }, caps: caps,
            metadata: metadata.map(JSONText.init))))
    }

    @discardableResult
    mutating func freeze(_ scope: String, unit: Unit = usd) -> Result<Decision, Refusal> {
        run(.freezeBudget(BudgetStatusCommand(caller: .admin, scope: scope, unit: unit, reason: "incident")))
    }

    @discardableResult
    mutating func unfreeze(_ scope: String, unit: Unit = usd) -> Result<Decision, Refusal> {
        run(.unfreezeBudget(BudgetStatusCommand(caller: .admin, scope: scope, unit: unit, reason: "resolved")))
    }

    /// Writes a budget's CLOSED status straight into the state with a `BudgetUpdated` event.
    ///
    /// No command closes one budget of an open tenant (budgets close only in the tenant cascade, and then
    /// `TENANT_CLOSED` wins), yet `BUDGET_CLOSED` is defined for that state; the event is exactly what a
    /// future close-budget operation would record.
    mutating func closeBudgetByEvent(_ scope: String, unit: Unit = usd) throws {
        let budget = try #require(state.budgets[BudgetKey(Self.scope(scope), unit)])
        try Ledger.apply(.budgetUpdated(BudgetUpdated(
            key: budget.key, change: .close, overdraftLimit: budget.overdraftLimit,
            commitOveragePolicy: budget.commitOveragePolicy, caps: budget.caps, metadata: budget.metadata,
            status: .closed, isOverLimit: budget.isOverLimit, reason: "seeded", caller: .admin, atMilliseconds: now)),
            to: &state)
    }

    func budgetAt(_ scope: String, unit: Unit = usd) -> Budget? { state.budgets[BudgetKey(Self.scope(scope), unit)] }

    func figures(_ scope: String, unit: Unit = usd) -> LedgerFigures? { budgetAt(scope, unit: unit)?.figures }

    /// allocated, remaining, reserved, spent, debt: one line of the ledger, as the spec tables write it.
    func ledgerRow(_ scope: String, unit: Unit = usd) -> [Int64]? {
        budgetAt(scope, unit: unit).map { [$0.allocated, $0.remaining, $0.reserved, $0.spent, $0.debt].map(\.value) }
    }

    // MARK: Runtime plane

    @discardableResult
    mutating func reserve(
        _ subject: Subject, _ amount: Int64, id: ReservationID, key: String? = nil, payload: UInt64 = 1,
        tenant: String = "acme", unit: Unit = usd, dryRun: Bool = false
    ) -> Result<Decision, Refusal> {
        run(.reserve(ReserveCommand(
            tenant: tenant, caller: Self.caller(tenant), reservationID: id,
            idempotency: Self.stamp(key ?? "reserve-\(id)", payload: payload), subject: subject, action: Self.action,
            estimate: Quantity(unit, Amount(amount)), dryRun: dryRun)))
    }

    /// The Cycles `/v1/decide` endpoint.
    @discardableResult
    mutating func evaluate(
        _ subject: Subject, _ amount: Int64, key: String, payload: UInt64 = 1, tenant: String = "acme", unit: Unit = usd
    ) -> Result<Decision, Refusal> {
        run(.decide(DecideCommand(
            tenant: tenant, caller: Self.caller(tenant), idempotency: Self.stamp(key, payload: payload),
            subject: subject, action: Self.action, estimate: Quantity(unit, Amount(amount)))))
    }

    @discardableResult
    mutating func commit(
        _ id: ReservationID, _ actual: Int64, key: String? = nil, payload: UInt64 = 1, unit: Unit = usd, caller: Caller? = nil
    ) -> Result<Decision, Refusal> {
        run(.commit(CommitCommand(
            caller: caller ?? Self.caller(state.reservations[id]?.tenant ?? "acme"), reservationID: id,
            idempotency: Self.stamp(key ?? "commit-\(id)", payload: payload), actual: Quantity(unit, Amount(actual)))))
    }

    @discardableResult
    mutating func release(
        _ id: ReservationID, key: String? = nil, payload: UInt64 = 1, caller: Caller? = nil
    ) -> Result<Decision, Refusal> {
        run(.release(ReleaseCommand(
            caller: caller ?? Self.caller(state.reservations[id]?.tenant ?? "acme"), reservationID: id,
            idempotency: Self.stamp(key ?? "release-\(id)", payload: payload))))
    }

    @discardableResult
    mutating func extend(
        _ id: ReservationID, by milliseconds: Int64, key: String? = nil, payload: UInt64 = 1
    ) -> Result<Decision, Refusal> {
        run(.extend(ExtendCommand(
            caller: Self.caller(state.reservations[id]?.tenant ?? "acme"), reservationID: id,
            idempotency: Self.stamp(key ?? "extend-\(id)", payload: payload), extendByMilliseconds: milliseconds)))
    }

    @discardableResult
    mutating func debit(
        _ subject: Subject, _ amount: Int64, eventID: String, key: String? = nil, payload: UInt64 = 1,
        policy: OveragePolicy? = nil, tenant: String = "acme", unit: Unit = usd
    ) -> Result<Decision, Refusal> {
        run(.recordDebit(DebitCommand(
            tenant: tenant, caller: Self.caller(tenant), eventID: eventID,
            idempotency: Self.stamp(key ?? "event-\(eventID)", payload: payload), subject: subject, action: Self.action,
            actual: Quantity(unit, Amount(amount)), overagePolicy: policy)))
    }

    @discardableResult
    mutating func sweep(_ candidates: [ReservationID]) -> Result<Decision, Refusal> {
        run(.expireReservations(ExpireCommand(candidates: candidates)))
    }
}

/// The reply had another shape than the test expected.
struct AdminUnexpectedReply: Error, CustomStringConvertible {
    var description: String

    init(description: String) { self.description = description }
    init(_ result: Result<Decision, Refusal>) { description = "unexpected reply: \(result)" }
}

/// The refusal code of a result, or nil on success: tables compare codes, not messages.
func adminCode(_ result: Result<Decision, Refusal>) -> ErrorCode? {
    if case .failure(let refusal) = result { return refusal.code }
    return nil
}

func adminFunding(_ result: Result<Decision, Refusal>) throws -> FundingReply {
    guard case .funded(let reply) = try result.get().reply else { throw AdminUnexpectedReply(result) }
    return reply
}

func adminEvaluation(_ result: Result<Decision, Refusal>) throws -> EvaluationReply {
    guard case .evaluated(let reply) = try result.get().reply else { throw AdminUnexpectedReply(result) }
    return reply
}

func adminBudget(_ result: Result<Decision, Refusal>) throws -> Budget {
    guard case .budget(let budget) = try result.get().reply else { throw AdminUnexpectedReply(result) }
    return budget
}

func adminTenant(_ result: Result<Decision, Refusal>) throws -> (tenant: Tenant, created: Bool) {
    guard case .tenant(let tenant, let created) = try result.get().reply else {
        throw AdminUnexpectedReply(result)
    }
    return (tenant, created)
}

func adminApiKey(_ result: Result<Decision, Refusal>) throws -> ApiKey {
    guard case .apiKey(let key) = try result.get().reply else { throw AdminUnexpectedReply(result) }
    return key
}

/// One line per event, naming the object it settles: a close cascade reads like an audit trail.
func adminTranscript(_ events: [EventBody]) -> [String] {
    events.map { event in
        switch event {
        case .released(let released): "Released \(released.reservationID) \(released.amount) (\(released.cause))"
        case .budgetUpdated(let updated):
            "BudgetUpdated \(updated.change) \(updated.key) -> \(updated.status.cyclesName)"
        case .apiKeyRevoked(let revoked): "ApiKeyRevoked \(revoked.keyID) (\(revoked.cause))"
        case .tenantUpdated(let tenant): "TenantUpdated \(tenant.id) -> \(tenant.status.cyclesName)"
        default: event.typeName
        }
    }
}

/// `LedgerFigures` from plain numbers, in the order the spec lists them.
func adminFigures(allocated: Int64, remaining: Int64, reserved: Int64, spent: Int64, debt: Int64) -> LedgerFigures {
    LedgerFigures(
        allocated: Amount(allocated), remaining: Amount(remaining), reserved: Amount(reserved), spent: Amount(spent),
        debt: Amount(debt))
}

/// Setup steps that must succeed: throws the refusal (failing the test with its code and message).
@discardableResult
func adminOK(_ result: Result<Decision, Refusal>) throws -> Decision { try result.get() }
