import Foundation
import TallyArchive
import TallyCore
import TallyStore

/// `tally replay`: balances as of an instant, from the archive and the live log, never writing.
public enum ReplayTool {
    /// How the balances are printed.
    public enum Format: String, CaseIterable, Sendable {
        case table, json, csv
    }

    /// `--at`: a sequence number (digits only) or an ISO-8601 instant (`2026-11-29T09:00:00Z`, with or
    /// without fractional seconds).
    public static func parseTarget(_ text: String) -> ReplayTarget? {
        if let sequence = UInt64(text) { return .sequence(sequence) }
        let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        let plain = Date.ISO8601FormatStyle()
        guard let date = (try? withFraction.parse(text)) ?? (try? plain.parse(text)) else { return nil }
        return .time(Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    /// Replays the working set (tenants, keys, budgets, ACTIVE reservations) to `target`. The live log of `dataDirectory` is read when it exists (read-only, safe beside
    /// `tallyd`); otherwise the archive alone answers.
    public static func replay(
        dataDirectory: String, archive: ArchiveDirectory, target: ReplayTarget, fromFirstEvent: Bool = false
    ) throws -> ReplayResult {
        let log = try openLog(dataDirectory: dataDirectory, archive: archive)
        let total: UInt64? = if case .sequence(let sequence) = target { sequence } else { try log?.bounds().lastSequence }
        let reporter = ProgressReporter(label: "replay", total: total)
        defer { reporter.finish() }
        // Balances need only the working set of the checkpoints, not the history that grows forever.
        return try Replayer(archive: archive, log: log).replay(
            to: target, scope: .workingSet, fromFirstEvent: fromFirstEvent, progress: { reporter.update($0) })
    }

    /// The live log of `dataDirectory` (read-only) when it exists; nil when only the archive is there. With
    /// neither, there is nothing to read and the command could not run.
    static func openLog(dataDirectory: String, archive: ArchiveDirectory) throws -> LogReader? {
        if FileManager.default.fileExists(atPath: dataDirectory + "/data.mdb") { return try LogReader(directory: dataDirectory) }
        guard FileManager.default.fileExists(atPath: archive.path) else {
            throw ArchiveError(.notFound, file: dataDirectory, "neither a data directory nor an archive directory (\(archive.path)) is there")
        }
        return nil
    }

    /// The budgets of `state` whose scope starts with `scopePrefix` (all when nil), in (scope, unit) order.
    public static func balances(_ state: LedgerState, scopePrefix: String?) -> [Balance] {
        state.budgets.values
            .filter { scopePrefix == nil || $0.scope.rawValue.hasPrefix(scopePrefix!) }
            .sorted { $0.key < $1.key }
            .map(\.balance)
    }

    public static func render(_ result: ReplayResult, balances: [Balance], format: Format) -> String {
        switch format {
        case .table:
            let summary = TextTable.fields([
                ("as_of_sequence", "\(result.lastSequence)"),
                ("as_of_time", TimeText.format(milliseconds: result.lastTimestampMilliseconds)),
                ("from_checkpoint", "\(result.checkpointSequence)"), ("events_replayed", "\(result.eventsApplied)"),
            ])
            return summary.render() + "\n\n" + BalanceTool.table(balances).render()
        case .json:
            return CyclesJSON.text([
                "as_of_sequence": result.lastSequence,
                "as_of_time": TimeText.format(milliseconds: result.lastTimestampMilliseconds),
                "balances": balances.map(CyclesJSON.balance),
            ] as [String: Any])
        case .csv:
            let header = "scope,unit,allocated,remaining,reserved,spent,debt,overdraft_limit,is_over_limit,status"
            let rows = balances.map { balance in
                [
                    csvField(balance.scope.rawValue), balance.unit.cyclesName, "\(balance.allocated)", "\(balance.remaining)",
                    "\(balance.reserved)", "\(balance.spent)", "\(balance.debt)", "\(balance.overdraftLimit)",
                    balance.isOverLimit ? "true" : "false", balance.status.cyclesName,
                ].joined(separator: ",")
            }
            return ([header] + rows).joined(separator: "\n")
        }
    }

    /// RFC 4180 quoting when a field holds a comma, a quote or a line break.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
