import Dispatch
import Synchronization
import TallyCore
import TallyStore

/// One segment as the audit reads it, prepared on another thread: the file checked and decoded, the chain
/// values after each record (32 bytes each, back to back), and, for an audit that folds decoded events,
/// each record's event (or why it does not decode).
struct PreparedSegment: Sendable {
    var decoded: Result<DecodedSegment, ArchiveError>
    var chains: [UInt8] = []
    var events: [Result<Event, EventCodecError>] = []

    /// The chain value after record `index`.
    func chain(_ index: Int) -> [UInt8] { Array(chains[(32 * index)..<(32 * index + 32)]) }

    /// The tag of that chain value (`SegmentCodec.chainTag`).
    func chainTag(_ index: Int) -> UInt32 { SegmentCodec.chainTag(chains[(32 * index)..<(32 * index + 4)]) }
}

/// Prepares the segments of an audit in order on another thread, at most two ahead of the fold: reading,
/// inflating, hashing the chain and decoding overlap with the sequential checks and the replay.
final class SegmentPreparer: Sendable {
    static let segmentsAhead = 2

    private let ready = Mutex<[Int: PreparedSegment]>([:])
    /// Buffers of a segment the audit is done with, for the next one (`recycle`).
    private let spare = Mutex<(records: [UInt8], chains: [UInt8])?>(nil)
    private let available = DispatchSemaphore(value: 0)
    private let space = DispatchSemaphore(value: segmentsAhead)
    private let taken = Mutex(0)

    /// Starts preparing `segments`, decoding their events too if `decoding`.
    init(_ archive: ArchiveReader, _ segments: [ArchiveDirectory.SegmentEntry], decoding: Bool) {
        DispatchQueue.global().async { [self] in
            var buffers = SegmentCodec.Buffers()
            var chains: [UInt8] = []
            for (index, entry) in segments.enumerated() {
                space.wait()
                if let reuse = spare.withLock({ spare in defer { spare = nil }; return spare }) {
                    buffers.records = reuse.records
                    chains = reuse.chains
                }
                let prepared = Self.prepare(archive, entry, decoding: decoding, &buffers, &chains)
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

    /// Hands back the buffers of a segment the audit is done with, so that the next one is prepared in the
    /// same memory instead of fresh pages (tens of megabytes per segment).
    func recycle(_ prepared: inout PreparedSegment) {
        guard case .success(var decoded) = prepared.decoded else { return }
        prepared.decoded = .failure(ArchiveError(.io, file: "", "recycled"))
        var chains: [UInt8] = []
        swap(&chains, &prepared.chains)
        let records = decoded.records.takeBytes()
        spare.withLock { $0 = (records, chains) }
    }

    private static func prepare(
        _ archive: ArchiveReader, _ entry: ArchiveDirectory.SegmentEntry, decoding: Bool, _ buffers: inout SegmentCodec.Buffers,
        _ chains: inout [UInt8]
    ) -> PreparedSegment {
        let decoded: DecodedSegment
        do { decoded = try archive.segment(entry, reusing: &buffers) } catch {
            return PreparedSegment(decoded: .failure(error))
        }
        var prepared = PreparedSegment(decoded: .success(decoded))
        let records = decoded.records
        records.bytes.withUnsafeBytes { bytes in
            EventChain.links(from: decoded.header.entryChain, records: bytes, count: records.count, range: records.range, into: &chains)
        }
        swap(&prepared.chains, &chains)
        if decoding {
            prepared.events.reserveCapacity(records.count)
            let scopePaths = ScopePathCache()
            for index in records.indices {
                prepared.events.append(Result { () throws(EventCodecError) in
                    try EventCodec.decode(records.bytes[records.range(index)], scopePaths: scopePaths)
                })
            }
        }
        return prepared
    }
}
