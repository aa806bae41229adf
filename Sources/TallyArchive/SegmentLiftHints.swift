import TallyCore

/// What each record of a segment being sealed offers to lift, taken from its decoded body as it is read:
/// the digests it carries and the ids of its strings in the segment's `SegmentDictionary`. The sealer
/// keeps these (a few dozen bytes per event, in four flat arrays) instead of every decoded body until the
/// segment is encoded, which held about 3 KB per event.
struct SegmentLiftHints {
    private var stringIDs: [Int32] = []
    /// Where each record's ids end in `stringIDs`.
    private var stringEnds: [Int] = []
    private var digestBytes: [UInt8] = []
    /// Where each record's digests end in `digestBytes`.
    private var digestEnds: [Int] = []

    init(capacity: Int) {
        stringEnds.reserveCapacity(capacity)
        digestEnds.reserveCapacity(capacity)
        stringIDs.reserveCapacity(capacity * 4)
        digestBytes.reserveCapacity(capacity * 32)
    }

    var count: Int { stringEnds.count }

    /// Adds the next record's hints from its body, counting its strings in `dictionary`.
    mutating func append(_ body: EventBody, counting dictionary: inout SegmentDictionary) {
        dictionary.add(body, ids: &stringIDs)
        stringEnds.append(stringIDs.count)
        for digest in FieldLifting.digests(of: body) {
            precondition(digest.count == 32, "lifted digests are SHA-256 values")
            digestBytes.append(contentsOf: digest)
        }
        digestEnds.append(digestBytes.count)
    }

    /// The dictionary ids of record `index`'s strings, each once, in the order they occur in its body.
    func stringIDs(of index: Int) -> ArraySlice<Int32> {
        stringIDs[(index == 0 ? 0 : stringEnds[index - 1])..<stringEnds[index]]
    }

    /// The digests of record `index`, as `FieldLifting.digests(of:)` gave them.
    func digests(of index: Int) -> [[UInt8]] {
        let start = index == 0 ? 0 : digestEnds[index - 1]
        return stride(from: start, to: digestEnds[index], by: 32).map { Array(digestBytes[$0..<($0 + 32)]) }
    }
}
