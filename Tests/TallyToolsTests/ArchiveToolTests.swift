import Foundation
import Testing
import TallyArchive
import TallyCore
import TallyStore
@testable import TallyTools

/// The CLI logic of `tally archive`, `tally replay` and `tally audit`, over a real store and archive.
@Suite struct ArchiveToolTests {
    @Test func replayTargetsAreSequencesOrISO8601Times() {
        #expect(ReplayTool.parseTarget("42") == .sequence(42))
        #expect(ReplayTool.parseTarget("2026-11-29T09:00:00Z") == .time(1_795_942_800_000))
        #expect(ReplayTool.parseTarget("2026-11-29T09:00:00.250Z") == .time(1_795_942_800_250))
        #expect(ReplayTool.parseTarget("yesterday") == nil)
        #expect(ReplayTool.parseTarget("-3") == nil)
    }

    @Test func bucketsAreACountAndAUnit() {
        #expect(AuditTool.parseBucket("1h") == 3_600_000)
        #expect(AuditTool.parseBucket("15m") == 900_000)
        #expect(AuditTool.parseBucket("30s") == 30_000)
        #expect(AuditTool.parseBucket("2d") == 172_800_000)
        #expect(AuditTool.parseBucket("0h") == nil)
        #expect(AuditTool.parseBucket("h") == nil)
        #expect(AuditTool.parseBucket("1w") == nil)
        #expect(AuditTool.parseBucket("999999999999999999d") == nil, "overflow is refused, not wrapped")
    }

    @Test func csvQuotesOnlyWhatNeedsIt() {
        #expect(ReplayTool.csvField("tenant:acme/workspace:w") == "tenant:acme/workspace:w")
        #expect(ReplayTool.csvField("a,b") == "\"a,b\"")
        #expect(ReplayTool.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
    }

    @Test func progressLinesShowRateAndTimeLeft() {
        #expect(ProgressReporter.line(label: "replay", done: 1_000, total: 3_000, elapsed: 2) == "replay: 1000 events, 500 events/s, ETA 4 s")
        #expect(ProgressReporter.line(label: "audit", done: 10, total: nil, elapsed: 1) == "audit: 10 events, 10 events/s")
    }

    /// A small ledger (a tenant, two budgets, 20 debits by one agent), sealed and trimmed through the tools.
    static func ledger(root: String) throws -> (data: String, archive: ArchiveDirectory, last: UInt64, sealed: ArchiveTool.SealReport) {
        let data = root + "/data"
        let store = try LedgerStore(directory: data)
        _ = try store.executeBlocking(.createTenant(CreateTenantCommand(tenantID: "acme", name: "Acme"))).get()
        for scope in ["tenant:acme", "tenant:acme/workspace:w"] {
            _ = try store.executeBlocking(.createBudget(CreateBudgetCommand(
                caller: .admin, tenantID: "acme", scope: scope, unit: .usdMicrocents, allocated: 1_000_000))).get()
        }
        for index in 0..<20 {
            _ = try store.executeBlocking(.recordDebit(DebitCommand(
                tenant: "acme", caller: .tenant(id: "acme", keyID: "k"), eventID: "e\(index)",
                idempotency: IdempotencyStamp(key: "d\(index)", payloadHash: Digest256(words: (UInt64(index), 1, 2, 3))),
                subject: Subject(workspace: "w", agent: "bot-1"), action: Action(kind: "llm.completion", name: "m"),
                actual: Quantity(.usdMicrocents, 100)))).get()
        }
        let last = try store.lastSequence()
        store.close()
        let archive = ArchiveDirectory(path: ArchiveDirectory.defaultPath(dataDirectory: data))
        let sealed = try ArchiveTool.seal(dataDirectory: data, archive: archive, everyEvents: 10, retainLiveEvents: 5)
        return (data, archive, last, sealed)
    }

    static func auditedLedger(root: String) throws -> AuditReport {
        let ledger = try ledger(root: root)
        return try AuditTool.run(dataDirectory: ledger.data, archive: ledger.archive, bucketMilliseconds: 1_000)
    }

    @Test func sealReplayAndAuditThroughTheTools() throws {
        let root = NSTemporaryDirectory() + "tally-tools-archive-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (data, archive, last, sealed) = try Self.ledger(root: root)
        // 23 events in segments of 10, 10 and 3; keeping at least 5 live (trimming at most through 18) trims
        // through the end of the first.
        #expect(last == 23 && sealed.ownedTheStore && sealed.outcome.sealed.count == 3 && sealed.outcome.trimmedThrough == 10)
        #expect(ArchiveTool.render(sealed, retainLiveEvents: 5).contains("trimmed the live log through sequence 10"))
        #expect(try ArchiveTool.list(archive).rows.count == 3)
        #expect(try LogReader(directory: data).bounds().lastSequence == last, "sealing appends nothing to the ledger")

        let result = try ReplayTool.replay(dataDirectory: data, archive: archive, target: .sequence(last))
        let balances = ReplayTool.balances(result.state, scopePrefix: "tenant:acme/workspace:")
        #expect(balances.map(\.scope.rawValue) == ["tenant:acme/workspace:w"] && balances.first?.spent == 2_000)
        let csv = ReplayTool.render(result, balances: balances, format: .csv).split(separator: "\n")
        #expect(csv.count == 2 && csv[1].hasPrefix("tenant:acme/workspace:w,USD_MICROCENTS,1000000,998000,0,2000,0,0,false,ACTIVE"))

        let report = try AuditTool.run(dataDirectory: data, archive: archive, bucketMilliseconds: 3_600_000)
        #expect(report.isClean, "\(report.findings)")
        let agents = AuditTool.spendTable(report.spend, by: .agent).render()
        #expect(agents.contains("bot-1") && agents.contains("2000"))
        let html = AuditHTML.page(report)
        #expect(html.contains("<svg") && html.contains("tenant:acme/workspace:w [USD_MICROCENTS]") && html.contains("no discrepancies"))
        #expect(!html.contains("<script"), "the page is self-contained and static")
    }

    @Test func anHTMLReportEscapesWhatItShows() {
        #expect(AuditHTML.escape("<b>&\"") == "&lt;b&gt;&amp;&quot;")
    }
}
