import CZlib

/// The few zlib calls the archive formats need: deflate with a preset dictionary, inflate bounded by a
/// declared size, and CRC-32. Every zlib return code goes through `check(_:_:)`.
enum Zlib {
    /// A zlib failure, with the call that failed and zlib's own message when it gave one.
    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var context: String
        var description: String { "zlib error \(code) while \(context)" }
    }

    static func check(_ code: Int32, _ context: @autoclosure () -> String) throws(Failure) {
        guard code == Z_OK else { throw Failure(code: code, context: context()) }
    }

    /// Compresses `input` into one zlib stream. The dictionary, when given, primes the window so that even
    /// the first occurrence of a frequent string is a back-reference.
    static func deflate(_ input: [UInt8], dictionary: [UInt8], level: Int32) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        try check(
            deflateInit2_(&stream, level, Z_DEFLATED, 15, 9, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)),
            "starting deflate")
        // deflateEnd only frees the stream; its one failure code says the stream was abandoned before
        // Z_STREAM_END, which is exactly the error path that already throws.
        defer { _ = deflateEnd(&stream) }
        if !dictionary.isEmpty {
            try dictionary.withUnsafeBufferPointer { (pointer) throws(Failure) in
                try check(deflateSetDictionary(&stream, pointer.baseAddress, uInt(pointer.count)), "setting the deflate dictionary")
            }
        }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let code = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                return CZlib.deflate(&stream, Z_FINISH)
            }
        }
        // With an output buffer of deflateBound bytes, one Z_FINISH call always completes the stream.
        guard code == Z_STREAM_END else { throw Failure(code: code, context: "compressing \(input.count) bytes") }
        output.removeLast(Int(stream.avail_out))
        return output
    }

    /// Decompresses one zlib stream that must produce exactly `expectedLength` bytes: never more is
    /// allocated, and a stream that is longer, shorter or has bytes after its end is refused.
    static func inflate(_ input: ArraySlice<UInt8>, dictionary: [UInt8], expectedLength: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        try check(inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)), "starting inflate")
        defer { _ = inflateEnd(&stream) }  // frees only, as deflateEnd above
        var output = [UInt8](repeating: 0, count: expectedLength)
        var code: Int32 = Z_OK
        var done = false
        input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = uInt(source.count)
                stream.next_out = target.baseAddress
                stream.avail_out = uInt(target.count)
                while !done {
                    code = CZlib.inflate(&stream, Z_FINISH)
                    if code == Z_NEED_DICT, !dictionary.isEmpty {
                        code = dictionary.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
                        if code == Z_OK { continue }
                    }
                    done = true
                }
            }
        }
        guard code == Z_STREAM_END else {
            throw Failure(code: code, context: "decompressing (\(stream.total_out) of \(expectedLength) declared bytes produced)")
        }
        guard stream.avail_out == 0, stream.avail_in == 0 else {
            throw Failure(
                code: Z_DATA_ERROR,
                context: "decompressing: the stream gave \(stream.total_out) bytes for \(expectedLength) declared, "
                    + "\(stream.avail_in) compressed bytes left over")
        }
        return output
    }

    /// CRC-32 (the zlib/PNG polynomial) of `bytes`, continuing from `start`.
    static func crc32(_ bytes: ArraySlice<UInt8>, start: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBufferPointer { pointer in
            UInt32(CZlib.crc32(uLong(start), pointer.baseAddress, uInt(pointer.count)))
        }
    }
}
