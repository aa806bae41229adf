import Testing
@testable import TallyCore

/// Check precedence on the reserve path (semantics 2.1 step 3, 2.2, 2.3): scopes are checked tenant first,
/// and within a scope FROZEN, CLOSED, over-limit, debt without overdraft, then insufficient remaining.
@Suite struct ReservePrecedenceTests {
    enum Condition: String, Sendable {
        case frozen, closed, overLimit, debt, short
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        /// Conditions per scope: "t" tenant, "w" workspace, "a" agent.
        var conditions: [String: [Condition]]
        var expected: ErrorCode?

        var testDescription: String { name }
    }

    static let scopes = ["t": "tenant:acme", "w": "tenant:acme/workspace:w", "a": "tenant:acme/workspace:w/agent:a"]

    static let rows: [Row] = [
        Row(name: "all healthy", conditions: [:], expected: nil),
        Row(name: "tenant short beats agent frozen", conditions: ["t": [.short], "a": [.frozen]], expected: .budgetExceeded),
        Row(name: "tenant frozen beats agent short", conditions: ["t": [.frozen], "a": [.short]], expected: .budgetFrozen),
        Row(name: "workspace over limit beats agent frozen", conditions: ["w": [.overLimit], "a": [.frozen]], expected: .overdraftLimitExceeded),
        Row(name: "workspace debt beats agent closed", conditions: ["w": [.debt], "a": [.closed]], expected: .debtOutstanding),
        Row(name: "frozen beats every other condition on one scope", conditions: ["a": [.frozen, .overLimit, .debt, .short]], expected: .budgetFrozen),
        Row(name: "closed beats over limit, debt and short", conditions: ["a": [.closed, .overLimit, .debt, .short]], expected: .budgetClosed),
        Row(name: "over limit beats debt and short", conditions: ["a": [.overLimit, .debt, .short]], expected: .overdraftLimitExceeded),
        Row(name: "debt beats short", conditions: ["a": [.debt, .short]], expected: .debtOutstanding),
        Row(name: "short alone", conditions: ["w": [.short]], expected: .budgetExceeded),
    ]

    /// Three budgets of 1000 with the row's conditions forced onto them; the reserve asks for 100.
    static func ledger(_ row: Row) -> LedgerScenario {
        var ledger = LedgerScenario()
        for (_, scope) in scopes.sorted(by: { $0.value < $1.value }) { ledger.budget(scope, 1000) }
        for (label, conditions) in row.conditions {
            let key = BudgetKey(try! ScopePath(parsing: scopes[label]!), .usdMicrocents)
            var budget = ledger.state.budgets[key]!
            for condition in conditions {
                switch condition {
                case .frozen: budget.status = .frozen
                case .closed: budget.status = .closed
                case .overLimit: budget.isOverLimit = true
                case .debt:
                    budget.debt = 10
                    budget.remaining = Amount(budget.remaining.value - 10)
                case .short:
                    budget.spent = Amount(budget.spent.value + 950)
                    budget.remaining = Amount(budget.remaining.value - 950)
                }
            }
            #expect(budget.satisfiesInvariant)
            ledger.state.budgets[key] = budget
        }
        return ledger
    }

    static let agent = Subject(workspace: "w", agent: "a")

    @Test(arguments: rows)
    func liveReserveReportsTheFirstFailingCheck(row: Row) {
        var ledger = Self.ledger(row)
        let before = ledger.state.budgets
        let result = ledger.reserve(Self.agent, 100)
        #expect(result.errorCode == row.expected)
        if row.expected != nil {
            #expect(ledger.state.budgets == before, "a denial must leave every balance unchanged")
            #expect(ledger.state.reservations.isEmpty)
        }
    }

    @Test(arguments: rows)
    func dryRunAndDecideReportTheSameCheckAsADenyReason(row: Row) {
        var ledger = Self.ledger(row)
        let before = ledger.state.budgets
        for result in [ledger.reserve(Self.agent, 100, dryRun: true), ledger.decide(Self.agent, 100)] {
            guard case .evaluated(let reply)? = result.decision?.reply else {
                Issue.record("an evaluation answers 200 with a decision, got \(result)")
                continue
            }
            #expect(reply.reasonCode?.errorCode == row.expected)
            #expect(reply.decision == (row.expected == nil ? .allow : .deny))
            #expect(reply.affectedScopes.map(\.rawValue) == [Self.scopes["t"]!, Self.scopes["w"]!, Self.scopes["a"]!])
        }
        #expect(ledger.state.budgets == before, "evaluations never change a balance")
        #expect(ledger.state.reservations.isEmpty)
    }

    @Test func debtWithinAPositiveOverdraftLimitDoesNotBlockANewReservation() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 1000, overdraft: 100)
        let key = BudgetKey(try! ScopePath(parsing: "tenant:acme"), .usdMicrocents)
        ledger.state.budgets[key]!.debt = 50
        ledger.state.budgets[key]!.remaining = 950
        #expect(ledger.reserve(Subject(agent: "a"), 900).errorCode == nil)
        #expect(ledger.reserve(Subject(agent: "a"), 51).errorCode == .budgetExceeded, "debt lowers remaining")
    }

    @Test func aBudgetInAnotherUnitIsAUnitMismatchWithDetails() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme/workspace:w", 1000, unit: .tokens)
        ledger.budget("tenant:acme/workspace:w", 1000, unit: .credits)
        let live = ledger.reserve(Subject(workspace: "w", agent: "a"), 10)
        guard case .failure(let refusal) = live else {
            Issue.record("expected UNIT_MISMATCH")
            return
        }
        #expect(refusal.code == .unitMismatch)
        #expect(refusal.unitMismatch == UnitMismatchDetails(
            scope: try! ScopePath(parsing: "tenant:acme/workspace:w"), requestedUnit: .usdMicrocents,
            expectedUnits: [.tokens, .credits]))
        // A wrong unit is a request error on the evaluation paths too, never a DENY.
        #expect(ledger.reserve(Subject(workspace: "w"), 10, dryRun: true).errorCode == .unitMismatch)
        #expect(ledger.decide(Subject(workspace: "w"), 10).errorCode == .unitMismatch)
    }

    @Test func noBudgetInAnyUnitIsNotFoundLiveAndBudgetNotFoundOnEvaluations() {
        var ledger = LedgerScenario()
        #expect(ledger.reserve(Subject(workspace: "w"), 10).errorCode == .notFound)
        guard case .evaluated(let reply)? = ledger.decide(Subject(workspace: "w"), 10).decision?.reply else {
            Issue.record("decide answers DENY")
            return
        }
        #expect(reply.reasonCode == .budgetNotFound)
    }

    @Test func aBudgetInTheRequestedUnitOnAnyScopeMeansOtherUnitsAreIgnored() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 1000)
        ledger.budget("tenant:acme/workspace:w/agent:a", 5, unit: .tokens)
        let id = ledger.hold(Subject(workspace: "w", agent: "a"), 100)
        #expect(ledger.state.reservations[id]?.budgetedScopes.map(\.rawValue) == ["tenant:acme"])
        #expect(ledger.balance("tenant:acme/workspace:w/agent:a", unit: .tokens).reserved == 0)
    }

    @Test func theLowestBudgetInTheHierarchyGoverns() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 1000)
        ledger.budget("tenant:acme/workspace:w", 300)
        ledger.budget("tenant:acme/workspace:w/agent:a", 500)
        #expect(ledger.reserve(Subject(workspace: "w", agent: "a"), 301).errorCode == .budgetExceeded)
        #expect(ledger.reserve(Subject(workspace: "w", agent: "a"), 300).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [1000, 700, 300, 0, 0])
        #expect(ledger.figures("tenant:acme/workspace:w") == [300, 0, 300, 0, 0])
        #expect(ledger.figures("tenant:acme/workspace:w/agent:a") == [500, 200, 300, 0, 0])
    }

    @Test func capsOfTheDeepestBudgetedScopeTurnAllowIntoAllowWithCaps() {
        var ledger = LedgerScenario()
        let caps = Caps(maxTokens: 512, toolDenylist: ["shell"])
        ledger.budget("tenant:acme", 1000, caps: Caps(maxTokens: 1))
        ledger.budget("tenant:acme/workspace:w", 1000, caps: caps)
        guard case .reserved(let reply, _)? = ledger.reserve(Subject(workspace: "w", agent: "a"), 10).decision?.reply else {
            Issue.record("expected a reservation")
            return
        }
        #expect(reply.decision == .allowWithCaps)
        #expect(reply.caps == caps)
        guard case .evaluated(let evaluation)? = ledger.decide(Subject(workspace: "w"), 10).decision?.reply else { return }
        #expect(evaluation.decision == .allowWithCaps && evaluation.caps == caps)
        guard case .reserved(let plain, _)? = ledger.reserve(Subject(workspace: "other"), 10).decision?.reply else { return }
        #expect(plain.decision == .allowWithCaps && plain.caps == Caps(maxTokens: 1), "the tenant is the deepest budgeted scope here")
    }
}
