import ArgumentParser
import TallyClient
import TallyCore
import TallyTools

/// Said in the `--help` of every networked command.
let exitCodesDiscussion = """
    Exit codes: 0 success; 1 the ledger refused (its error code, HTTP status and message are printed \
    on stderr, e.g. `tally: BUDGET_EXCEEDED (409): ...`); 2 usage, connection or server error.
    """

/// Where the server is, which key to present and how to print; flags win over environment variables.
struct ClientOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The server's binary protocol address, host:port (env TALLY_ADDRESS).", valueName: "host:port"))
    var address: String?

    @Option(help: "A tenant API key (env TALLY_API_KEY); runtime commands use it when given.")
    var apiKey: String?

    @Option(help: "The admin key (env TALLY_ADMIN_KEY); admin commands use it when given.")
    var adminKey: String?

    @Option(help: "Output format: table or json.")
    var format = "table"

    func settings() throws -> ClientSettings {
        guard let format = OutputFormat(rawValue: format) else {
            throw ValidationError("--format must be table or json")
        }
        do {
            return try ClientSettings.resolve(address: address, apiKey: apiKey, adminKey: adminKey, format: format)
        } catch {
            throw ValidationError("--address \(error)")
        }
    }
}

/// The Cycles subject: the levels a request names. `--tenant` is also the tenant an admin key acts on.
struct SubjectOptions: ParsableArguments {
    @Option(help: "Tenant id (subject tenant; with the admin key, the tenant to act on).") var tenant: String?
    @Option(help: "Workspace of the subject.") var workspace: String?
    @Option(help: "App of the subject.") var app: String?
    @Option(help: "Workflow of the subject.") var workflow: String?
    @Option(help: "Agent of the subject.") var agent: String?
    @Option(help: "Toolset of the subject.") var toolset: String?
    @Option(
        name: .customLong("dimension"), help: ArgumentHelp("A subject dimension (repeatable).", valueName: "key=value"))
    var dimensions: [String] = []

    func subject() throws -> Subject {
        var pairs: [String: String] = [:]
        for dimension in dimensions {
            guard let equals = dimension.firstIndex(of: "=") else {
                throw ValidationError("--dimension needs key=value, not '\(dimension)'")
            }
            pairs[String(dimension[..<equals])] = String(dimension[dimension.index(after: equals)...])
        }
        return Subject(
            tenant: tenant, workspace: workspace, app: app, workflow: workflow, agent: agent, toolset: toolset,
            dimensions: pairs)
    }
}

/// The action a reservation, decision or debit is for.
struct ActionOptions: ParsableArguments {
    @Option(help: "Action kind, <category>.<operation> (e.g. llm.completion).") var actionKind = "cli.manual"
    @Option(help: "Action name: the model or tool (e.g. openai:gpt-4o-mini).") var actionName = "tally"
    @Option(name: .customLong("tag"), help: "An action tag (repeatable).") var tags: [String] = []

    var action: Action { Action(kind: actionKind, name: actionName, tags: tags) }
}

struct UnitOption: ParsableArguments {
    @Option(help: "Unit of the amounts: USD_MICROCENTS, TOKENS, CREDITS or RISK_POINTS.")
    var unit = "USD_MICROCENTS"

    func parsed() throws -> TallyCore.Unit { try usage { () throws(UsageError) in try RequestParsing.unit(unit) } }
}

struct IdempotencyOption: ParsableArguments {
    @Option(help: "Idempotency key; a fresh UUID when absent. Reuse one to retry a command safely.")
    var idempotencyKey: String?

    var key: String { idempotencyKey ?? RequestParsing.freshIdempotencyKey() }
}

/// Runs a parser of TallyTools and reports its complaint as a usage error (exit code 2).
func usage<T>(_ body: () throws(UsageError) -> T) throws -> T {
    do {
        return try body()
    } catch {
        throw ValidationError(error.message)
    }
}

/// Turns a command's exit code into the process's.
func finish(_ code: Int32) throws {
    if code != ClientCommand.exitSuccess { throw ExitCode(code) }
}
