import ArgumentParser
import TallyCore
import TallyTools
import TallyWire

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Create, revoke and list tenant API keys (admin key).",
        subcommands: [KeyCreate.self, KeyRevoke.self, KeyList.self])
}

struct KeyCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an API key and print its secret once.",
        discussion: "The secret is printed only by this command: the server keeps its SHA-256, never the secret. "
            + exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Option(help: "The tenant the key acts for.") var tenant: String
    @Option(help: "Display name.") var name: String
    @Option(help: "Description.") var description: String?
    @Option(
        name: .customLong("permission"), help: "A permission (repeatable); default: reservations:* and balances:read.")
    var permissions: [String] = []
    @Option(name: .customLong("scope-filter"), help: "A scope the key is limited to (repeatable).") var scopeFilter:
        [String] = []
    @Option(help: "Expiry, in Unix milliseconds.") var expiresAtMs: Int64?

    func run() async throws {
        let permissions = try permissions.map { text in
            try usage { () throws(UsageError) in try RequestParsing.permission(text) }
        }
        let request = CreateApiKeyRequest(
            tenantID: tenant, name: name, description: description,
            permissions: permissions.isEmpty ? nil : permissions,
            scopeFilter: scopeFilter, expiresAtMilliseconds: expiresAtMs)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                let (key, secret) = try await connection.createApiKey(request)
                return KeyTool.renderCreated(key, secret: secret)
            })
    }
}

struct KeyRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke an API key.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Option(help: "The key id (not the secret).") var id: String
    @Option(help: "Why, for the audit trail.") var reason: String?

    func run() async throws {
        let command = RevokeApiKeyCommand(keyID: id, reason: reason)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                KeyTool.render(try await connection.revokeApiKey(command))
            })
    }
}

struct KeyList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List API keys.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Option(help: "Only this tenant's keys.") var tenant: String?

    func run() async throws {
        let tenant = self.tenant
        try finish(
            await ClientCommand.run(try client.settings(), plane: .admin) { connection in
                KeyTool.render(try await connection.apiKeys(tenantID: tenant))
            })
    }
}
