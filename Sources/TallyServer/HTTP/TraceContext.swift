/// Request and trace ids of one HTTP exchange (semantics 2.0).
struct TraceContext: Sendable {
    let requestID: String
    let traceID: String

    /// The trace id: a valid W3C `traceparent` (version 00, non-zero ids) wins, then a valid
    /// `X-Cycles-Trace-Id` (32 lower-case hex, not all zero), else 16 fresh random bytes. Malformed headers
    /// are ignored, never refused.
    static func resolve(traceparent: String?, cyclesTraceID: String?) -> TraceContext {
        let traceID = traceparent.flatMap(fromTraceparent) ?? cyclesTraceID.flatMap { isTraceID($0) ? $0 : nil } ?? randomTraceID()
        return TraceContext(requestID: randomHex(bytes: 16, prefix: "req_"), traceID: traceID)
    }

    static func fromTraceparent(_ header: String) -> String? {
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[0] == "00", parts[1].utf8.count == 32, parts[2].utf8.count == 16, parts[3].utf8.count == 2 else {
            return nil
        }
        let trace = String(parts[1])
        guard isTraceID(trace), isLowerHex(parts[2]), isLowerHex(parts[3]), parts[2].contains(where: { $0 != "0" }) else { return nil }
        return trace
    }

    static func isTraceID(_ text: String) -> Bool {
        text.utf8.count == 32 && isLowerHex(Substring(text)) && text.contains { $0 != "0" }
    }

    private static func isLowerHex(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func randomTraceID() -> String {
        var id = randomHex(bytes: 16, prefix: "")
        while !isTraceID(id) { id = randomHex(bytes: 16, prefix: "") }
        return id
    }

    private static let digits = Array("0123456789abcdef".utf8)

    static func randomHex(bytes count: Int, prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        var text = Array(prefix.utf8)
        text.reserveCapacity(text.count + count * 2)
        var word: UInt64 = 0
        for index in 0..<count {
            if index % 8 == 0 { word = generator.next() }
            let byte = UInt8(truncatingIfNeeded: word >> (UInt64(index % 8) * 8))
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
