import Testing
@testable import TallyCore

/// Randomized model-based tests of the pure core (STYLE "Tests"): a naive reference ledger written from
/// the semantics predicts every reply of long random workloads. A failure names the seed and the step, so
/// `ModelRun(seed:steps:allowOverdraft:)` reproduces it exactly.
@Suite struct ModelBasedTests {
    static let seeds: [UInt64] = [1, 2, 3, 4, 5, 6, 7, 8]
    static let steps = 3_000

    @Test(arguments: seeds)
    func randomWorkloadMatchesReferenceModel(seed: UInt64) {
        var run = ModelRun(seed: seed, steps: Self.steps, allowOverdraft: true)
        if let failure = run.run() { Issue.record(Comment(rawValue: failure)) }
    }

    /// Under REJECT and ALLOW_IF_AVAILABLE only (requests and tenant defaults), no budget ever holds debt.
    @Test(arguments: seeds.map { $0 + 100 })
    func workloadWithoutOverdraftNeverCreatesDebt(seed: UInt64) {
        var run = ModelRun(seed: seed, steps: Self.steps, allowOverdraft: false)
        if let failure = run.run() { Issue.record(Comment(rawValue: failure)) }
    }

    /// A rare random case the model found (the core used to refuse it), pinned as a ledger script: debt under
    /// a positive limit, the limit lowered to 0, then a small ALLOW_WITH_OVERDRAFT debit. Semantics 3.2/3.4
    /// cap it to 0 on the zero-limit scope (charged 0).
    @Test func overdraftDebitOnZeroLimitScopeWithDebtIsCappedNotRefused() {
        let now: Int64 = 1_750_000_000_000
        let key = Caller.tenant(id: "acme", keyID: "key-1")
        func debit(_ id: String, _ amount: Int64) -> Command {
            .recordDebit(DebitCommand(
                tenant: "acme", caller: key, eventID: id,
                idempotency: IdempotencyStamp(key: id, payloadHash: ModelPayloadFingerprint.digest(id)),
                subject: Subject(agent: "bot"), action: WorkloadGenerator.action,
                actual: Quantity(.usdMicrocents, Amount(amount)), overagePolicy: .allowWithOverdraft))
        }
        let script: [Command] = [
            .createTenant(CreateTenantCommand(tenantID: "acme", name: "Acme")),
            .createApiKey(CreateApiKeyCommand(
                keyID: "key-1", tenantID: "acme", name: "k", secretHash: ModelPayloadFingerprint.digest("s"), prefix: "p")),
            .createBudget(CreateBudgetCommand(
                caller: .admin, tenantID: "acme", scope: "tenant:acme", unit: .usdMicrocents, allocated: 100,
                overdraftLimit: 500)),
            debit("evt-1", 300),  // remaining -200, debt 200, within the limit
            .updateBudget(UpdateBudgetCommand(caller: .admin, scope: "tenant:acme", unit: .usdMicrocents, overdraftLimit: .zero)),
            debit("evt-2", 10),
        ]
        let model = ReferenceLedger()
        var state = LedgerState()
        for (index, command) in script.enumerated() {
            let expected = model.execute(command, now: now)
            let actual = ModelOutcome(Ledger.execute(command, on: &state, now: now))
            if index < script.count - 1 {
                #expect(actual == expected, "step \(index)")
            } else {
                #expect(actual == expected)
            }
        }
    }

    /// Guards the generator: a workload that stopped reaching these outcomes would test much less.
    @Test func workloadReachesTheInterestingOutcomes() {
        var run = ModelRun(seed: 42, steps: Self.steps, allowOverdraft: true)
        _ = run.run()
        let wanted = [
            "reserve ok", "reserve ok (replay)", "reserve budgetExceeded", "reserve budgetFrozen",
            "reserve overdraftLimitExceeded", "reserve idempotencyMismatch", "reserve unitMismatch", "reserve notFound",
            "reserve forbidden", "reserve invalidRequest", "reserve tenantClosed", "dryRun ALLOW ",
            "dryRun ALLOW_WITH_CAPS ", "dryRun DENY BUDGET_EXCEEDED", "decide ALLOW ", "decide DENY BUDGET_FROZEN",
            "decide DENY OVERDRAFT_LIMIT_EXCEEDED", "commit ok", "commit ok under", "commit ok with debt",
            "commit ok (replay)", "commit budgetExceeded", "commit overdraftLimitExceeded", "commit reservationFinalized",
            "commit reservationExpired", "commit idempotencyMismatch", "commit forbidden", "commit unitMismatch",
            "release ok", "release ok (replay)", "release reservationFinalized", "extend ok",
            "extend maxExtensionsExceeded", "extend reservationExpired", "recordDebit ok", "recordDebit ok capped",
            "recordDebit ok with debt", "recordDebit budgetExceeded", "expireReservations some", "fundBudget ok",
            "fundBudget ok (replay)", "fundBudget budgetExceeded", "fundBudget idempotencyMismatch",
            "fundBudget amountOverflow", "updateBudget ok", "freezeBudget ok", "unfreezeBudget ok", "updateTenant ok",
            "createTenant ok (replay)", "createTenant duplicateResource", "createApiKey ok", "revokeApiKey ok",
        ]
        for label in wanted {
            #expect(run.outcomes[label, default: 0] > 0, "no '\(label)' in \(run.outcomes.sorted { $0.key < $1.key })")
        }
    }
}
