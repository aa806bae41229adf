import ArgumentParser
import TallyClient
import TallyCore
import TallyTools
import TallyWire

// The runtime plane: reserve, commit, release, extend, decide and debit use the tenant API key (the admin key
// may only release). Each command sends one request with an idempotency key, fresh unless given.

struct Reserve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reserve an estimate on every budgeted scope of a subject.",
        discussion: "With --dry-run, only evaluates (ALLOW, ALLOW_WITH_CAPS or DENY) and changes nothing. "
            + exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var subject: SubjectOptions
    @OptionGroup var action: ActionOptions
    @Option(help: "The estimate, an integer in the unit.") var estimate: Int64
    @OptionGroup var unit: UnitOption
    @Option(help: "Time to live in milliseconds (default: the tenant's).") var ttlMs: Int64?
    @Option(help: "Grace period for commits after expiry, in milliseconds.") var graceMs: Int64?
    @Option(help: "Overage policy for the commit: REJECT, ALLOW_IF_AVAILABLE or ALLOW_WITH_OVERDRAFT.")
    var overagePolicy: String?
    @Flag(help: "Evaluate only; hold nothing.") var dryRun = false
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let estimate = try usage { () throws(UsageError) in try RequestParsing.amount(self.estimate, flag: "--estimate")
        }
        let request = ReserveRequest(
            idempotencyKey: idempotency.key, subject: try subject.subject(), action: action.action,
            estimate: Quantity(try unit.parsed(), estimate), ttlMilliseconds: ttlMs, graceMilliseconds: graceMs,
            overagePolicy: try overagePolicy.map { text in
                try usage { () throws(UsageError) in try RequestParsing.overagePolicy(text) }
            },
            dryRun: dryRun)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .runtime) { connection in
                ReservationTool.render(try await connection.reserve(request))
            })
    }
}

struct Commit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commit what a reservation actually cost.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Argument(help: "The reservation id.") var reservationID: String
    @Option(help: "The actual cost, an integer in the unit.") var actual: Int64
    @OptionGroup var unit: UnitOption
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let actual = try usage { () throws(UsageError) in try RequestParsing.amount(self.actual, flag: "--actual") }
        let request = CommitRequest(
            reservationID: ReservationID(reservationID), idempotencyKey: idempotency.key, actual: Quantity(try unit.parsed(), actual),
            metrics: metrics.metrics)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .runtime) { connection in
                ReservationTool.render(try await connection.commit(request))
            })
    }
}

struct Release: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Release a reservation's hold.",
        discussion: "The admin key may force-release any tenant's reservation. " + exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Argument(help: "The reservation id.") var reservationID: String
    @Option(help: "Why, for the audit trail.") var reason: String?
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let request = ReleaseRequest(reservationID: ReservationID(reservationID), idempotencyKey: idempotency.key, reason: reason)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .runtime) { connection in
                ReservationTool.render(try await connection.release(request))
            })
    }
}

struct Extend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extend a reservation's expiry.", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @Argument(help: "The reservation id.") var reservationID: String
    @Option(help: "How much later it expires, in milliseconds.") var byMs: Int64
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let request = ExtendRequest(
            reservationID: ReservationID(reservationID), idempotencyKey: idempotency.key, extendByMilliseconds: byMs)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .runtime) { connection in
                ReservationTool.render(try await connection.extend(request))
            })
    }
}

struct Decide: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask whether an estimate would be allowed, without holding anything.", discussion: exitCodesDiscussion
    )

    @OptionGroup var client: ClientOptions
    @OptionGroup var subject: SubjectOptions
    @OptionGroup var action: ActionOptions
    @Option(help: "The estimate, an integer in the unit.") var estimate: Int64
    @OptionGroup var unit: UnitOption
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let estimate = try usage { () throws(UsageError) in try RequestParsing.amount(self.estimate, flag: "--estimate")
        }
        let request = DecideRequest(
            idempotencyKey: idempotency.key, subject: try subject.subject(), action: action.action,
            estimate: Quantity(try unit.parsed(), estimate))
        try finish(
            await ClientCommand.run(try client.settings(), plane: .runtime) { connection in
                ReservationTool.render(try await connection.decide(request))
            })
    }
}

struct Debit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record spend that had no reservation (a direct debit).", discussion: exitCodesDiscussion)

    @OptionGroup var client: ClientOptions
    @OptionGroup var subject: SubjectOptions
    @OptionGroup var action: ActionOptions
    @Option(help: "The actual cost, an integer in the unit.") var actual: Int64
    @OptionGroup var unit: UnitOption
    @Option(help: "Overage policy: REJECT, ALLOW_IF_AVAILABLE or ALLOW_WITH_OVERDRAFT.") var overagePolicy: String?
    @OptionGroup var metrics: MetricsOptions
    @OptionGroup var idempotency: IdempotencyOption

    func run() async throws {
        let actual = try usage { () throws(UsageError) in try RequestParsing.amount(self.actual, flag: "--actual") }
        let request = DebitRequest(
            idempotencyKey: idempotency.key, subject: try subject.subject(), action: action.action,
            actual: Quantity(try unit.parsed(), actual),
            overagePolicy: try overagePolicy.map { text in
                try usage { () throws(UsageError) in try RequestParsing.overagePolicy(text) }
            },
            metrics: metrics.metrics)
        try finish(
            await ClientCommand.run(try client.settings(), plane: .runtime) { connection in
                ReservationTool.render(try await connection.debit(request))
            })
    }
}

/// Cycles standard metrics, stored with a commit or debit for the audit trail.
struct MetricsOptions: ParsableArguments {
    @Option(help: "Input tokens.") var tokensInput: Int64?
    @Option(help: "Output tokens.") var tokensOutput: Int64?
    @Option(help: "Latency in milliseconds.") var latencyMs: Int64?
    @Option(help: "Model version.") var modelVersion: String?

    var metrics: StandardMetrics? {
        if tokensInput == nil && tokensOutput == nil && latencyMs == nil && modelVersion == nil { return nil }
        return StandardMetrics(
            tokensInput: tokensInput, tokensOutput: tokensOutput, latencyMilliseconds: latencyMs,
            modelVersion: modelVersion)
    }
}
