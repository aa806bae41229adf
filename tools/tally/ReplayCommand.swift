import ArgumentParser
import Foundation
import TallyArchive
import TallyTools

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild every balance as of an instant from the archive and the live log, or a whole data directory from the archive.",
        discussion: """
            --at takes an ISO-8601 time (2026-11-29T09:00:00Z) or an event sequence number. The replay starts \
            from the nearest checkpoint and never writes to the live store, so it is safe while tallyd runs. \
            --to-directory builds a new data directory from the archive alone (disaster recovery), as of the \
            archive's last segment, with a copy of the archive in <directory>/archive. Progress goes to stderr \
            when it is a terminal. Exit codes: 0 done, 2 could not run (bad arguments, a damaged or incomplete \
            archive, an instant the history does not reach).
            """)

    @OptionGroup var location: ArchiveLocationOptions
    @Option(help: "An ISO-8601 time or a sequence number.") var at: String?
    @Option(help: "Only budgets whose scope starts with this prefix.") var scope: String?
    @Option(help: "Output format: table, json or csv.") var format = "table"
    @Option(help: "Build a new data directory here from the archive alone.") var toDirectory: String?
    @Flag(help: "Replay from the first event, ignoring checkpoints (slower; measures replay, or checks balances without trusting checkpoints).")
    var fromFirstEvent = false

    func validate() throws {
        guard (at == nil) != (toDirectory == nil) else { throw ValidationError("give exactly one of --at and --to-directory") }
        guard ReplayTool.Format(rawValue: format) != nil else { throw ValidationError("--format must be table, json or csv") }
        if let at, ReplayTool.parseTarget(at) == nil {
            throw ValidationError("--at must be an ISO-8601 time such as 2026-11-29T09:00:00Z or a sequence number")
        }
    }

    func run() throws {
        do {
            if let toDirectory {
                let reporter = ProgressReporter(label: "replay", total: nil)
                let result = try ArchiveMaintenance.restore(archive: location.archive, to: toDirectory) { reporter.update($0) }
                reporter.finish()
                print("restored \(toDirectory) as of sequence \(result.lastSequence) "
                      + "(\(TimeText.format(milliseconds: result.lastTimestampMilliseconds)))")
                return
            }
            let target = ReplayTool.parseTarget(at!)!
            let result = try ReplayTool.replay(
                dataDirectory: location.dataDirectory, archive: location.archive, target: target, fromFirstEvent: fromFirstEvent)
            let balances = ReplayTool.balances(result.state, scopePrefix: scope)
            print(ReplayTool.render(result, balances: balances, format: ReplayTool.Format(rawValue: format)!))
        } catch {
            throw couldNotRun("replay", error)
        }
    }
}
