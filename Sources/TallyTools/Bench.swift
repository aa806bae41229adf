import Foundation
import Histogram
import TallyClient
import TallyCore
import TallyStore
import TallyWire

/// `tally bench`: load against a running server over the binary protocol, with latency percentiles and a
/// ledger check at the end (every acknowledged commit must be in `spent`).
public struct Bench: Sendable {
    public enum Shape: String, CaseIterable, Sendable {
        /// Every agent reserves and commits under one shared workspace cap: all requests contend on it.
        case shared
        /// Every connection has its own leaf budget and no shared parent.
        case independent
        /// Reserve, then commit the reservation (as `shared`, counted as two operations).
        case lifecycle
        /// Lifecycle with one balance read for every four lifecycle operations.
        case mix
    }

    public var host: String
    public var port: Int
    public var adminKey: String
    public var shape: Shape = .lifecycle
    public var connections = 16
    public var inFlight = 64
    public var durationSeconds = 10.0
    public var warmupSeconds = 1.0

    public init(host: String, port: Int, adminKey: String) {
        self.host = host
        self.port = port
        self.adminKey = adminKey
    }

    /// The figures one run produced.
    public struct Result: Sendable {
        public var operations: UInt64
        public var seconds: Double
        public var errors: UInt64
        public var p50Microseconds: UInt64
        public var p99Microseconds: UInt64
        public var p999Microseconds: UInt64
        public var ledgerCheck: String
        public var rawWriteP50Microseconds: UInt64?

        /// The figures of what a bench client counted over `seconds`.
        init(_ tally: BenchTally, seconds: Double, ledgerCheck: String, rawWriteP50Microseconds: UInt64?) {
            operations = tally.operations
            self.seconds = seconds
            errors = tally.errors
            p50Microseconds = tally.histogram.valueAtPercentile(50)
            p99Microseconds = tally.histogram.valueAtPercentile(99)
            p999Microseconds = tally.histogram.valueAtPercentile(99.9)
            self.ledgerCheck = ledgerCheck
            self.rawWriteP50Microseconds = rawWriteP50Microseconds
        }

        public var operationsPerSecond: Double { Double(operations) / seconds }

        public var json: String {
            var fields = [
                "\"ops_per_second\": \(Int(operationsPerSecond.rounded()))", "\"operations\": \(operations)",
                "\"seconds\": \(String(format: "%.2f", seconds))", "\"p50_us\": \(p50Microseconds)", "\"p99_us\": \(p99Microseconds)",
                "\"p999_us\": \(p999Microseconds)", "\"errors\": \(errors)", "\"ledger_check\": \"\(ledgerCheck)\"",
            ]
            if let raw = rawWriteP50Microseconds { fields.append("\"raw_write_p50_us\": \(raw)") }
            return "{" + fields.joined(separator: ", ") + "}"
        }

        public var table: String {
            var lines = [
                String(format: "throughput   %.0f operations/s (%llu in %.1f s)", operationsPerSecond, operations, seconds),
                "latency      p50 \(p50Microseconds) us   p99 \(p99Microseconds) us   p99.9 \(p999Microseconds) us",
                "errors       \(errors)",
                "ledger check \(ledgerCheck)",
            ]
            if let raw = rawWriteP50Microseconds {
                let ratio = Double(p50Microseconds) / Double(max(raw, 1))
                lines.append("raw durable LMDB write of one event: p50 \(raw) us (request p50 \(String(format: "%.2f", ratio))x that; taken between slices of the run)")
            }
            return lines.joined(separator: "\n")
        }
    }

    public func run() async throws -> Result {
        let admin = try await TallyConnection.connect(host: host, port: port, credential: .adminKey(adminKey), clientName: "tally-bench")
        let tenant = "bench-" + String(UUID().uuidString.prefix(8)).lowercased()
        _ = try await admin.send(.createTenant(CreateTenantCommand(tenantID: tenant, name: "bench")))
        guard case .apiKeyCreated(_, let secret) = try await admin.send(.createApiKey(CreateApiKeyRequest(tenantID: tenant, name: "bench"))) else {
            throw BenchError("the server did not create a key")
        }
        let huge = Amount(Int64.max / 4)
        if shape != .independent {
            _ = try await admin.send(.createBudget(CreateBudgetRequest(scope: "tenant:\(tenant)/workspace:shared", unit: .usdMicrocents, allocated: huge)))
        }
        for index in 0..<connections where shape == .independent {
            _ = try await admin.send(.createBudget(CreateBudgetRequest(scope: "tenant:\(tenant)/workspace:w\(index)/agent:a", unit: .usdMicrocents, allocated: huge)))
        }
        let warmupEnd = ContinuousClock.now + .milliseconds(Int(warmupSeconds * 1_000))
        let plan = BinaryBenchLoop.Plan(
            host: host, port: port, key: secret, shape: shape, connections: connections, inFlight: inFlight,
            warmupEnd: warmupEnd, end: warmupEnd + .milliseconds(Int(durationSeconds * 1_000)))
        let total: BenchTally
        var rawWrite: UInt64?
        if connections == 1 && inFlight == 1 {
            (total, rawWrite) = try await Self.runBesideRawWrites(plan, seconds: durationSeconds)
        } else {
            total = try await BinaryBenchLoop.run(plan)
        }
        let check = try await ledgerCheck(admin, tenant: tenant, committed: total.committed)
        await admin.close()
        return Result(total, seconds: durationSeconds, ledgerCheck: check, rawWriteP50Microseconds: rawWrite)
    }

    /// One request at a time, compared with raw durable writes taken in the same minutes: the measured
    /// window is cut into slices of about a second, each followed by its share of the 200 raw writes (the
    /// disk's flush times drift by tens of percent within a minute on a shared machine, so writes taken
    /// only after the run compare against another window). Each slice reconnects and warms up for 50 ms
    /// outside the measurement. Returns the merged tally and the median raw write.
    static func runBesideRawWrites(_ plan: BinaryBenchLoop.Plan, seconds: Double) async throws -> (BenchTally, UInt64) {
        let raw = try RawDurableWrites()
        defer { raw.close() }
        let slices = max(1, Int(seconds.rounded(.up)))
        let slice = Duration.milliseconds(Int(seconds * 1_000 / Double(slices)))
        let writesPerSlice = (RawDurableWrites.samplesTotal + slices - 1) / slices
        var total = BenchTally()
        var samples: [UInt64] = []
        var next = plan
        next.end = next.warmupEnd + slice
        for index in 0..<slices {
            next.keyPrefix = "s\(index)-"
            total.add(try await BinaryBenchLoop.run(next))
            samples += try raw.measure(writesPerSlice)
            next.warmupEnd = ContinuousClock.now + .milliseconds(50)
            next.end = next.warmupEnd + slice
        }
        return (total, samples.sorted()[samples.count / 2])
    }

    /// A latency in whole microseconds (never negative).
    static func microseconds(_ elapsed: Duration) -> UInt64 {
        UInt64(max(0, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
    }

    /// Every acknowledged commit must be counted in `spent` on each scope it touched, no more and no less.
    private func ledgerCheck(_ admin: TallyConnection, tenant: String, committed: [String: Int64]) async throws -> String {
        guard case .budgets(let budgets) = try await admin.send(.balances(BalancesRequest(tenant: tenant))) else { return "failed: no balances" }
        for budget in budgets where budget.spent.value != committed[budget.scope.rawValue, default: 0] {
            return "failed: \(budget.scope) spent \(budget.spent) but acknowledged commits sum to \(committed[budget.scope.rawValue, default: 0])"
        }
        return "ok (\(committed.values.reduce(0, +)) committed across \(budgets.count) budgets)"
    }
}

/// The floor for one request at a time: one event appended and flushed (fsync) by a bare LMDB write
/// transaction, in a temporary directory on the same disk as the working directory (removed by `close`).
final class RawDurableWrites {
    /// How many raw writes a bench of one request at a time takes in all.
    static let samplesTotal = 200
    private let directory: String
    private let environment: LMDBEnvironment
    private let events: LMDBDatabase
    private let record = [UInt8](repeating: 0x5a, count: 240)
    private var sequence: UInt64 = 0

    init() throws {
        directory = FileManager.default.currentDirectoryPath + "/.tally-bench-raw-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            environment = try LMDBEnvironment(directory: directory, mapSizeBytes: 1 << 26, databaseNames: ["events"])
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        events = environment.database("events")
    }

    /// `count` more writes, each timed in microseconds.
    func measure(_ count: Int) throws -> [UInt64] {
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            sequence += 1
            let key = withUnsafeBytes(of: sequence.bigEndian, Array.init)
            let began = ContinuousClock.now
            try environment.write { txn in try txn.put(events, key, record, append: true) }
            samples.append(Bench.microseconds(ContinuousClock.now - began))
        }
        return samples
    }

    func close() {
        environment.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// What a bench client counted in the measured window.
struct BenchTally: Sendable {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var operations: UInt64 = 0
    var errors: UInt64 = 0
    /// Acknowledged commits per scope, for the ledger check.
    var committed: [String: Int64] = [:]

    /// Adds what another window counted.
    mutating func add(_ other: BenchTally) {
        histogram.add(other.histogram)
        operations += other.operations
        errors += other.errors
        committed.merge(other.committed, uniquingKeysWith: +)
    }
}
