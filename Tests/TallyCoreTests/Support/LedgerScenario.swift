@testable import TallyCore

/// A ledger under test, driven like a script: create a tenant and budgets, reserve, commit, advance time,
/// read balances. Every successful decision is applied and its events kept, so a test can also check
/// replay equivalence at the end.
struct LedgerScenario {
    var state = LedgerState()
    var now: Int64 = 1_800_000_000_000
    var events: [EventBody] = []
    private var counter = 0

    static let usd = Unit.usdMicrocents

    init(tenants: [String] = ["acme"]) {
        for tenant in tenants { createTenant(tenant) }
    }

    mutating func nextID(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)-\(counter)"
    }

    mutating func advance(_ milliseconds: Int64) { now += milliseconds }

    @discardableResult
    mutating func run(_ command: Command) -> Result<Decision, Refusal> {
        let result = Ledger.execute(command, on: &state, now: now)
        if case .success(let decision) = result { events += decision.events }
        return result
    }

    mutating func createTenant(_ id: String, policy: OveragePolicy? = nil, defaultTTL: Int64? = nil, maxTTL: Int64? = nil, maxExtensions: Int? = nil) {
        let result = run(.createTenant(CreateTenantCommand(
            tenantID: id, name: id.uppercased(), defaultOveragePolicy: policy, defaultTTLMilliseconds: defaultTTL,
            maxTTLMilliseconds: maxTTL, maxExtensions: maxExtensions)))
        precondition(result.errorCode == nil, "tenant setup failed: \(result)")
    }

    mutating func budget(_ scope: String, _ allocated: Int64, unit: Unit = usd, overdraft: Int64 = 0, caps: Caps? = nil, tenant: String = "acme") {
        let result = run(.createBudget(CreateBudgetCommand(
            caller: .admin, tenantID: tenant, scope: scope, unit: unit, allocated: Amount(allocated),
            overdraftLimit: Amount(overdraft), caps: caps)))
        precondition(result.errorCode == nil, "budget setup failed: \(result)")
    }

    static func caller(_ tenant: String) -> Caller { .tenant(id: tenant, keyID: "key-\(tenant)") }

    /// A reserve; the payload fingerprint covers every field, so the same arguments replay and others mismatch.
    mutating func reserve(
        _ subject: Subject, _ amount: Int64, unit: Unit = usd, key: String? = nil, ttl: Int64? = nil, grace: Int64? = nil,
        policy: OveragePolicy? = nil, dryRun: Bool = false, tenant: String = "acme", id: ReservationID? = nil
    ) -> Result<Decision, Refusal> {
        let key = key ?? nextID("reserve-key")
        let payload = "reserve|\(subject)|\(amount)|\(unit)|\(String(describing: ttl))|\(String(describing: grace))|\(String(describing: policy))|\(dryRun)"
        return run(.reserve(ReserveCommand(
            tenant: tenant, caller: Self.caller(tenant), reservationID: id ?? ReservationID(nextID("res")),
            idempotency: IdempotencyStamp(key: key, payloadHash: .fingerprint(payload)), subject: subject,
            action: Action(kind: "llm.completion", name: "openai:gpt-4o-mini"), estimate: Quantity(unit, Amount(amount)),
            ttlMilliseconds: ttl, graceMilliseconds: grace, overagePolicy: policy, dryRun: dryRun)))
    }

    /// Reserves and returns the new reservation id; the reservation must succeed.
    mutating func hold(_ subject: Subject, _ amount: Int64, unit: Unit = usd, policy: OveragePolicy? = nil, ttl: Int64? = nil, grace: Int64? = nil, tenant: String = "acme") -> ReservationID {
        let result = reserve(subject, amount, unit: unit, ttl: ttl, grace: grace, policy: policy, tenant: tenant)
        guard case .success(let decision) = result, case .reserved(let reply, _) = decision.reply else {
            preconditionFailure("expected the reservation to succeed: \(result)")
        }
        return reply.reservationID
    }

    mutating func decide(_ subject: Subject, _ amount: Int64, unit: Unit = usd, key: String? = nil, tenant: String = "acme") -> Result<Decision, Refusal> {
        let key = key ?? nextID("decide-key")
        return run(.decide(DecideCommand(
            tenant: tenant, caller: Self.caller(tenant),
            idempotency: IdempotencyStamp(key: key, payloadHash: .fingerprint("decide|\(subject)|\(amount)|\(unit)")),
            subject: subject, action: Action(kind: "llm.completion", name: "m"), estimate: Quantity(unit, Amount(amount)))))
    }

    mutating func commit(_ id: ReservationID, _ actual: Int64, unit: Unit = usd, key: String? = nil, caller: Caller? = nil) -> Result<Decision, Refusal> {
        let key = key ?? nextID("commit-key")
        return run(.commit(CommitCommand(
            caller: caller ?? Self.caller(state.reservations[id]?.tenant ?? "acme"), reservationID: id,
            idempotency: IdempotencyStamp(key: key, payloadHash: .fingerprint("commit|\(actual)|\(unit)")),
            actual: Quantity(unit, Amount(actual)))))
    }

    mutating func release(_ id: ReservationID, key: String? = nil, caller: Caller? = nil, reason: String? = nil) -> Result<Decision, Refusal> {
        let key = key ?? nextID("release-key")
        return run(.release(ReleaseCommand(
            caller: caller ?? Self.caller(state.reservations[id]?.tenant ?? "acme"), reservationID: id,
            idempotency: IdempotencyStamp(key: key, payloadHash: .fingerprint("release|\(String(describing: reason))")),
            reason: reason)))
    }

    mutating func extend(_ id: ReservationID, by milliseconds: Int64, key: String? = nil, caller: Caller? = nil) -> Result<Decision, Refusal> {
        let key = key ?? nextID("extend-key")
        return run(.extend(ExtendCommand(
            caller: caller ?? Self.caller(state.reservations[id]?.tenant ?? "acme"), reservationID: id,
            idempotency: IdempotencyStamp(key: key, payloadHash: .fingerprint("extend|\(milliseconds)")),
            extendByMilliseconds: milliseconds)))
    }

    mutating func debit(_ subject: Subject, _ actual: Int64, unit: Unit = usd, policy: OveragePolicy? = nil, key: String? = nil, tenant: String = "acme") -> Result<Decision, Refusal> {
        let key = key ?? nextID("event-key")
        return run(.recordDebit(DebitCommand(
            tenant: tenant, caller: Self.caller(tenant), eventID: nextID("evt"),
            idempotency: IdempotencyStamp(key: key, payloadHash: .fingerprint("event|\(subject)|\(actual)|\(unit)|\(String(describing: policy))")),
            subject: subject, action: Action(kind: "tool.search", name: "web"), actual: Quantity(unit, Amount(actual)),
            overagePolicy: policy)))
    }

    @discardableResult
    mutating func sweep() -> [ReservationID] {
        let candidates = state.expiryCandidates(now: now)
        guard case .success(let decision) = run(.expireReservations(ExpireCommand(candidates: candidates))),
              case .expired(let ids) = decision.reply else { preconditionFailure("the sweep never refuses") }
        return ids
    }

    mutating func fund(_ scope: String, _ operation: FundingOperation, _ amount: Int64, unit: Unit = usd) -> Result<Decision, Refusal> {
        run(.fundBudget(FundBudgetCommand(caller: .admin, scope: scope, unit: unit, operation: operation, amount: Amount(amount))))
    }

    func balance(_ scope: String, unit: Unit = usd) -> Budget {
        let key = BudgetKey(try! ScopePath(parsing: scope), unit)
        guard let budget = state.budgets[key] else { preconditionFailure("no budget \(key)") }
        return budget
    }

    /// (allocated, remaining, reserved, spent, debt) of a budget, for one-line ledger assertions.
    func figures(_ scope: String, unit: Unit = usd) -> [Int64] {
        let budget = balance(scope, unit: unit)
        return [budget.allocated, budget.remaining, budget.reserved, budget.spent, budget.debt].map(\.value)
    }

    /// Folding every recorded event from an empty state must give exactly the current state.
    func replayMatches() -> Bool {
        (try? LedgerState().applying(events)) == state
    }
}

extension Result where Success == Decision, Failure == Refusal {
    /// The refusal code, or nil on success: tables compare codes, not messages.
    var errorCode: ErrorCode? {
        if case .failure(let refusal) = self { return refusal.code }
        return nil
    }

    var decision: Decision? {
        if case .success(let decision) = self { return decision }
        return nil
    }
}

extension Digest256 {
    /// A deterministic stand-in for the gateway's SHA-256 of a payload (FNV-1a spread over four words).
    static func fingerprint(_ text: String) -> Digest256 {
        var words: [UInt64] = [0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4, 0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321]
        for (index, byte) in text.utf8.enumerated() {
            words[index % 4] = (words[index % 4] ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Digest256(words: (words[0], words[1], words[2], words[3]))
    }
}
