import HTTPTypes
import NIOCore

/// A refused HTTP/1.1 message: the status to answer (the connection closes after it) and why.
struct HTTP1Error: Error, Equatable {
    var status: Int
    var message: String

    static func bad(_ message: String) -> HTTP1Error { HTTP1Error(status: 400, message: message) }

    var reasonPhrase: String {
        switch status {
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 501: "Not Implemented"
        case 505: "HTTP Version Not Supported"
        default: "Bad Request"
        }
    }
}

/// The header fields of one request: the bytes of the head as they arrived, and where each name and value
/// lies in them. Nothing is copied into strings until a field is asked for, and the gateway asks for a handful.
struct RequestHeaders: Sendable {
    private let bytes: ByteBuffer
    /// Per field: name start, name end, value start, value end (offsets into `bytes`).
    private let fields: [UInt32]

    init(bytes: ByteBuffer, fields: [UInt32]) {
        self.bytes = bytes
        self.fields = fields
    }

    init() { self.init(bytes: ByteBuffer(), fields: []) }

    var count: Int { fields.count / 4 }

    /// Every value of a field (names compare case-insensitively), joined with ", " as HTTP combines them.
    subscript(_ name: HTTPField.Name) -> String? { self[name.rawName] }

    subscript(_ name: String) -> String? {
        var joined: String?
        bytes.withUnsafeReadableBytes { raw in
            for index in stride(from: 0, to: fields.count, by: 4) where Self.named(name, raw, Int(fields[index]), Int(fields[index + 1])) {
                let value = String(decoding: UnsafeRawBufferPointer(rebasing: raw[Int(fields[index + 2])..<Int(fields[index + 3])]), as: UTF8.self)
                joined = joined.map { $0 + ", " + value } ?? value
            }
        }
        return joined
    }

    /// Whether a comma-separated field holds `token` (case-insensitively), as `Connection: keep-alive, close`.
    func contains(_ name: String, token: String) -> Bool {
        guard let value = self[name] else { return false }
        return value.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == token }
    }

    private static func named(_ name: String, _ raw: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        var index = start
        for byte in name.utf8 {
            guard index < end, lowered(raw[index]) == lowered(byte) else { return false }
            index += 1
        }
        return index == end
    }

    static func lowered(_ byte: UInt8) -> UInt8 { byte &- 65 < 26 ? byte | 0x20 : byte }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}

/// One whole request as the parser hands it over.
struct HTTP1Request {
    var method: String
    var target: String
    var headers: RequestHeaders
    var body: ByteBuffer
    /// The body went over the limit; the connection closes after the answer (the rest of it is not read).
    var bodyTooLarge: Bool
    var keepAlive: Bool
    var isHead: Bool { method == "HEAD" }
}

/// An incremental, strict HTTP/1.1 request parser (RFC 9112) for the gateway's planes: it takes bytes as
/// they arrive and hands over whole requests, one at a time, so pipelined requests are answered in order.
///
/// Strict where leniency lets two parsers disagree about where a message ends (request smuggling): a
/// field with both `Transfer-Encoding` and `Content-Length`, differing `Content-Length`s, a transfer
/// coding other than `chunked`, whitespace before a field's colon, folded lines and bare CRs are all
/// refused. Heads are bounded in size and field count; bodies by the gateway's limit.
struct HTTP1Parser {
    struct Limits {
        var headBytesMax = 16 * 1024
        var fieldsMax = 100
        var bodyBytesMax: Int
    }

    enum Step {
        /// Nothing whole yet.
        case needMore
        /// The head of a request whose client waits for a `100 Continue` before sending the body.
        case continueExpected
        case request(HTTP1Request)
    }

    private enum Framing {
        case length(Int)
        case chunked
    }

    private enum State {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    let limits: Limits
    private var state = State.head
    /// How much of the head was scanned without finding its end (the next scan resumes there).
    private var scanned = 0
    private var pending: HTTP1Request?
    private var trailerBytes = 0

    init(limits: Limits) { self.limits = limits }

    /// Between requests, with nothing of the next one read.
    var isIdle: Bool {
        if case .head = state { return scanned == 0 }
        return false
    }

    /// Consumes from `buffer` what it can; throws on a message that cannot be served (answer the error's
    /// status and close).
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1Error) -> Step {
        while true {
            switch state {
            case .head:
                guard let (request, framing, expectsContinue) = try parseHead(&buffer) else { return .needMore }
                switch framing {
                case .length(0):
                    return .request(request)
                case .length(let length) where length > limits.bodyBytesMax:
                    return .request(tooLarge(request))
                case .length(let length):
                    pending = request
                    state = .fixed(remaining: length)
                case .chunked:
                    pending = request
                    state = .chunkSize
                }
                if expectsContinue && buffer.readableBytes == 0 { return .continueExpected }
            case .fixed(let remaining):
                let left = moveBody(from: &buffer, remaining)
                guard left == 0 else {
                    state = .fixed(remaining: left)
                    return .needMore
                }
                return .request(finish())
            case .chunkSize:
                guard let line = try readLine(&buffer, limit: 1_024, what: "a chunk size line") else { return .needMore }
                let size = try Self.chunkSize(line)
                if size == 0 {
                    state = .trailers
                    trailerBytes = 0
                } else if pending!.body.readableBytes + size > limits.bodyBytesMax {
                    return .request(tooLarge(pending.take()!))
                } else {
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let left = moveBody(from: &buffer, remaining)
                guard left == 0 else {
                    state = .chunkData(remaining: left)
                    return .needMore
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard let line = try readLine(&buffer, limit: 2, what: "the end of a chunk") else { return .needMore }
                guard line.isEmpty else { throw .bad("a chunk is longer than its size says") }
                state = .chunkSize
            case .trailers:
                guard let line = try readLine(&buffer, limit: limits.headBytesMax, what: "a trailer field") else { return .needMore }
                trailerBytes += line.count + 2
                guard trailerBytes <= limits.headBytesMax else { throw HTTP1Error(status: 431, message: "the trailer fields are over \(limits.headBytesMax) bytes") }
                if line.isEmpty { return .request(finish()) }
            }
        }
    }

    /// Moves up to `remaining` bytes of body from `buffer` into the pending request; answers how many are
    /// still to come. A body that arrived whole is taken as a slice of the bytes read, not copied.
    private mutating func moveBody(from buffer: inout ByteBuffer, _ remaining: Int) -> Int {
        let take = min(remaining, buffer.readableBytes)
        guard take > 0, var slice = buffer.readSlice(length: take) else { return remaining }
        if pending!.body.readableBytes == 0 {
            pending!.body = slice
        } else {
            pending!.body.writeBuffer(&slice)
        }
        return remaining - take
    }

    private mutating func finish() -> HTTP1Request {
        state = .head
        scanned = 0
        return pending.take()!
    }

    /// A request whose body is over the limit is answered at once (413); the connection closes after it,
    /// so the body is never read and the parser is not used again.
    private mutating func tooLarge(_ request: HTTP1Request) -> HTTP1Request {
        var request = request
        request.body = ByteBuffer()
        request.bodyTooLarge = true
        request.keepAlive = false
        state = .head
        scanned = 0
        return request
    }

    // MARK: Head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(HTTP1Error) -> (HTTP1Request, Framing, Bool)? {
        // Empty lines before a request line are ignored (RFC 9112 section 2.2).
        if scanned == 0 {
            while let byte = buffer.readableBytesView.first, byte == 13 || byte == 10 {
                if byte == 13 {
                    guard buffer.readableBytes >= 2 else { return nil }
                    guard buffer.readableBytesView.dropFirst().first == 10 else { throw .bad("a bare CR before the request line") }
                    buffer.moveReaderIndex(forwardBy: 2)
                } else {
                    buffer.moveReaderIndex(forwardBy: 1)
                }
            }
        }
        guard let end = headEnd(buffer) else {
            scanned = buffer.readableBytes
            if scanned > limits.headBytesMax {
                throw HTTP1Error(status: 431, message: "the request head is over \(limits.headBytesMax) bytes")
            }
            return nil
        }
        guard end <= limits.headBytesMax else {
            throw HTTP1Error(status: 431, message: "the request head is over \(limits.headBytesMax) bytes")
        }
        scanned = 0
        let head = buffer.readSlice(length: end)!
        return try Self.parse(head, limits: limits)
    }

    /// The length of the head including the empty line that ends it, once it is all there.
    private func headEnd(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            var index = max(0, scanned - 2)
            while index < raw.count {
                guard let found = raw[index...].firstIndex(of: 10) else { return nil }
                if found + 1 < raw.count, raw[found + 1] == 10 { return found + 2 }
                if found + 2 < raw.count, raw[found + 1] == 13, raw[found + 2] == 10 { return found + 3 }
                index = found + 1
            }
            return nil
        }
    }

    private static func parse(_ head: ByteBuffer, limits: Limits) throws(HTTP1Error) -> (HTTP1Request, Framing, Bool) {
        var method = ""
        var target = ""
        var http10 = false
        var fields: [UInt32] = []
        fields.reserveCapacity(32)
        // The fields that decide framing and the connection's fate are noticed as they go by; only when one
        // is present in an unusual form do the string-based checks below run.
        var seen = FramingFields()
        try head.withUnsafeReadableBytes { raw throws(HTTP1Error) in
            var lineStart = 0
            var first = true
            while lineStart < raw.count {
                var lineEnd = raw[lineStart...].firstIndex(of: 10)!
                let next = lineEnd + 1
                if lineEnd > lineStart, raw[lineEnd - 1] == 13 { lineEnd -= 1 }
                defer { lineStart = next }
                if lineEnd == lineStart { break }  // the empty line that ends the head
                let line = UnsafeRawBufferPointer(rebasing: raw[lineStart..<lineEnd])
                if line.contains(13) { throw .bad("a bare CR in the request head") }
                if first {
                    first = false
                    (method, target, http10) = try requestLine(line)
                    continue
                }
                guard fields.count / 4 < limits.fieldsMax else {
                    throw HTTP1Error(status: 431, message: "the request has over \(limits.fieldsMax) header fields")
                }
                if line[0] == 32 || line[0] == 9 { throw .bad("folded header lines are not accepted") }
                guard let colon = line.firstIndex(of: 58), colon > 0 else { throw .bad("a header line without a field name and colon") }
                guard line[..<colon].allSatisfy(isTokenByte) else {
                    throw .bad("the header field name \(quoted(line[..<colon])) is not a valid token")
                }
                var valueStart = colon + 1
                var valueEnd = line.count
                while valueStart < valueEnd, line[valueStart] == 32 || line[valueStart] == 9 { valueStart += 1 }
                while valueEnd > valueStart, line[valueEnd - 1] == 32 || line[valueEnd - 1] == 9 { valueEnd -= 1 }
                guard line[valueStart..<valueEnd].allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
                    throw .bad("the header field \(quoted(line[..<colon])) has a control character in its value")
                }
                seen.notice(name: UnsafeRawBufferPointer(rebasing: line[..<colon]), value: UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd]))
                fields.append(UInt32(lineStart))
                fields.append(UInt32(lineStart + colon))
                fields.append(UInt32(lineStart + valueStart))
                fields.append(UInt32(lineStart + valueEnd))
            }
        }
        let headers = RequestHeaders(bytes: head, fields: fields)
        let framing = seen.needsFullCheck ? try framing(headers, http10: http10) : .length(seen.length ?? 0)
        let keepAlive = if seen.connection {
            http10 ? headers.contains("Connection", token: "keep-alive") : !headers.contains("Connection", token: "close")
        } else {
            !http10
        }
        if !http10, !seen.host { throw .bad("an HTTP/1.1 request needs a Host header") }
        let expectsContinue = seen.expect && !http10 && headers["Expect"]?.lowercased() == "100-continue"
        let request = HTTP1Request(method: method, target: target, headers: headers, body: ByteBuffer(), bodyTooLarge: false, keepAlive: keepAlive)
        return (request, framing, expectsContinue)
    }

    /// What the head's fields say about framing, noticed while they are parsed.
    private struct FramingFields {
        var host = false
        var connection = false
        var expect = false
        /// The one plain `Content-Length`, when that is all there is.
        var length: Int?
        /// `Transfer-Encoding`, a repeated or unusual `Content-Length`: the full checks decide.
        var needsFullCheck = false

        mutating func notice(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            switch name.count {
            case 4 where Self.equal(name, "host"): host = true
            case 6 where Self.equal(name, "expect"): expect = true
            case 10 where Self.equal(name, "connection"): connection = true
            case 14 where Self.equal(name, "content-length"):
                guard length == nil, !value.isEmpty, value.count <= 15, value.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    needsFullCheck = true
                    return
                }
                length = value.reduce(0) { $0 * 10 + Int($1 - 48) }
            case 17 where Self.equal(name, "transfer-encoding"): needsFullCheck = true
            default: break
            }
        }

        /// Case-insensitive comparison with a lower-case name.
        private static func equal(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
            let other = UnsafeRawBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
            return zip(bytes, other).allSatisfy { RequestHeaders.lowered($0) == $1 }
        }
    }

    private static func requestLine(_ line: UnsafeRawBufferPointer) throws(HTTP1Error) -> (String, String, Bool) {
        // Two spaces split it (found by hand: `split` would allocate an array for every request).
        guard let first = line.firstIndex(of: 32), let second = line[(first + 1)...].firstIndex(of: 32),
              first > 0, second > first + 1 else {
            throw .bad("the request line is not METHOD TARGET HTTP-VERSION")
        }
        let method = line[..<first]
        let target = line[(first + 1)..<second]
        let version = line[(second + 1)...]
        guard method.allSatisfy(isTokenByte) else { throw .bad("the method \(quoted(method)) is not a valid token") }
        guard target.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw .bad("the request target has a character outside visible ASCII") }
        let http10: Bool
        if version.elementsEqual("HTTP/1.1".utf8) {
            http10 = false
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            http10 = true
        } else if version.starts(with: "HTTP/".utf8) {
            throw HTTP1Error(status: 505, message: "only HTTP/1.1 and HTTP/1.0 are served, not \(quoted(version))")
        } else {
            throw .bad("the request line ends in \(quoted(version)), not an HTTP version")
        }
        return (String(decoding: method, as: UTF8.self), String(decoding: target, as: UTF8.self), http10)
    }

    /// How the body is delimited (RFC 9112 section 6.3), refusing the ambiguous cases.
    private static func framing(_ headers: RequestHeaders, http10: Bool) throws(HTTP1Error) -> Framing {
        let length = headers["Content-Length"]
        if let codings = headers["Transfer-Encoding"] {
            guard length == nil else { throw .bad("a request cannot have both Transfer-Encoding and Content-Length") }
            guard !http10 else { throw .bad("Transfer-Encoding is not defined for HTTP/1.0") }
            let list = codings.split(separator: ",").map { $0.trimmingSpaces.lowercased() }
            guard list == ["chunked"] else {
                throw HTTP1Error(status: 501, message: "the transfer coding \(codings) is not supported; send chunked or a Content-Length")
            }
            return .chunked
        }
        guard let length else { return .length(0) }
        // Repeated fields or a list must all say the same length.
        let values = Set(length.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces })
        guard values.count == 1, let value = values.first, !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw .bad("Content-Length must be one decimal number, not \(length)")
        }
        return .length(Int(value) ?? Int.max)  // more digits than an Int holds is simply too large
    }

    private static func chunkSize(_ line: [UInt8]) throws(HTTP1Error) -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            let value: Int
            switch byte {
            case 48...57: value = Int(byte - 48)
            case 65...70: value = Int(byte - 55)
            case 97...102: value = Int(byte - 87)
            case 59, 32, 9:
                // A chunk extension (ignored).
                guard digits > 0 else { throw .bad("a chunk size line has no size") }
                return size
            default: throw .bad("a chunk size is not hexadecimal")
            }
            digits += 1
            guard digits <= 15 else { throw .bad("a chunk size is too large") }
            size = size << 4 | value
        }
        guard digits > 0 else { throw .bad("a chunk size line is empty") }
        return size
    }

    /// One line (without its CRLF or LF) once it is all there.
    private mutating func readLine(_ buffer: inout ByteBuffer, limit: Int, what: String) throws(HTTP1Error) -> [UInt8]? {
        guard let lf = buffer.readableBytesView.firstIndex(of: 10) else {
            if buffer.readableBytes > limit + 1 { throw .bad("\(what) is over \(limit) bytes") }
            return nil
        }
        let length = lf - buffer.readerIndex
        var line = buffer.readBytes(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        if line.last == 13 { line.removeLast() }
        guard line.count <= limit else { throw .bad("\(what) is over \(limit) bytes") }
        guard !line.contains(13) else { throw .bad("a bare CR in \(what)") }
        return line
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    /// Bytes of a request for an error message: printable ASCII as is, the rest as `\xNN`, at most 64.
    static func quoted<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var text = "\""
        for byte in bytes.prefix(64) {
            if byte >= 32, byte < 127, byte != 34, byte != 92 {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text + (bytes.count > 64 ? "...\"" : "\"")
    }
}
