#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    /// `timeWindowMilliseconds` of `timestamp`. Every byte offset of every record of a segment is tried, so
    /// the scan reads the bytes in place and rejects most offsets on their first byte or their length.
    static func lifts(in body: ArraySlice<UInt8>, digests: [[UInt8]], strings: [StringCandidate] = [], timestamp: Int64) -> [Lift] {
        var pending = digests
        var lifts: [Lift] = []
        lifts.reserveCapacity(body.count / 16)  // lifecycle records lift one field per 20-30 bytes: one allocation
        let base = body.startIndex
        // Which string lengths (modulo 64) any candidate has: most offsets are rejected on their length alone.
        var lengths: UInt64 = 0
        for candidate in strings { lengths |= 1 << UInt64(candidate.utf8.count & 63) }
        // Most offsets start no field at all, and are passed over on their first byte: a string's u32 length
        // (at most 1,024) starts with a zero byte, and so does every time in the window when the whole window
        // lies in [0, 2^56); a digest starts with one of the pending digests' first bytes.
        let timesStartWithZero = timestamp >= timeWindowMilliseconds && timestamp < (1 << 56) - timeWindowMilliseconds
        var digestFirsts = ByteSet()
        for digest in pending where !digest.isEmpty { digestFirsts.insert(digest[0]) }
        body.withUnsafeBufferPointer { bytes in
            var position = 0
            var lastEnd = 0
            while position < bytes.count {
                let first = bytes[position]
                if timesStartWithZero && first != 0 && !digestFirsts.contains(first) {
                    position += 1
                    continue
                }
                let remaining = bytes.count - position
                if remaining >= 32, let index = digest(in: bytes, at: position, pending) {
                    lifts.append(Lift(gap: position - lastEnd, kind: digestKind, digest: body[(base + position)..<(base + position + 32)]))
                    pending.remove(at: index)
                    digestFirsts = ByteSet()
                    for digest in pending where !digest.isEmpty { digestFirsts.insert(digest[0]) }
                    position += 32
                    lastEnd = position
                } else if !strings.isEmpty, let string = string(in: bytes, at: position, strings, lengths) {
                    lifts.append(Lift(gap: position - lastEnd, kind: stringKind, stringIndex: string.index, stringLength: string.utf8.count))
                    position += 4 + string.utf8.count
                    lastEnd = position
                } else if remaining >= 8, let delta = timeDelta(bytes, at: position, timestamp: timestamp) {
                    lifts.append(Lift(gap: position - lastEnd, kind: timeKind, timeDelta: delta))
                    position += 8
                    lastEnd = position
                } else {
                    position += 1
                }
            }
        }
        return lifts
    }

    /// A set of byte values, one bit each.
    private struct ByteSet {
        private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        mutating func insert(_ byte: UInt8) {
            let bit = UInt64(1) << UInt64(byte & 63)
            switch byte >> 6 {
            case 0: words.0 |= bit
            case 1: words.1 |= bit
            case 2: words.2 |= bit
            default: words.3 |= bit
            }
        }

        func contains(_ byte: UInt8) -> Bool {
            let word = switch byte >> 6 {
            case 0: words.0
            case 1: words.1
            case 2: words.2
            default: words.3
            }
            return word >> UInt64(byte & 63) & 1 != 0
        }
    }

    /// The index of the first pending digest (32 bytes each) that starts at `position`, if any.
    private static func digest(in bytes: UnsafeBufferPointer<UInt8>, at position: Int, _ pending: [[UInt8]]) -> Int? {
        let first = bytes[position]
        return pending.firstIndex { digest in
            digest.count == 32 && digest[0] == first
                && digest.withUnsafeBufferPointer { memcmp($0.baseAddress!, bytes.baseAddress! + position, 32) == 0 }
        }
    }

    /// The candidate whose encoding (u32 length, then its bytes) starts at `position`, if any.
    private static func string(
        in bytes: UnsafeBufferPointer<UInt8>, at position: Int, _ strings: [StringCandidate], _ lengths: UInt64
    ) -> StringCandidate? {
        guard bytes.count - position >= 4 else { return nil }
        let length = Int(UnsafeRawPointer(bytes.baseAddress! + position).loadUnaligned(as: UInt32.self).bigEndian)
        guard length > 0, lengths & (1 << UInt64(length & 63)) != 0, length <= bytes.count - position - 4 else { return nil }
        let text = bytes.baseAddress! + position + 4
        return strings.first { candidate in
            candidate.utf8.count == length
                && candidate.utf8.withUnsafeBufferPointer { memcmp($0.baseAddress!, text, length) == 0 }
        }
    }

    private static func timeDelta(_ bytes: UnsafeBufferPointer<UInt8>, at position: Int, timestamp: Int64) -> Int64? {
        let value = UnsafeRawPointer(bytes.baseAddress! + position).loadUnaligned(as: UInt64.self).bigEndian
        let (delta, overflow) = Int64(bitPattern: value).subtractingReportingOverflow(timestamp)
        guard !overflow, delta > -timeWindowMilliseconds, delta < timeWindowMilliseconds else { return nil }
        return delta
    }

    static func zigzag(_ value: Int64) -> UInt64 { ZigZag.encode(value) }

    static func unzigzag(_ value: UInt64) -> Int64 { ZigZag.decode(value) }
}
