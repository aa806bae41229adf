import TallyCore

/// One frame after the length prefix: header fields and the undecoded body.
///
/// A frame on the wire is a u32 big-endian length (the bytes after it), then the 8-byte header (version,
/// kind, flags, request id) and the body; `protocol/wire.md` section 2 is the normative layout.
public struct Frame: Sendable, Hashable {
    public var version: UInt8
    public var kind: UInt8
    public var flags: UInt16
    public var requestID: UInt32
    public var body: [UInt8]

    public init(version: UInt8 = WireProtocol.version, kind: UInt8, flags: UInt16 = 0, requestID: UInt32, body: [UInt8]) {
        self.version = version
        self.kind = kind
        self.flags = flags
        self.requestID = requestID
        self.body = body
    }
}

extension Frame {
    /// The bytes of the length prefix itself.
    public static let lengthPrefixBytes = 4

    /// The value of the length prefix: header and body.
    public var length: Int { WireProtocol.headerBytes + body.count }

    /// The frame as it travels: length prefix, header, body.
    public var serialized: [UInt8] {
        var writer = ByteWriter(capacity: Frame.lengthPrefixBytes + length)
        write(into: &writer)
        return writer.bytes
    }

    func write(into writer: inout ByteWriter) {
        guard let length = UInt32(exactly: length) else {
            preconditionFailure("a frame body of \(body.count) bytes cannot be described by a u32 length")
        }
        writer.writeU32(length)
        writer.writeU8(version)
        writer.writeU8(kind)
        writer.writeU16(flags)
        writer.writeU32(requestID)
        writer.writeBytes(body)
    }

    /// The frame in `bytes`, which must be exactly one serialized frame.
    ///
    /// Throws `malformedFrame` when the bytes end before the declared length, run past it, declare less
    /// than a header or set flags, and `unsupportedProtocolVersion` when the version is not 1. The kind and
    /// body are left to `WireCodec`.
    public static func parse(_ bytes: [UInt8]) throws(WireError) -> Frame {
        guard bytes.count >= lengthPrefixBytes else {
            throw WireError(
                code: .malformedFrame,
                message: "truncated at offset 0 reading the length prefix (needs 4 bytes, \(bytes.count) present)")
        }
        let declared = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
        guard declared >= WireProtocol.headerBytes else {
            throw WireError(
                code: .malformedFrame,
                message: "length \(declared) at offset 0 is shorter than the \(WireProtocol.headerBytes)-byte header")
        }
        let present = bytes.count - lengthPrefixBytes
        if declared > present {
            throw WireError(
                code: .malformedFrame,
                message: "truncated at offset \(bytes.count): length at offset 0 declares \(declared) bytes, \(present) present")
        }
        if declared < present {
            throw WireError(
                code: .malformedFrame,
                message: "\(present - declared) trailing bytes at offset \(lengthPrefixBytes + declared) after the declared frame")
        }
        let frame = Frame(
            version: bytes[4], kind: bytes[5], flags: UInt16(bytes[6]) << 8 | UInt16(bytes[7]),
            requestID: bytes[8..<12].reduce(0) { $0 << 8 | UInt32($1) }, body: Array(bytes[12...]))
        try frame.checkHeader()
        return frame
    }

    /// Version first: a peer speaking another version may lay out everything after byte 4 differently.
    func checkHeader() throws(WireError) {
        guard version == WireProtocol.version else {
            throw WireError(
                code: .unsupportedProtocolVersion,
                message: "protocol version \(version) at offset 4 is not supported (this peer speaks \(WireProtocol.version))")
        }
        guard flags == 0 else {
            throw WireError(code: .malformedFrame, message: "flags at offset 6 are \(flags); version 1 defines none, so they must be 0")
        }
    }
}
