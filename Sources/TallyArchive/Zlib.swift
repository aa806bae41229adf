import CZlib

/// The few zlib calls the archive formats need: deflate with a preset dictionary, inflate bounded by a
/// declared size, and CRC-32. Every zlib return code goes through `check(_:_:)`.
enum Zlib {
    /// A zlib failure, with the call that failed and zlib's own message when it gave one.
    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var context: String
        /// The library that failed (`Libdeflate` reports its failures as these too).
        var library = "zlib"
        var description: String { "\(library) error \(code) while \(context)" }
    }

    static func check(_ code: Int32, _ context: @autoclosure () -> String) throws(Failure) {
        guard code == Z_OK else { throw Failure(code: code, context: context()) }
    }

    /// Compresses `input` into one zlib stream. The dictionary, when given, primes the window so that even
    /// the first occurrence of a frequent string is a back-reference.
    /// `slice` is how much input zlib gets at once (tests make it tiny to exercise the slicing).
    static func deflate(_ input: [UInt8], dictionary: [UInt8], level: Int32, raw: Bool = false, slice: Int = 1 << 30) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        // Window bits 15; negative for raw deflate (RFC 1951: no zlib header, no Adler-32).
        try check(
            deflateInit2_(&stream, level, Z_DEFLATED, raw ? -15 : 15, 9, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)),
            "starting deflate")
        // deflateEnd only frees the stream; its one failure code says the stream was abandoned before
        // Z_STREAM_END, which is exactly the error path that already throws.
        defer { _ = deflateEnd(&stream) }
        if !dictionary.isEmpty {
            try dictionary.withUnsafeBufferPointer { (pointer) throws(Failure) in
                try check(deflateSetDictionary(&stream, pointer.baseAddress, uInt(pointer.count)), "setting the deflate dictionary")
            }
        }
        // zlib counts in 32-bit words, so large inputs (a full checkpoint of a long history) are fed and
        // drained in slices; one Z_FINISH call on the last slice completes the stream.
        var output: [UInt8] = []
        output.reserveCapacity(min(Int(deflateBound(&stream, uLong(min(input.count, slice)))), input.count / 2 + 1_024))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var code: Int32 = Z_OK
        try input.withUnsafeBufferPointer { (source) throws(Failure) in
            var offset = 0
            var finished = false
            while !finished {
                let length = min(slice, source.count - offset)
                let last = offset + length == source.count
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress.map { $0 + offset })
                stream.avail_in = uInt(length)
                var drained = false
                while !drained {
                    let produced = chunk.withUnsafeMutableBufferPointer { target -> Int in
                        stream.next_out = target.baseAddress
                        stream.avail_out = uInt(target.count)
                        code = CZlib.deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH)
                        return target.count - Int(stream.avail_out)
                    }
                    output.append(contentsOf: chunk[0..<produced])
                    guard code == Z_OK || code == Z_STREAM_END || code == Z_BUF_ERROR else {
                        throw Failure(code: code, context: "compressing \(input.count) bytes")
                    }
                    if produced == 0, code == Z_BUF_ERROR, stream.avail_in == 0, last {
                        throw Failure(code: code, context: "compressing \(input.count) bytes: no progress")
                    }
                    // A middle slice is consumed when zlib has taken all its input and left output room unused;
                    // the last one when the stream has ended.
                    drained = last ? code == Z_STREAM_END : (stream.avail_in == 0 && stream.avail_out > 0)
                }
                offset += length
                finished = last
            }
        }
        guard code == Z_STREAM_END else { throw Failure(code: code, context: "compressing \(input.count) bytes") }
        return output
    }

    /// Decompresses one zlib stream that must produce exactly `expectedLength` bytes: never more is
    /// allocated, and a stream that is longer, shorter or has bytes after its end is refused.
    static func inflate(_ input: ArraySlice<UInt8>, dictionary: [UInt8], expectedLength: Int, slice: Int = 1 << 30) throws(Failure) -> [UInt8] {
        var output: [UInt8] = []
        try inflate(input, dictionary: dictionary, expectedLength: expectedLength, into: &output, slice: slice)
        return output
    }

    /// Inflates into `output`, reusing its capacity (a reader of many segments keeps one buffer instead
    /// of having the kernel map and zero tens of megabytes per segment).
    static func inflate(
        _ input: ArraySlice<UInt8>, dictionary: [UInt8], expectedLength: Int, into output: inout [UInt8], raw: Bool = false,
        slice: Int = 1 << 30
    ) throws(Failure) {
        var stream = z_stream()
        try check(inflateInit2_(&stream, raw ? -15 : 15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)), "starting inflate")
        if raw, !dictionary.isEmpty {
            try dictionary.withUnsafeBufferPointer { (pointer) throws(Failure) in
                try check(inflateSetDictionary(&stream, pointer.baseAddress, uInt(pointer.count)), "setting the inflate dictionary")
            }
        }
        defer { _ = inflateEnd(&stream) }  // frees only, as deflateEnd above
        // At least one byte, so that zlib always has a non-null output pointer (an empty stream included).
        // Resized without rewriting the bytes already there: inflate overwrites all of them.
        output.resize(to: max(1, expectedLength))
        var code: Int32 = Z_OK
        var done = false
        // zlib counts in 32-bit words: input and output windows are handed over in slices (1 GiB by default).
        var consumed = 0
        var produced = 0
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_out = target.baseAddress
                stream.avail_out = 0
                while !done {
                    if stream.avail_in == 0, consumed < source.count {
                        let length = min(slice, source.count - consumed)
                        stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress.map { $0 + consumed })
                        stream.avail_in = uInt(length)
                        consumed += length
                    }
                    if stream.avail_out == 0, produced < expectedLength {
                        let length = min(slice, expectedLength - produced)
                        stream.next_out = target.baseAddress.map { $0 + produced }
                        stream.avail_out = uInt(length)
                        produced += length
                    }
                    let moreInput = consumed < source.count
                    let moreOutput = produced < expectedLength
                    code = CZlib.inflate(&stream, moreInput || moreOutput ? Z_NO_FLUSH : Z_FINISH)
                    if code == Z_NEED_DICT, !dictionary.isEmpty {
                        code = dictionary.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
                        if code == Z_OK { continue }
                    }
                    // Go on while a slice boundary, not the stream, stopped zlib.
                    let sliceEnded = (stream.avail_in == 0 && moreInput) || (stream.avail_out == 0 && moreOutput)
                    done = !(code == Z_OK || code == Z_BUF_ERROR) || !sliceEnded
                }
            }
        }
        guard code == Z_STREAM_END else {
            throw Failure(code: code, context: "decompressing (\(stream.total_out) of \(expectedLength) declared bytes produced)")
        }
        guard stream.avail_out == 0, stream.avail_in == 0, consumed == input.count, produced == expectedLength else {
            throw Failure(
                code: Z_DATA_ERROR,
                context: "decompressing: the stream gave \(stream.total_out) bytes for \(expectedLength) declared, "
                    + "\(stream.avail_in) compressed bytes left over")
        }
        if expectedLength == 0 { output.removeAll() }
    }

    /// CRC-32 (the zlib/PNG polynomial) of `bytes`, continuing from `start`.
    static func crc32(_ bytes: ArraySlice<UInt8>, start: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { pointer in
            UInt32(CZlib.crc32(uLong(start), pointer.baseAddress, uInt(pointer.count)))
        }
    }
}
