import Foundation
import Synchronization
@testable import TallyCore
@testable import TallyStore

/// A fresh temporary data directory per test, removed afterwards, and helpers to build commands.
// Safe: the clock value is a Mutex; the directory path never changes.
final class StoreFixture: @unchecked Sendable {  // Safe: see the comment above
    let directory: String
    let clock = TestClock()

    init() {
        directory = NSTemporaryDirectory() + "tally-store-test-" + UUID().uuidString
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func options(sweepEveryMilliseconds: Int64 = 3_600_000, mapSizeBytes: Int = 1 << 26, mapSizeBytesMax: Int = 1 << 30) -> StoreOptions {
        var options = StoreOptions()
        options.mapSizeBytes = mapSizeBytes
        options.mapSizeBytesMax = mapSizeBytesMax
        options.expirySweepIntervalMilliseconds = sweepEveryMilliseconds
        options.clock = { [clock] in clock.now }
        return options
    }

    func advance(_ milliseconds: Int64) { clock.advance(milliseconds) }

    func open(_ options: StoreOptions? = nil) throws -> LedgerStore {
        try LedgerStore(directory: directory, options: options ?? self.options())
    }

    /// Polls `condition` every 10 ms for at most five seconds; whether it came true.
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return condition()
    }

    static func setup(_ store: LedgerStore, tenant: String = "acme", budgets: [(String, Int64)]) throws {
        _ = try store.executeBlocking(.createTenant(CreateTenantCommand(tenantID: tenant, name: tenant))).get()
        for (scope, amount) in budgets {
            _ = try store.executeBlocking(.createBudget(CreateBudgetCommand(
                caller: .admin, tenantID: tenant, scope: scope, unit: .usdMicrocents, allocated: Amount(amount)))).get()
        }
    }

    static func reserve(_ id: String, _ amount: Int64, key: String? = nil, agent: String = "a", ttl: Int64? = nil, grace: Int64? = nil) -> Command {
        .reserve(ReserveCommand(
            tenant: "acme", caller: .tenant(id: "acme", keyID: "k"), reservationID: ReservationID(id),
            idempotency: IdempotencyStamp(key: key ?? "key-\(id)", payloadHash: Digest256(words: (UInt64(amount), 1, 2, 3))),
            subject: Subject(workspace: "w", agent: agent), action: Action(kind: "llm", name: "m"),
            estimate: Quantity(.usdMicrocents, Amount(amount)), ttlMilliseconds: ttl, graceMilliseconds: grace))
    }

    static func commit(_ id: String, _ actual: Int64, key: String? = nil) -> Command {
        .commit(CommitCommand(
            caller: .tenant(id: "acme", keyID: "k"), reservationID: ReservationID(id),
            idempotency: IdempotencyStamp(key: key ?? "commit-\(id)", payloadHash: Digest256(words: (UInt64(actual), 4, 5, 6))),
            actual: Quantity(.usdMicrocents, Amount(actual))))
    }

    static func release(_ id: String) -> Command {
        .release(ReleaseCommand(
            caller: .tenant(id: "acme", keyID: "k"), reservationID: ReservationID(id),
            idempotency: IdempotencyStamp(key: "release-\(id)", payloadHash: .zero)))
    }

    /// Every event in the log, in order.
    static func allEvents(_ store: LedgerStore) throws -> [StoredEvent] {
        try store.events(from: 1, limit: Int.max)
    }

    /// Folding the log from an empty state.
    static func replay(_ store: LedgerStore) throws -> LedgerState {
        try LedgerState().applying(allEvents(store).map(\.event.body))
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    private let value = Mutex<Int64>(1_800_000_000_000)

    var now: Int64 { value.withLock { $0 } }

    func advance(_ milliseconds: Int64) { value.withLock { $0 += milliseconds } }
}
