import ArgumentParser
import Foundation
import TallyTools

/// `tally bench`: load a running server over the binary protocol and check the ledger afterwards.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Drive a running tallyd with reservations and report throughput and latency.",
        discussion: """
            Needs the admin key (it creates its own tenant, key and budgets, so it never touches other \
            data). Shapes: shared (every agent under one workspace cap), independent (one leaf budget per \
            connection), lifecycle (reserve then commit, under one cap), mix (lifecycle plus balance reads). \
            Each reserve and each commit is one operation. Latency is measured per request after a warm-up. \
            At the end the ledger is checked: every acknowledged commit must be in `spent`. With one \
            connection and one request in flight it also measures one raw durable LMDB write of one event \
            in the current directory, the floor for a single request: the run is cut into slices of about \
            a second, each followed by its share of 200 raw writes, so both meet the same disk. Exit codes: 0 done and the ledger \
            checks out; 1 the ledger check failed; 2 could not run. With --http the same shapes run over the \
            Cycles HTTP/JSON gateway (keep-alive HTTP/1.1, one request at a time per connection; 50 \
            connections unless given), with setup and the ledger check on the admin plane.
            """)

    @OptionGroup var client: ClientOptions

    @Option(help: "Load shape: shared, independent, lifecycle or mix.")
    var shape = "lifecycle"

    @Option(help: "Connections to open (default 16, or 50 with --http).")
    var connections: Int?

    @Flag(help: "Drive the Cycles HTTP/JSON gateway instead of the binary protocol.")
    var http = false

    @Option(help: "The HTTP runtime plane (with --http).")
    var httpAddress = "127.0.0.1:7878"

    @Option(help: "The HTTP admin plane (with --http).")
    var adminHTTPAddress = "127.0.0.1:7979"

    @Option(help: "Requests in flight per connection.")
    var inFlight = 64

    @Option(help: "Seconds to measure (after a one-second warm-up).")
    var duration = 10.0

    func run() async throws {
        let settings = try client.settings()
        guard let shape = Bench.Shape(rawValue: shape) else { throw ValidationError("--shape must be shared, independent, lifecycle or mix") }
        guard let adminKey = settings.adminKey else { throw ValidationError("tally bench needs the admin key (--admin-key or TALLY_ADMIN_KEY)") }
        let connections = self.connections ?? (http ? 50 : 16)
        guard connections >= 1, inFlight >= 1, duration > 0 else { throw ValidationError("--connections, --in-flight and --duration must be positive") }
        let result: Bench.Result
        do {
            if http {
                var bench = try HTTPBench(runtime: httpAddress, admin: adminHTTPAddress, adminKey: adminKey)
                bench.shape = shape
                bench.connections = connections
                bench.durationSeconds = duration
                result = try await bench.run()
            } else {
                var bench = Bench(host: settings.address.host, port: settings.address.port, adminKey: adminKey)
                bench.shape = shape
                bench.connections = connections
                bench.inFlight = inFlight
                bench.durationSeconds = duration
                result = try await bench.run()
            }
        } catch {
            FileHandle.standardError.write(Data("tally bench: \(error)\n".utf8))
            throw ExitCode(2)
        }
        print(settings.format == .json ? result.json : result.table)
        if !result.ledgerCheck.hasPrefix("ok") { throw ExitCode(1) }
    }
}
