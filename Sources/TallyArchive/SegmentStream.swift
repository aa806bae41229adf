import Dispatch
import Synchronization
import TallyCore

/// The records of consecutive segments, inflated on another thread a bounded distance ahead of the fold:
/// reading and inflating overlap with applying, the part that must stay sequential. A stream that decodes
/// (full replays, which build `Event` values) also decodes the records there, in chunks, so that decoding
/// overlaps with applying even inside a single segment; one that does not hands over each segment's
/// records in one chunk for `WorkingSetFold` to walk in place.
final class SegmentStream: Sendable {
    /// A run of records: `range` of the segment's `records`, with their events when the stream decodes.
    /// `finished` is the segment's header on the last chunk of a segment.
    struct Chunk: Sendable {
        var records: RecordBlock
        var range: Range<Int>
        var events: [Event]
        var file: String
        var finished: SegmentHeader?
    }

    /// Events decoded per chunk, and chunks ready ahead of the fold at most.
    static let chunkEvents = 4_096
    static let chunksAhead = 16

    private struct Queue {
        var ready: [Chunk] = []
        /// A record buffer the fold is done with, for the next segment.
        var spare: [UInt8]?
        var failure: ArchiveError?
        var cancelled = false
    }

    private let queue = Mutex(Queue())
    private let available = DispatchSemaphore(value: 0)
    private let space = DispatchSemaphore(value: chunksAhead)

    /// Starts reading `plan` from event `sequence` on, up to `last` at most, decoding events if `decoding`.
    init(
        _ archive: ArchiveReader, _ plan: [ArchiveDirectory.SegmentEntry], from sequence: UInt64, through last: UInt64?,
        decoding: Bool
    ) {
        DispatchQueue.global().async { [self] in
            let outcome = Result { () throws(ArchiveError) in
                try produce(archive, plan, from: sequence, through: last, decoding: decoding)
            }
            if case .failure(let error) = outcome { queue.withLock { $0.failure = error } }
            // One more signal than chunks: it wakes the `next` that finds the queue empty at the end.
            available.signal()
        }
    }

    /// The next chunk, nil after the last one. Not to be called again after nil or an error.
    func next() throws(ArchiveError) -> Chunk? {
        available.wait()
        let (chunk, failure) = queue.withLock { queue -> (Chunk?, ArchiveError?) in
            queue.ready.isEmpty ? (nil, queue.failure) : (queue.ready.removeFirst(), nil)
        }
        if let chunk {
            space.signal()
            return chunk
        }
        if let failure { throw failure }
        return nil
    }

    /// Hands a chunk's record buffer back once the fold is done with the segment, so that the next one is
    /// rebuilt in the same memory (a fresh buffer of tens of megabytes costs page faults and zeroing).
    func recycle(_ chunk: inout Chunk) {
        guard chunk.finished != nil else { return }
        let bytes = chunk.records.takeBytes()
        queue.withLock { $0.spare = bytes }
    }

    /// Stops the producer when the fold needs no more events.
    func cancel() {
        queue.withLock { $0.cancelled = true }
        for _ in 0..<Self.chunksAhead { space.signal() }
    }

    private func produce(
        _ archive: ArchiveReader, _ plan: [ArchiveDirectory.SegmentEntry], from sequence: UInt64, through last: UInt64?,
        decoding: Bool
    ) throws(ArchiveError) {
        var buffers = SegmentCodec.Buffers()
        for entry in plan {
            if let spare = queue.withLock({ queue in defer { queue.spare = nil }; return queue.spare }) { buffers.records = spare }
            let segment = try archive.segment(entry, reusing: &buffers)
            let file = archive.directory.filePath(entry.name)
            let first = segment.header.firstSequence
            let count = segment.records.count
            let skip = Int(min(UInt64(count), sequence - min(sequence, first)))
            let end = last.map { Int(min(UInt64(count), $0 >= first ? $0 - first + 1 : 0)) } ?? count
            var start = skip
            let scopePaths = ScopePathCache()
            repeat {
                let stop = decoding ? min(end, start + Self.chunkEvents) : end
                var events: [Event] = []
                if decoding {
                    events.reserveCapacity(stop - start)
                    for index in start..<max(start, stop) {
                        do { events.append(try EventCodec.decode(segment.records.bytes[segment.records.range(index)], scopePaths: scopePaths)) } catch {
                            throw ArchiveError(.corrupt, file: file, sequence: first + UInt64(index), "event record: \(error.reason)")
                        }
                    }
                }
                let chunk = Chunk(
                    records: segment.records, range: start..<max(start, stop), events: events, file: file,
                    finished: stop == count ? segment.header : nil)
                space.wait()
                let cancelled = queue.withLock { queue -> Bool in
                    guard !queue.cancelled else { return true }
                    queue.ready.append(chunk)
                    return false
                }
                if cancelled { return }
                available.signal()
                start = stop
            } while start < end
            if end < count { return }
        }
    }
}
