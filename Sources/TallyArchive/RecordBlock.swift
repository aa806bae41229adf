/// The event records of a segment, back to back in one buffer: a segment of 100,000 events is two
/// allocations instead of 100,000, and folds walk the records in place (`WorkingSetFold`).
public struct RecordBlock: Sendable, RandomAccessCollection {
    public private(set) var bytes: [UInt8]
    /// Where each record starts, and the end of the last one.
    private var starts: [Int]

    init(bytes: [UInt8], starts: [Int]) {
        precondition(starts.first == 0 && starts.last == bytes.count, "record starts cover the buffer")
        self.bytes = bytes
        self.starts = starts
    }

    /// An empty block that records are appended to, with room for about `bytes` bytes of `records` records.
    init(reservingBytes bytes: Int, records: Int) {
        self.bytes = []
        self.bytes.reserveCapacity(bytes)
        starts = [0]
        starts.reserveCapacity(records + 1)
    }

    /// The records given, back to back.
    init(_ records: [[UInt8]]) {
        self.init(reservingBytes: records.reduce(0) { $0 + $1.count }, records: records.count)
        for record in records { record.withUnsafeBytes { append($0) } }
    }

    /// Adds a record after the last one.
    mutating func append(_ record: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: record)
        starts.append(bytes.count)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { starts.count - 1 }

    /// A copy of one record.
    public subscript(index: Int) -> [UInt8] { Array(bytes[range(index)]) }

    /// Makes room for about `bytes` bytes of `records` records in all.
    mutating func reserve(bytes count: Int, records: Int) {
        bytes.reserveCapacity(count)
        starts.reserveCapacity(records + 1)
    }

    /// Removes every record, keeping the memory for the next ones.
    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        starts.append(0)
    }

    /// Takes the buffer out for reuse, leaving the block empty (and this the buffer's only owner, if it was).
    mutating func takeBytes() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        starts = [0]
        return taken
    }

    /// The byte range of one record in `bytes`.
    public func range(_ index: Int) -> Range<Int> { starts[index]..<starts[index + 1] }
}
