import Testing
@testable import TallyArchive

/// Format 2 payloads are raw DEFLATE written and read through libdeflate. The format is zlib's: whatever one
/// library writes the other must read back byte for byte (archives sealed by earlier builds, and any zlib
/// reader of ours), and a damaged stream must be an error, never a crash or a read out of bounds.
@Suite struct LibdeflateTests {
    static func samples() -> [[UInt8]] {
        var random = UInt64(0x9E37_79B9_7F4A_7C15)
        func next() -> UInt8 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: random >> 33)
        }
        let noise = (0..<70_000).map { _ in next() }
        let text = Array(String(repeating: "tenant:acme/workspace:prod/agent:planner llm.completion openai:gpt-4o ", count: 9_000).utf8)
        let mixed = (0..<200_000).map { index in index % 7 == 0 ? next() : UInt8(truncatingIfNeeded: index % 61) }
        return [[], [42], noise, text, mixed]
    }

    @Test func whatLibdeflateWritesZlibReadsAndTheOtherWayRound() throws {
        for sample in Self.samples() {
            let mine = try Libdeflate.deflate(sample, level: Libdeflate.segmentLevel)
            var viaZlib: [UInt8] = []
            try Zlib.inflate(mine[...], dictionary: [], expectedLength: sample.count, into: &viaZlib, raw: true)
            #expect(viaZlib == sample, "zlib reads what libdeflate wrote, \(sample.count) bytes")
            var back: [UInt8] = [7, 7, 7]  // reused capacity, old contents overwritten
            try Libdeflate.inflate(mine[...], expectedLength: sample.count, into: &back)
            #expect(back == sample)
            let zlibs = try Zlib.deflate(sample, dictionary: [], level: 6, raw: true)
            try Libdeflate.inflate(zlibs[...], expectedLength: sample.count, into: &back)
            #expect(back == sample, "a stream zlib wrote, \(sample.count) bytes")
        }
    }

    @Test func aDamagedOrMisdeclaredStreamIsAnErrorNeverACrash() throws {
        let sample = Self.samples()[4]
        let stream = try Libdeflate.deflate(sample, level: Libdeflate.segmentLevel)
        var output: [UInt8] = []
        #expect(throws: Zlib.Failure.self) { try Libdeflate.inflate(stream.dropLast(5), expectedLength: sample.count, into: &output) }
        #expect(throws: Zlib.Failure.self) { try Libdeflate.inflate(stream[...], expectedLength: sample.count - 1, into: &output) }
        #expect(throws: Zlib.Failure.self) { try Libdeflate.inflate(stream[...], expectedLength: sample.count + 1, into: &output) }
        #expect(throws: Zlib.Failure.self) { try Libdeflate.inflate((stream + [0, 0, 0])[...], expectedLength: sample.count, into: &output) }
        var random = UInt64(12_345)
        var refused = 0
        for _ in 0..<300 {
            random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var damaged = stream
            damaged[Int(random >> 33) % damaged.count] ^= UInt8(truncatingIfNeeded: random >> 20) | 1
            do {
                try Libdeflate.inflate(damaged[...], expectedLength: sample.count, into: &output)
                #expect(output.count == sample.count, "a stream that still decodes gives exactly the declared length")
            } catch {
                refused += 1
            }
        }
        #expect(refused >= 100, "much single-byte damage is caught by the stream itself (the file CRC catches the rest): \(refused) of 300")
    }

    @Test func aFormat2SegmentNamesTheLibraryThatCompressedIt() throws {
        let (segment, _) = try SegmentPayloadDamageTests.segment(seed: 9, count: 40)
        let header = try SegmentCodec.checkedHeader(segment, file: "memory")
        #expect(header.formatVersion >= 2 && header.zlibVersion.hasPrefix("libdeflate 1."), "\(header.zlibVersion)")
        #expect(header.zlibVersion.utf8.count <= ArchiveLimits.zlibVersionBytesMax)
    }
}
