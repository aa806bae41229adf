import TallyCore

/// Encodes a run of event records into segment bytes and back (`protocol/archive.md`, section 2).
///
/// The payload is columnar before it is compressed: first (format 2) the segment's string table; then,
/// per event, its type code, its timestamp as a delta from the previous one, its body length (LEB128), the
/// first four bytes of its chain value and the fields lifted out of its body (`FieldLifting`); then every
/// body without them, back to back; then the lifted digests. Sequences are implied by the header and the
/// record version byte by the segment version. Chain values are recomputed from the records; the four-byte
/// tags only let an audit name the first event whose link is broken (the header's exit chain covers the
/// whole segment). Format 2 compresses the payload as raw deflate (the file CRC already covers every
/// byte, so zlib's own Adler-32 over the inflated bytes was a tenth of a replay's time for nothing);
/// format 1, still read, primed a zlib stream with a dictionary of frequent strings instead of lifting them.
public enum SegmentCodec {
    /// Level 9 is 5-9% smaller on these payloads but takes three times as long to seal; inflating costs
    /// the same at every level.
    static let compressionLevel: Int32 = 6

    /// The bytes of a segment holding `records` (complete event records with consecutive sequences) and
    /// `chains` (the chain value after each). `entryChain` is the chain before the first record. `strings`
    /// has counted the strings of the records' events (it gives the string table, or format 1's preset
    /// dictionary). `bodies` are the records' decoded bodies when the caller has them (they choose what to
    /// lift); without them the records are decoded here. `formatVersion` 1 is for tests of old archives.
    public static func encode(
        records: [[UInt8]], chains: [[UInt8]], entryChain: [UInt8], strings: SegmentDictionary = SegmentDictionary(),
        bodies: [EventBody]? = nil, formatVersion: UInt16 = SegmentHeader.formatVersion
    ) throws(ArchiveError) -> [UInt8] {
        precondition(!records.isEmpty && records.count == chains.count, "a segment holds at least one event, each with its chain")
        precondition(entryChain.count == 32 && chains.allSatisfy { $0.count == 32 }, "chain values are 32 bytes")
        precondition(bodies == nil || bodies!.count == records.count, "one body per record")
        precondition(SegmentHeader.readableVersions.contains(formatVersion), "a segment format this code writes")
        let exitChain = chains[chains.count - 1]
        let firstSequence = recordSequence(records[0])
        let firstTimestamp = recordTimestamp(records[0])
        let lifting = formatVersion >= 2
        let table = lifting ? strings.table() : []
        let tableIndex = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($1, $0) })
        var head = ByteWriter(capacity: table.reduce(8) { $0 + 2 + $1.utf8.count })
        if lifting {
            head.writeVarint(UInt64(table.count))
            for string in table {
                head.writeVarint(UInt64(string.utf8.count))
                head.writeBytes(string.utf8)
            }
        }
        var columns = ByteWriter(capacity: records.count * 12)
        var residue = ByteWriter(capacity: records.reduce(0) { $0 + $1.count })
        var digests = ByteWriter(capacity: records.count * 32)
        var previous = firstTimestamp
        for (index, record) in records.enumerated() {
            precondition(recordSequence(record) == firstSequence + UInt64(index), "records must have consecutive sequences")
            let timestamp = recordTimestamp(record)
            precondition(timestamp >= previous, "timestamps never go backwards in the log")
            let body = record[EventCodec.headerLength...]
            let eventBody: EventBody
            if let bodies { eventBody = bodies[index] } else {
                do { eventBody = try EventCodec.decode(record).body } catch {
                    throw ArchiveError(.corrupt, file: "", sequence: firstSequence + UInt64(index), "a record to seal does not decode: \(error.reason)")
                }
            }
            var candidates: [FieldLifting.StringCandidate] = []
            if lifting {
                SegmentDictionary.forEachString(in: eventBody) { string in
                    if let index = tableIndex[string], !candidates.contains(where: { $0.index == index }) {
                        candidates.append(FieldLifting.StringCandidate(utf8: Array(string.utf8), index: index))
                    }
                }
            }
            let lifts = FieldLifting.lifts(
                in: body, digests: FieldLifting.digests(of: eventBody), strings: candidates, timestamp: timestamp)
            columns.writeU8(record[1])
            columns.writeVarint(UInt64(bitPattern: timestamp &- previous))
            columns.writeVarint(UInt64(body.count))
            columns.writeBytes(chains[index][0..<4])
            columns.writeVarint(UInt64(lifts.count))
            var position = body.startIndex
            for lift in lifts {
                columns.writeVarint(UInt64(lift.gap))
                columns.writeU8(lift.kind)
                if lift.kind == FieldLifting.timeKind { columns.writeVarint(FieldLifting.zigzag(lift.timeDelta)) }
                if lift.kind == FieldLifting.stringKind { columns.writeVarint(UInt64(lift.stringIndex)) }
                if lift.kind == FieldLifting.digestKind { digests.writeBytes(lift.digest) }
                residue.writeBytes(body[position..<(position + lift.gap)])
                position += lift.gap + lift.length
            }
            residue.writeBytes(body[position...])
            previous = timestamp
        }
        let payload = head.bytes + columns.bytes + residue.bytes + digests.bytes
        guard payload.count <= ArchiveLimits.segmentPayloadBytesMax else {
            throw ArchiveError(.limitExceeded, file: "", "a segment of \(records.count) events is \(payload.count) bytes, over the limit")
        }
        let dictionary = lifting ? [] : strings.bytes()
        let compressed: [UInt8]
        do {
            compressed = try Zlib.deflate(payload, dictionary: dictionary, level: compressionLevel, raw: lifting)
        } catch {
            throw ArchiveError(.io, file: "", "\(error)")
        }
        let header = SegmentHeader(
            formatVersion: formatVersion,
            firstSequence: firstSequence, lastSequence: firstSequence + UInt64(records.count - 1),
            firstTimestampMilliseconds: firstTimestamp, lastTimestampMilliseconds: previous,
            eventCount: UInt64(records.count), entryChain: entryChain, exitChain: exitChain,
            dictionaryLength: dictionary.count, payloadLength: payload.count, compressedLength: compressed.count,
            zlibVersion: zlibRuntimeVersion)
        var writer = ByteWriter(capacity: header.fileLength)
        header.write(into: &writer)
        writer.writeBytes(dictionary)
        writer.writeBytes(compressed)
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        return writer.bytes
    }

    /// Checks a whole segment file (header, length, CRC) and returns its header, its event records rebuilt
    /// byte for byte as the log stored them, and each event's chain tag. Does not check the chain.
    public static func decode(_ bytes: [UInt8], file: String) throws(ArchiveError) -> DecodedSegment {
        var buffers = Buffers()
        return try decode(bytes, file: file, reusing: &buffers)
    }

    /// Memory a reader of many segments hands from one decode to the next: the inflated payload, and the
    /// buffer of a record block the reader is done with (`recycle`).
    public struct Buffers: Sendable {
        var payload: [UInt8] = []
        var records: [UInt8] = []

        public init() {}

        /// Gives back a block's buffer for the next decode to fill (when nothing else holds the block).
        public mutating func recycle(_ block: inout RecordBlock) {
            records = block.takeBytes()
        }
    }

    /// `decode`, reusing `buffers`' memory.
    public static func decode(_ bytes: [UInt8], file: String, reusing buffers: inout Buffers) throws(ArchiveError) -> DecodedSegment {
        let header = try checkedHeader(bytes, file: file)
        let dictionaryStart = header.headerLength
        let payloadStart = dictionaryStart + header.dictionaryLength
        let dictionary = Array(bytes[dictionaryStart..<payloadStart])
        do {
            try Zlib.inflate(
                bytes[payloadStart..<(payloadStart + header.compressedLength)], dictionary: dictionary,
                expectedLength: header.payloadLength, into: &buffers.payload, raw: header.formatVersion >= 2)
        } catch {
            throw ArchiveError(.corrupt, file: file, offset: payloadStart, sequence: header.firstSequence, "\(error)")
        }
        let table = try readColumns(buffers.payload, header, file: file)
        let records = rebuild(table, buffers.payload, header, into: &buffers.records)
        return DecodedSegment(header: header, records: records, chainTags: table.tags)
    }

    /// The header of a file after checking its length and CRC, without decompressing anything.
    public static func checkedHeader(_ bytes: [UInt8], file: String) throws(ArchiveError) -> SegmentHeader {
        let header = try SegmentHeader.read(bytes, file: file)
        guard bytes.count == header.fileLength else {
            throw ArchiveError(.corrupt, file: file, offset: min(bytes.count, header.fileLength),
                               "the file is \(bytes.count) bytes but its header declares \(header.fileLength)")
        }
        let crcOffset = bytes.count - 4
        let stored = BigEndianReader.u32(bytes, at: crcOffset)
        guard Zlib.crc32(bytes[0..<crcOffset]) == stored else {
            throw ArchiveError(.corrupt, file: file, offset: crcOffset, sequence: header.firstSequence, "file CRC mismatch: the segment is damaged")
        }
        return header
    }

    /// What the first pass over the column table found: the string table (format 2), where the columns
    /// and the residues start, each event's chain tag, and the record bytes the rebuild will write.
    private struct Columns {
        var strings: [Range<Int>] = []
        var columnsStart = 0
        var residueStart = 0
        var digestStart = 0
        var tags: [UInt32] = []
        var recordBytes = 0
    }

    /// First pass: reads and checks the whole column table (and the string table) without keeping the
    /// lifts, so that the rebuild can trust it. Keeping a value per lift cost a growing array of millions
    /// of entries per segment.
    private static func readColumns(_ payload: [UInt8], _ header: SegmentHeader, file: String) throws(ArchiveError) -> Columns {
        var cursor = PayloadCursor(payload)
        var table = Columns()
        table.strings = header.formatVersion >= 2 ? try readStrings(&cursor, header, file: file) : []
        table.columnsStart = cursor.offset
        let count = Int(header.eventCount)
        table.tags.reserveCapacity(count)
        var timestamp = header.firstTimestampMilliseconds
        var residueTotal = 0
        var digestTotal = 0
        for index in 0..<count {
            let sequence = header.firstSequence + UInt64(index)
            let start = cursor.offset
            func malformed(_ what: String) -> ArchiveError {
                ArchiveError(.corrupt, file: file, offset: start, sequence: sequence, "malformed event column (payload offset): \(what)")
            }
            guard cursor.readU8() != nil, let delta = cursor.readVarint(), let length = cursor.readVarint(),
                  let tag = cursor.readU32(), let liftCount = cursor.readVarint() else { throw malformed("truncated") }
            // A lift covers at least five body bytes (a string of one byte and its length), eight in format 1.
            guard delta <= UInt64(bitPattern: header.lastTimestampMilliseconds &- timestamp), length <= UInt64(payload.count),
                  liftCount <= length / (table.strings.isEmpty ? 8 : 5) else { throw malformed("a value is out of range") }
            timestamp = timestamp &+ Int64(bitPattern: delta)  // cannot pass the last timestamp, checked above
            var covered = 0
            var lifted = 0
            for _ in 0..<Int(liftCount) {
                guard let gap = cursor.readVarint(), let kind = cursor.readU8(), gap <= length else { throw malformed("a lift is truncated") }
                let liftLength: Int
                switch kind {
                case FieldLifting.digestKind:
                    liftLength = 32
                    digestTotal += 32
                case FieldLifting.timeKind:
                    guard cursor.readVarint() != nil else { throw malformed("a lifted time is truncated") }
                    liftLength = 8
                case FieldLifting.stringKind where header.formatVersion >= 2:
                    guard let index = cursor.readVarint() else { throw malformed("a lifted string is truncated") }
                    guard index < UInt64(table.strings.count) else { throw malformed("string \(index) is not in the table of \(table.strings.count)") }
                    liftLength = 4 + table.strings[Int(index)].count
                default: throw malformed("unknown lift kind \(kind)")
                }
                covered += Int(gap) + liftLength
                lifted += liftLength
                guard covered <= Int(length) else { throw malformed("lifts pass the end of the body") }
            }
            residueTotal += Int(length) - lifted
            table.recordBytes += EventCodec.headerLength + Int(length)
            guard table.recordBytes <= ArchiveLimits.segmentRecordBytesMax else {
                throw ArchiveError(.limitExceeded, file: file, offset: start, sequence: sequence,
                                   "the events declare more than \(ArchiveLimits.segmentRecordBytesMax) bytes of records")
            }
            table.tags.append(tag)
        }
        guard timestamp == header.lastTimestampMilliseconds, cursor.offset + residueTotal + digestTotal == payload.count else {
            throw ArchiveError(.corrupt, file: file, offset: cursor.offset, sequence: header.lastSequence,
                               "the payload does not add up to the declared events and timestamps")
        }
        table.residueStart = cursor.offset
        table.digestStart = cursor.offset + residueTotal
        return table
    }

    /// The string table at the start of a format 2 payload: a LEB128 count, then each string as a LEB128
    /// length and its bytes. The bytes need no checking: they go back into records byte for byte.
    private static func readStrings(_ cursor: inout PayloadCursor, _ header: SegmentHeader, file: String) throws(ArchiveError) -> [Range<Int>] {
        func malformed(_ what: String) -> ArchiveError {
            ArchiveError(.corrupt, file: file, offset: cursor.offset, sequence: header.firstSequence, "malformed string table (payload offset): \(what)")
        }
        guard let count = cursor.readVarint() else { throw malformed("truncated") }
        guard count <= UInt64(ArchiveLimits.stringTableCountMax) else { throw malformed("\(count) strings, over the limit") }
        var strings: [Range<Int>] = []
        strings.reserveCapacity(Int(count))
        for _ in 0..<Int(count) {
            guard let length = cursor.readVarint(), length <= UInt64(cursor.bytes.count - cursor.offset) else { throw malformed("a string is truncated") }
            guard length > 0 else { throw malformed("an empty string") }
            strings.append(cursor.offset..<(cursor.offset + Int(length)))
            cursor.offset += Int(length)
        }
        return strings
    }

    /// Second pass: reads the column table again and rebuilds every record, residue bytes and lifted fields
    /// interleaved, into one buffer. The first pass checked every value read here, so these reads need no
    /// checks beyond the buffer bounds; the copies go through raw pointers (an `ArraySlice` per piece cost
    /// a retain and a release each, several per record).
    private static func rebuild(_ table: Columns, _ payload: [UInt8], _ header: SegmentHeader, into storage: inout [UInt8]) -> RecordBlock {
        // Resized without rewriting the bytes already there (every byte is written below). The buffer is
        // one the reader recycled, held by nobody else, so resizing it copies nothing.
        var bytes: [UInt8] = []
        swap(&bytes, &storage)
        if bytes.count < table.recordBytes {
            bytes.append(contentsOf: [UInt8](repeating: 0, count: table.recordBytes - bytes.count))
        } else {
            bytes.removeLast(bytes.count - table.recordBytes)
        }
        let count = Int(header.eventCount)
        var starts = [Int](repeating: 0, count: count + 1)
        payload.withUnsafeBytes { input in
            bytes.withUnsafeMutableBytes { output in
                var reader = RawCursor(input, at: table.columnsStart)
                var writer = RawWriter(output)
                var residue = table.residueStart
                var digest = table.digestStart
                var timestamp = header.firstTimestampMilliseconds
                for index in 0..<count {
                    starts[index] = writer.offset
                    let type = reader.u8()
                    timestamp = timestamp &+ Int64(bitPattern: reader.varint())
                    let length = Int(reader.varint())
                    reader.offset += 4  // chain tag
                    let liftCount = Int(reader.varint())
                    writer.u8(EventCodec.formatVersion)
                    writer.u8(type)
                    writer.u64(header.firstSequence + UInt64(index))
                    writer.u64(UInt64(bitPattern: timestamp))
                    writer.u32(UInt32(length))
                    var written = 0
                    for _ in 0..<liftCount {
                        let gap = Int(reader.varint())
                        let kind = reader.u8()
                        writer.copy(input, residue, gap)
                        residue += gap
                        switch kind {
                        case FieldLifting.digestKind:
                            writer.copy(input, digest, 32)
                            digest += 32
                            written += gap + 32
                        case FieldLifting.stringKind:
                            let string = table.strings[Int(reader.varint())]
                            writer.u32(UInt32(string.count))
                            writer.copy(input, string.lowerBound, string.count)
                            written += gap + 4 + string.count
                        default:
                            writer.u64(UInt64(bitPattern: timestamp &+ FieldLifting.unzigzag(reader.varint())))
                            written += gap + 8
                        }
                    }
                    writer.copy(input, residue, length - written)
                    residue += length - written
                }
                starts[count] = writer.offset
                precondition(writer.offset == output.count, "the first pass counted the record bytes")
            }
        }
        return RecordBlock(bytes: bytes, starts: starts)
    }

    /// Reads a payload the first pass checked (bounds are still checked by the buffer pointer in debug).
    private struct RawCursor {
        let bytes: UnsafeRawBufferPointer
        var offset: Int

        init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
            self.bytes = bytes
            self.offset = offset
        }

        @inline(__always)
        mutating func u8() -> UInt8 {
            defer { offset += 1 }
            return bytes[offset]
        }

        @inline(__always)
        mutating func varint() -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            var byte: UInt8
            repeat {
                byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7f) << shift
                shift += 7
            } while byte & 0x80 != 0
            return value
        }
    }

    /// Writes big-endian integers and copied ranges into a buffer sized exactly for them.
    private struct RawWriter {
        let bytes: UnsafeMutableRawBufferPointer
        var offset = 0

        init(_ bytes: UnsafeMutableRawBufferPointer) { self.bytes = bytes }

        @inline(__always)
        mutating func u8(_ value: UInt8) {
            bytes[offset] = value
            offset += 1
        }

        @inline(__always)
        mutating func u32(_ value: UInt32) {
            bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }

        @inline(__always)
        mutating func u64(_ value: UInt64) {
            bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }

        @inline(__always)
        private func word(_ source: UnsafeRawBufferPointer, _ from: Int, _ to: Int) {
            bytes.storeBytes(of: source.loadUnaligned(fromByteOffset: from, as: UInt64.self), toByteOffset: to, as: UInt64.self)
        }

        /// Most pieces are a few bytes to a few dozen: copied eight bytes at a time inline, a call to
        /// memmove for each cost more than the copy.
        @inline(__always)
        mutating func copy(_ source: UnsafeRawBufferPointer, _ start: Int, _ count: Int) {
            precondition(start >= 0 && count >= 0 && start + count <= source.count && offset + count <= bytes.count, "a copy inside both buffers")
            guard count <= 64 else {
                (bytes.baseAddress! + offset).copyMemory(from: source.baseAddress! + start, byteCount: count)
                offset += count
                return
            }
            if count >= 8 {
                // Whole words, then one more word ending exactly at the end (it may overlap the last one).
                var done = 0
                while done &+ 8 <= count {
                    word(source, start &+ done, offset &+ done)
                    done &+= 8
                }
                if done < count { word(source, start &+ count &- 8, offset &+ count &- 8) }
            } else {
                for index in 0..<count { bytes[offset &+ index] = source[start &+ index] }
            }
            offset &+= count
        }
    }

    /// The first four bytes of a chain value as a big-endian integer.
    public static func chainTag(_ chain: [UInt8]) -> UInt32 {
        chain[0..<4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func recordSequence(_ record: [UInt8]) -> UInt64 {
        record[2..<10].reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func recordTimestamp(_ record: [UInt8]) -> Int64 {
        Int64(bitPattern: record[10..<18].reduce(0) { $0 << 8 | UInt64($1) })
    }
}

/// A segment as read back: its header, its records and the chain tag stored for each.
public struct DecodedSegment: Sendable {
    public var header: SegmentHeader
    public var records: RecordBlock
    public var chainTags: [UInt32]
}
