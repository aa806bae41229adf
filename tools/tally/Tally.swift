import ArgumentParser
import TallyTools

/// The `tally` command-line tool. Subcommands grow with the system: today the ledger demo.
@main
struct Tally: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Operate and inspect a Tally budget ledger.",
        subcommands: [Demo.self])
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play the shared-workspace budget patterns through the ledger core, in memory.")

    func run() throws {
        var demo = LedgerDemo()
        for line in demo.run() { print(line) }
    }
}
