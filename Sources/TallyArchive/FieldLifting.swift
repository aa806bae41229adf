import TallyCore

/// Lifts three kinds of field out of a record body before compression: SHA-256 payload hashes (32 random
/// bytes that also flatten deflate's literal codes for everything around them), absolute millisecond
/// times (8 bytes whose low bytes change on every event), and (segment format 2) the strings the segment
/// repeats (scope paths, tenants, subjects, actions: most of a body's bytes).
///
/// A lift removes bytes at an offset and records what they were: a digest goes to the segment's digest
/// section, a time becomes the zig-zag LEB128 of its difference from the event's own timestamp (0 for
/// `at_ms`, the TTL for `expires_at_ms`), a string (its u32 length and UTF-8) becomes its index in the
/// segment's string table. Strings lifted out shrink what has to be inflated, the larger part of reading
/// a segment, and deflate has less to find. Because the reader only puts back exactly the bytes that were
/// removed at exactly those offsets, a lift never needs to know which field it hit: any window may be
/// lifted, and the record is always rebuilt byte for byte. Knowing the event only makes lifting pay off.
enum FieldLifting {
    static let digestKind: UInt8 = 1
    static let timeKind: UInt8 = 2
    /// Segment format 2 only.
    static let stringKind: UInt8 = 3
    /// Times further than this from the event's timestamp (about 4.4 years) are left in the body.
    static let timeWindowMilliseconds: Int64 = 1 << 37

    /// One lifted field: where it starts in the body (relative to the end of the previous one) and what it was.
    struct Lift {
        var gap: Int
        var kind: UInt8
        var digest: ArraySlice<UInt8> = []
        var timeDelta: Int64 = 0
        var stringIndex = 0
        /// The UTF-8 length of a lifted string (the body held 4 more bytes: its length).
        var stringLength = 0
        var length: Int {
            switch kind {
            case digestKind: 32
            case timeKind: 8
            default: 4 + stringLength
            }
        }
    }

    /// A string of the segment's table that an event holds, as the body encodes it.
    struct StringCandidate {
        var utf8: [UInt8]
        var index: Int
    }

    /// The payload hashes and key hashes an event carries (the digests worth lifting).
    static func digests(of body: EventBody) -> [[UInt8]] {
        switch body {
        case .reserved(let value): [value.idempotency.payloadHash.bytes]
        case .committed(let value): [value.idempotency.payloadHash.bytes]
        case .released(let value): value.idempotency.map { [$0.payloadHash.bytes] } ?? []
        case .extended(let value): [value.idempotency.payloadHash.bytes]
        case .debitRecorded(let value): [value.idempotency.payloadHash.bytes]
        case .evaluationRecorded(let value): [value.idempotency.payloadHash.bytes]
        case .budgetFunded(let value): value.idempotency.map { [$0.payloadHash.bytes] } ?? []
        case .apiKeyCreated(let key): [key.secretHash.bytes]
        default: []
        }
    }

    /// Scans `body` left to right and lifts the given digests (each at its first occurrence), every
    /// occurrence of the given strings (as u32 length and UTF-8), and every 8-byte big-endian value within
    /// `timeWindowMilliseconds` of `timestamp`.
    static func lifts(in body: ArraySlice<UInt8>, digests: [[UInt8]], strings: [StringCandidate] = [], timestamp: Int64) -> [Lift] {
        var pending = digests
        var lifts: [Lift] = []
        var position = body.startIndex
        var lastEnd = body.startIndex
        while position < body.endIndex {
            let remaining = body.endIndex - position
            if remaining >= 32, let index = pending.firstIndex(where: { body[position..<(position + 32)].elementsEqual($0) }) {
                lifts.append(Lift(gap: position - lastEnd, kind: digestKind, digest: body[position..<(position + 32)]))
                pending.remove(at: index)
                position += 32
                lastEnd = position
            } else if !strings.isEmpty, let string = string(in: body, at: position, strings) {
                lifts.append(Lift(gap: position - lastEnd, kind: stringKind, stringIndex: string.index, stringLength: string.utf8.count))
                position += 4 + string.utf8.count
                lastEnd = position
            } else if remaining >= 8, let delta = timeDelta(body, at: position, timestamp: timestamp) {
                lifts.append(Lift(gap: position - lastEnd, kind: timeKind, timeDelta: delta))
                position += 8
                lastEnd = position
            } else {
                position += 1
            }
        }
        return lifts
    }

    /// The candidate whose encoding (u32 length, then its bytes) starts at `position`, if any.
    private static func string(in body: ArraySlice<UInt8>, at position: Int, _ strings: [StringCandidate]) -> StringCandidate? {
        guard body.endIndex - position >= 4 else { return nil }
        var length = 0
        for index in position..<(position + 4) { length = length << 8 | Int(body[index]) }
        guard length > 0, length <= body.endIndex - position - 4 else { return nil }
        let text = body[(position + 4)..<(position + 4 + length)]
        return strings.first { $0.utf8.count == length && $0.utf8.elementsEqual(text) }
    }

    private static func timeDelta(_ body: ArraySlice<UInt8>, at position: Int, timestamp: Int64) -> Int64? {
        var value: UInt64 = 0
        for index in position..<(position + 8) { value = value << 8 | UInt64(body[index]) }
        let (delta, overflow) = Int64(bitPattern: value).subtractingReportingOverflow(timestamp)
        guard !overflow, delta > -timeWindowMilliseconds, delta < timeWindowMilliseconds else { return nil }
        return delta
    }

    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    static func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }
}
