import NIOCore
import NIOTestUtils
import Testing
import TallyCore
import TallyWire

@Suite struct FrameDecoderTests {
    static let frames = [
        Frame(kind: 0x08, requestID: 1, body: [0, 0, 0, 5] + Array("res-1".utf8)),
        Frame(kind: 0x21, requestID: 2, body: [0, 0, 0, 9]),
        Frame(kind: 0x82, requestID: 3, body: []),
        Frame(version: 2, kind: 0x7F, flags: 3, requestID: .max, body: Array(repeating: 0xEE, count: 300)),
    ]

    /// NIO's verifier feeds the input whole, byte by byte and in random splits, and checks that the
    /// decoder neither loses nor invents frames and leaves no state behind.
    @Test func decoderPassesTheNIOVerifier() throws {
        var pairs: [(ByteBuffer, [Frame])] = []
        for frame in Self.frames { pairs.append((ByteBuffer(bytes: frame.serialized), [frame])) }
        pairs.append((ByteBuffer(bytes: Self.frames.flatMap(\.serialized)), Self.frames))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) {
            FrameDecoder(frameBytesMax: 1024)
        }
    }

    @Test func oversizedLengthIsRefusedFromThePrefixAlone() {
        var decoder = FrameDecoder(frameBytesMax: 64)
        var buffer = ByteBuffer(bytes: [0, 0, 0, 65])
        #expect {
            _ = try decoder.decode(buffer: &buffer)
        } throws: { error in
            (error as? WireError)?.code == .payloadTooLarge
        }
    }

    @Test func lengthAtTheLimitIsAccepted() throws {
        var decoder = FrameDecoder(frameBytesMax: 64)
        let frame = Frame(kind: 0x82, requestID: 5, body: Array(repeating: 1, count: 56))
        var buffer = ByteBuffer(bytes: frame.serialized)
        #expect(try decoder.decode(buffer: &buffer) == frame)
        #expect(buffer.readableBytes == 0)
    }

    @Test func lengthShorterThanTheHeaderIsMalformed() {
        var decoder = FrameDecoder(frameBytesMax: 64)
        var buffer = ByteBuffer(bytes: [0, 0, 0, 7])
        #expect {
            _ = try decoder.decode(buffer: &buffer)
        } throws: { error in
            (error as? WireError)?.code == .malformedFrame
        }
    }

    @Test func partialFrameWaitsForMoreBytes() throws {
        var decoder = FrameDecoder(frameBytesMax: 1024)
        let bytes = Self.frames[0].serialized
        var buffer = ByteBuffer(bytes: bytes.dropLast())
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == bytes.count - 1)
        buffer.writeBytes([bytes[bytes.count - 1]])
        #expect(try decoder.decode(buffer: &buffer) == Self.frames[0])
    }

    @Test func encoderAndWriteFrameMatchSerialized() throws {
        for frame in Self.frames {
            var viaExtension = ByteBuffer()
            let written = viaExtension.writeFrame(frame)
            var viaEncoder = ByteBuffer()
            try FrameEncoder().encode(data: frame, out: &viaEncoder)
            #expect(written == frame.serialized.count)
            #expect(Array(viaExtension.readableBytesView) == frame.serialized)
            #expect(viaEncoder == viaExtension)
        }
    }

    /// Random byte streams: the decoder returns frames, asks for more, or throws a `WireError`; the loop
    /// is bounded because every successful decode consumes at least the 12 bytes of a header.
    @Test func garbageStreamsGiveFramesOrWireErrors() {
        var random = WirePRNG(state: 99)
        for _ in 0..<500 {
            var decoder = FrameDecoder(frameBytesMax: 256)
            var buffer = ByteBuffer(bytes: (0..<random.below(200)).map { _ in random.pick([0, 0, 0, 1, 8, 12, random.byte()]) })
            for _ in 0..<100 {
                do {
                    guard try decoder.decode(buffer: &buffer) != nil else { break }
                } catch {
                    let code = (error as? WireError)?.code
                    #expect(code == .payloadTooLarge || code == .malformedFrame)
                    break
                }
            }
        }
    }
}
