import TallyCore

/// Turns `Request` and `Response` values into frames and back, as `protocol/wire.md` specifies.
///
/// Bodies reuse the event codec's primitives (`ByteWriter`, `ByteReader`, and the shared encodings of
/// subjects, balances, budgets...), so a value has one byte form everywhere in Tally. The encoding is
/// canonical: a body that decodes re-encodes to the same bytes, which is what lets `RequestFingerprint`
/// hash the encoding. Decoding treats the peer as hostile: every defect is a `WireError`, never a trap,
/// and no count or length read from the frame can make the decoder allocate past its limit.
public enum WireCodec {
    /// The frame for `request`.
    ///
    /// Precondition: every field is within the limits of `protocol/wire.md`; `checkLimits(_:)` tells a
    /// caller holding untrusted values whether that is so. A value past a limit crashes here rather than
    /// producing a frame the server would refuse.
    public static func encodeRequest(_ request: Request, requestID: UInt32) -> Frame {
        var writer = ByteWriter()
        writer.writeBody(of: request)
        return Frame(kind: request.kind, requestID: requestID, body: writer.bytes)
    }

    /// The frame for `response`, answering the request `requestID` (a subscription's events carry the
    /// subscribe request's id). An error message longer than `WireLimits.errorMessageBytesMax` is cut.
    public static func encodeResponse(_ response: Response, requestID: UInt32) -> Frame {
        var writer = ByteWriter()
        writer.writeBody(of: response)
        return Frame(kind: response.kind, requestID: requestID, body: writer.bytes)
    }

    /// The request a frame carries. Throws `unsupportedProtocolVersion` for a version other than 1 and
    /// `malformedFrame` for non-zero flags, an unknown kind (responses included) or a bad body.
    public static func decodeRequest(_ frame: Frame) throws(WireError) -> Request {
        try frame.checkHeader()
        guard let kind = RequestKind(rawValue: frame.kind) else {
            throw WireError(code: .malformedFrame, message: "unknown request kind \(hex(frame.kind)) at offset 5")
        }
        return try decodeBody(frame, "\(kind) request") { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readRequestBody(kind)
        }
    }

    /// The response a frame carries, with the same errors as `decodeRequest`.
    public static func decodeResponse(_ frame: Frame) throws(WireError) -> Response {
        try frame.checkHeader()
        guard let kind = ResponseKind(rawValue: frame.kind) else {
            throw WireError(code: .malformedFrame, message: "unknown response kind \(hex(frame.kind)) at offset 5")
        }
        return try decodeBody(frame, "\(kind) response") { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readResponseBody(kind)
        }
    }

    /// Runs a body reader over the whole body and turns its error into a `malformedFrame` that names the
    /// message, the field and the offset (counted from the first body byte).
    private static func decodeBody<Value>(
        _ frame: Frame, _ what: String, _ read: (inout ByteReader) throws(EventCodecError) -> Value
    ) throws(WireError) -> Value {
        var reader = ByteReader(frame.body)
        do {
            let value = try read(&reader)
            try reader.expectEnd("the last field of the \(what)")
            return value
        } catch {
            throw WireError(code: .malformedFrame, message: "\(what) body (kind \(hex(frame.kind))): \(error.reason)")
        }
    }

    static func hex(_ kind: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return "0x" + String(digits[Int(kind >> 4)]) + String(digits[Int(kind & 0x0f)])
    }
}
