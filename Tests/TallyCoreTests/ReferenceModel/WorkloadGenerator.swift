@testable import TallyCore

/// Random commands over a small world: three tenants with different reservation defaults, a handful of
/// scopes at several depths with budgets of one or two units, small amounts so that budgets run out, and
/// now and then amounts near `Int64.max`. Time only moves forward, sometimes far past expiry.
///
/// The generator reads the reference model to pick plausible targets (live reservations, existing
/// budgets, valid keys); it never reads the core's state, so both see exactly the same command stream.
struct WorkloadGenerator {
    struct TenantPlan {
        var id: String
        var name: String
        var policy: OveragePolicy?
        var defaultTTL: Int64?
        var maxTTL: Int64?
        var maxExtensions: Int?
    }

    /// A remembered idempotent request, replayed verbatim or with a changed payload under the same key.
    struct Sent {
        var command: Command
        var label: String
    }

    var rng: ModelSplitMix64
    /// Whether ALLOW_WITH_OVERDRAFT may appear; without it the ledger must never hold debt.
    let allowOverdraft: Bool
    var now: Int64 = 1_750_000_000_000
    var counter = 0
    var history: [Sent] = []
    var plans: [TenantPlan]

    static let relativeScopes = [
        "", "workspace:w1", "workspace:w1/agent:a1", "workspace:w1/agent:a2", "workspace:w2",
        "app:x1/agent:a1", "workspace:w2/workflow:f1/toolset:t1",
    ]

    init(seed: UInt64, allowOverdraft: Bool) {
        rng = ModelSplitMix64(seed: seed)
        self.allowOverdraft = allowOverdraft
        plans = [
            TenantPlan(id: "acme", name: "Acme", policy: nil, defaultTTL: nil, maxTTL: nil, maxExtensions: nil),
            TenantPlan(id: "bolt", name: "Bolt", policy: .reject, defaultTTL: 5_000, maxTTL: 20_000, maxExtensions: 2),
            TenantPlan(
                id: "core-9", name: "Core", policy: allowOverdraft ? .allowWithOverdraft : .allowIfAvailable,
                defaultTTL: 30_000, maxTTL: 60_000, maxExtensions: 0),
        ]
    }

    mutating func fresh(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)\(counter)"
    }

    /// A new reservation id: every other one a UUID (held as its bits, as `tallyd` makes them), the others
    /// text, so the core's maps, ordering and codecs see both forms.
    mutating func freshReservationID() -> ReservationID {
        counter += 1
        return counter % 2 == 0 ? ReservationID(high: UInt64(counter) << 16 | 0x7000, low: 0x8000_0000_0000_0000 | UInt64(counter)) : ReservationID("res-\(counter)")
    }

    var policies: [OveragePolicy?] {
        allowOverdraft ? [nil, .reject, .allowIfAvailable, .allowWithOverdraft] : [nil, .reject, .allowIfAvailable]
    }

    // MARK: Time

    mutating func advanceTime(model: ReferenceLedger) {
        // Now and then land exactly on a deadline of a live reservation, or one millisecond past it, where
        // off-by-one mistakes in "now > expires_at (+ grace)" would show.
        if rng.chance(6), let row = rng.pickOptional(model.activeReservations) {
            let target = rng.pick([row.expiresAt, row.expiresAt + 1, row.expiresAt + row.grace, row.expiresAt + row.grace + 1])
            if target >= now {
                now = target
                return
            }
        }
        let roll = rng.int(0...999)
        let step: Int64 = switch roll {
        case 0..<120: 0
        case 120..<800: rng.int(1...1_500)
        case 800..<950: rng.int(1_500...10_000)
        case 950..<997: rng.int(10_000...120_000)  // past most TTLs and grace periods
        default: rng.int(86_400_000...90_000_000)  // beyond every replay window except debits
        }
        now += step
    }

    // MARK: Setup

    /// Tenants, two keys each, and budgets on most scopes, all sent as ordinary commands.
    mutating func setupCommands() -> [Command] {
        var commands: [Command] = []
        for plan in plans {
            commands.append(.createTenant(CreateTenantCommand(
                tenantID: plan.id, name: plan.name, defaultOveragePolicy: plan.policy,
                defaultTTLMilliseconds: plan.defaultTTL, maxTTLMilliseconds: plan.maxTTL,
                maxExtensions: plan.maxExtensions)))
            for _ in 0..<2 { commands.append(createKey(tenant: plan.id)) }
        }
        for plan in plans {
            for relative in Self.relativeScopes where relative.isEmpty || rng.chance(70) {
                commands.append(createBudget(tenant: plan.id, relative: relative, unit: .usdMicrocents))
                if rng.chance(relative.isEmpty ? 60 : 25) {
                    commands.append(createBudget(tenant: plan.id, relative: relative, unit: .tokens))
                }
            }
        }
        return commands
    }

    mutating func createKey(tenant: String) -> Command {
        let id = fresh("key-")
        return .createApiKey(CreateApiKeyCommand(
            keyID: id, tenantID: tenant, name: "key \(id)", secretHash: ModelPayloadFingerprint.digest("secret " + id),
            prefix: "cyc_test_\(counter)"))
    }

    /// The scope with every segment after the tenant upper-cased; the admin plane must lower-case it.
    static func shout(_ scope: String) -> String {
        guard let slash = scope.firstIndex(of: "/") else { return scope }
        return String(scope[..<slash]) + scope[slash...].uppercased()
    }

    mutating func smallOrHuge(small: ClosedRange<Int64>, hugePercent: Double) -> Int64 {
        if rng.chance(hugePercent) { return Int64.max - rng.int(0...1_000) }
        if rng.chance(3) { return rng.int(1_000...2_000_000) }
        return rng.int(small)
    }

    mutating func createBudget(tenant: String, relative: String, unit: Unit) -> Command {
        var scope = "tenant:\(tenant)" + (relative.isEmpty ? "" : "/" + relative)
        if rng.chance(10) { scope = Self.shout(scope) }
        let limit: Int64 = rng.chance(45) ? 0 : (rng.chance(88) ? rng.int(1...3_000) : Int64.max - rng.int(0...10))
        let caps: Caps? = rng.chance(15) ? Caps(maxTokens: rng.int(1...4_000), toolDenylist: ["shell"]) : nil
        return .createBudget(CreateBudgetCommand(
            caller: .admin, tenantID: tenant, scope: scope, unit: unit,
            allocated: Amount(smallOrHuge(small: 0...2_000, hugePercent: 5)), overdraftLimit: Amount(limit),
            caps: caps))
    }

    // MARK: The random step

    mutating func nextCommand(model: ReferenceLedger) -> Command {
        let roll = rng.int(0...999)
        switch roll {
        case 0..<230: return reserve(model: model, dryRun: rng.chance(12))
        case 230..<280: return decide(model: model)
        case 280..<420: return commit(model: model)
        case 420..<490: return release(model: model)
        case 490..<550: return extend(model: model)
        case 550..<640: return debit(model: model)
        case 640..<690: return expire(model: model)
        case 690..<790: return fund(model: model)
        case 790..<800: return createBudget(
            tenant: rng.pick(plans).id, relative: rng.pick(Self.relativeScopes), unit: rng.chance(70) ? .usdMicrocents : .tokens)
        case 800..<815: return updateBudget(model: model)
        case 815..<840: return freeze(model: model)
        case 840..<848: return createTenant(model: model)
        case 848..<862: return updateTenant(model: model)
        case 862..<870: return createKey(tenant: rng.pick(model.tenants.map(\.id)))
        case 870..<874: return revokeKey(model: model)
        default: return replay(model: model) ?? reserve(model: model, dryRun: false)
        }
    }

    // MARK: Callers

    /// A caller the gateway would authenticate: an ACTIVE key of an ACTIVE tenant. Now and then a stale one
    /// (revoked key, suspended or closed tenant), as in the auth-to-mutation race window of 5.3.
    mutating func pickCaller(model: ReferenceLedger, tenant: String? = nil) -> (tenant: String, caller: Caller)? {
        let valid = model.keys.filter { key in
            key.status == .active && model.tenant(key.tenant)?.status == .active && (tenant == nil || key.tenant == tenant)
        }
        if rng.chance(3) || valid.isEmpty {
            let any = model.keys.filter { tenant == nil || $0.tenant == tenant }
            if let key = rng.pickOptional(any) { return (key.tenant, .tenant(id: key.tenant, keyID: key.id)) }
            return nil
        }
        let key = rng.pick(valid)
        return (key.tenant, .tenant(id: key.tenant, keyID: key.id))
    }

    mutating func subject(tenant: String) -> Subject {
        let subjectTenant: String? = rng.chance(60) ? nil : (rng.chance(94) ? tenant : rng.pick(plans).id)
        var subject = Subject(
            tenant: subjectTenant, workspace: rng.pick([nil, "w1", "W1", "w2", "w3", " "]),
            app: rng.chance(20) ? "x1" : nil, workflow: rng.chance(10) ? "f1" : nil,
            agent: rng.pick([nil, "a1", "a2", "A1"]), toolset: rng.chance(10) ? "t1" : nil)
        if rng.chance(1) { subject = Subject(dimensions: ["run": "r1"]) }  // no standard field: 400
        return subject
    }

    mutating func unit() -> Unit { rng.chance(82) ? .usdMicrocents : .tokens }

    mutating func amount(small: ClosedRange<Int64>) -> Int64 {
        if rng.chance(1) { return -1 }
        return smallOrHuge(small: small, hugePercent: 4)
    }

    static let action = Action(kind: "llm.completion", name: "openai:gpt-4o-mini")

    static func describe(_ subject: Subject) -> String {
        [subject.tenant, subject.workspace, subject.app, subject.workflow, subject.agent, subject.toolset]
            .map { $0 ?? "-" }.joined(separator: ",") + "|" + subject.dimensions.keys.sorted().joined(separator: ",")
    }

    static func describe(_ value: (some Any)?) -> String { value.map { "\($0)" } ?? "-" }

    // MARK: Runtime commands

    mutating func reserve(model: ReferenceLedger, dryRun: Bool) -> Command {
        guard let found = pickCaller(model: model) else { return expire(model: model) }
        let (tenant, caller) = (found.tenant, found.caller)
        let subject = subject(tenant: tenant)
        let estimate = Quantity(unit(), Amount(amount(small: 0...300)))
        let ttl: Int64? = switch rng.int(0...99) {
        case 0..<50: nil
        case 50..<90: rng.int(1_000...90_000)
        case 90..<92: rng.pick([999, 86_400_001])
        case 92..<95: rng.pick([1_000, 86_400_000])
        default: rng.int(90_000...86_400_000)
        }
        let grace: Int64? = rng.chance(60) ? nil : rng.pick([rng.int(0...60_000), rng.int(0...60_000), 0, 60_000, 60_001, -1])
        let command = ReserveCommand(
            tenant: tenant, caller: caller, reservationID: freshReservationID(), idempotency: stamp(""), subject: subject,
            action: Self.action, estimate: estimate, ttlMilliseconds: ttl, graceMilliseconds: grace,
            overagePolicy: rng.pick(policies), dryRun: dryRun)
        return remember(.reserve(Self.rehash(command)))
    }

    static func rehash(_ c: ReserveCommand) -> ReserveCommand {
        var c = c
        c.idempotency.payloadHash = ModelPayloadFingerprint.digest(
            "reserve|\(describe(c.subject))|\(c.estimate)|\(describe(c.ttlMilliseconds))|\(describe(c.graceMilliseconds))|"
                + "\(describe(c.overagePolicy))|\(c.dryRun)")
        return c
    }

    mutating func stamp(_ label: String) -> IdempotencyStamp {
        IdempotencyStamp(key: rng.chance(0.5) ? "" : fresh("ik-"), payloadHash: .zero)
    }

    mutating func decide(model: ReferenceLedger) -> Command {
        guard let found = pickCaller(model: model) else { return expire(model: model) }
        let (tenant, caller) = (found.tenant, found.caller)
        let command = DecideCommand(
            tenant: tenant, caller: caller, idempotency: stamp(""), subject: subject(tenant: tenant),
            action: Self.action, estimate: Quantity(unit(), Amount(amount(small: 0...300))))
        return remember(.decide(Self.rehash(command)))
    }

    static func rehash(_ c: DecideCommand) -> DecideCommand {
        var c = c
        c.idempotency.payloadHash = ModelPayloadFingerprint.digest("decide|\(describe(c.subject))|\(c.estimate)")
        return c
    }

    /// A reservation to settle: usually a live one, sometimes any (finalized, expired), rarely unknown.
    mutating func target(model: ReferenceLedger) -> ReferenceLedger.ReservationRow? {
        let active = model.activeReservations
        if rng.chance(4) { return nil }
        let settleable = active.filter { now <= $0.expiresAt + $0.grace }
        if rng.chance(70), let row = rng.pickOptional(settleable) { return row }
        if rng.chance(40), let row = rng.pickOptional(active) { return row }
        return rng.pickOptional(Array(model.reservations.suffix(60)))
    }

    /// The owner's caller most of the time; sometimes another tenant's (403) or a stale one.
    mutating func settleCaller(model: ReferenceLedger, owner: String?) -> Caller? {
        if let owner, rng.chance(93), let found = pickCaller(model: model, tenant: owner) { return found.caller }
        return pickCaller(model: model)?.caller
    }

    mutating func commit(model: ReferenceLedger) -> Command {
        let row = target(model: model)
        guard let caller = settleCaller(model: model, owner: row?.tenant) else { return expire(model: model) }
        let estimate = row?.estimate ?? 100
        let actual: Int64 = switch rng.int(0...99) {
        case 0..<28: estimate <= 0 ? 0 : rng.int(0...estimate)
        case 28..<43: estimate
        case 43..<72: Self.saturating(estimate, rng.int(1...200))
        case 72..<90: Self.saturating(estimate, rng.int(200...4_000))
        case 90..<99: Int64.max - rng.int(0...100)
        default: -1
        }
        var unit = row?.unit ?? .usdMicrocents
        if rng.chance(3) { unit = unit == .tokens ? .usdMicrocents : .tokens }
        let key = rng.chance(5) ? (model.reservations.compactMap(\.commitKey).last ?? fresh("ck-")) : fresh("ck-")
        let command = CommitCommand(
            caller: caller, reservationID: row?.id ?? "res-unknown", idempotency: IdempotencyStamp(key: key, payloadHash: .zero),
            actual: Quantity(unit, Amount(actual)))
        return remember(.commit(Self.rehash(command)))
    }

    static func saturating(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int64.max : sum
    }

    static func rehash(_ c: CommitCommand) -> CommitCommand {
        var c = c
        c.idempotency.payloadHash = ModelPayloadFingerprint.digest("commit|\(c.reservationID)|\(c.actual)")
        return c
    }

    mutating func release(model: ReferenceLedger) -> Command {
        let row = target(model: model)
        let caller: Caller
        if rng.chance(15) {
            caller = .admin  // 5.2: force release with the admin key, any tenant
        } else if let found = settleCaller(model: model, owner: row?.tenant) {
            caller = found
        } else {
            return expire(model: model)
        }
        let command = ReleaseCommand(
            caller: caller, reservationID: row?.id ?? "res-unknown",
            idempotency: IdempotencyStamp(key: fresh("rk-"), payloadHash: .zero), reason: rng.chance(30) ? "done" : nil)
        return remember(.release(Self.rehash(command)))
    }

    static func rehash(_ c: ReleaseCommand) -> ReleaseCommand {
        var c = c
        c.idempotency.payloadHash = ModelPayloadFingerprint.digest("release|\(c.reservationID)|\(describe(c.reason))")
        return c
    }

    mutating func extend(model: ReferenceLedger) -> Command {
        let row = target(model: model)
        guard let caller = settleCaller(model: model, owner: row?.tenant) else { return expire(model: model) }
        let by: Int64 = rng.chance(4) ? rng.pick([0, 1, 86_400_000, 86_400_001]) : rng.int(1...60_000)
        let command = ExtendCommand(
            caller: caller, reservationID: row?.id ?? "res-unknown",
            idempotency: IdempotencyStamp(key: fresh("xk-"), payloadHash: .zero), extendByMilliseconds: by)
        return remember(.extend(Self.rehash(command)))
    }

    static func rehash(_ c: ExtendCommand) -> ExtendCommand {
        var c = c
        c.idempotency.payloadHash = ModelPayloadFingerprint.digest("extend|\(c.reservationID)|\(c.extendByMilliseconds)")
        return c
    }

    mutating func debit(model: ReferenceLedger) -> Command {
        guard let found = pickCaller(model: model) else { return expire(model: model) }
        let (tenant, caller) = (found.tenant, found.caller)
        let command = DebitCommand(
            tenant: tenant, caller: caller, eventID: fresh("evt-"), idempotency: stamp(""),
            subject: subject(tenant: tenant), action: Self.action,
            actual: Quantity(unit(), Amount(rng.chance(6) ? rng.int(500...4_000) : amount(small: 0...150))),
            overagePolicy: rng.pick(policies))
        return remember(.recordDebit(Self.rehash(command)))
    }

    static func rehash(_ c: DebitCommand) -> DebitCommand {
        var c = c
        c.idempotency.payloadHash = ModelPayloadFingerprint.digest(
            "event|\(describe(c.subject))|\(c.actual)|\(describe(c.overagePolicy))")
        return c
    }

    /// Every live reservation plus some finalized ones, an unknown id and sometimes a duplicate: the core
    /// must expire only ACTIVE ones past `expires_at + grace`, each once.
    mutating func expire(model: ReferenceLedger) -> Command {
        var candidates = model.data.activeIDs
        for _ in 0..<3 { if let row = rng.pickOptional(model.reservations) { candidates.append(row.id) } }
        candidates.append("res-unknown")
        if rng.chance(20), let first = candidates.first { candidates.append(first) }
        return .expireReservations(ExpireCommand(candidates: Array(candidates.prefix(1_000))))
    }

    // MARK: Admin commands

    mutating func budgetTarget(model: ReferenceLedger) -> (scope: String, unit: Unit) {
        if rng.chance(4) || model.budgets.isEmpty { return ("tenant:acme/agent:nobody", .usdMicrocents) }
        let row = rng.pick(model.budgets)
        return (rng.chance(10) ? Self.shout(row.scope) : row.scope, row.unit)
    }

    mutating func fund(model: ReferenceLedger) -> Command {
        var (scope, unit) = budgetTarget(model: model)
        var operation = rng.pick(FundingOperation.allCases)
        // Half the time, top up a budget that blocks reservations, so that the world keeps moving.
        let blocked = model.budgets.filter { $0.status == .active && ($0.isOverLimit || $0.remaining < 200 || $0.debt > 0) }
        if rng.chance(50), let row = rng.pickOptional(blocked) {
            (scope, unit) = (row.scope, row.unit)
            operation = rng.pick([.credit, .repayDebt, .reset, .resetSpent])
        }
        var spent: Amount? = operation == .resetSpent && rng.chance(50) ? Amount(rng.int(0...1_500)) : nil
        if rng.chance(1) { spent = Amount(5) }  // spent with another operation: 400
        let amountValue: Int64 = rng.chance(1) ? -5 : smallOrHuge(small: 0...2_500, hugePercent: 6)
        let stamp: IdempotencyStamp? = rng.chance(50) ? nil : IdempotencyStamp(key: fresh("fk-"), payloadHash: .zero)
        let command = FundBudgetCommand(
            caller: .admin, scope: scope, unit: unit, operation: operation, amount: Amount(amountValue), spent: spent,
            idempotency: stamp)
        return remember(.fundBudget(Self.rehash(command)))
    }

    static func rehash(_ c: FundBudgetCommand) -> FundBudgetCommand {
        var c = c
        c.idempotency?.payloadHash = ModelPayloadFingerprint.digest(
            "fund|\(c.scope.lowercased())|\(c.unit)|\(c.operation)|\(c.amount)|\(describe(c.spent))")
        return c
    }

    mutating func updateBudget(model: ReferenceLedger) -> Command {
        let (scope, unit) = budgetTarget(model: model)
        let limit: Amount? = rng.chance(80) ? Amount(rng.chance(40) ? 0 : rng.int(1...800)) : nil
        let caps: Caps? = rng.chance(15) ? (rng.chance(50) ? Caps() : Caps(maxTokens: rng.int(1...100))) : nil
        return .updateBudget(UpdateBudgetCommand(
            caller: .admin, scope: scope, unit: unit, overdraftLimit: rng.chance(2) ? Amount(-1) : limit, caps: caps))
    }

    /// Freezes any budget, or unfreezes (mostly) a frozen one, so that frozen budgets do not pile up.
    mutating func freeze(model: ReferenceLedger) -> Command {
        var (scope, unit) = budgetTarget(model: model)
        if rng.chance(35) { return .freezeBudget(BudgetStatusCommand(caller: .admin, scope: scope, unit: unit)) }
        if rng.chance(90), let row = rng.pickOptional(model.budgets.filter({ $0.status == .frozen })) {
            (scope, unit) = (row.scope, row.unit)
        }
        return .unfreezeBudget(BudgetStatusCommand(caller: .admin, scope: scope, unit: unit))
    }

    mutating func createTenant(model: ReferenceLedger) -> Command {
        if rng.chance(50), let plan = rng.pickOptional(plans) {
            return .createTenant(CreateTenantCommand(tenantID: plan.id, name: rng.chance(70) ? plan.name : "Other"))
        }
        if rng.chance(10) { return .createTenant(CreateTenantCommand(tenantID: "No", name: "bad id")) }
        return .createTenant(CreateTenantCommand(
            tenantID: "late-\(rng.int(1...3))", name: "Late", defaultOveragePolicy: rng.pick(policies),
            defaultTTLMilliseconds: rng.chance(50) ? nil : 10_000))
    }

    mutating func updateTenant(model: ReferenceLedger) -> Command {
        let target = rng.chance(3) ? "ghost" : rng.pick(model.tenants.map(\.id))
        let current = model.tenant(target)?.status
        let status: TenantStatus
        if rng.chance(1) {
            status = .closed
        } else if current == .closed {
            status = rng.chance(50) ? .closed : .active
        } else {
            status = current == .suspended ? .active : (rng.chance(60) ? .suspended : .active)
        }
        return .updateTenant(UpdateTenantCommand(tenantID: target, name: rng.chance(20) ? "Renamed" : nil, status: status))
    }

    mutating func closeSomeTenant(model: ReferenceLedger) -> Command {
        .updateTenant(UpdateTenantCommand(tenantID: rng.pick(plans).id, status: .closed))
    }

    mutating func revokeKey(model: ReferenceLedger) -> Command {
        let id = rng.chance(5) ? "key-ghost" : (rng.pickOptional(model.keys)?.id ?? "key-ghost")
        return .revokeApiKey(RevokeApiKeyCommand(keyID: id, reason: "rotation"))
    }

    // MARK: Idempotent replays

    mutating func remember(_ command: Command) -> Command {
        history.append(Sent(command: command, label: ""))
        if history.count > 60 { history.removeFirst() }
        return command
    }

    /// Re-sends a recent request under the same key: verbatim (a replay, with fresh server-generated ids)
    /// or with a changed payload (IDEMPOTENCY_MISMATCH while the original success is remembered).
    mutating func replay(model: ReferenceLedger) -> Command? {
        guard let sent = rng.pickOptional(history) else { return nil }
        let change = rng.chance(30)
        switch sent.command {
        case .reserve(var c):
            c.reservationID = freshReservationID()
            if change { c.estimate.amount = Amount(c.estimate.amount.value &+ 1) }
            return .reserve(Self.rehash(c))
        case .decide(var c):
            if change { c.estimate.amount = Amount(c.estimate.amount.value &+ 1) }
            return .decide(Self.rehash(c))
        case .commit(var c):
            if change { c.actual.amount = Amount(c.actual.amount.value &+ 1) }
            return .commit(Self.rehash(c))
        case .release(var c):
            if change { c.reason = (c.reason ?? "") + "!" }
            return .release(Self.rehash(c))
        case .extend(var c):
            if change { c.extendByMilliseconds += 1 }
            return .extend(Self.rehash(c))
        case .recordDebit(var c):
            c.eventID = fresh("evt-")
            if change { c.actual.amount = Amount(c.actual.amount.value &+ 1) }
            return .recordDebit(Self.rehash(c))
        case .fundBudget(var c):
            guard c.idempotency != nil else { return nil }
            if change { c.amount = Amount(c.amount.value &+ 1) }
            return .fundBudget(Self.rehash(c))
        default:
            return nil
        }
    }
}
