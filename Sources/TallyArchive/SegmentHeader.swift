import TallyCore

/// The fixed description at the start of a segment file (`protocol/archive.md`, section 2).
///
/// Invariants of a header that decoded: `lastSequence - firstSequence + 1 == eventCount`, the lengths are
/// within `ArchiveLimits`, and `headerLength` bytes of the file are covered by `headerCRC`.
public struct SegmentHeader: Sendable, Hashable {
    public static let magic: [UInt8] = Array("TALLYSEG".utf8)
    /// The format this code writes: 2 (string table, raw deflate). Format 1 segments are still read.
    public static let formatVersion: UInt16 = 2
    static let readableVersions: ClosedRange<UInt16> = 1...2
    /// Bytes before the zlib version text.
    static let fixedLength = 137

    public var formatVersion: UInt16
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var firstTimestampMilliseconds: Int64
    public var lastTimestampMilliseconds: Int64
    public var eventCount: UInt64
    /// The chain value before the first event (32 zero bytes for a log's first segment).
    public var entryChain: [UInt8]
    /// The chain value after the last event.
    public var exitChain: [UInt8]
    public var dictionaryLength: Int
    public var payloadLength: Int
    public var compressedLength: Int
    public var zlibVersion: String

    /// Total header bytes, including the zlib version text and the header CRC.
    public var headerLength: Int { Self.fixedLength + zlibVersion.utf8.count + 4 }
    /// The file length this header implies: header, dictionary, compressed payload, file CRC.
    public var fileLength: Int { headerLength + dictionaryLength + compressedLength + 4 }

    func write(into writer: inout ByteWriter) {
        let start = writer.count
        writer.writeBytes(Self.magic)
        writer.writeU16(formatVersion)
        writer.writeU16(UInt16(headerLength))
        writer.writeU64(firstSequence)
        writer.writeU64(lastSequence)
        writer.writeI64(firstTimestampMilliseconds)
        writer.writeI64(lastTimestampMilliseconds)
        writer.writeU64(eventCount)
        writer.writeBytes(entryChain)
        writer.writeBytes(exitChain)
        writer.writeU32(UInt32(dictionaryLength))
        writer.writeU64(UInt64(payloadLength))
        writer.writeU64(UInt64(compressedLength))
        writer.writeU8(UInt8(zlibVersion.utf8.count))
        writer.writeBytes(zlibVersion.utf8)
        writer.writeU32(Zlib.crc32(writer.bytes[start...]))
    }

    /// Reads and checks the header at the start of `bytes` (the whole file); `file` names it in errors.
    static func read(_ bytes: [UInt8], file: String) throws(ArchiveError) -> SegmentHeader {
        func corrupt(_ offset: Int, _ message: String) -> ArchiveError { ArchiveError(.corrupt, file: file, offset: offset, message) }
        guard bytes.count >= fixedLength + 4 else { throw corrupt(bytes.count, "too short for a segment header (\(bytes.count) bytes)") }
        guard Array(bytes[0..<8]) == magic else { throw corrupt(0, "not a Tally segment (bad magic)") }
        var reader = BigEndianReader(bytes, offset: 8)
        let version = reader.u16()
        guard readableVersions.contains(version) else {
            throw ArchiveError(.unsupportedVersion, file: file, offset: 8, "segment format \(version); this reader knows \(readableVersions)")
        }
        let declaredHeaderLength = Int(reader.u16())
        var header = SegmentHeader(
            formatVersion: version, firstSequence: reader.u64(), lastSequence: reader.u64(),
            firstTimestampMilliseconds: Int64(bitPattern: reader.u64()), lastTimestampMilliseconds: Int64(bitPattern: reader.u64()),
            eventCount: reader.u64(), entryChain: reader.bytes(32), exitChain: reader.bytes(32),
            dictionaryLength: Int(reader.u32()), payloadLength: 0, compressedLength: 0, zlibVersion: "")
        let payloadLength = reader.u64()
        let compressedLength = reader.u64()
        let versionLength = Int(reader.u8())
        guard declaredHeaderLength == fixedLength + versionLength + 4, bytes.count >= declaredHeaderLength else {
            throw corrupt(10, "header length \(declaredHeaderLength) does not fit the zlib version length \(versionLength)")
        }
        let crcOffset = fixedLength + versionLength
        let storedCRC = BigEndianReader.u32(bytes, at: crcOffset)
        guard Zlib.crc32(bytes[0..<crcOffset]) == storedCRC else { throw corrupt(crcOffset, "header CRC mismatch") }
        header.zlibVersion = String(decoding: bytes[fixedLength..<crcOffset], as: UTF8.self)
        guard header.lastSequence >= header.firstSequence, header.firstSequence >= 1,
              header.eventCount == header.lastSequence - header.firstSequence + 1 else {
            throw corrupt(12, "sequences \(header.firstSequence)...\(header.lastSequence) do not match the event count \(header.eventCount)")
        }
        guard header.eventCount <= ArchiveLimits.segmentEventsMax, header.dictionaryLength <= ArchiveLimits.dictionaryBytesMax,
              payloadLength <= UInt64(ArchiveLimits.segmentPayloadBytesMax), compressedLength <= UInt64(ArchiveLimits.segmentPayloadBytesMax) else {
            throw ArchiveError(.limitExceeded, file: file, offset: 44, "declared sizes exceed the segment limits")
        }
        header.payloadLength = Int(payloadLength)
        header.compressedLength = Int(compressedLength)
        guard header.lastTimestampMilliseconds >= header.firstTimestampMilliseconds else {
            throw corrupt(36, "last timestamp is before the first")
        }
        return header
    }
}

/// Fixed-width big-endian reads at offsets a caller has already checked are inside the buffer.
struct BigEndianReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    mutating func unsigned(_ width: Int) -> UInt64 {
        precondition(offset + width <= bytes.count, "a fixed-width read past a length the caller checked")
        var value: UInt64 = 0
        for index in offset..<(offset + width) { value = value << 8 | UInt64(bytes[index]) }
        offset += width
        return value
    }

    /// The u32 at `offset` of `bytes` (the CRC fields).
    static func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        var reader = BigEndianReader(bytes, offset: offset)
        return reader.u32()
    }

    mutating func u8() -> UInt8 { UInt8(unsigned(1)) }
    mutating func u16() -> UInt16 { UInt16(unsigned(2)) }
    mutating func u32() -> UInt32 { UInt32(unsigned(4)) }
    mutating func u64() -> UInt64 { unsigned(8) }

    mutating func bytes(_ count: Int) -> [UInt8] {
        precondition(offset + count <= bytes.count, "a fixed-width read past a length the caller checked")
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
}
