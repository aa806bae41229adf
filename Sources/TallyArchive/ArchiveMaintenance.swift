import Foundation
import TallyCore
import TallyStore

/// Glue between the archive and the store's maintenance: after trimming, `verify` and `rebuild` start
/// from the archive's state at the live log's base; disaster recovery builds a data directory from the
/// archive alone.
public enum ArchiveMaintenance {
    /// The state the live log of `dataDirectory` starts from: empty when it was never trimmed, otherwise
    /// the archive's replay to the trim base, whose chain must be the one the log recorded.
    public static func origin(dataDirectory: String, archive: ArchiveDirectory) throws -> ReplayOrigin {
        let base = try Maintenance.logBase(directory: dataDirectory)
        guard base.sequence > 0 else { return ReplayOrigin() }
        let replay = try Replayer(archive: archive, log: nil).replay(to: .sequence(base.sequence))
        guard replay.chain == base.chain else {
            throw ArchiveError(.discontinuous, file: archive.path, sequence: base.sequence,
                               "the archive's chain after event \(base.sequence) is not the one the live log was trimmed at")
        }
        return ReplayOrigin(base: base, lastTimestampMilliseconds: replay.lastTimestampMilliseconds, state: replay.state)
    }

    /// `Maintenance.verify` from the right origin.
    public static func verify(
        dataDirectory: String, archive: ArchiveDirectory, progress: (@Sendable (UInt64) -> Void)? = nil
    ) throws -> VerifyReport {
        try Maintenance.verify(directory: dataDirectory, origin: try origin(dataDirectory: dataDirectory, archive: archive), progress: progress)
    }

    /// `Maintenance.rebuild` from the right origin.
    public static func rebuild(
        dataDirectory: String, archive: ArchiveDirectory, progress: (@Sendable (UInt64) -> Void)? = nil
    ) throws -> UInt64 {
        try Maintenance.rebuild(directory: dataDirectory, origin: try origin(dataDirectory: dataDirectory, archive: archive), progress: progress)
    }

    /// Disaster recovery: builds a new data directory at `directory` from the archive alone, as of the end
    /// of its last segment, with an empty live log trimmed through it, and copies the archive into
    /// `<directory>/archive` so the new directory is complete. The replay writes settled history to the new
    /// store as it goes, so memory stays bounded by the working set. Returns the replay (its state is the
    /// working set).
    public static func restore(archive: ArchiveDirectory, to directory: String, progress: ((UInt64) -> Void)? = nil) throws -> ReplayResult {
        let (segments, checkpoints) = try archive.list()
        guard let last = segments.last else { throw ArchiveError(.notFound, file: archive.path, "the archive holds no segment") }
        let restoring = try RestoringStore(directory: directory)
        let replay = try Replayer(archive: archive, log: nil).replay(
            to: .sequence(last.lastSequence), history: { try restoring.writeHistory($0) }, progress: progress)
        guard let chain = replay.chain else {
            throw ArchiveError(.corrupt, file: archive.filePath(last.name), sequence: last.lastSequence, "no chain value after the last segment")
        }
        try restoring.finish(
            origin: ReplayOrigin(base: LogBase(sequence: last.lastSequence, chain: chain),
                                 lastTimestampMilliseconds: replay.lastTimestampMilliseconds, state: replay.state))
        let copy = ArchiveDirectory(path: ArchiveDirectory.defaultPath(dataDirectory: directory))
        if copy.path != archive.path {
            try copy.create()
            for name in segments.map(\.name) + checkpoints.map(\.name) { try copy.writeAtomically(name, try archive.read(name)) }
        }
        return replay
    }
}
