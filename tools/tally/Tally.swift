import ArgumentParser
import Foundation
import TallyArchive
import TallyStore
import TallyTools

/// The `tally` command-line tool.
@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Operate and inspect a Tally budget ledger.",
        subcommands: [
            Verify.self, Rebuild.self, Demo.self, Torture.self, GenerateHistory.self,
            TenantCommand.self, KeyCommand.self, BudgetCommand.self,
            Reserve.self, Commit.self, Release.self, Extend.self, Decide.self, Debit.self,
            Balances.self, Reservations.self, Tail.self, BenchCommand.self,
            ArchiveCommand.self, Replay.self, Audit.self,
        ])

    /// ArgumentParser exits with 64 (EX_USAGE) on a usage error; every `tally` command documents 2 for
    /// "could not run", so usage errors are mapped to it here.
    static func main() async {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            // A parse error: the message with the usage of the command that was being parsed.
            if exitCode(for: error) == .validationFailure { failUsage(fullMessage(for: error)) }
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // A value that parsed but makes no sense (`--unit BOGUS`), found while running.
            if exitCode(for: error) == .validationFailure { failUsage("tally: " + message(for: error)) }
            exit(withError: error)
        }
    }

    private static func failUsage(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        Foundation.exit(ClientCommand.exitFailure)
    }
}

struct DataDirectoryOption: ParsableArguments {
    @Option(name: .long, help: "The data directory of the ledger.")
    var dataDirectory = "./data"
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay the event log in memory, check its hash chain and compare with the stored projections.",
        discussion: """
            Only reads, so it is safe while tallyd runs. An idempotency record whose retention ended before now \
            may be missing (tallyd deletes such records). Exit codes: 0 clean, 1 discrepancies found (each \
            printed with what and where), 2 could not run.
            """)

    @OptionGroup var options: DataDirectoryOption
    @Option(help: "The archive directory, for a live log trimmed below a checkpoint (default: <data-directory>/archive).")
    var archiveDirectory: String?

    func run() throws {
        let report: VerifyReport
        do {
            let archive = ArchiveDirectory(path: archiveDirectory ?? ArchiveDirectory.defaultPath(dataDirectory: options.dataDirectory))
            let reporter = ProgressReporter(label: "verify", total: nil)
            defer { reporter.finish() }
            report = try ArchiveMaintenance.verify(dataDirectory: options.dataDirectory, archive: archive) { reporter.update($0) }
        } catch {
            FileHandle.standardError.write(Data("tally verify: \(error)\n".utf8))
            throw ExitCode(2)
        }
        for finding in report.findings { print(finding) }
        var summary = "\(report.eventsChecked) events checked, \(report.findings.count) discrepancies"
        if report.eventsBehind > 0 {
            summary += "; the projections do not cover the last \(report.eventsBehind) events yet (a running tallyd writes them next; a stopped one replays them at open)"
        }
        print(summary)
        if report.projectionsMayBeDamaged {
            print("note: the machine stopped while the projections were being written without waiting for the disk; they may be damaged, and tallyd rebuilds them from the log at its next start")
        }
        if !report.isClean { throw ExitCode(1) }
    }
}

struct Rebuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop every projection and rebuild it from the event log.",
        discussion: """
            Refuses while another process (tallyd) holds the data directory, and refuses a log whose chain \
            does not check out. Idempotency records whose retention has ended are not written (tallyd would \
            delete them). Exit codes: 0 rebuilt, 2 could not run.
            """)

    @OptionGroup var options: DataDirectoryOption
    @Option(help: "The archive directory, for a live log trimmed below a checkpoint (default: <data-directory>/archive).")
    var archiveDirectory: String?

    func run() throws {
        do {
            let archive = ArchiveDirectory(path: archiveDirectory ?? ArchiveDirectory.defaultPath(dataDirectory: options.dataDirectory))
            let reporter = ProgressReporter(label: "rebuild", total: nil)
            defer { reporter.finish() }
            let last = try ArchiveMaintenance.rebuild(dataDirectory: options.dataDirectory, archive: archive) { reporter.update($0) }
            print("rebuilt the projections from \(last) events")
        } catch {
            FileHandle.standardError.write(Data("tally rebuild: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play the shared-workspace budget patterns through the ledger core, in memory.")

    func run() throws {
        var demo = LedgerDemo()
        for line in demo.run() { print(line) }
    }
}

/// Used by the crash test; hidden from help.
struct Torture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture-writer", abstract: "Drive random commands through a store and print acknowledgements.",
        shouldDisplay: false)

    @OptionGroup var options: DataDirectoryOption
    @Option var seed: UInt64 = 1
    @Option var threads = 4
    @Option var commands = 100_000

    func run() throws {
        try StoreTorture.run(directory: options.dataDirectory, seed: seed, threads: threads, commandsPerThread: commands)
    }
}
