import ArgumentParser
import Foundation
import TallyTools

/// `tally generate-history`: a realistic multi-tenant agent history in a new data directory, for the
/// archive, replay and audit benchmarks (BENCHMARKS.md). Hidden from the main help.
struct GenerateHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-history",
        abstract: "Write a realistic agent history of at least N events into a new data directory (benchmarks).",
        discussion: """
            Five tenants, three workspaces each, four agents per workspace, budgets at every level; \
            reservations mostly committed (some over the estimate), some released or extended, some \
            direct debits. Everything goes through the real writer with durable group commit. Progress \
            goes to stderr. Exit codes: 0 done, 2 could not run.
            """,
        shouldDisplay: false)

    @Option(help: "The new data directory (must not hold a ledger yet).")
    var dataDirectory: String

    @Option(help: "Events to write (at least).")
    var events: UInt64 = 1_000_000

    @Option(help: "Seed of the simulated agents' choices.")
    var seed: UInt64 = 1

    func run() async throws {
        var generator = HistoryGenerator(directory: dataDirectory, events: events)
        generator.seed = seed
        let started = Date()
        do {
            let written = try await generator.run { count in
                let rate = Double(count) / max(0.001, Date().timeIntervalSince(started))
                FileHandle.standardError.write(Data("\(count) events, \(Int(rate)) events/s\n".utf8))
            }
            print("\(written) events in \(dataDirectory) (\(Int(Date().timeIntervalSince(started))) s)")
        } catch {
            FileHandle.standardError.write(Data("tally generate-history: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}
