import CLibdeflate

/// Raw DEFLATE (RFC 1951) for segment payloads (format 2) through libdeflate: the same stream format zlib
/// reads and writes (any zlib inflates these segments, and libdeflate reads the ones zlib wrote), at about
/// twice zlib's speed compressing and two to three times inflating a whole payload held in memory
/// (BENCHMARKS.md, "Segments through libdeflate"). zlib stays for format 1, checkpoints and CRC-32.
enum Libdeflate {
    /// The level segments are compressed at. Since strings are lifted out, a payload is mostly digests, ids and
    /// keys that no level compresses: on 100,000 lifecycle events (17.7 MB) level 3 writes 4% more bytes than
    /// 6 in two thirds of the time (80 against 118 ms) and inflates as fast (README, "Segments are deflated at
    /// level 3"); compressing was then a quarter of sealing, which competes with requests for the cores.
    static let segmentLevel: Int32 = 3

    /// What goes in a segment header's informative `zlib_version` field for a payload compressed here.
    static var versionText: String { "libdeflate " + LIBDEFLATE_VERSION_STRING }

    /// `input` as one raw DEFLATE stream.
    static func deflate(_ input: [UInt8], level: Int32) throws(Zlib.Failure) -> [UInt8] {
        let compressor = try Compressor(level: level)
        let stream = Array(try compressor.deflate(input))
        withExtendedLifetime(compressor) {}  // the stream lies in its memory until copied
        return stream
    }

    /// A compressor's state (its hash tables, several hundred kilobytes) and room for its output, kept for
    /// several payloads: a sealing pass compresses one per segment, and fresh memory costs a page fault for
    /// every 4 KiB it touches.
    final class Compressor {
        private let state: OpaquePointer
        /// Where streams are written: the worst case for the largest input so far, uninitialized (only the
        /// pages a stream is written to are touched; a segment's payload compresses to an eighth of it).
        private var output = UnsafeMutableRawBufferPointer(start: nil, count: 0)

        init(level: Int32) throws(Zlib.Failure) {
            guard let state = libdeflate_alloc_compressor(level) else {
                throw Zlib.Failure(code: -1, context: "allocating a compressor at level \(level)", library: "libdeflate")
            }
            self.state = state
        }

        deinit {
            output.deallocate()
            libdeflate_free_compressor(state)
        }

        /// `input` as one raw DEFLATE stream, in memory of this compressor that stays valid until its next call.
        func deflate(_ input: [UInt8]) throws(Zlib.Failure) -> UnsafeRawBufferPointer {
            let bound = max(1, libdeflate_deflate_compress_bound(state, input.count))
            if output.count < bound {
                output.deallocate()
                output = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 16)
            }
            let written = input.withUnsafeBytes { source in
                libdeflate_deflate_compress(state, source.baseAddress, source.count, output.baseAddress, bound)
            }
            // The bound is the worst case for any input, so this happens only on a libdeflate fault.
            guard written > 0 || input.isEmpty else {
                throw Zlib.Failure(code: -1, context: "compressing \(input.count) bytes", library: "libdeflate")
            }
            return UnsafeRawBufferPointer(rebasing: output[0..<written])
        }
    }

    /// Inflates `input`, which must be exactly one raw DEFLATE stream of exactly `expectedLength` bytes, into
    /// `output` (its capacity reused).
    static func inflate(_ input: ArraySlice<UInt8>, expectedLength: Int, into output: inout [UInt8]) throws(Zlib.Failure) {
        guard let decompressor = libdeflate_alloc_decompressor() else {
            throw Zlib.Failure(code: -1, context: "allocating a decompressor", library: "libdeflate")
        }
        defer { libdeflate_free_decompressor(decompressor) }
        output.resize(to: max(1, expectedLength))
        var consumed = 0
        var produced = 0
        let result = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                libdeflate_deflate_decompress_ex(
                    decompressor, source.baseAddress, source.count, target.baseAddress, expectedLength, &consumed, &produced)
            }
        }
        guard result == LIBDEFLATE_SUCCESS else {
            let reason = result == LIBDEFLATE_BAD_DATA ? "the stream is not valid DEFLATE"
                : result == LIBDEFLATE_INSUFFICIENT_SPACE ? "the stream holds more than the \(expectedLength) bytes declared" : "error \(result.rawValue)"
            throw Zlib.Failure(code: Int32(result.rawValue), context: "decompressing: \(reason)", library: "libdeflate")
        }
        guard produced == expectedLength, consumed == input.count else {
            throw Zlib.Failure(
                code: Int32(LIBDEFLATE_BAD_DATA.rawValue),
                context: "decompressing: the stream gave \(produced) bytes for \(expectedLength) declared, "
                    + "\(input.count - consumed) compressed bytes left over",
                library: "libdeflate")
        }
        if expectedLength == 0 { output.removeAll() }
    }
}
