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
            if let raw = rawWriteP50Microseconds { lines.append("raw durable LMDB write of one event: p50 \(raw) us") }
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
        let total = try await BinaryBenchLoop.run(BinaryBenchLoop.Plan(
            host: host, port: port, key: secret, shape: shape, connections: connections, inFlight: inFlight,
            warmupEnd: warmupEnd, end: warmupEnd + .milliseconds(Int(durationSeconds * 1_000))))
        let check = try await ledgerCheck(admin, tenant: tenant, committed: total.committed)
        await admin.close()
        var rawWrite: UInt64?
        if connections == 1 && inFlight == 1 { rawWrite = try Self.rawDurableWriteMedian() }
        return Result(total, seconds: durationSeconds, ledgerCheck: check, rawWriteP50Microseconds: rawWrite)
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

    /// The floor for one request at a time: one event appended and flushed (fsync) by a bare LMDB write
    /// transaction, median of 200, in a temporary directory on the same disk as the working directory.
    static func rawDurableWriteMedian() throws -> UInt64 {
        let directory = FileManager.default.currentDirectoryPath + "/.tally-bench-raw-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let environment = try LMDBEnvironment(directory: directory, mapSizeBytes: 1 << 26, databaseNames: ["events"])
        defer { environment.close() }
        let events = environment.database("events")
        let record = [UInt8](repeating: 0x5a, count: 240)
        var samples: [UInt64] = []
        for sequence in 1...200 {
            let began = ContinuousClock.now
            try environment.write { txn in
                try txn.put(events, withUnsafeBytes(of: UInt64(sequence).bigEndian, Array.init), record, append: true)
            }
            let elapsed = ContinuousClock.now - began
            samples.append(UInt64(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        }
        return samples.sorted()[samples.count / 2]
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
}
