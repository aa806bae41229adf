#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    /// zlib's level for format 1 (written only by tests of old archives; format 2 goes through `Libdeflate`).
    /// Level 9 is 5-9% smaller on these payloads but takes three times as long to seal.
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
        precondition(bodies == nil || bodies!.count == records.count, "one body per record")
        let lifting = formatVersion >= 2
        let table = lifting ? strings.table() : []
        // By bytes, as the dictionary counts them: two spellings of one text (Unicode equivalents, equal as
        // `String`s) are two entries.
        let tableIndex = Dictionary(uniqueKeysWithValues: table.enumerated().map { (Array($1.utf8), $0) })
        let firstSequence = records.first.map { recordSequence($0[...]) } ?? 0
        var workspace = Workspace()
        return try encode(
            records: RecordBlock(records), chains: chains.flatMap { $0 }, entryChain: entryChain, strings: strings, table: table,
            formatVersion: formatVersion, workspace: &workspace
        ) {
            (index, record, offer) throws(ArchiveError) in
            let eventBody: EventBody
            if let bodies { eventBody = bodies[index] } else {
                do throws(EventCodecError) { eventBody = try EventCodec.decode(record).body } catch {
                    throw ArchiveError(.corrupt, file: "", sequence: firstSequence + UInt64(index), "a record to seal does not decode: \(error.reason)")
                }
            }
            if lifting {
                SegmentDictionary.forEachString(in: eventBody) { string in
                    // By the table's own bytes: a string is lifted only as the entry with exactly its bytes.
                    if let index = tableIndex[Array(string.utf8)], !offer.strings.contains(index) { offer.strings.append(index) }
                }
            }
            for digest in FieldLifting.digests(of: eventBody) { offer.digests.append(contentsOf: digest) }
        }
    }

    /// The bytes of a segment in the current format, with what each record offers to lift taken from
    /// `hints` (gathered as the records were read, with `strings` counting their strings) rather than from
    /// decoded bodies. As above, each candidate string is the table's own bytes: the dictionary counts strings
    /// by their bytes, so a record's string is lifted only as the entry with exactly those bytes (Swift's
    /// `String` equality is Unicode equivalence: lifting by it would give another spelling's bytes back).
    static func encode(
        records: [[UInt8]], chains: [[UInt8]], entryChain: [UInt8], strings: SegmentDictionary, hints: SegmentLiftHints
    ) throws(ArchiveError) -> [UInt8] {
        var workspace = Workspace()
        return try encode(
            records: RecordBlock(records), chains: chains.flatMap { $0 }, entryChain: entryChain, strings: strings, hints: hints,
            workspace: &workspace)
    }

    /// The same for records back to back in one block and their chain values back to back, 32 bytes each
    /// (the sealer's form: two buffers for a whole segment instead of two arrays per event), in `workspace`'s
    /// memory. Hand the returned bytes back (`Workspace.file`) once they are written.
    static func encode(
        records: RecordBlock, chains: [UInt8], entryChain: [UInt8], strings: SegmentDictionary, hints: SegmentLiftHints,
        workspace: inout Workspace
    ) throws(ArchiveError) -> [UInt8] {
        precondition(hints.count == records.count, "one set of hints per record")
        let tableIDs = strings.tableIDs()
        var tableIndexOfID = [Int](repeating: -1, count: strings.count)
        for (index, id) in tableIDs.enumerated() { tableIndexOfID[Int(id)] = index }
        let table = tableIDs.map { strings.string($0) }
        return try encode(
            records: records, chains: chains, entryChain: entryChain, strings: strings, table: table,
            formatVersion: SegmentHeader.formatVersion, workspace: &workspace
        ) {
            (index, _, offer) throws(ArchiveError) in
            for id in hints.stringIDs(of: index) {
                let tableIndex = tableIndexOfID[Int(id)]
                if tableIndex >= 0 { offer.strings.append(tableIndex) }
            }
            hints.appendDigests(of: index, to: &offer.digests)
        }
    }

    /// Memory a sealer hands from one segment to the next: for 100,000 events the sections, the payload and
    /// the read-back are tens of megabytes each, and fresh memory costs a page fault for every 4 KiB it
    /// touches (about a tenth of sealing, with the compressor's tables).
    struct Workspace {
        var columns: [UInt8] = []
        var residue: [UInt8] = []
        var digests: [UInt8] = []
        var payload: [UInt8] = []
        /// The last segment's file bytes, once its caller has written them.
        var file: [UInt8] = []
        var compressor: Libdeflate.Compressor?
        /// For the read-back (`verify`).
        var decoding = Buffers()

        /// The buffer at `path`, emptied with its capacity kept, leaving an empty one in its place.
        mutating func take(_ path: WritableKeyPath<Workspace, [UInt8]>) -> [UInt8] {
            var taken: [UInt8] = []
            swap(&taken, &self[keyPath: path])
            taken.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// The encoding itself: `liftable(index, record, offer)` fills `offer` (emptied for each record) with the
    /// digests and table strings worth lifting from each record, `table` is the string table (empty before
    /// format 2).
    private static func encode(
        records: RecordBlock, chains: [UInt8], entryChain: [UInt8], strings: SegmentDictionary, table: [String], formatVersion: UInt16,
        workspace: inout Workspace, liftable: (Int, ArraySlice<UInt8>, inout FieldLifting.Offer) throws(ArchiveError) -> Void
    ) throws(ArchiveError) -> [UInt8] {
        precondition(!records.isEmpty && 32 * records.count == chains.count, "a segment holds at least one event, each with its chain")
        precondition(entryChain.count == 32, "chain values are 32 bytes")
        precondition(SegmentHeader.readableVersions.contains(formatVersion), "a segment format this code writes")
        let exitChain = Array(chains[(chains.count - 32)...])
        let firstSequence = recordSequence(records.bytes[records.range(0)])
        let firstTimestamp = recordTimestamp(records.bytes[records.range(0)])
        let lifting = formatVersion >= 2
        var head = ByteWriter(capacity: table.reduce(8) { $0 + 2 + $1.utf8.count })
        if lifting {
            head.writeVarint(UInt64(table.count))
            for string in table {
                head.writeVarint(UInt64(string.utf8.count))
                head.writeBytes(string.utf8)
            }
        }
        var columns = ByteWriter(appendingTo: workspace.take(\.columns))
        var residue = ByteWriter(appendingTo: workspace.take(\.residue))
        var digests = ByteWriter(appendingTo: workspace.take(\.digests))
        columns.reserveCapacity(records.count * 12)
        residue.reserveCapacity(records.bytes.count)
        digests.reserveCapacity(records.count * 32)
        var previous = firstTimestamp
        // One of each for the whole segment, emptied for every record.
        let stringTable = FieldLifting.StringTable(table.lazy.map { Array($0.utf8) })
        var offer = FieldLifting.Offer()
        var lifts: [FieldLifting.Lift] = []
        for index in records.indices {
            let record = records.bytes[records.range(index)]
            precondition(recordSequence(record) == firstSequence + UInt64(index), "records must have consecutive sequences")
            let timestamp = recordTimestamp(record)
            precondition(timestamp >= previous, "timestamps never go backwards in the log")
            let body = record[(record.startIndex + EventCodec.headerLength)...]
            offer.removeAll()
            try liftable(index, record, &offer)
            body.withUnsafeBytes { body in
                stringTable.bytes.withUnsafeBytes { tableBytes in
                    FieldLifting.lifts(in: body, offering: offer, table: tableBytes, stringTable.ranges, timestamp: timestamp, into: &lifts)
                }
            }
            columns.writeU8(record[record.startIndex + 1])
            columns.writeVarint(UInt64(bitPattern: timestamp &- previous))
            columns.writeVarint(UInt64(body.count))
            columns.writeBytes(chains[(32 * index)..<(32 * index + 4)])
            columns.writeVarint(UInt64(lifts.count))
            var position = body.startIndex
            for lift in lifts {
                columns.writeVarint(UInt64(lift.gap))
                columns.writeU8(lift.kind)
                if lift.kind == FieldLifting.timeKind { columns.writeVarint(FieldLifting.zigzag(lift.timeDelta)) }
                if lift.kind == FieldLifting.stringKind { columns.writeVarint(UInt64(lift.stringIndex)) }
                if lift.kind == FieldLifting.digestKind { digests.writeBytes(body[(position + lift.gap)..<(position + lift.gap + 32)]) }
                residue.writeBytes(body[position..<(position + lift.gap)])
                position += lift.gap + lift.length
            }
            residue.writeBytes(body[position...])
            previous = timestamp
        }
        if lifting {
            // The section lengths, so that a reader rebuilds the records in one pass over the columns.
            head.writeVarint(UInt64(columns.count))
            head.writeVarint(UInt64(residue.count))
            head.writeVarint(UInt64(records.bytes.count))
        }
        // One buffer of the final size: `a + b + c + d` would build two more arrays of nearly a segment's size.
        var payload = workspace.take(\.payload)
        payload.reserveCapacity(head.count + columns.count + residue.count + digests.count)
        for section in [head, columns, residue, digests] { payload.append(contentsOf: section.bytes) }
        workspace.columns = columns.takeBytes()
        workspace.residue = residue.takeBytes()
        workspace.digests = digests.takeBytes()
        defer { workspace.payload = payload }
        guard payload.count <= ArchiveLimits.segmentPayloadBytesMax else {
            throw ArchiveError(.limitExceeded, file: "", "a segment of \(records.count) events is \(payload.count) bytes, over the limit")
        }
        let dictionary = lifting ? [] : strings.bytes()
        // Format 2 is raw DEFLATE, which libdeflate writes faster and a little smaller than zlib; its stream
        // stays in the compressor's memory until written below.
        var zlibStream: [UInt8] = []
        var stream = UnsafeRawBufferPointer(start: nil, count: 0)
        do {
            if lifting {
                if workspace.compressor == nil { workspace.compressor = try Libdeflate.Compressor(level: Libdeflate.segmentLevel) }
                stream = try workspace.compressor!.deflate(payload)
            } else {
                zlibStream = try Zlib.deflate(payload, dictionary: dictionary, level: compressionLevel)
            }
        } catch {
            throw ArchiveError(.io, file: "", "\(error)")
        }
        let compressedLength = lifting ? stream.count : zlibStream.count
        let header = SegmentHeader(
            formatVersion: formatVersion,
            firstSequence: firstSequence, lastSequence: firstSequence + UInt64(records.count - 1),
            firstTimestampMilliseconds: firstTimestamp, lastTimestampMilliseconds: previous,
            eventCount: UInt64(records.count), entryChain: entryChain, exitChain: exitChain,
            dictionaryLength: dictionary.count, payloadLength: payload.count, compressedLength: compressedLength,
            zlibVersion: lifting ? Libdeflate.versionText : zlibRuntimeVersion)
        var writer = ByteWriter(appendingTo: workspace.take(\.file))
        writer.reserveCapacity(header.fileLength)
        header.write(into: &writer)
        writer.writeBytes(dictionary)
        if lifting { writer.writeBytes(stream) } else { writer.writeBytes(zlibStream) }
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        return writer.takeBytes()
    }

    /// Checks a whole segment file (header, length, CRC) and returns its header, its event records rebuilt
    /// byte for byte as the log stored them, and each event's chain tag. Does not check the chain.
    public static func decode(_ bytes: [UInt8], file: String) throws(ArchiveError) -> DecodedSegment {
        var buffers = Buffers()
        return try decode(bytes, file: file, reusing: &buffers)
    }

    /// Memory a reader of many segments hands from one decode to the next: the inflated payload, and the
    /// buffer of a record block the reader is done with (`RecordBlock.takeBytes`).
    public struct Buffers: Sendable {
        var payload: [UInt8] = []
        var records: [UInt8] = []

        public init() {}
    }

    /// `decode`, reusing `buffers`' memory.
    public static func decode(_ bytes: [UInt8], file: String, reusing buffers: inout Buffers) throws(ArchiveError) -> DecodedSegment {
        let header = try checkedHeader(bytes, file: file)
        let dictionaryStart = header.headerLength
        let payloadStart = dictionaryStart + header.dictionaryLength
        let dictionary = Array(bytes[dictionaryStart..<payloadStart])
        let compressed = bytes[payloadStart..<(payloadStart + header.compressedLength)]
        do {
            if header.formatVersion >= 2 && dictionary.isEmpty {
                // Raw DEFLATE, whichever library wrote it: libdeflate inflates a whole payload two to three times
                // faster than zlib.
                try Libdeflate.inflate(compressed, expectedLength: header.payloadLength, into: &buffers.payload)
            } else {
                try Zlib.inflate(
                    compressed, dictionary: dictionary, expectedLength: header.payloadLength, into: &buffers.payload,
                    raw: header.formatVersion >= 2)
            }
        } catch {
            throw ArchiveError(.corrupt, file: file, offset: payloadStart, sequence: header.firstSequence, "\(error)")
        }
        let layout = header.formatVersion >= 2
            ? try readLayout(buffers.payload, header, file: file) : try readColumns(buffers.payload, header, file: file)
        let (records, tags) = try rebuild(layout, buffers.payload, header, file: file, into: &buffers.records)
        return DecodedSegment(header: header, records: records, chainTags: tags)
    }

    /// Checks that `bytes` decode to exactly `records`. The sealer calls it before writing a segment: once
    /// the live log is trimmed, the segment is the only copy of its events, so a segment that would not
    /// give them back byte for byte (a bug in lifting, a zlib fault) must never be written.
    static func verify(_ bytes: [UInt8], holds records: [[UInt8]]) throws(ArchiveError) {
        var buffers = Buffers()
        try verify(bytes, holds: RecordBlock(records), reusing: &buffers)
    }

    /// The same for records back to back in one block (the sealer's form), decoding into `buffers`' memory.
    static func verify(_ bytes: [UInt8], holds records: RecordBlock, reusing buffers: inout Buffers) throws(ArchiveError) {
        var decoded = try decode(bytes, file: "new segment", reusing: &buffers)
        defer { buffers.records = decoded.records.takeBytes() }
        for index in records.indices where index >= decoded.records.count || !Self.equal(decoded.records, index, records, index) {
            throw ArchiveError(.corrupt, file: "new segment", sequence: decoded.header.firstSequence + UInt64(index),
                               "the segment does not give back this event as the log holds it; nothing was sealed")
        }
        guard decoded.records.count == records.count else {
            throw ArchiveError(.corrupt, file: "new segment", "the segment holds \(decoded.records.count) events for \(records.count) sealed")
        }
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

    /// Where the parts of a payload are: the string table (format 2), the column table, the residues and
    /// the digests, and how many record bytes the columns declare.
    private struct Layout {
        var strings: [Range<Int>] = []
        var columnsStart = 0
        var residueStart = 0
        var digestStart = 0
        var recordBytes = 0
    }

    /// Format 2: the string table and the section lengths that follow it, checked against the payload.
    private static func readLayout(_ payload: [UInt8], _ header: SegmentHeader, file: String) throws(ArchiveError) -> Layout {
        var cursor = PayloadCursor(payload)
        var layout = Layout()
        layout.strings = try readStrings(&cursor, header, file: file)
        guard let columnBytes = cursor.readVarint(), let residueBytes = cursor.readVarint(), let recordBytes = cursor.readVarint() else {
            throw ArchiveError(.corrupt, file: file, offset: cursor.offset, sequence: header.firstSequence, "the payload's section lengths are truncated")
        }
        layout.columnsStart = cursor.offset
        let left = UInt64(payload.count - cursor.offset)
        guard columnBytes <= left, residueBytes <= left - columnBytes, (left - columnBytes - residueBytes) % 32 == 0 else {
            throw ArchiveError(.corrupt, file: file, offset: cursor.offset, sequence: header.firstSequence,
                               "the payload's section lengths (\(columnBytes) and \(residueBytes) bytes) do not fit its \(left) bytes")
        }
        guard recordBytes <= UInt64(ArchiveLimits.segmentRecordBytesMax) else {
            throw ArchiveError(.limitExceeded, file: file, offset: cursor.offset, sequence: header.firstSequence,
                               "the events declare \(recordBytes) bytes of records, over \(ArchiveLimits.segmentRecordBytesMax)")
        }
        layout.residueStart = layout.columnsStart + Int(columnBytes)
        layout.digestStart = layout.residueStart + Int(residueBytes)
        layout.recordBytes = Int(recordBytes)
        return layout
    }

    /// Format 1, which declares no section lengths: a first pass over the column table finds them (and
    /// checks the table; the rebuild checks it again as it goes).
    private static func readColumns(_ payload: [UInt8], _ header: SegmentHeader, file: String) throws(ArchiveError) -> Layout {
        var cursor = PayloadCursor(payload)
        var layout = Layout()
        let count = Int(header.eventCount)
        var residueTotal = 0
        for index in 0..<count {
            let start = cursor.offset
            func malformed(_ what: String) -> ArchiveError {
                ArchiveError(.corrupt, file: file, offset: start, sequence: header.firstSequence + UInt64(index),
                             "malformed event column (payload offset): \(what)")
            }
            guard cursor.readU8() != nil, cursor.readVarint() != nil, let length = cursor.readVarint(),
                  cursor.readU32() != nil, let liftCount = cursor.readVarint() else { throw malformed("truncated") }
            guard length <= UInt64(payload.count), liftCount <= length / 8 else { throw malformed("a value is out of range") }
            var lifted = 0
            for _ in 0..<Int(liftCount) {
                guard cursor.readVarint() != nil, let kind = cursor.readU8() else { throw malformed("a lift is truncated") }
                switch kind {
                case FieldLifting.digestKind: lifted += 32
                case FieldLifting.timeKind:
                    guard cursor.readVarint() != nil else { throw malformed("a lifted time is truncated") }
                    lifted += 8
                default: throw malformed("unknown lift kind \(kind)")
                }
            }
            guard lifted <= Int(length) else { throw malformed("lifts pass the end of the body") }
            residueTotal += Int(length) - lifted
            layout.recordBytes += EventCodec.headerLength + Int(length)
            guard layout.recordBytes <= ArchiveLimits.segmentRecordBytesMax else {
                throw ArchiveError(.limitExceeded, file: file, offset: start, sequence: header.firstSequence + UInt64(index),
                                   "the events declare more than \(ArchiveLimits.segmentRecordBytesMax) bytes of records")
            }
        }
        layout.residueStart = cursor.offset
        layout.digestStart = cursor.offset + residueTotal
        guard layout.digestStart <= payload.count else {
            throw ArchiveError(.corrupt, file: file, offset: cursor.offset, sequence: header.lastSequence,
                               "the payload does not add up to the declared events")
        }
        return layout
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

    /// Rebuilds every record in one pass over the column table, checking each value as it is read against
    /// the layout: residue bytes and lifted fields interleaved, into one buffer of the declared size, through
    /// raw pointers (an `ArraySlice` per piece cost a retain and a release each, several per record).
    /// Returns the records and each event's chain tag.
    private static func rebuild(
        _ layout: Layout, _ payload: [UInt8], _ header: SegmentHeader, file: String, into storage: inout [UInt8]
    ) throws(ArchiveError) -> (RecordBlock, [UInt32]) {
        // Resized without rewriting the bytes already there (every byte is written below). The buffer is
        // one the reader recycled, held by nobody else, so resizing it copies nothing. `rebuildSlack`
        // bytes past the records let short pieces be copied as whole 64-byte blocks; they are cut off at the end.
        var bytes: [UInt8] = []
        swap(&bytes, &storage)
        bytes.resize(to: layout.recordBytes + rebuildSlack)
        let count = Int(header.eventCount)
        var starts = [Int](repeating: 0, count: count + 1)
        var tags = [UInt32](repeating: 0, count: count)
        // Each string as a body holds it (u32 length, then the bytes): a lifted string is one copy.
        var encodedStrings: [UInt8] = []
        var encodedRanges: [Range<Int>] = []
        encodedRanges.reserveCapacity(layout.strings.count)
        for string in layout.strings {
            let start = encodedStrings.count
            encodedStrings.append(contentsOf: Self.u32Bytes(UInt32(string.count)))
            encodedStrings.append(contentsOf: payload[string])
            encodedRanges.append(start..<encodedStrings.count)
        }
        encodedStrings.append(contentsOf: repeatElement(0, count: rebuildSlack))  // so that copies may read whole blocks
        let liftsPerByte = layout.strings.isEmpty && header.formatVersion < 2 ? 8 : 5
        let failure: ArchiveError? = payload.withUnsafeBytes { input in
            encodedStrings.withUnsafeBytes { strings in
                bytes.withUnsafeMutableBytes { output in
                    starts.withUnsafeMutableBufferPointer { starts in
                        tags.withUnsafeMutableBufferPointer { tags in
                            rebuildRecords(layout, input, strings, encodedRanges, header, file: file, liftsPerByte: liftsPerByte,
                                           into: output, starts: starts, tags: tags)
                        }
                    }
                }
            }
        }
        if let failure {
            storage = bytes  // the buffer stays the reader's for the next segment
            throw failure
        }
        bytes.removeLast(rebuildSlack)
        return (RecordBlock(bytes: bytes, starts: starts), tags)
    }

    /// The loop of `rebuild`, over raw buffers; returns what is wrong with the payload, if anything.
    ///
    /// Every value read is checked before it moves anything: a piece is copied only once it is known to lie
    /// inside its section of the payload and inside the record being written. Offsets are then added
    /// without overflow checks (each is bounded by a buffer's size). `strings` and `output` hold
    /// `rebuildSlack` bytes past their contents, so a piece of up to 64 bytes moves as one 64-byte block.
    private static func rebuildRecords(
        _ layout: Layout, _ input: UnsafeRawBufferPointer, _ strings: UnsafeRawBufferPointer, _ stringRanges: [Range<Int>],
        _ header: SegmentHeader, file: String, liftsPerByte: Int, into output: UnsafeMutableRawBufferPointer,
        starts: UnsafeMutableBufferPointer<Int>, tags: UnsafeMutableBufferPointer<UInt32>
    ) -> ArchiveError? {
        let count = tags.count
        let recordEnd = layout.recordBytes
        precondition(output.count >= recordEnd + rebuildSlack && strings.count >= rebuildSlack, "buffers with slack")
        guard let source = input.baseAddress, let target = output.baseAddress, let table = strings.baseAddress else {
            return ArchiveError(.corrupt, file: file, sequence: header.firstSequence, "the payload is empty")
        }
        let inputCount = input.count
        let residueEnd = layout.digestStart
        let isFormat2 = header.formatVersion >= 2
        var reader = RawCursor(input, at: layout.columnsStart, end: layout.residueStart)
        var out = 0
        var residue = layout.residueStart
        var digest = layout.digestStart
        var timestamp = header.firstTimestampMilliseconds

        /// Copies `length` bytes from `from` to `out` (both checked by the caller); `readable` is how many
        /// bytes may be read from `from` (a whole block only if at least 64).
        @inline(__always)
        func copy(_ from: UnsafeRawPointer, _ length: Int, readable: Int) {
            let to = target + out
            if length <= 64 && readable >= 64 {
                for block in stride(from: 0, to: 64, by: 16) {
                    (to + block).storeBytes(of: (from + block).loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
                }
            } else {
                to.copyMemory(from: from, byteCount: length)
            }
            out &+= length
        }

        for index in 0..<count {
            let start = reader.offset
            func malformed(_ what: String) -> ArchiveError {
                ArchiveError(.corrupt, file: file, offset: start, sequence: header.firstSequence + UInt64(index),
                             "malformed event column (payload offset): \(what)")
            }
            guard let type = reader.u8(), let delta = reader.varint(), let length = reader.varint(), let tag = reader.u32(),
                  let liftCount = reader.varint() else { return malformed("truncated") }
            // A lift covers at least five body bytes (a string of one byte and its length), eight in format 1.
            guard delta <= UInt64(bitPattern: header.lastTimestampMilliseconds &- timestamp), length <= UInt64(recordEnd),
                  liftCount <= length / UInt64(liftsPerByte),
                  Int(length) <= recordEnd &- out &- EventCodec.headerLength else { return malformed("a value is out of range") }
            timestamp = timestamp &+ Int64(bitPattern: delta)  // cannot pass the last timestamp, checked above
            tags[index] = tag
            starts[index] = out
            let record = target + out
            record.storeBytes(of: EventCodec.formatVersion, as: UInt8.self)
            (record + 1).storeBytes(of: type, as: UInt8.self)
            (record + 2).storeBytes(of: (header.firstSequence &+ UInt64(index)).bigEndian, as: UInt64.self)
            (record + 10).storeBytes(of: UInt64(bitPattern: timestamp).bigEndian, as: UInt64.self)
            (record + 18).storeBytes(of: UInt32(truncatingIfNeeded: length).bigEndian, as: UInt32.self)
            out &+= EventCodec.headerLength
            let bodyEnd = out &+ Int(length)
            for _ in 0..<Int(liftCount) {
                guard let gap = reader.varint(), let kind = reader.u8(), gap <= UInt64(bodyEnd &- out),
                      Int(gap) <= residueEnd &- residue else { return malformed("a lift is truncated or passes the end of the body") }
                copy(source + residue, Int(gap), readable: inputCount &- residue)
                residue &+= Int(gap)
                let room = bodyEnd &- out
                switch kind {
                case FieldLifting.stringKind where isFormat2:
                    guard let number = reader.varint() else { return malformed("a lifted string is truncated") }
                    guard number < UInt64(stringRanges.count) else {
                        return malformed("string \(number) is not in the table of \(stringRanges.count)")
                    }
                    let string = stringRanges[Int(number)]
                    guard room >= string.count else { return malformed("a lifted string passes the end of the body") }
                    copy(table + string.lowerBound, string.count, readable: rebuildSlack)
                case FieldLifting.digestKind:
                    guard room >= 32, inputCount &- digest >= 32 else { return malformed("a lifted digest passes the end") }
                    copy(source + digest, 32, readable: inputCount &- digest)
                    digest &+= 32
                case FieldLifting.timeKind:
                    guard room >= 8, let zigzag = reader.varint() else { return malformed("a lifted time is truncated") }
                    (target + out).storeBytes(of: UInt64(bitPattern: timestamp &+ FieldLifting.unzigzag(zigzag)).bigEndian, as: UInt64.self)
                    out &+= 8
                default: return malformed("unknown lift kind \(kind)")
                }
            }
            let tail = bodyEnd &- out
            guard tail <= residueEnd &- residue else { return malformed("the residue passes its section") }
            copy(source + residue, tail, readable: inputCount &- residue)
            residue &+= tail
        }
        starts[count] = out
        guard timestamp == header.lastTimestampMilliseconds, reader.offset == layout.residueStart, residue == layout.digestStart,
              digest == input.count, out == recordEnd else {
            return ArchiveError(.corrupt, file: file, offset: reader.offset, sequence: header.lastSequence,
                                "the payload does not add up to the declared events, timestamps and sections")
        }
        return nil
    }

    private static func u32Bytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    /// Reads the column table through a raw pointer, every read checked against the table's end.
    private struct RawCursor {
        let bytes: UnsafeRawBufferPointer
        let end: Int
        var offset: Int

        init(_ bytes: UnsafeRawBufferPointer, at offset: Int, end: Int) {
            precondition(offset <= end && end <= bytes.count, "the column table lies inside the payload")
            self.bytes = bytes
            self.offset = offset
            self.end = end
        }

        @inline(__always)
        mutating func u8() -> UInt8? {
            guard offset < end else { return nil }
            defer { offset &+= 1 }
            return bytes[offset]
        }

        @inline(__always)
        mutating func u32() -> UInt32? {
            guard end - offset >= 4 else { return nil }
            defer { offset &+= 4 }
            return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }

        /// At most ten bytes, and the tenth may only carry the top bit of a u64; anything else is damage.
        /// Most values here fit one or two bytes: those cases are inlined, the rest is not.
        @inline(__always)
        mutating func varint() -> UInt64? {
            if end &- offset >= 2 {
                let first = bytes[offset]
                if first < 0x80 {
                    offset &+= 1
                    return UInt64(first)
                }
                let second = bytes[offset &+ 1]
                if second < 0x80 {
                    offset &+= 2
                    return UInt64(first & 0x7f) | UInt64(second) << 7
                }
            }
            return longVarint()
        }

        @inline(never)
        private mutating func longVarint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            var byte: UInt8
            repeat {
                guard offset < end, shift < 64 else { return nil }
                byte = bytes[offset]
                offset &+= 1
                if shift == 63 && byte > 1 { return nil }
                value |= UInt64(byte & 0x7f) << shift
                shift &+= 7
            } while byte & 0x80 != 0
            return value
        }
    }

    /// Bytes kept past the contents of the rebuilt records and of the encoded string table, so that
    /// `rebuildRecords` may move a short piece as one 64-byte block (the records are written front to back:
    /// what a block writes past a piece's end is overwritten by the next piece, or cut off at the end).
    private static let rebuildSlack = 64

    /// The first four bytes of a chain value as a big-endian integer.
    public static func chainTag(_ chain: some Collection<UInt8>) -> UInt32 {
        chain.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func recordSequence(_ record: ArraySlice<UInt8>) -> UInt64 {
        record[(record.startIndex + 2)..<(record.startIndex + 10)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func recordTimestamp(_ record: ArraySlice<UInt8>) -> Int64 {
        Int64(bitPattern: record[(record.startIndex + 10)..<(record.startIndex + 18)].reduce(0) { $0 << 8 | UInt64($1) })
    }

    /// Whether record `index` of `one` and record `other` of `two` hold the same bytes.
    static func equal(_ one: RecordBlock, _ index: Int, _ two: RecordBlock, _ other: Int) -> Bool {
        let first = one.range(index)
        let second = two.range(other)
        guard first.count == second.count else { return false }
        return one.bytes.withUnsafeBytes { a in
            two.bytes.withUnsafeBytes { b in
                first.isEmpty || memcmp(a.baseAddress! + first.lowerBound, b.baseAddress! + second.lowerBound, first.count) == 0
            }
        }
    }
}

/// A segment as read back: its header, its records and the chain tag stored for each.
public struct DecodedSegment: Sendable {
    public var header: SegmentHeader
    public var records: RecordBlock
    public var chainTags: [UInt32]
}
