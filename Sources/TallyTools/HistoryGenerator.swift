import Foundation
import Synchronization
import TallyCore
import TallyStore

/// Fills a fresh data directory with a long, realistic agent history through the real writer (durable
/// group commit), for the archive, replay and audit benchmarks: several tenants, each with workspaces,
/// workflows and planner/executor/reviewer agents under budgets at every level, calling a handful of
/// models and tools. Most reservations are committed (under, at or over the estimate); some are released,
/// extended or left to expire; some spend is recorded as direct debits. Deterministic for a seed, apart
/// from the wall-clock timestamps the writer stamps.
public struct HistoryGenerator: Sendable {
    public var directory: String
    public var events: UInt64
    public var seed: UInt64 = 1
    /// Concurrent simulated agents; each waits for its own answers, so this is the writer's batch size.
    public var agents = 512

    public init(directory: String, events: UInt64) {
        self.directory = directory
        self.events = events
    }

    static let tenants = ["acme-corp", "globex", "initech", "umbrella", "hooli"]
    static let workspaces = ["prod", "staging", "research"]
    static let roles = ["planner", "executor", "reviewer", "critic"]
    static let actions: [(kind: String, name: String, price: Int64)] = [
        ("llm.completion", "openai:gpt-4o", 2_500_000), ("llm.completion", "openai:gpt-4o-mini", 150_000),
        ("llm.completion", "anthropic:claude-sonnet", 3_000_000), ("llm.embedding", "openai:text-embedding-3-small", 20_000),
        ("tool.search", "web-search", 500_000), ("tool.code", "sandbox-run", 800_000),
    ]

    /// Generates until the log holds at least `events` events; `progress` gets the running count.
    public func run(progress: @escaping @Sendable (UInt64) -> Void = { _ in }) async throws -> UInt64 {
        guard !FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw BenchError("\(directory) already holds a ledger; generate into a new directory")
        }
        let store = try LedgerStore(directory: directory)
        defer { store.close() }
        func must(_ command: Command) async throws {
            if case .failure(let refusal) = try await store.execute(command) { throw BenchError("setup refused: \(refusal)") }
        }
        let plenty = Amount(Int64.max / 1_000)
        for tenant in Self.tenants {
            try await must(.createTenant(CreateTenantCommand(tenantID: tenant, name: tenant.capitalized)))
            try await must(.createBudget(Self.budget(tenant, "tenant:\(tenant)", plenty)))
            for workspace in Self.workspaces {
                try await must(.createBudget(Self.budget(tenant, "tenant:\(tenant)/workspace:\(workspace)", plenty)))
                for role in Self.roles {
                    try await must(.createBudget(Self.budget(tenant, "tenant:\(tenant)/workspace:\(workspace)/agent:\(role)", plenty)))
                }
            }
        }
        let written = EventCounter(try store.lastSequence())
        let target = events
        let seed = seed
        try await withThrowingTaskGroup(of: Void.self) { group in
            for agent in 0..<agents {
                group.addTask {
                    var random = SplitMix(seed: seed &+ UInt64(agent) &* 0x9E37_79B9_7F4A_7C15)
                    var step = 0
                    while written.value.load(ordering: .relaxed) < target {
                        step += 1
                        let added = try await Self.step(store, agent: agent, step: step, &random)
                        let total = written.value.add(added, ordering: .relaxed).newValue
                        if total / 100_000 != (total - added) / 100_000 { progress(total) }
                    }
                }
            }
            try await group.waitForAll()
        }
        return try store.lastSequence()
    }

    private static func budget(_ tenant: String, _ scope: String, _ amount: Amount) -> CreateBudgetCommand {
        CreateBudgetCommand(
            caller: .admin, tenantID: tenant, scope: scope, unit: .usdMicrocents, allocated: amount, overdraftLimit: .zero,
            commitOveragePolicy: nil, rolloverPolicy: .none, caps: nil, periodStartMilliseconds: nil, periodEndMilliseconds: nil, metadata: nil)
    }

    /// One agent action; answers how many events it added.
    private static func step(_ store: LedgerStore, agent: Int, step: Int, _ random: inout SplitMix) async throws -> UInt64 {
        let tenant = tenants[agent % tenants.count]
        let caller = Caller.tenant(id: tenant, keyID: "gen-\(tenant)")
        let subject = Subject(
            tenant: tenant, workspace: workspaces[Int(random.next() % 3)],
            workflow: random.next() % 4 == 0 ? "task-\(random.next() % 500)" : nil, agent: roles[Int(random.next() % 4)])
        let action = actions[Int(random.next() % UInt64(actions.count))]
        let estimate = action.price / 2 + Int64(random.next() % UInt64(action.price))
        let key = "gen-\(agent)-\(step)"
        let stamp = IdempotencyStamp(key: key, payloadHash: Digest256(words: (UInt64(agent), UInt64(step), 0, 0)))
        if random.next() % 10 == 0 {
            let debit = DebitCommand(
                tenant: tenant, caller: caller, eventID: "evt-\(agent)-\(step)", idempotency: stamp, subject: subject,
                action: Action(kind: action.kind, name: action.name), actual: Quantity(.usdMicrocents, Amount(estimate)),
                overagePolicy: nil, metrics: nil, clientTimeMilliseconds: nil, metadata: nil)
            return try await store.execute(.recordDebit(debit)).isSuccess ? 1 : 0
        }
        let id = ReservationID("res-\(agent)-\(step)")
        let reserve = ReserveCommand(
            tenant: tenant, caller: caller, reservationID: id, idempotency: stamp, subject: subject,
            action: Action(kind: action.kind, name: action.name), estimate: Quantity(.usdMicrocents, Amount(estimate)),
            ttlMilliseconds: 60_000, graceMilliseconds: nil, overagePolicy: nil, dryRun: false, metadata: nil)
        guard try await store.execute(.reserve(reserve)).isSuccess else { return 0 }
        var added: UInt64 = 1
        let roll = random.next() % 100
        if roll < 5 {
            let extend = ExtendCommand(caller: caller, reservationID: id, idempotency: stamp, extendByMilliseconds: 30_000, metadata: nil)
            if try await store.execute(.extend(extend)).isSuccess { added += 1 }
        }
        if roll < 12 {
            let release = ReleaseCommand(caller: caller, reservationID: id, idempotency: stamp, reason: "tool failed")
            if try await store.execute(.release(release)).isSuccess { added += 1 }
        } else {
            // Actual cost: mostly under the estimate, sometimes over (capped by ALLOW_IF_AVAILABLE).
            let actual = max(0, estimate * Int64(70 + random.next() % 40) / 100)
            let commit = CommitCommand(
                caller: caller, reservationID: id, idempotency: stamp, actual: Quantity(.usdMicrocents, Amount(actual)),
                metrics: StandardMetrics(tokensInput: Int64(random.next() % 4_000), tokensOutput: Int64(random.next() % 1_000), latencyMilliseconds: Int64(random.next() % 3_000)),
                metadata: nil)
            if try await store.execute(.commit(commit)).isSuccess { added += 1 }
        }
        return added
    }
}

private final class EventCounter: Sendable {
    let value: Atomic<UInt64>
    init(_ start: UInt64) { value = Atomic(start) }
}

/// SplitMix64: a tiny seeded generator, so a history is the same for a seed.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Result {
    fileprivate var isSuccess: Bool { if case .success = self { true } else { false } }
}
