import Foundation
import Synchronization
import TallyArchive
import TallyCore
import TallyStore

/// A fresh data directory and archive directory per test (on tmpfs when there is one, because the
/// workloads flush thousands of times), a hand-moved clock, and a random workload that records the
/// writer's state at sampled instants.
final class ArchiveFixture: Sendable {
    let root: String
    let dataDirectory: String
    let archivePath: String
    let clock = TestClock()

    init() {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
        root = base + "tally-archive-test-" + UUID().uuidString
        dataDirectory = root + "/data"
        archivePath = root + "/archive"
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    var archive: ArchiveDirectory { ArchiveDirectory(path: archivePath) }
    var now: Int64 { clock.now }

    func open() throws -> LedgerStore {
        var options = StoreOptions()
        options.mapSizeBytes = 1 << 28
        options.expirySweepIntervalMilliseconds = 3_600_000_000
        options.clock = { [clock] in clock.now }
        return try LedgerStore(directory: dataDirectory, options: options)
    }

    func configuration(everyEvents: UInt64, retain: UInt64? = nil, checkpointEvery: UInt64 = 25_000) -> ArchiverConfiguration {
        var configuration = ArchiverConfiguration(directory: archivePath)
        configuration.checkpointEveryEvents = checkpointEvery
        configuration.everyEvents = everyEvents
        configuration.everySeconds = nil
        configuration.retainLiveEvents = retain
        return configuration
    }

    func sealer(_ store: LedgerStore, everyEvents: UInt64, retain: UInt64? = nil, checkpointEvery: UInt64 = 25_000) -> ArchiveSealer {
        ArchiveSealer(log: store, configuration: configuration(everyEvents: everyEvents, retain: retain, checkpointEvery: checkpointEvery)) { sequence, chain in
            try store.trimLogBlocking(through: sequence, chain: chain)
        }
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let value = Mutex<Int64>(1_800_000_000_000)

    var now: Int64 { value.withLock { $0 } }

    func advance(_ milliseconds: Int64) { value.withLock { $0 += milliseconds } }
}

/// The state the writer had durably reached at one instant of a run.
struct Sample {
    var time: Int64
    var sequence: UInt64
    var state: LedgerState
}

/// A seeded random workload of reserves, commits, releases, extensions, debits and fundings over a few
/// workspaces and agents, with the clock moving 0-1500 ms between commands (so some share a timestamp).
struct Workload {
    var random: UInt64
    var open: [ReservationID] = []
    var step = 0
    let tenant: String

    init(seed: UInt64, tenant: String = "acme") {
        random = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        self.tenant = tenant
    }

    mutating func next(_ bound: UInt64) -> UInt64 {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return random % bound
    }

    func setup(_ store: LedgerStore) throws {
        _ = try store.executeBlocking(.createTenant(CreateTenantCommand(tenantID: tenant, name: tenant))).get()
        var budgets = [("tenant:\(tenant)", Int64(1) << 50)]
        for workspace in 0..<3 {
            budgets.append(("tenant:\(tenant)/workspace:w\(workspace)", Int64(1) << 40))
            for agent in 0..<2 { budgets.append(("tenant:\(tenant)/workspace:w\(workspace)/agent:a\(agent)", Int64(1) << 30)) }
        }
        for (scope, amount) in budgets {
            _ = try store.executeBlocking(.createBudget(CreateBudgetCommand(
                caller: .admin, tenantID: tenant, scope: scope, unit: .usdMicrocents, allocated: Amount(amount)))).get()
        }
    }

    /// Runs `count` commands; after each, `after` gets the clock value the command was stamped with.
    mutating func run(_ store: LedgerStore, fixture: ArchiveFixture, count: Int, after: (Int64) throws -> Void = { _ in }) throws {
        for _ in 0..<count {
            let advance = Int64(next(4) == 0 ? 0 : next(1_500))
            fixture.clock.advance(advance)
            _ = try store.executeBlocking(command())
            try after(fixture.now)
        }
    }

    private mutating func command() -> Command {
        step += 1
        let caller = Caller.tenant(id: tenant, keyID: "k\(next(3))")
        // Real clients send random idempotency keys and the payload hash is a SHA-256: both are as
        // incompressible here as they are in production, so compression measured on this is honest.
        let stamp = IdempotencyStamp(
            key: "\(tenant)-\(step)-\(String(next(UInt64.max), radix: 36))",
            payloadHash: Digest256(words: (next(UInt64.max), next(UInt64.max), next(UInt64.max), next(UInt64.max))))
        let subject = Subject(workspace: "w\(next(3))", agent: "a\(next(3))")
        switch (next(6), open.isEmpty) {
        case (0, false), (1, false):
            let id = open.remove(at: Int(next(UInt64(open.count))))
            return .commit(CommitCommand(caller: caller, reservationID: id, idempotency: stamp,
                                         actual: Quantity(.usdMicrocents, Amount(Int64(next(3_000))))))
        case (2, false):
            let id = open.removeLast()
            return .release(ReleaseCommand(caller: caller, reservationID: id, idempotency: stamp))
        case (3, _):
            return .recordDebit(DebitCommand(
                tenant: tenant, caller: caller, eventID: "e-\(stamp.key)", idempotency: stamp, subject: subject,
                action: Action(kind: next(2) == 0 ? "tool.search" : "tool.fetch", name: "web"),
                actual: Quantity(.usdMicrocents, Amount(Int64(next(800))))))
        default:
            let id: ReservationID = "r-\(stamp.key)"
            open.append(id)
            return .reserve(ReserveCommand(
                tenant: tenant, caller: caller, reservationID: id, idempotency: stamp, subject: subject,
                action: Action(kind: "llm.completion", name: next(2) == 0 ? "openai:gpt-4o-mini" : "anthropic:claude"),
                estimate: Quantity(.usdMicrocents, Amount(Int64(next(2_000)))), ttlMilliseconds: 3_600_000))
        }
    }
}
