import NIOCore
import TallyCore

/// Splits a byte stream into frames, refusing an oversized frame before buffering its body.
///
/// The decoder reads only the 4-byte length prefix until the whole frame is present, so a peer that
/// announces a huge frame is refused (`payloadTooLarge`) after four bytes, not after the server has
/// buffered what it sent. It checks nothing else in the header: version, flags and kind are checked by
/// `WireCodec.decodeRequest`, so that the server still knows the request id to answer with.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    /// The largest length prefix accepted: header plus body, without the prefix itself.
    public let frameBytesMax: Int

    public init(frameBytesMax: Int) {
        precondition(frameBytesMax >= WireProtocol.headerBytes, "a frame limit must admit at least the header")
        self.frameBytesMax = frameBytesMax
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard UInt64(length) <= UInt64(frameBytesMax) else {
            throw WireError(
                code: .payloadTooLarge, message: "frame length \(length) is over this peer's limit of \(frameBytesMax) bytes")
        }
        guard Int(length) >= WireProtocol.headerBytes else {
            throw WireError(
                code: .malformedFrame,
                message: "frame length \(length) is shorter than the \(WireProtocol.headerBytes)-byte header")
        }
        guard buffer.readableBytes >= Frame.lengthPrefixBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Frame.lengthPrefixBytes)
        guard let version = buffer.readInteger(as: UInt8.self), let kind = buffer.readInteger(as: UInt8.self),
              let flags = buffer.readInteger(as: UInt16.self), let requestID = buffer.readInteger(as: UInt32.self),
              let body = buffer.readBytes(length: Int(length) - WireProtocol.headerBytes)
        else { preconditionFailure("the readable bytes were checked against the length above") }
        return Frame(version: version, kind: kind, flags: flags, requestID: requestID, body: body)
    }

    /// A partial frame left at end of stream is not an error here; `ByteToMessageHandler` reports leftovers.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        try decode(buffer: &buffer)
    }
}

/// Writes frames with their length prefix.
public struct FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    public init() {}

    public func encode(data: Frame, out: inout ByteBuffer) throws {
        out.writeFrame(data)
    }
}

extension ByteBuffer {
    /// Appends `frame` as it travels (length prefix, header, body) and returns the bytes written.
    @discardableResult
    public mutating func writeFrame(_ frame: Frame) -> Int {
        guard let length = UInt32(exactly: frame.length) else {
            preconditionFailure("a frame body of \(frame.body.count) bytes cannot be described by a u32 length")
        }
        var written = writeInteger(length)
        written += writeInteger(frame.version)
        written += writeInteger(frame.kind)
        written += writeInteger(frame.flags)
        written += writeInteger(frame.requestID)
        written += writeBytes(frame.body)
        return written
    }
}
