import Foundation
import TallyArchive
import TallyCore
import TallyStore

/// `tally archive seal` and `tally archive list`.
public enum ArchiveTool {
    /// What `seal` did, for printing.
    public struct SealReport: Sendable {
        public var outcome: SealOutcome
        /// False when `tallyd` held the data directory, so the log was read beside it and not trimmed.
        public var ownedTheStore: Bool
    }

    /// Seals every pending event now. When no server holds the data directory, the log is read exclusively
    /// (and trimmed when `retainLiveEvents` is set); otherwise it is read beside the server and trimming is
    /// left to the server's own archiver.
    public static func seal(
        dataDirectory: String, archive: ArchiveDirectory, everyEvents: UInt64, retainLiveEvents: UInt64?
    ) throws -> SealReport {
        var configuration = ArchiverConfiguration(directory: archive.path)
        configuration.everyEvents = max(1, everyEvents)
        configuration.retainLiveEvents = retainLiveEvents
        let now = StoreOptions.wallClockMilliseconds()
        guard FileManager.default.fileExists(atPath: dataDirectory + "/data.mdb") else {
            throw StoreError(.io, "\(dataDirectory) holds no Tally data (no data.mdb)")
        }
        // Exclusive when no server holds the directory: then the log may be trimmed, without opening a
        // store (which would start a writer and its expiry sweep, and so append events of its own).
        do {
            let reader = try LogReader(directory: dataDirectory, exclusive: true)
            let sealer = ArchiveSealer(log: reader, configuration: configuration) { sequence, chain in
                try reader.trimLog(through: sequence, chain: chain)
            }
            return SealReport(outcome: try sealer.sealPending(nowMilliseconds: now, force: true), ownedTheStore: true)
        } catch let error as StoreError where error.kind == .locked {
            let sealer = ArchiveSealer(log: try LogReader(directory: dataDirectory), configuration: configuration)
            return SealReport(outcome: try sealer.sealPending(nowMilliseconds: now, force: true), ownedTheStore: false)
        }
    }

    public static func render(_ report: SealReport, retainLiveEvents: UInt64?) -> String {
        var lines = report.outcome.sealed.map { header in
            "sealed \(ArchiveDirectory.segmentName(first: header.firstSequence, last: header.lastSequence)): "
                + "\(header.eventCount) events, \(header.fileLength) bytes"
        }
        if lines.isEmpty { lines.append("nothing to seal: the archive is up to date") }
        if let trimmed = report.outcome.trimmedThrough { lines.append("trimmed the live log through sequence \(trimmed)") }
        if retainLiveEvents != nil && !report.ownedTheStore {
            lines.append("not trimmed: tallyd holds the data directory (its archiver trims with --retain-live-events)")
        }
        return lines.joined(separator: "\n")
    }

    /// One row per segment: its range, times, size and whether its checkpoint is present.
    public static func list(_ archive: ArchiveDirectory) throws -> TextTable {
        let (segments, checkpoints) = try archive.list()
        let checkpointed = Set(checkpoints.map(\.sequence))
        var table = TextTable(headers: ["SEGMENT", "FIRST", "LAST", "FROM", "TO", "BYTES", "CHECKPOINT"])
        for entry in segments {
            let header = try SegmentCodec.checkedHeader(try archive.read(entry.name), file: archive.filePath(entry.name))
            table.append([
                entry.name, "\(header.firstSequence)", "\(header.lastSequence)",
                TimeText.format(milliseconds: header.firstTimestampMilliseconds), TimeText.format(milliseconds: header.lastTimestampMilliseconds),
                "\(header.fileLength)", checkpointed.contains(entry.lastSequence) ? "yes" : "missing",
            ])
        }
        return table
    }
}
