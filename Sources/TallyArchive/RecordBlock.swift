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

    public var startIndex: Int { 0 }
    public var endIndex: Int { starts.count - 1 }

    /// A copy of one record.
    public subscript(index: Int) -> [UInt8] { Array(bytes[range(index)]) }

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
