import Foundation
import TallyArchive
import TallyCore
import TallyStore

/// `tally audit`: verifies the whole history and reports spend.
public enum AuditTool {
    /// `--bucket`: a number and a unit, `30s`, `15m`, `1h`, `1d`.
    public static func parseBucket(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        guard let last = text.last, let unit = units[last], let count = Int64(text.dropLast()), count > 0 else { return nil }
        let (milliseconds, overflow) = count.multipliedReportingOverflow(by: unit)
        return overflow ? nil : milliseconds
    }

    /// Runs the audit over the archive and, when the data directory exists, the live log and projections.
    public static func run(dataDirectory: String, archive: ArchiveDirectory, bucketMilliseconds: Int64) throws -> AuditReport {
        let log = try ReplayTool.openLog(dataDirectory: dataDirectory, archive: archive)
        let reporter = ProgressReporter(label: "audit", total: try log?.bounds().lastSequence)
        defer { reporter.finish() }
        return try Auditor(archive: archive, log: log, stored: log).run(bucketMilliseconds: bucketMilliseconds) { reporter.update($0) }
    }

    /// The spend rows of one grouping as a table.
    public static func spendTable(_ spend: SpendLedger, by grouping: SpendLedger.Grouping) -> TextTable {
        var table = TextTable(headers: [grouping.rawValue.uppercased(), "BUCKET", "UNIT", "CHARGED", "EVENTS"])
        for (key, total) in spend.rows(grouping) {
            table.append([key.group, TimeText.format(milliseconds: key.bucketStart), key.unit.cyclesName, "\(total.charged)", "\(total.events)"])
        }
        return table
    }

    public static func render(_ report: AuditReport, by grouping: SpendLedger.Grouping, format: OutputFormat) -> String {
        switch format {
        case .table:
            var text = report.findings.map(\.description).joined(separator: "\n")
            if !text.isEmpty { text += "\n\n" }
            text += "\(report.segmentsChecked) segments, \(report.checkpointsChecked) checkpoints, \(report.eventsChecked) events "
                + "checked (through sequence \(report.lastSequence)), \(report.findings.count) discrepancies"
            return text + "\n\n" + spendTable(report.spend, by: grouping).render()
        case .json:
            let findings: [[String: Any]] = report.findings.map { finding in
                var object: [String: Any] = ["file": finding.file, "message": finding.message]
                if let offset = finding.offset { object["offset"] = offset }
                if let sequence = finding.sequence { object["sequence"] = sequence }
                return object
            }
            let spend: [[String: Any]] = report.spend.rows(grouping).map { key, total in
                [grouping.rawValue: key.group, "bucket_start": TimeText.format(milliseconds: key.bucketStart),
                 "unit": key.unit.cyclesName, "charged": total.charged, "events": total.events]
            }
            return CyclesJSON.text([
                "segments_checked": report.segmentsChecked, "checkpoints_checked": report.checkpointsChecked,
                "events_checked": report.eventsChecked, "last_sequence": report.lastSequence,
                "findings": findings, "spend": spend,
            ] as [String: Any])
        }
    }
}
