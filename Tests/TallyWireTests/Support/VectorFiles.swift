import Foundation
import NIOCore
import TallyCore
import TallyWire

/// Reading and writing `protocol/vectors/<name>.hex`: `#` comment lines describing the frame, then the
/// frame's bytes as lower-case hex, 64 digits a line.
enum VectorFiles {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("protocol/vectors")

    static func url(_ name: String) -> URL { directory.appendingPathComponent("\(name).hex") }

    static func read(_ name: String) throws -> [UInt8] {
        let text = try String(contentsOf: url(name), encoding: .utf8)
        let hex = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined()
        return WireVectors.hexBytes(hex)
    }

    static func write(_ vector: WireVector) throws {
        var lines = ["# \(vector.name): \(vector.summary)"]
        if let error = vector.expectedError {
            lines.append("# expect: \(upperSnakeCase(String(describing: error))) (error code \(error.rawValue))")
        } else if vector.bytes.count >= 12 {
            lines.append("# kind 0x\(hex([vector.bytes[5]])), request id \(WireVector.requestID), \(vector.bytes.count) bytes; expect: decodes")
        }
        let digits = hex(vector.bytes)
        var start = digits.startIndex
        while start < digits.endIndex {
            let end = digits.index(start, offsetBy: 64, limitedBy: digits.endIndex) ?? digits.endIndex
            lines.append(String(digits[start..<end]))
            start = end
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(to: url(vector.name), atomically: true, encoding: .utf8)
    }

    /// `unsupportedProtocolVersion` as wire.md's table spells it: `UNSUPPORTED_PROTOCOL_VERSION`.
    static func upperSnakeCase(_ name: String) -> String {
        name.reduce(into: "") { result, character in
            if character.isUppercase { result += "_" }
            result += character.uppercased()
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }

    /// Reads one complete frame as a peer would: the stream decoder first (it alone refuses an oversized
    /// length before buffering), then the whole-frame checks, then the body by the kind's direction.
    static func readAsPeer(_ bytes: [UInt8]) throws(WireError) -> WireVector.Message {
        var decoder = FrameDecoder(frameBytesMax: WireLimits.frameBytesMaxDefault)
        var buffer = ByteBuffer(bytes: bytes)
        do {
            _ = try decoder.decode(buffer: &buffer)
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(code: .internalError, message: "FrameDecoder threw a non-wire error: \(error)")
        }
        let frame = try Frame.parse(bytes)
        if frame.kind & 0x80 != 0 { return .response(try WireCodec.decodeResponse(frame)) }
        return .request(try WireCodec.decodeRequest(frame))
    }
}
