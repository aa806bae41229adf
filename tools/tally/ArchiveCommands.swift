import ArgumentParser
import Foundation
import TallyArchive
import TallyStore
import TallyTools

/// `--data-directory` and `--archive-directory` for the commands that read archives.
struct ArchiveLocationOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory of the ledger.")
    var dataDirectory = "./data"

    @Option(name: .long, help: "The archive directory (default: <data-directory>/archive).")
    var archiveDirectory: String?

    var archive: ArchiveDirectory {
        ArchiveDirectory(path: archiveDirectory ?? ArchiveDirectory.defaultPath(dataDirectory: dataDirectory))
    }
}

/// Prints a failure of a command that could not run and exits 2.
func couldNotRun(_ command: String, _ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("tally \(command): \(error)\n".utf8))
    return ExitCode(2)
}

struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive", abstract: "Seal the event log into compressed archive segments, or list them.",
        subcommands: [ArchiveSeal.self, ArchiveList.self])
}

struct ArchiveSeal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "Seal every event not yet archived into segments with checkpoints, now.",
        discussion: """
            Safe while tallyd runs: the log is then read beside it, and trimming is left to tallyd's own \
            archiver. Without a running server, --retain-live-events trims the live log below the newest \
            sealed segment, keeping at least that many events live. Exit codes: 0 sealed (or nothing to \
            seal), 2 could not run.
            """)

    @OptionGroup var location: ArchiveLocationOptions
    @Option(help: "Events per segment at most.") var everyEvents: UInt64 = ArchiverConfiguration.defaultEveryEvents
    @Option(help: "Trim the live log below the newest sealed segment, keeping at least this many events.")
    var retainLiveEvents: UInt64?

    func run() throws {
        do {
            let report = try ArchiveTool.seal(
                dataDirectory: location.dataDirectory, archive: location.archive, everyEvents: everyEvents,
                retainLiveEvents: retainLiveEvents)
            print(ArchiveTool.render(report, retainLiveEvents: retainLiveEvents))
        } catch {
            throw couldNotRun("archive seal", error)
        }
    }
}

struct ArchiveList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the archive's segments (headers checked) and whether each has its checkpoint.",
        discussion: "Exit codes: 0 listed, 2 could not run (a damaged header is a failure here; `tally audit` reports all damage).")

    @OptionGroup var location: ArchiveLocationOptions

    func run() throws {
        do {
            print(try ArchiveTool.list(location.archive).render())
        } catch {
            throw couldNotRun("archive list", error)
        }
    }
}
