import Dispatch
import Synchronization
import TallyCore

/// A segment's events decoded on another thread, one segment ahead of the fold: inflating, rebuilding and
/// decoding the next segment overlaps with applying the current one, the part that must stay sequential.
final class SegmentPrefetch: Sendable {
    /// The events of one segment from the first one the replay needs.
    struct Decoded: Sendable {
        var header: SegmentHeader
        var events: [Event]
    }

    private let outcome = Mutex<Result<Decoded, ArchiveError>?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    /// Starts decoding the events of `entry` from `sequence` on.
    init(_ archive: ArchiveReader, _ entry: ArchiveDirectory.SegmentEntry, from sequence: UInt64) {
        DispatchQueue.global().async { [self] in
            let result = Result { () throws(ArchiveError) -> Decoded in try Self.decode(archive, entry, from: sequence) }
            outcome.withLock { $0 = result }
            ready.signal()
        }
    }

    /// Waits for the decoded events (once).
    func wait() throws(ArchiveError) -> Decoded {
        ready.wait()
        return try outcome.withLock { $0! }.get()
    }

    private static func decode(_ archive: ArchiveReader, _ entry: ArchiveDirectory.SegmentEntry, from sequence: UInt64) throws(ArchiveError) -> Decoded {
        let segment = try archive.segment(entry)
        let file = archive.directory.filePath(entry.name)
        let skip = Int(min(UInt64(segment.records.count), sequence - min(sequence, segment.header.firstSequence)))
        var events: [Event] = []
        events.reserveCapacity(segment.records.count - skip)
        for (offset, record) in segment.records[skip...].enumerated() {
            do { events.append(try EventCodec.decode(record)) } catch {
                throw ArchiveError(.corrupt, file: file, sequence: sequence + UInt64(offset), "event record: \(error.reason)")
            }
        }
        return Decoded(header: segment.header, events: events)
    }
}
