import Testing
import TallyCore
import TallyWire

@Suite struct FrameTests {
    @Test func serializedFrameHasTheDocumentedHeaderOffsets() {
        let frame = Frame(kind: 0x08, requestID: 0x0102_0304, body: [0xAA, 0xBB])
        #expect(frame.serialized == [0, 0, 0, 10, 1, 0x08, 0, 0, 1, 2, 3, 4, 0xAA, 0xBB])
    }

    @Test func parseRoundTripsASerializedFrame() throws {
        let frame = Frame(kind: 0x21, requestID: .max, body: [0, 0, 0, 5])
        #expect(try Frame.parse(frame.serialized) == frame)
    }

    @Test(arguments: [
        ([UInt8](), ErrorCode.malformedFrame),
        ([0, 0, 0], .malformedFrame),
        ([0, 0, 0, 7, 1, 1, 0, 0, 0, 0, 0], .malformedFrame),
        ([0, 0, 0, 8, 1, 1, 0, 0, 0, 0, 0], .malformedFrame),
        ([0, 0, 0, 8, 1, 1, 0, 0, 0, 0, 0, 0, 9], .malformedFrame),
        ([0, 0, 0, 8, 2, 1, 0, 0, 0, 0, 0, 0], .unsupportedProtocolVersion),
        ([0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0], .unsupportedProtocolVersion),
        ([0, 0, 0, 8, 1, 1, 0x80, 0, 0, 0, 0, 0], .malformedFrame),
    ])
    func parseRefusesDamagedFrames(_ bytes: [UInt8], _ code: ErrorCode) {
        #expect {
            _ = try Frame.parse(bytes)
        } throws: { error in
            (error as? WireError)?.code == code
        }
    }

    @Test func versionIsCheckedBeforeFlags() {
        #expect {
            _ = try Frame.parse([0, 0, 0, 8, 9, 1, 0xFF, 0xFF, 0, 0, 0, 0])
        } throws: { error in
            (error as? WireError)?.code == .unsupportedProtocolVersion
        }
    }

    @Test func decodeChecksTheHeaderOfFramesThatDidNotComeFromParse() {
        let wrongVersion = Frame(version: 3, kind: 0x21, requestID: 1, body: [0, 0, 0, 1])
        let flagged = Frame(kind: 0x21, flags: 1, requestID: 1, body: [0, 0, 0, 1])
        #expect { _ = try WireCodec.decodeRequest(wrongVersion) } throws: { ($0 as? WireError)?.code == .unsupportedProtocolVersion }
        #expect { _ = try WireCodec.decodeRequest(flagged) } throws: { ($0 as? WireError)?.code == .malformedFrame }
    }

    @Test func unknownKindNamesItsOffset() {
        #expect {
            _ = try WireCodec.decodeRequest(Frame(kind: 0x7F, requestID: 1, body: []))
        } throws: { error in
            let wire = error as? WireError
            return wire?.code == .malformedFrame && wire?.message.contains("0x7f") == true
                && wire?.message.contains("offset 5") == true
        }
    }
}
