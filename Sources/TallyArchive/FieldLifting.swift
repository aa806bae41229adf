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

    /// One lifted field: where it starts in the body (relative to the end of the previous one) and what it was
    /// (a digest's bytes are the body's at that place).
    struct Lift: Equatable {
        var gap: Int
        var kind: UInt8
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

    /// A table string offered to the array form of `lifts` (the tests): its UTF-8 and its index in the table.
    struct StringCandidate {
        var utf8: [UInt8]
        var index: Int
    }

    /// The segment's string table as the scan reads it: every entry's UTF-8 back to back, and where each is.
    struct StringTable {
        private(set) var bytes: [UInt8] = []
        private(set) var ranges: [Range<Int>] = []

        init(_ strings: some Sequence<[UInt8]>) {
            for utf8 in strings {
                ranges.append(bytes.count..<(bytes.count + utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// What one record offers to lift: its digests (32 bytes each, back to back) and the table entries of its
    /// strings. The encoder fills one for each record in turn, keeping its memory.
    struct Offer {
        var digests: [UInt8] = []
        var strings: [Int] = []

        mutating func removeAll() {
            digests.removeAll(keepingCapacity: true)
            strings.removeAll(keepingCapacity: true)
        }
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

    /// `lifts(in:offering:table:_:timestamp:into:)` for a body, digests and candidate strings held in arrays
    /// (the tests check the scan through it against a byte-by-byte reference).
    static func lifts(in body: ArraySlice<UInt8>, digests: [[UInt8]], strings: [StringCandidate] = [], timestamp: Int64) -> [Lift] {
        var entries = [[UInt8]](repeating: [], count: (strings.map(\.index).max() ?? -1) + 1)
        for candidate in strings { entries[candidate.index] = candidate.utf8 }
        let table = StringTable(entries)
        var offer = Offer()
        for digest in digests { offer.digests.append(contentsOf: digest) }
        offer.strings = strings.map(\.index)
        var lifts: [Lift] = []
        body.withUnsafeBytes { body in
            table.bytes.withUnsafeBytes { tableBytes in
                Self.lifts(in: body, offering: offer, table: tableBytes, table.ranges, timestamp: timestamp, into: &lifts)
            }
        }
        return lifts
    }

    /// Scans `body` left to right and lifts the offered digests (each at its first occurrence), every
    /// occurrence of the offered table strings (as u32 length and UTF-8; `tableBytes` and `tableRanges` are
    /// the `StringTable`'s), and every 8-byte big-endian value within `timeWindowMilliseconds` of `timestamp`,
    /// replacing what `lifts` held. Every byte offset of every record of a segment is tried, so the scan reads
    /// the bytes in place and rejects most offsets on their first byte or their length; nothing is allocated
    /// once `lifts` has grown to a record's count.
    static func lifts(
        in body: UnsafeRawBufferPointer, offering offer: borrowing Offer, table tableBytes: UnsafeRawBufferPointer,
        _ tableRanges: [Range<Int>], timestamp: Int64, into lifts: inout [Lift]
    ) {
        lifts.removeAll(keepingCapacity: true)
        let digestCount = offer.digests.count / 32
        precondition(digestCount <= 64, "at most 64 digests a record")
        var pending: UInt64 = digestCount == 64 ? ~0 : (1 << UInt64(digestCount)) - 1
        // Which string lengths (modulo 64) any candidate has: most offsets are rejected on their length alone.
        var lengths: UInt64 = 0
        for index in offer.strings { lengths |= 1 << UInt64(tableRanges[index].count & 63) }
        // Most offsets start no field at all, and are passed over on their first byte: a string's u32 length
        // (at most 1,024) starts with a zero byte, and so does every time in the window when the whole window
        // lies in [0, 2^56); a digest starts with one of the pending digests' first bytes.
        let timesStartWithZero = timestamp >= timeWindowMilliseconds && timestamp < (1 << 56) - timeWindowMilliseconds
        offer.digests.withUnsafeBytes { digests in
            var digestFirsts = ByteSet(firstBytesOf: digests, pending)
            var position = 0
            var lastEnd = 0
            while position < body.count {
                let first = body[position]
                if timesStartWithZero && first != 0 && !digestFirsts.contains(first) {
                    position += 1
                    continue
                }
                let remaining = body.count - position
                if remaining >= 32, let index = digest(in: body, at: position, digests, pending) {
                    lifts.append(Lift(gap: position - lastEnd, kind: digestKind))
                    pending &= ~(1 << UInt64(index))
                    digestFirsts = ByteSet(firstBytesOf: digests, pending)
                    position += 32
                    lastEnd = position
                } else if !offer.strings.isEmpty, let index = string(in: body, at: position, offer.strings, tableBytes, tableRanges, lengths) {
                    let length = tableRanges[index].count
                    lifts.append(Lift(gap: position - lastEnd, kind: stringKind, stringIndex: index, stringLength: length))
                    position += 4 + length
                    lastEnd = position
                } else if remaining >= 8, let delta = timeDelta(body, at: position, timestamp: timestamp) {
                    lifts.append(Lift(gap: position - lastEnd, kind: timeKind, timeDelta: delta))
                    position += 8
                    lastEnd = position
                } else {
                    position += 1
                }
            }
        }
    }

    /// A set of byte values, one bit each.
    private struct ByteSet {
        private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

        /// The first bytes of the digests whose bits are set in `pending`.
        init(firstBytesOf digests: UnsafeRawBufferPointer, _ pending: UInt64) {
            var left = pending
            while left != 0 {
                insert(digests[32 * left.trailingZeroBitCount])
                left &= left - 1
            }
        }

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
    private static func digest(in body: UnsafeRawBufferPointer, at position: Int, _ digests: UnsafeRawBufferPointer, _ pending: UInt64) -> Int? {
        let first = body[position]
        var left = pending
        while left != 0 {
            let index = left.trailingZeroBitCount
            if digests[32 * index] == first && memcmp(digests.baseAddress! + 32 * index, body.baseAddress! + position, 32) == 0 { return index }
            left &= left - 1
        }
        return nil
    }

    /// The table entry among `candidates` whose encoding (u32 length, then its bytes) starts at `position`, if any.
    private static func string(
        in body: UnsafeRawBufferPointer, at position: Int, _ candidates: [Int], _ tableBytes: UnsafeRawBufferPointer,
        _ tableRanges: [Range<Int>], _ lengths: UInt64
    ) -> Int? {
        guard body.count - position >= 4 else { return nil }
        let length = Int(body.loadUnaligned(fromByteOffset: position, as: UInt32.self).bigEndian)
        guard length > 0, lengths & (1 << UInt64(length & 63)) != 0, length <= body.count - position - 4 else { return nil }
        let text = body.baseAddress! + position + 4
        for index in candidates {
            let range = tableRanges[index]
            if range.count == length && memcmp(tableBytes.baseAddress! + range.lowerBound, text, length) == 0 { return index }
        }
        return nil
    }

    private static func timeDelta(_ bytes: UnsafeRawBufferPointer, at position: Int, timestamp: Int64) -> Int64? {
        let value = bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self).bigEndian
        let (delta, overflow) = Int64(bitPattern: value).subtractingReportingOverflow(timestamp)
        guard !overflow, delta > -timeWindowMilliseconds, delta < timeWindowMilliseconds else { return nil }
        return delta
    }

    static func zigzag(_ value: Int64) -> UInt64 { ZigZag.encode(value) }

    static func unzigzag(_ value: UInt64) -> Int64 { ZigZag.decode(value) }
}
