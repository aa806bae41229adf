import Foundation
import TallyCore
import TallyStore

/// Finds what replay and sealing start from: the checkpoints and segments of an archive directory.
public struct ArchiveReader: Sendable {
    public let directory: ArchiveDirectory

    public init(directory: ArchiveDirectory) {
        self.directory = directory
    }

    /// The segment file's header and records, checked (length, CRC, payload) but not chain-verified.
    public func segment(_ entry: ArchiveDirectory.SegmentEntry) throws(ArchiveError) -> DecodedSegment {
        var buffers = SegmentCodec.Buffers()
        return try segment(entry, reusing: &buffers)
    }

    /// `segment`, reusing the memory of earlier decodes.
    public func segment(_ entry: ArchiveDirectory.SegmentEntry, reusing buffers: inout SegmentCodec.Buffers) throws(ArchiveError) -> DecodedSegment {
        let path = directory.filePath(entry.name)
        let decoded = try SegmentCodec.decode(try directory.read(entry.name), file: path, reusing: &buffers)
        guard decoded.header.firstSequence == entry.firstSequence, decoded.header.lastSequence == entry.lastSequence else {
            throw ArchiveError(.corrupt, file: path, offset: 12, sequence: decoded.header.firstSequence,
                               "the header covers \(decoded.header.firstSequence)...\(decoded.header.lastSequence), not what the name says")
        }
        return decoded
    }

    /// One checkpoint, checked and decoded.
    public func checkpoint(_ entry: ArchiveDirectory.CheckpointEntry) throws(ArchiveError) -> Checkpoint {
        let path = directory.filePath(entry.name)
        let checkpoint = try CheckpointCodec.decode(try directory.read(entry.name), file: path)
        guard checkpoint.sequence == entry.sequence else {
            throw ArchiveError(.corrupt, file: path, offset: 10, sequence: checkpoint.sequence, "the header's sequence is not the one in the name")
        }
        return checkpoint
    }

    /// The writer timestamp a checkpoint was taken at, from its first bytes only.
    public func checkpointTimestamp(_ entry: ArchiveDirectory.CheckpointEntry) throws(ArchiveError) -> Int64 {
        let path = directory.filePath(entry.name)
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ArchiveError(.io, file: path, "cannot open") }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 26)) ?? Data())
        guard head.count == 26, Array(head[0..<8]) == Checkpoint.magic else {
            throw ArchiveError(.corrupt, file: path, offset: 0, "not a Tally checkpoint")
        }
        var reader = BigEndianReader(head, offset: 18)
        return Int64(bitPattern: reader.u64())
    }

    /// The newest checkpoint at or before `target` that decodes, with the checkpoints it skipped because
    /// they were damaged (a damaged checkpoint only costs replay time; the events are in the segments).
    public func newestCheckpoint(
        atOrBefore target: ReplayTarget, in checkpoints: [ArchiveDirectory.CheckpointEntry]
    ) -> (checkpoint: Checkpoint?, skipped: [ArchiveError]) {
        var skipped: [ArchiveError] = []
        for entry in checkpoints.reversed() {
            do {
                switch target {
                case .sequence(let sequence):
                    guard entry.sequence <= sequence else { continue }
                case .time(let milliseconds):
                    guard try checkpointTimestamp(entry) <= milliseconds else { continue }
                }
                return (try checkpoint(entry), skipped)
            } catch {
                skipped.append(error)
            }
        }
        return (nil, skipped)
    }
}

/// The instant a replay stops at: after a given event, or after every event stamped at or before a time.
public enum ReplayTarget: Sendable, Hashable, CustomStringConvertible {
    case sequence(UInt64)
    case time(Int64)

    /// Whether an event with this sequence and timestamp belongs to the replay.
    func includes(sequence: UInt64, timestamp: Int64) -> Bool {
        switch self {
        case .sequence(let last): sequence <= last
        case .time(let milliseconds): timestamp <= milliseconds
        }
    }

    public var description: String {
        switch self {
        case .sequence(let sequence): "sequence \(sequence)"
        case .time(let milliseconds): "time \(milliseconds) ms"
        }
    }
}
