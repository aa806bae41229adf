import ArgumentParser
import TallyClient
import TallyCore
import TallyTools
import TallyWire

struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget", abstract: "Create, fund, change, freeze and list budgets.",
        discussion: """
            Uses the admin key when given; creating, funding and listing also work with an API key holding \
            budgets:write.
            """,
        subcommands: [
            BudgetCreate.self, BudgetFund.self, BudgetUpdate.self, BudgetFreeze.self, BudgetUnfreeze.self,
            BudgetList.self,
        ])
}

/// The budget a command addresses: a scope and a unit.
struct BudgetKeyOptions: ParsableArguments {
    @Option(help: "The budget's scope, e.g. tenant:acme/workspace:prod.") var scope: String
    @OptionGroup var unit: UnitOption

    /// The tenant an admin key acts on: the scope's first segment (`tenant:<id>`).
    var scopeTenant: String? {
        guard scope.lowercased().hasPrefix("tenant:") else { return nil }
        return String(scope.dropFirst("tenant:".count).prefix(while: { $0 != "/" })).lowercased()
    }
}

struct BudgetCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a budget on a scope.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var budget: BudgetKeyOptions
    @Option(help: "Allocated amount, an integer in the unit.") var allocated: Int64
    @Option(help: "Debt the budget may carry (ALLOW_WITH_OVERDRAFT).") var overdraftLimit: Int64 = 0
    @Option(help: "Commit overage policy of this budget.") var overagePolicy: String?
    @Option(help: "Tenant id (admin key only; default: the scope's tenant).") var tenant: String?

    func run() async throws {
        let settings = try client.settings()
        let adminActs = if case .adminKey = settings.credential(for: .admin) { true } else { false }
        let policy = try overagePolicy.map { text in
            try usage { () throws(UsageError) in try RequestParsing.overagePolicy(text) }
        }
        let request = CreateBudgetRequest(
            tenantID: adminActs ? (tenant ?? budget.scopeTenant) : tenant, scope: budget.scope,
            unit: try budget.unit.parsed(),
            allocated: try usage { () throws(UsageError) in try RequestParsing.amount(allocated, flag: "--allocated") },
            overdraftLimit: try usage { () throws(UsageError) in
                try RequestParsing.amount(overdraftLimit, flag: "--overdraft-limit")
            },
            commitOveragePolicy: policy)
        try finish(
            await ClientCommand.run(settings, plane: .admin) { connection in
                BalanceTool.render(try await connection.createBudget(request))
            })
    }
}

struct BudgetFund: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fund", abstract: "Credit, debit, reset or repay a budget.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var budget: BudgetKeyOptions
    @Option(help: "CREDIT, DEBIT, RESET, RESET_SPENT or REPAY_DEBT.") var operation = "CREDIT"
    @Option(help: "The amount, an integer in the unit.") var amount: Int64
    @Option(help: "RESET_SPENT only: the spent figure to set (default 0).") var spent: Int64?
    @Option(help: "Why, for the audit trail.") var reason: String?
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let request = FundBudgetRequest(
            scope: budget.scope, unit: try budget.unit.parsed(),
            operation: try usage { () throws(UsageError) in try RequestParsing.fundingOperation(operation) },
            amount: try usage { () throws(UsageError) in try RequestParsing.amount(amount, flag: "--amount") },
            spent: try spent.map { value in
                try usage { () throws(UsageError) in try RequestParsing.amount(value, flag: "--spent") }
            },
            reason: reason, idempotencyKey: idempotency.key)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                BalanceTool.render(try await connection.fundBudget(request))
            })
    }
}

struct BudgetUpdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change a budget's overdraft limit or overage policy.",
        discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var budget: BudgetKeyOptions
    @Option(help: "New overdraft limit.") var overdraftLimit: Int64?
    @Option(help: "New commit overage policy.") var overagePolicy: String?

    func run() async throws {
        let request = UpdateBudgetRequest(
            scope: budget.scope, unit: try budget.unit.parsed(),
            overdraftLimit: try overdraftLimit.map { value in
                try usage { () throws(UsageError) in try RequestParsing.amount(value, flag: "--overdraft-limit") }
            },
            commitOveragePolicy: try overagePolicy.map { text in
                try usage { () throws(UsageError) in try RequestParsing.overagePolicy(text) }
            })
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                BalanceTool.render(try await connection.updateBudget(request))
            })
    }
}

struct BudgetFreeze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freeze", abstract: "Freeze a budget: no new reservations, debits or funding.",
        discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var budget: BudgetKeyOptions
    @Option(help: "Why, for the audit trail.") var reason: String?

    func run() async throws {
        let request = BudgetStatusRequest(scope: budget.scope, unit: try budget.unit.parsed(), reason: reason)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                BalanceTool.render(try await connection.freezeBudget(request))
            })
    }
}

struct BudgetUnfreeze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unfreeze", abstract: "Unfreeze a budget.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var budget: BudgetKeyOptions
    @Option(help: "Why, for the audit trail.") var reason: String?

    func run() async throws {
        let request = BudgetStatusRequest(scope: budget.scope, unit: try budget.unit.parsed(), reason: reason)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                BalanceTool.render(try await connection.unfreezeBudget(request))
            })
    }
}

/// Filters of `budget list` and `balances`.
struct BalanceFilterOptions: ParsableArguments {
    @Option(help: "Only budgets at or below this scope.") var scope: String?
    @Option(help: "Only budgets in this unit.") var unit: String?
    @Option(help: "Only budgets in this status: ACTIVE, FROZEN or CLOSED.") var status: String?

    func request(_ subject: Subject, tenant: String?) throws -> BalancesRequest {
        let scopeTenant = scope.flatMap { scope -> String? in
            guard scope.lowercased().hasPrefix("tenant:") else { return nil }
            return String(scope.dropFirst("tenant:".count).prefix(while: { $0 != "/" })).lowercased()
        }
        return BalancesRequest(
            tenant: tenant ?? scopeTenant, scopePrefix: scope,
            unit: try unit.map { text in try usage { () throws(UsageError) in try RequestParsing.unit(text) } },
            status: try status.map { text in
                try usage { () throws(UsageError) in try RequestParsing.budgetStatus(text) }
            },
            segments: RequestParsing.segments(subject))
    }
}

struct BudgetList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List budgets with their balances.",
        discussion: "With the admin key, name the tenant with --tenant or a --scope under it. " + exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Option(help: "The tenant (required with the admin key unless --scope names it).") var tenant: String?
    @OptionGroup var filters: BalanceFilterOptions

    func run() async throws {
        let settings = try client.settings()
        let adminActs = if case .adminKey = settings.credential(for: .admin) { true } else { false }
        var request = try filters.request(Subject(), tenant: tenant)
        if !adminActs && tenant == nil { request.tenant = nil }
        try finish(
            await ClientCommand.run(settings, plane: .admin) { [request] connection in
                BalanceTool.render(try await connection.balances(request))
            })
    }
}
