import ArgumentParser
import TallyCore
import TallyTools

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "Create, list and update tenants (admin key).",
        subcommands: [TenantCreate.self, TenantList.self, TenantUpdate.self])
}

/// Tenant defaults shared by create and update.
struct TenantDefaultsOptions: ParsableArguments {
    @Option(help: "Default commit overage policy: REJECT, ALLOW_IF_AVAILABLE or ALLOW_WITH_OVERDRAFT.")
    var defaultOveragePolicy: String?
    @Option(help: "Default reservation TTL in milliseconds.") var defaultTtlMs: Int64?
    @Option(help: "Maximum reservation TTL in milliseconds.") var maxTtlMs: Int64?
    @Option(help: "Maximum extensions per reservation.") var maxExtensions: Int?

    func policy() throws -> OveragePolicy? {
        try defaultOveragePolicy.map { text in
            try usage { () throws(UsageError) in try RequestParsing.overagePolicy(text) }
        }
    }
}

struct TenantCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a tenant.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Option(help: "Tenant id: 3-64 characters of a-z, 0-9 and '-'.") var id: String
    @Option(help: "Display name.") var name: String
    @Option(help: "Parent tenant id.") var parent: String?
    @OptionGroup var defaults: TenantDefaultsOptions

    func run() async throws {
        let command = CreateTenantCommand(
            tenantID: id, name: name, parentTenantID: parent, defaultOveragePolicy: try defaults.policy(),
            defaultTTLMilliseconds: defaults.defaultTtlMs, maxTTLMilliseconds: defaults.maxTtlMs,
            maxExtensions: defaults.maxExtensions)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                let (tenant, created) = try await connection.createTenant(command)
                return TenantTool.render(tenant, created: created)
            })
    }
}

struct TenantList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List tenants.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Option(help: "Only tenants in this status: ACTIVE, SUSPENDED or CLOSED.") var status: String?

    func run() async throws {
        let status = try status.map { text in
            try usage { () throws(UsageError) in try RequestParsing.tenantStatus(text) }
        }
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                TenantTool.render(try await connection.tenants(status: status))
            })
    }
}

struct TenantUpdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Change a tenant's name, status or defaults.",
        discussion: """
            Setting --status CLOSED releases the tenant's active reservations, closes its budgets and revokes \
            its keys. \(exitCodesDiscussion)
            """)

    @OptionGroup var client: ClientOptions
    @Option(help: "Tenant id.") var id: String
    @Option(help: "New display name.") var name: String?
    @Option(help: "New status: ACTIVE, SUSPENDED or CLOSED.") var status: String?
    @OptionGroup var defaults: TenantDefaultsOptions

    func run() async throws {
        let status = try status.map { text in
            try usage { () throws(UsageError) in try RequestParsing.tenantStatus(text) }
        }
        let command = UpdateTenantCommand(
            tenantID: id, name: name, status: status, defaultOveragePolicy: try defaults.policy(),
            defaultTTLMilliseconds: defaults.defaultTtlMs, maxTTLMilliseconds: defaults.maxTtlMs,
            maxExtensions: defaults.maxExtensions)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                TenantTool.render(try await connection.updateTenant(command))
            })
    }
}
