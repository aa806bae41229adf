import ArgumentParser
import Foundation
import TallyArchive
import TallyTools

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Verify the whole history (archive segments, checkpoints, live log, projections) and report spend.",
        discussion: """
            Checks every segment's CRC and chain link, the chain over its events, every checkpoint against a \
            replay at its sequence, the live log's chain and its agreement with the archive, and the stored \
            projections against a replay now. Only reads: safe while tallyd runs. Spend is summed by --by \
            (scope, agent, action or tenant) per --bucket (30s, 15m, 1h, 1d); --html writes a self-contained \
            page with a spend chart per scope. Exit codes: 0 clean, 1 discrepancies (each printed with file, \
            offset, sequence, expected and found), 2 could not run.
            """)

    @OptionGroup var location: ArchiveLocationOptions
    @Option(help: "Group spend by scope, agent, action or tenant.") var by = "scope"
    @Option(help: "Time bucket of the spend report, e.g. 1h.") var bucket = "1h"
    @Option(help: "Write an HTML report with spend charts to this file.") var html: String?
    @Option(help: "Output format: table or json.") var format = "table"

    func validate() throws {
        guard SpendLedger.Grouping(rawValue: by) != nil else { throw ValidationError("--by must be scope, agent, action or tenant") }
        guard AuditTool.parseBucket(bucket) != nil else { throw ValidationError("--bucket must be a count and s, m, h or d, e.g. 1h") }
        guard OutputFormat(rawValue: format) != nil else { throw ValidationError("--format must be table or json") }
    }

    func run() throws {
        let report: AuditReport
        do {
            report = try AuditTool.run(
                dataDirectory: location.dataDirectory, archive: location.archive, bucketMilliseconds: AuditTool.parseBucket(bucket)!)
            if let html { try Data(AuditHTML.page(report).utf8).write(to: URL(fileURLWithPath: html)) }
        } catch {
            throw couldNotRun("audit", error)
        }
        print(AuditTool.render(report, by: SpendLedger.Grouping(rawValue: by)!, format: OutputFormat(rawValue: format)!))
        if !report.isClean { throw ExitCode(1) }
    }
}
