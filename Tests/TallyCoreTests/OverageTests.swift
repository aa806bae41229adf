import Testing
@testable import TallyCore

/// Overage across several budgeted scopes (semantics 3.2, 3.4, 3.5) and direct debits (2.10).
@Suite struct OverageTests {
    static let agent = Subject(workspace: "w", agent: "a")
    static let workspace = "tenant:acme/workspace:w"
    static let agentScope = "tenant:acme/workspace:w/agent:a"

    /// Workspace with 1000 (limit `workspaceLimit`), agent with 150 (limit `agentLimit`), and a hold of 100.
    static func ledger(workspaceLimit: Int64 = 0, agentLimit: Int64 = 0, policy: OveragePolicy) -> (LedgerScenario, ReservationID) {
        var ledger = LedgerScenario()
        ledger.budget(workspace, 1_000, overdraft: workspaceLimit)
        ledger.budget(agentScope, 150, overdraft: agentLimit)
        let id = ledger.hold(agent, 100, policy: policy)
        return (ledger, id)
    }

    @Test func allowIfAvailableCapsAtTheTightestScopeAndFlagsOnlyScopesThatCouldNotCover() {
        var (ledger, id) = Self.ledger(policy: .allowIfAvailable)
        guard case .committed(let reply)? = ledger.commit(id, 300).decision?.reply else {
            Issue.record("ALLOW_IF_AVAILABLE never fails")
            return
        }
        #expect(reply.charged.amount == 150)
        #expect(ledger.figures(Self.workspace) == [1_000, 850, 0, 150, 0])
        #expect(ledger.figures(Self.agentScope) == [150, 0, 0, 150, 0])
        #expect(ledger.balance(Self.agentScope).isOverLimit)
        #expect(!ledger.balance(Self.workspace).isOverLimit, "the workspace could have covered the whole overage")
        // The flag blocks new reservations on the agent until an operator funds or updates the budget.
        #expect(ledger.reserve(Self.agent, 0).errorCode == .overdraftLimitExceeded)
        #expect(ledger.reserve(Subject(workspace: "w"), 10).errorCode == nil)
        _ = ledger.fund(Self.agentScope, .credit, 100)
        #expect(!ledger.balance(Self.agentScope).isOverLimit, "any funding op recomputes debt > limit (decision 5)")
        #expect(ledger.reserve(Self.agent, 10).errorCode == nil)
    }

    @Test func allowWithOverdraftFundsWhatItCanAndBooksTheRestAsDebt() {
        var (ledger, id) = Self.ledger(agentLimit: 500, policy: .allowWithOverdraft)
        guard case .committed(let reply)? = ledger.commit(id, 300).decision?.reply else {
            Issue.record("within the limit the commit goes through")
            return
        }
        #expect(reply.charged.amount == 300)
        #expect(ledger.figures(Self.workspace) == [1_000, 700, 0, 300, 0])
        #expect(ledger.figures(Self.agentScope) == [150, -150, 0, 150, 150])
        #expect(!ledger.balance(Self.agentScope).isOverLimit)
        #expect(ledger.reserve(Self.agent, 1).errorCode == .budgetExceeded, "debt within the limit does not block, but remaining is negative")
    }

    @Test func allowWithOverdraftIsCappedByAZeroLimitScopeThatCannotCover() {
        var ledger = LedgerScenario()
        ledger.budget(Self.workspace, 200)                   // limit 0, remaining 100 after the hold
        ledger.budget(Self.agentScope, 150, overdraft: 500)  // remaining 50 after the hold
        let id = ledger.hold(Self.agent, 100, policy: .allowWithOverdraft)
        guard case .committed(let reply)? = ledger.commit(id, 300).decision?.reply else {
            Issue.record("commit failed")
            return
        }
        #expect(reply.charged.amount == 200, "the zero-limit workspace caps the overage at its 100")
        #expect(ledger.figures(Self.workspace) == [200, 0, 0, 200, 0])
        #expect(ledger.balance(Self.workspace).isOverLimit)
        #expect(ledger.figures(Self.agentScope) == [150, -50, 0, 150, 50])
        #expect(!ledger.balance(Self.agentScope).isOverLimit)
    }

    @Test func allowWithOverdraftRefusesWhenAnyScopesDebtWouldPassItsLimitAndChangesNothing() {
        var (ledger, id) = Self.ledger(workspaceLimit: 10_000, agentLimit: 100, policy: .allowWithOverdraft)
        let before = ledger.state
        // Remaining 50 on the agent after the hold: an actual of 251 leaves a deficit of 101 > 100.
        #expect(ledger.commit(id, 251).errorCode == .overdraftLimitExceeded)
        #expect(ledger.state == before)
        #expect(ledger.commit(id, 250).errorCode == nil, "a deficit exactly at the limit is allowed")
        #expect(ledger.balance(Self.agentScope).debt == 100)
        #expect(!ledger.balance(Self.agentScope).isOverLimit, "debt == limit is not over-limit")
    }

    @Test func rejectRefusesAnOverageOnlyWhenSomeScopeCannotCoverIt() {
        var (ledger, id) = Self.ledger(policy: .reject)
        #expect(ledger.commit(id, 151).errorCode == .budgetExceeded)
        #expect(ledger.state.reservations[id]?.status == .active)
        #expect(ledger.commit(id, 150).errorCode == nil)
        #expect(ledger.figures(Self.agentScope) == [150, 0, 0, 150, 0])
    }

    @Test func commitAndReleaseStillWorkOnAnOverLimitScopeWithDebt() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 100, overdraft: 1_000)
        let first = ledger.hold(Subject(agent: "a"), 50, policy: .allowWithOverdraft)
        let second = ledger.hold(Subject(agent: "a"), 50, policy: .allowWithOverdraft)
        #expect(ledger.commit(first, 500).errorCode == nil)
        _ = ledger.run(.updateBudget(UpdateBudgetCommand(caller: .admin, scope: "tenant:acme", unit: .usdMicrocents, overdraftLimit: 0)))
        #expect(ledger.balance("tenant:acme").isOverLimit)
        #expect(ledger.reserve(Subject(agent: "a"), 0).errorCode == .overdraftLimitExceeded)
        #expect(ledger.release(second).errorCode == nil)
        // The first commit was funded by nothing (remaining was 0): spent 50 (its estimate), debt 450.
        #expect(ledger.figures("tenant:acme") == [100, -400, 0, 50, 450])
        #expect(ledger.replayMatches())
    }

    // MARK: Direct debits

    @Test func aDebitWithinEveryBudgetIsChargedInFullWithoutAChargedField() {
        var ledger = LedgerScenario()
        ledger.budget(Self.workspace, 1_000)
        ledger.budget(Self.agentScope, 150)
        guard case .debitRecorded(let reply)? = ledger.debit(Self.agent, 150).decision?.reply else {
            Issue.record("debit failed")
            return
        }
        #expect(reply.charged == nil)
        #expect(reply.balances.map(\.remaining) == [850, 0])
        #expect(ledger.figures(Self.agentScope) == [150, 0, 0, 150, 0])
    }

    @Test(arguments: [OveragePolicy.allowIfAvailable, .allowWithOverdraft])
    func aCappedDebitChargesWhatTheTightestScopeHasAndFlagsIt(policy: OveragePolicy) {
        var ledger = LedgerScenario()
        ledger.budget(Self.workspace, 1_000)
        ledger.budget(Self.agentScope, 150)
        guard case .debitRecorded(let reply)? = ledger.debit(Self.agent, 400, policy: policy).decision?.reply else {
            Issue.record("a capped debit still applies")
            return
        }
        // ALLOW_WITH_OVERDRAFT with a zero limit behaves as ALLOW_IF_AVAILABLE (section 9).
        #expect(reply.charged == Quantity(.usdMicrocents, 150))
        #expect(ledger.figures(Self.workspace) == [1_000, 850, 0, 150, 0])
        #expect(ledger.balance(Self.agentScope).isOverLimit && !ledger.balance(Self.workspace).isOverLimit)
    }

    @Test func debtAndOverLimitDoNotBlockDebitsButFrozenAndRejectDo() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 100, overdraft: 1_000)
        #expect(ledger.debit(Subject(agent: "a"), 300, policy: .allowWithOverdraft).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [100, -200, 0, 100, 200])
        #expect(ledger.debit(Subject(agent: "a"), 10, policy: .allowWithOverdraft).errorCode == nil)
        #expect(ledger.debit(Subject(agent: "a"), 10, policy: .reject).errorCode == .budgetExceeded)
        #expect(ledger.debit(Subject(agent: "a"), 1_000, policy: .allowWithOverdraft).errorCode == .overdraftLimitExceeded)
        _ = ledger.run(.freezeBudget(BudgetStatusCommand(caller: .admin, scope: "tenant:acme", unit: .usdMicrocents)))
        #expect(ledger.debit(Subject(agent: "a"), 1).errorCode == .budgetFrozen)
        #expect(ledger.replayMatches())
    }

    @Test func debitUsesTheTenantDefaultPolicyWhenTheRequestHasNone() {
        var ledger = LedgerScenario()
        ledger.createTenant("strict", policy: .reject)
        ledger.budget("tenant:strict", 10, tenant: "strict")
        #expect(ledger.debit(Subject(agent: "a"), 11, tenant: "strict").errorCode == .budgetExceeded)
        #expect(ledger.debit(Subject(agent: "a"), 11, policy: .allowIfAvailable, tenant: "strict").errorCode == nil)
    }

    @Test func debitChecksScopesInCanonicalOrderBeforeTheUnitProbe() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 5)
        ledger.budget(Self.agentScope, 1_000)
        _ = ledger.run(.freezeBudget(BudgetStatusCommand(caller: .admin, scope: Self.agentScope, unit: .usdMicrocents)))
        #expect(ledger.debit(Self.agent, 10, policy: .reject).errorCode == .budgetExceeded, "the tenant scope comes first")
        #expect(ledger.debit(Self.agent, 1, policy: .reject).errorCode == .budgetFrozen)
        #expect(ledger.debit(Self.agent, 1, unit: .tokens).errorCode == .unitMismatch)
        var empty = LedgerScenario(tenants: ["bare"])
        #expect(empty.debit(Self.agent, 1, tenant: "bare").errorCode == .notFound)
    }
}

extension OverageTests {
    @Test func aZeroLimitScopeWithOldDebtCapsTheOverageInsteadOfRefusingIt() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 10_000, overdraft: 1_000)
        ledger.budget(Self.workspace, 100, overdraft: 1_000)
        #expect(ledger.debit(Self.agent, 150, policy: .allowWithOverdraft).errorCode == nil)   // workspace debt 50
        _ = ledger.run(.updateBudget(UpdateBudgetCommand(caller: .admin, scope: Self.workspace, unit: .usdMicrocents, overdraftLimit: 0)))
        // The workspace now has a zero limit, debt 50 and remaining -50: it caps the debit to nothing.
        guard case .debitRecorded(let reply)? = ledger.debit(Self.agent, 30, policy: .allowWithOverdraft).decision?.reply else {
            Issue.record("section 9: with overdraft_limit 0 the policy behaves as ALLOW_IF_AVAILABLE, never a refusal")
            return
        }
        #expect(reply.charged == Quantity(.usdMicrocents, 0))
        #expect(ledger.figures(Self.workspace) == [100, -50, 0, 100, 50])
    }
}
