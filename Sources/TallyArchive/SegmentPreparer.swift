import Dispatch
import Synchronization
import TallyCore
import TallyStore

/// One segment as the audit reads it, prepared on another thread: the file checked and decoded, the chain
/// value after each record, and each record's event (or why it does not decode).
struct PreparedSegment: Sendable {
    var decoded: Result<DecodedSegment, ArchiveError>
    var chains: [[UInt8]] = []
    var events: [Result<Event, EventCodecError>] = []
}

/// Prepares the segments of an audit in order on another thread, at most two ahead of the fold: reading,
/// inflating, hashing the chain and decoding overlap with the sequential checks and the replay.
final class SegmentPreparer: Sendable {
    static let segmentsAhead = 2

    private let ready = Mutex<[Int: PreparedSegment]>([:])
    private let available = DispatchSemaphore(value: 0)
    private let space = DispatchSemaphore(value: segmentsAhead)
    private let taken = Mutex(0)

    init(_ archive: ArchiveReader, _ segments: [ArchiveDirectory.SegmentEntry]) {
        DispatchQueue.global().async { [self] in
            for (index, entry) in segments.enumerated() {
                space.wait()
                let prepared = Self.prepare(archive, entry)
                ready.withLock { $0[index] = prepared }
                available.signal()
            }
        }
    }

    /// The next segment, in order; called once per segment given.
    func next() -> PreparedSegment {
        available.wait()
        let index = taken.withLock { index in
            defer { index += 1 }
            return index
        }
        let prepared = ready.withLock { $0.removeValue(forKey: index)! }
        space.signal()
        return prepared
    }

    private static func prepare(_ archive: ArchiveReader, _ entry: ArchiveDirectory.SegmentEntry) -> PreparedSegment {
        let decoded: DecodedSegment
        do { decoded = try archive.segment(entry) } catch {
            return PreparedSegment(decoded: .failure(error))
        }
        var prepared = PreparedSegment(decoded: .success(decoded))
        prepared.chains.reserveCapacity(decoded.records.count)
        prepared.events.reserveCapacity(decoded.records.count)
        var running = decoded.header.entryChain
        for record in decoded.records {
            running = EventChain.link(running, record)
            prepared.chains.append(running)
            prepared.events.append(Result { () throws(EventCodecError) in try EventCodec.decode(record) })
        }
        return prepared
    }
}
