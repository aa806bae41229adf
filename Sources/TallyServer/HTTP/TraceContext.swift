/// Request and trace ids of one HTTP exchange (semantics 2.0).
struct TraceContext: Sendable {
    let requestID: String
    let traceID: String

    /// The trace id: a valid W3C `traceparent` (version 00, non-zero ids) wins, then a valid
    /// `X-Cycles-Trace-Id` (32 lower-case hex, not all zero), else 16 fresh random bytes. Malformed headers
    /// are ignored, never refused. The request id and a fresh trace id come from `ids`.
    static func resolve(traceparent: String?, cyclesTraceID: String?, ids: inout ExchangeIDs) -> TraceContext {
        let traceID = traceparent.flatMap(fromTraceparent) ?? cyclesTraceID.flatMap { isTraceID($0) ? $0 : nil } ?? ids.hex(prefix: "")
        return TraceContext(requestID: ids.hex(prefix: "req_"), traceID: traceID)
    }

    /// As above with ids from the system's generator (tests and one-off answers).
    static func resolve(traceparent: String?, cyclesTraceID: String?) -> TraceContext {
        var ids = ExchangeIDs()
        return resolve(traceparent: traceparent, cyclesTraceID: cyclesTraceID, ids: &ids)
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
}

/// Request and trace ids: 128 bits each, as 32 lower-case hex digits, never all zero. Each HTTP connection
/// keeps one generator (xoshiro256**, seeded from the system's generator when the connection opens), so a
/// request costs no system call for its ids. The ids identify exchanges in logs and traces; they are not
/// secrets, so a generator that is fast rather than cryptographic is the right one.
struct ExchangeIDs: Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        state = (system.next(), system.next(), system.next(), system.next())
        if state == (0, 0, 0, 0) { state.0 = 1 }
    }

    private init(state: (UInt64, UInt64, UInt64, UInt64)) {
        self.state = state
        if state == (0, 0, 0, 0) { self.state.0 = 1 }
    }

    /// A generator of its own for one exchange, seeded from this one (whose later draws it never repeats).
    mutating func split() -> ExchangeIDs {
        ExchangeIDs(state: (next(), next(), next(), next()))
    }

    mutating func next() -> UInt64 {
        let result = (state.1 &* 5).rotatedLeft(7) &* 9
        let shifted = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= shifted
        state.3 = state.3.rotatedLeft(45)
        return result
    }

    private static let digits = Array("0123456789abcdef".utf8)

    /// 128 fresh bits as hex after `prefix`.
    mutating func hex(prefix: StaticString) -> String {
        var (high, low) = (next(), next())
        if high == 0 && low == 0 { low = 1 }
        let prefixCount = prefix.utf8CodeUnitCount
        return String(unsafeUninitializedCapacity: prefixCount + 32) { text in
            for index in 0..<prefixCount { text[index] = prefix.utf8Start[index] }
            for index in 0..<16 {
                let byte = UInt8(truncatingIfNeeded: (index < 8 ? high : low) >> (UInt64(7 - index % 8) * 8))
                text[prefixCount + index * 2] = Self.digits[Int(byte >> 4)]
                text[prefixCount + index * 2 + 1] = Self.digits[Int(byte & 0x0F)]
            }
            return prefixCount + 32
        }
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
