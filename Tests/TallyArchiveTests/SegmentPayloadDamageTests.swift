import Testing
@testable import TallyArchive
import TallyCore
import TallyStore

/// A segment whose CRC was recomputed over a damaged payload (a tampered file, or a writer bug) must
/// never crash a reader or be read past its bounds: every damage either throws a `corrupt` error naming
/// the file, or yields records, which the chain then checks.
@Suite struct SegmentPayloadDamageTests {
    /// The segment file with its payload replaced, compressed and checksummed as a writer would.
    static func withPayload(_ segment: [UInt8], _ payload: [UInt8], formatVersion: UInt16? = nil) throws -> [UInt8] {
        var header = try SegmentCodec.checkedHeader(segment, file: "memory")
        header.formatVersion = formatVersion ?? header.formatVersion
        let compressed = try Zlib.deflate(payload, dictionary: [], level: 1, raw: header.formatVersion >= 2)
        header.payloadLength = payload.count
        header.compressedLength = compressed.count
        precondition(header.dictionaryLength == 0, "format 2 segments have no dictionary")
        var writer = ByteWriter(capacity: header.fileLength)
        header.write(into: &writer)
        writer.writeBytes(compressed)
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        return writer.bytes
    }

    static func payload(of segment: [UInt8]) throws -> [UInt8] {
        let header = try SegmentCodec.checkedHeader(segment, file: "memory")
        let start = header.headerLength + header.dictionaryLength
        var output: [UInt8] = []
        try Zlib.inflate(segment[start..<(start + header.compressedLength)], dictionary: [], expectedLength: header.payloadLength, into: &output, raw: true)
        return output
    }

    /// A format 2 segment of a random workload of `count` steps, and its events.
    static func segment(seed: UInt64, count: Int) throws -> (segment: [UInt8], events: [StoredEvent]) {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: seed)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: count)
        let events = try store.events(from: 1, limit: Int.max)
        store.close()
        var strings = SegmentDictionary()
        for stored in events { strings.add(stored.event.body) }
        let segment = try SegmentCodec.encode(
            records: events.map(\.record), chains: events.map(\.chain), entryChain: EventChain.genesis, strings: strings)
        return (segment, events)
    }

    @Test func damagedPayloadsAreRefusedOrReadWithinBounds() throws {
        let (segment, events) = try Self.segment(seed: 23, count: 150)
        let payload = try Self.payload(of: segment)
        #expect(try Array(SegmentCodec.decode(Self.withPayload(segment, payload), file: "memory").records) == events.map(\.record))

        var random: UInt64 = 0x5EED
        var refused = 0
        for round in 0..<300 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var damaged = payload
            let position = Int(random >> 33) % damaged.count
            switch round % 3 {
            case 0: damaged[position] ^= UInt8(truncatingIfNeeded: random >> 8) | 1
            case 1: damaged.remove(at: position)
            default: damaged.insert(UInt8(truncatingIfNeeded: random >> 16), at: position)
            }
            do {
                let decoded = try SegmentCodec.decode(Self.withPayload(segment, damaged), file: "memory")
                #expect(decoded.records.count == events.count)
            } catch let error as ArchiveError {
                #expect(error.kind == .corrupt && error.file == "memory", "\(error)")
                refused += 1
            }
        }
        // Removing or inserting a byte shifts everything after it: most of those must be refused.
        #expect(refused >= 150, "only \(refused) of 300 damaged payloads were refused")
    }

    /// The sealer reads back every segment before writing it: one that does not give back the log's records
    /// byte for byte is refused, naming the first event that differs.
    @Test func aSegmentThatDoesNotGiveBackItsRecordsIsNotSealed() throws {
        let (segment, events) = try Self.segment(seed: 31, count: 40)
        var records = events.map(\.record)
        try SegmentCodec.verify(segment, holds: records)
        let changed = records.count / 2
        records[changed][records[changed].count - 1] ^= 1
        #expect {
            try SegmentCodec.verify(segment, holds: records)
        } throws: { error in
            (error as? ArchiveError)?.sequence == events[changed].event.sequence
        }
        #expect(throws: ArchiveError.self) { try SegmentCodec.verify(segment, holds: Array(records.dropLast())) }
    }

    @Test func aStringLiftOutsideTheTableOrInFormatOneIsRefused() throws {
        let (segment, _) = try Self.segment(seed: 29, count: 20)
        let payload = try Self.payload(of: segment)
        // An empty string table: every string lift now points outside it.
        var cursor = PayloadCursor(payload)
        let count = cursor.readVarint() ?? 0
        #expect(count > 0)
        var tableEnd = cursor.offset
        for _ in 0..<count {
            var entry = PayloadCursor(payload)
            entry.offset = tableEnd
            let length = entry.readVarint() ?? 0
            tableEnd = entry.offset + Int(length)
        }
        // Then the three section lengths, then the columns.
        var preamble = PayloadCursor(payload)
        preamble.offset = tableEnd
        for _ in 0..<3 { _ = preamble.readVarint() }
        let sections = Array(payload[tableEnd...])
        let columns = Array(payload[preamble.offset...])
        #expect {
            try SegmentCodec.decode(Self.withPayload(segment, [0] + sections), file: "memory")
        } throws: { error in
            (error as? ArchiveError)?.message.contains("is not in the table of 0") == true
        }
        // Format 1 has no string table and no string lifts.
        #expect {
            try SegmentCodec.decode(Self.withPayload(segment, columns, formatVersion: 1), file: "memory")
        } throws: { error in
            (error as? ArchiveError)?.message.contains("unknown lift kind 3") == true
        }
    }
}
