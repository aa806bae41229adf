import TallyCore

/// What each record of a segment being sealed offers to lift: the digests it carries and the ids of its
/// strings in the segment's `SegmentDictionary` (`strings`, which counts them as they come). The sealer
/// keeps these (a few dozen bytes per event, in four flat arrays) instead of every decoded body until the
/// segment is encoded, which held about 3 KB per event.
///
/// The sealer gathers them as `WorkingSetFold` walks each record in place (this is its `FoldSink`), then
/// calls `endRecord()`; the fold reports the strings and digests `SegmentDictionary.forEachString` and
/// `FieldLifting.digests` name, so a segment is the same whichever way its hints were gathered. Tests and
/// old formats take them from decoded bodies (`append(_:)`).
struct SegmentLiftHints: FoldSink {
    static var takesCharges: Bool { false }
    /// The strings counted so far.
    private(set) var strings = SegmentDictionary()
    private var stringIDs: [Int32] = []
    /// Where each record's ids end in `stringIDs`.
    private var stringEnds: [Int] = []
    private var digestBytes: [UInt8] = []
    /// Where each record's digests end in `digestBytes`.
    private var digestEnds: [Int] = []

    init(capacity: Int) {
        reserve(capacity)
    }

    /// Makes room for the hints of `records` records in all.
    mutating func reserve(_ records: Int) {
        stringEnds.reserveCapacity(records)
        digestEnds.reserveCapacity(records)
        stringIDs.reserveCapacity(records * 4)
        digestBytes.reserveCapacity(records * 32)
    }

    var count: Int { stringEnds.count }

    /// Forgets every record's hints and every counted string, keeping the memory for the next segment's.
    mutating func removeAll() {
        strings = SegmentDictionary()
        stringIDs.removeAll(keepingCapacity: true)
        stringEnds.removeAll(keepingCapacity: true)
        digestBytes.removeAll(keepingCapacity: true)
        digestEnds.removeAll(keepingCapacity: true)
    }

    /// Adds the next record's hints from its body.
    mutating func append(_ body: EventBody) {
        decoded(body)
        endRecord()
    }

    /// Closes the hints of the record whose fields were reported since the previous call.
    mutating func endRecord() {
        stringEnds.append(stringIDs.count)
        digestEnds.append(digestBytes.count)
    }

    mutating func string(_ utf8: UnsafeRawBufferPointer) {
        add(strings.note(utf8))
    }

    mutating func digest(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "lifted digests are SHA-256 values")
        digestBytes.append(contentsOf: bytes)
    }

    mutating func decoded(_ body: EventBody) {
        SegmentDictionary.forEachString(in: body) { string in
            var utf8 = string
            utf8.withUTF8 { add(strings.note(UnsafeRawBufferPointer($0))) }
        }
        for digest in FieldLifting.digests(of: body) { digest.withUnsafeBytes { self.digest($0) } }
    }

    /// Keeps a string's id for the current record, each id once.
    private mutating func add(_ id: Int32?) {
        guard let id else { return }
        if !stringIDs[(stringEnds.last ?? 0)...].contains(id) { stringIDs.append(id) }
    }

    /// The dictionary ids of record `index`'s strings, each once, in the order they occur in its body.
    func stringIDs(of index: Int) -> ArraySlice<Int32> {
        stringIDs[(index == 0 ? 0 : stringEnds[index - 1])..<stringEnds[index]]
    }

    /// Appends the digests of record `index` to `bytes`, back to back.
    func appendDigests(of index: Int, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: digestBytes[(index == 0 ? 0 : digestEnds[index - 1])..<digestEnds[index]])
    }

    /// The digests of record `index`, as `FieldLifting.digests(of:)` gives them (for the tests; the encoder
    /// takes them with `appendDigests`).
    func digests(of index: Int) -> [[UInt8]] {
        let start = index == 0 ? 0 : digestEnds[index - 1]
        return stride(from: start, to: digestEnds[index], by: 32).map { Array(digestBytes[$0..<($0 + 32)]) }
    }
}
