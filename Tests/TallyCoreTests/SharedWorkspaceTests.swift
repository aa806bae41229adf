import Testing
@testable import TallyCore

/// The multi-agent patterns of the shared-workspace guide that our users follow today
/// (shared/seed/shared-workspace-budget-patterns.txt), played through the ledger.
@Suite struct SharedWorkspaceTests {
    /// One US dollar in USD_MICROCENTS.
    static let dollar: Int64 = 100_000_000
    static let workspace = "tenant:acme-corp/workspace:project-alpha"

    static func agent(_ name: String) -> Subject {
        Subject(tenant: "acme-corp", workspace: "project-alpha", agent: name)
    }

    /// Pattern 2: a $50 workspace cap over planner $20, executor $30 and reviewer $10 (sum $60 > $50).
    static func pattern2() -> LedgerScenario {
        var ledger = LedgerScenario(tenants: ["acme-corp"])
        ledger.budget(workspace, 50 * dollar, tenant: "acme-corp")
        for (name, dollars) in [("planner", 20), ("executor", 30), ("reviewer", 10)] {
            ledger.budget("\(workspace)/agent:\(name)", Int64(dollars) * dollar, tenant: "acme-corp")
        }
        return ledger
    }

    @Test func eachAgentsOwnCapWinsWhenItIsAlone() {
        var ledger = Self.pattern2()
        let before = ledger.state.budgets
        #expect(ledger.reserve(Self.agent("planner"), 20 * Self.dollar + 1, tenant: "acme-corp").errorCode == .budgetExceeded)
        #expect(ledger.state.budgets == before, "a denial leaves every balance unchanged")
        #expect(ledger.reserve(Self.agent("planner"), 20 * Self.dollar, tenant: "acme-corp").errorCode == nil)
        #expect(ledger.figures("\(Self.workspace)/agent:planner") == [20 * Self.dollar, 0, 20 * Self.dollar, 0, 0])
        #expect(ledger.figures(Self.workspace) == [50 * Self.dollar, 30 * Self.dollar, 20 * Self.dollar, 0, 0])
    }

    @Test func theWorkspaceCapWinsWhenTheAgentsTogetherReachIt() {
        var ledger = Self.pattern2()
        let planner = ledger.hold(Self.agent("planner"), 20 * Self.dollar, tenant: "acme-corp")
        let executor = ledger.hold(Self.agent("executor"), 25 * Self.dollar, tenant: "acme-corp")
        _ = ledger.commit(planner, 20 * Self.dollar)
        _ = ledger.commit(executor, 25 * Self.dollar)
        // $5 left in the workspace: the reviewer's own $10 does not matter any more.
        let before = ledger.state.budgets
        let denied = ledger.reserve(Self.agent("reviewer"), 8 * Self.dollar, tenant: "acme-corp")
        guard case .failure(let refusal) = denied else {
            Issue.record("the workspace cap must deny the reviewer")
            return
        }
        #expect(refusal.code == .budgetExceeded)
        #expect(refusal.message.contains(Self.workspace) && !refusal.message.contains("agent:reviewer"))
        #expect(ledger.state.budgets == before)
        // Degrade: a cheaper call that fits the workspace remainder goes through.
        #expect(ledger.reserve(Self.agent("reviewer"), 5 * Self.dollar, tenant: "acme-corp").errorCode == nil)
        #expect(ledger.balance(Self.workspace).remaining == 0)
        #expect(ledger.balance("\(Self.workspace)/agent:reviewer").remaining.value == 5 * Self.dollar)
    }

    @Test func interleavedAgentsNeverOverspendTheWorkspace() {
        var ledger = Self.pattern2()
        var generator = SplitMix(seed: 2026)
        var active: [ReservationID] = []
        for _ in 0..<2_000 {
            let name = ["planner", "executor", "reviewer"][Int(generator.next() % 3)]
            switch generator.next() % 4 {
            case 0, 1:
                let estimate = Int64(generator.next() % 4 + 1) * Self.dollar
                if case .reserved(let reply, _)? = ledger.reserve(Self.agent(name), estimate, tenant: "acme-corp").decision?.reply {
                    active.append(reply.reservationID)
                }
            case 2 where !active.isEmpty:
                let id = active.remove(at: Int(generator.next() % UInt64(active.count)))
                let estimate = ledger.state.reservations[id]!.estimate.value
                _ = ledger.commit(id, estimate / 2 + Int64(generator.next() % UInt64(estimate)))
            case 3 where !active.isEmpty:
                _ = ledger.release(active.remove(at: Int(generator.next() % UInt64(active.count))))
            default:
                _ = ledger.fund(Self.workspace, .credit, 0)
            }
            let cap = ledger.balance(Self.workspace)
            #expect(cap.spent.value + cap.reserved.value <= 50 * Self.dollar)
            #expect(cap.debt == 0)
            for name in ["planner", "executor", "reviewer"] {
                let budget = ledger.balance("\(Self.workspace)/agent:\(name)")
                #expect(budget.spent.value + budget.reserved.value <= budget.allocated.value && budget.satisfiesInvariant)
            }
        }
        #expect(ledger.replayMatches())
    }

    @Test func pattern1AllAgentsDrawFromOneSharedBudget() {
        var ledger = LedgerScenario(tenants: ["acme-corp"])
        ledger.budget(Self.workspace, 50 * Self.dollar, tenant: "acme-corp")
        let planner = ledger.hold(Self.agent("planner"), 30 * Self.dollar, tenant: "acme-corp")
        #expect(ledger.state.reservations[planner]?.budgetedScopes.map(\.rawValue) == [Self.workspace])
        #expect(ledger.state.reservations[planner]?.scopePath.rawValue == "\(Self.workspace)/agent:planner")
        #expect(ledger.reserve(Self.agent("executor"), 21 * Self.dollar, tenant: "acme-corp").errorCode == .budgetExceeded)
        #expect(ledger.reserve(Self.agent("executor"), 20 * Self.dollar, tenant: "acme-corp").errorCode == nil)
    }

    @Test func pattern3WorkflowBudgetsIsolateTasks() {
        var ledger = LedgerScenario(tenants: ["acme-corp"])
        for task in ["task-123", "task-456"] {
            ledger.budget("tenant:acme-corp/workspace:prod/workflow:\(task)", 10 * Self.dollar, tenant: "acme-corp")
        }
        func call(_ task: String, _ agent: String, _ dollars: Int64) -> Result<Decision, Refusal> {
            ledger.reserve(Subject(tenant: "acme-corp", workspace: "prod", workflow: task, agent: agent), dollars * Self.dollar, tenant: "acme-corp")
        }
        #expect(call("task-123", "planner", 6).errorCode == nil)
        #expect(call("task-123", "executor", 4).errorCode == nil)
        #expect(call("task-123", "executor", 1).errorCode == .budgetExceeded, "task-123 is spent")
        #expect(call("task-456", "executor", 10).errorCode == nil, "task-456 is untouched by task-123")
        #expect(call("task-789", "planner", 1).errorCode == .notFound, "a task without a budget is not silently free")
    }

    @Test func pattern4TieredAgentsHaveIndependentLimits() {
        var ledger = LedgerScenario(tenants: ["acme-corp"])
        ledger.budget("tenant:acme-corp/workspace:prod/agent:planner", 20 * Self.dollar, tenant: "acme-corp")
        ledger.budget("tenant:acme-corp/workspace:prod/agent:executor", 5 * Self.dollar, tenant: "acme-corp")
        let planner = Subject(workspace: "prod", agent: "planner")
        let executor = Subject(workspace: "prod", agent: "executor")
        #expect(ledger.reserve(executor, 6 * Self.dollar, tenant: "acme-corp").errorCode == .budgetExceeded)
        #expect(ledger.reserve(planner, 20 * Self.dollar, tenant: "acme-corp").errorCode == nil)
        #expect(ledger.reserve(executor, 5 * Self.dollar, tenant: "acme-corp").errorCode == nil)
    }

    @Test func subjectValuesAreLowerCasedSoMixedCaseClientsShareTheBudget() {
        var ledger = Self.pattern2()
        let shouting = Subject(tenant: "ACME-CORP", workspace: "Project-Alpha", agent: "PLANNER")
        #expect(ledger.reserve(shouting, Self.dollar, tenant: "acme-corp").errorCode == nil)
        #expect(ledger.balance("\(Self.workspace)/agent:planner").reserved.value == Self.dollar)
    }
}

/// A tiny deterministic generator for scenario tests (SplitMix64).
struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
