import Testing
@testable import TallyArchive

/// zlib counts in 32-bit words, so inputs and outputs over 4 GiB (a full checkpoint of a long history) are
/// handed over in slices. The slice size is a parameter: tiny slices exercise the same paths here.
@Suite struct ZlibSlicingTests {
    static func sample(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { index in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // Half repetitive text, half noise, so that both literal and matched output is produced.
            return index % 64 < 32 ? UInt8(ascii: "a") + UInt8(index % 7) : UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    /// Both stream kinds: zlib (format 1 segments, checkpoints) and raw deflate (format 2 segments).
    @Test(arguments: [1, 7, 4_096, 1 << 30], [false, true])
    func slicedStreamsRoundTripWithAndWithoutADictionary(slice: Int, raw: Bool) throws {
        for (count, dictionary) in [(0, [UInt8]()), (1, []), (100_000, []), (100_000, Array("abcdefg".utf8))] {
            let input = Self.sample(count, seed: UInt64(count))
            let compressed = try Zlib.deflate(input, dictionary: dictionary, level: 6, raw: raw, slice: slice)
            func inflate(_ bytes: [UInt8], _ length: Int, slice: Int = 1 << 30) throws -> [UInt8] {
                var output: [UInt8] = []
                try Zlib.inflate(bytes[...], dictionary: dictionary, expectedLength: length, into: &output, raw: raw, slice: slice)
                return output
            }
            // A stream made in slices is one ordinary stream: the unsliced inflate reads it.
            #expect(try inflate(compressed, input.count) == input)
            #expect(try inflate(compressed, input.count, slice: slice) == input)
            if count > 0 {
                #expect(throws: Zlib.Failure.self) { try inflate(compressed, count - 1, slice: slice) }
                #expect(throws: Zlib.Failure.self) { try inflate(compressed, count + 1, slice: slice) }
                #expect(throws: Zlib.Failure.self) { try inflate(compressed + [0], count, slice: slice) }
            }
        }
    }
}
