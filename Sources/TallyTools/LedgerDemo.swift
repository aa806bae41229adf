import TallyCore

/// Plays the shared-workspace guide's pattern 2 through the ledger core, in memory, and narrates it:
/// a $50 workspace cap over planner $20, executor $30 and reviewer $10.
///
/// It exists so that the main command does something real before the server lands; it uses exactly the
/// `decide`/`apply` path the writer will use, with a fixed clock.
public struct LedgerDemo {
    private var state = LedgerState()
    private var now: Int64 = 1_800_000_000_000
    private var sequence = 0
    private var output: [String] = []
    private static let dollar: Int64 = 100_000_000
    private static let workspace = "tenant:acme-corp/workspace:project-alpha"

    public init() {}

    /// Runs the scenario and returns the narration, one line per entry.
    public mutating func run() -> [String] {
        say("Tally ledger demo: the shared-workspace budget patterns, decided by TallyCore in memory.")
        perform(.createTenant(CreateTenantCommand(tenantID: "acme-corp", name: "Acme Corp")), "create tenant acme-corp")
        for (scope, dollars) in [(Self.workspace, 50), ("\(Self.workspace)/agent:planner", 20),
                                 ("\(Self.workspace)/agent:executor", 30), ("\(Self.workspace)/agent:reviewer", 10)] {
            perform(.createBudget(CreateBudgetCommand(
                caller: .admin, tenantID: "acme-corp", scope: scope, unit: .usdMicrocents,
                allocated: Amount(Int64(dollars) * Self.dollar))), "budget \(scope) = $\(dollars)")
        }
        let planner = reserve("planner", dollars: 20)
        let executor = reserve("executor", dollars: 25)
        if let planner { commit(planner, dollars: 18) }
        if let executor { commit(executor, dollars: 27) }
        _ = reserve("reviewer", dollars: 8)
        if let cheaper = reserve("reviewer", dollars: 5) { commit(cheaper, dollars: 4) }
        printBalances()
        return output
    }

    private mutating func say(_ line: String) { output.append(line) }

    @discardableResult
    private mutating func perform(_ command: Command, _ label: String) -> Reply? {
        now += 1_000
        switch Ledger.execute(command, on: &state, now: now) {
        case .success(let decision):
            sequence += decision.events.count
            say("  ok      \(label)  [\(decision.events.map(\.typeName).joined(separator: ", "))]")
            return decision.reply
        case .failure(let refusal):
            say("  refused \(label): \(refusal.code.cyclesName) (\(refusal.code.httpStatus)) \(refusal.message)")
            return nil
        }
    }

    private mutating func reserve(_ agent: String, dollars: Int64) -> String? {
        sequence += 1
        let command = ReserveCommand(
            tenant: "acme-corp", caller: .tenant(id: "acme-corp", keyID: "demo"), reservationID: ReservationID("res-\(sequence)"),
            idempotency: IdempotencyStamp(key: "reserve-\(sequence)", payloadHash: .zero),
            subject: Subject(tenant: "acme-corp", workspace: "project-alpha", agent: agent),
            action: Action(kind: "llm.completion", name: "openai:gpt-4o-mini"),
            estimate: Quantity(.usdMicrocents, Amount(dollars * Self.dollar)))
        guard case .reserved(let reply, _)? = perform(.reserve(command), "\(agent) reserves $\(dollars)") else { return nil }
        return reply.reservationID.description
    }

    private mutating func commit(_ id: String, dollars: Int64) {
        let command = CommitCommand(
            caller: .tenant(id: "acme-corp", keyID: "demo"), reservationID: ReservationID(id),
            idempotency: IdempotencyStamp(key: "commit-\(id)", payloadHash: .zero),
            actual: Quantity(.usdMicrocents, Amount(dollars * Self.dollar)))
        perform(.commit(command), "commit \(id) at $\(dollars)")
    }

    private mutating func printBalances() {
        say("")
        say("scope                                                    allocated    remaining     reserved        spent")
        for budget in state.budgets.values.sorted(by: { $0.key < $1.key }) {
            func money(_ amount: Amount) -> String {
                let cents = amount.value / 1_000_000
                let sign = cents < 0 ? "-" : ""
                let text = "\(sign)$\(abs(cents) / 100).\(String(abs(cents) % 100).leftPadded(to: 2, with: "0"))"
                return text.leftPadded(to: 12, with: " ")
            }
            say("\(budget.scope.rawValue.rightPadded(to: 55)) \(money(budget.allocated)) \(money(budget.remaining)) \(money(budget.reserved)) \(money(budget.spent))")
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character) -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }

    func rightPadded(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
