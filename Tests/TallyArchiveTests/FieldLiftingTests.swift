import Testing
@testable import TallyArchive

/// The lifting scan decides the bytes of every sealed segment, so a faster scan must find exactly the lifts
/// the plain one did: here a byte-by-byte reference (the scan as first written) and `FieldLifting.lifts` are
/// run over bodies with planted digests, strings (also with lengths that collide modulo 64, and prefixes of
/// one another) and times among random bytes, at every offset and at the ends of a slice.
@Suite struct FieldLiftingTests {
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
    }

    /// The scan as it was first written: every offset, each candidate compared element by element.
    static func referenceLifts(in body: ArraySlice<UInt8>, digests: [[UInt8]], strings: [FieldLifting.StringCandidate], timestamp: Int64) -> [FieldLifting.Lift] {
        var pending = digests
        var lifts: [FieldLifting.Lift] = []
        var position = body.startIndex
        var lastEnd = body.startIndex
        while position < body.endIndex {
            let remaining = body.endIndex - position
            if remaining >= 32, let index = pending.firstIndex(where: { body[position..<(position + 32)].elementsEqual($0) }) {
                lifts.append(FieldLifting.Lift(gap: position - lastEnd, kind: FieldLifting.digestKind))
                pending.remove(at: index)
                position += 32
                lastEnd = position
                continue
            }
            if remaining >= 4 {
                let length = body[position..<(position + 4)].reduce(0) { $0 << 8 | Int($1) }
                if length > 0, length <= remaining - 4,
                   let string = strings.first(where: { $0.utf8.count == length && $0.utf8.elementsEqual(body[(position + 4)..<(position + 4 + length)]) }) {
                    lifts.append(FieldLifting.Lift(gap: position - lastEnd, kind: FieldLifting.stringKind, stringIndex: string.index, stringLength: length))
                    position += 4 + length
                    lastEnd = position
                    continue
                }
            }
            if remaining >= 8 {
                let value = body[position..<(position + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let (delta, overflow) = Int64(bitPattern: value).subtractingReportingOverflow(timestamp)
                if !overflow, delta > -FieldLifting.timeWindowMilliseconds, delta < FieldLifting.timeWindowMilliseconds {
                    lifts.append(FieldLifting.Lift(gap: position - lastEnd, kind: FieldLifting.timeKind, timeDelta: delta))
                    position += 8
                    lastEnd = position
                    continue
                }
            }
            position += 1
        }
        return lifts
    }

    static func encoded(_ string: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: UInt32(string.count).bigEndian, Array.init) + string
    }

    /// Record times of today, where the scan passes over offsets on their first byte, and times whose window
    /// reaches below zero or past 2^56, where it cannot (planted times then start with other bytes than 0).
    @Test(arguments: [Int64(1_764_000_000_000), Int64(20_000), Int64((1 << 56) - 30_000)] as [Int64])
    func theScanFindsExactlyTheLiftsOfTheByteByByteReference(timestamp: Int64) {
        var random = Random(state: 42)
        var lifted = 0
        for round in 0..<400 {
            let digests = (0..<Int(random.next() % 5)).map { _ in random.bytes(32) }
            // Lengths 5 and 69 collide modulo 64; "scope" is a prefix of "scope-path".
            let texts: [[UInt8]] = [Array("scope".utf8), Array("scope-path".utf8), Array(repeating: UInt8(ascii: "x"), count: 69), random.bytes(Int(random.next() % 40) + 1)]
            let strings = texts.enumerated().compactMap { index, text in
                random.next() % 4 == 0 ? nil : FieldLifting.StringCandidate(utf8: text, index: index)
            }
            var body: [UInt8] = random.bytes(Int(random.next() % 16))
            for _ in 0..<Int(random.next() % 12) {
                switch random.next() % 6 {
                case 0 where !digests.isEmpty: body += digests[Int(random.next() % UInt64(digests.count))]
                case 1: body += Self.encoded(texts[Int(random.next() % UInt64(texts.count))])
                case 2: body += withUnsafeBytes(of: (timestamp + Int64(random.next() % 100_000) - 50_000).bigEndian, Array.init)
                case 3: body += Self.encoded(Array("scope-pat".utf8))  // a near miss
                case 4: body += [UInt8](repeating: 0, count: Int(random.next() % 10)) + [UInt8(random.next() % 3)]  // zero runs
                default: body += random.bytes(Int(random.next() % 24))
                }
            }
            // A slice that does not start at index 0, as the codec hands over records of one buffer.
            let padded = random.bytes(Int(random.next() % 5)) + body + random.bytes(Int(random.next() % 5))
            let start = padded.count - body.count - (padded.count - body.count) / 2
            let slice = padded[start..<(start + body.count)]
            for cut in [slice, slice.dropLast(min(slice.count, round % 7))] {
                let expected = Self.referenceLifts(in: cut, digests: digests, strings: strings, timestamp: timestamp)
                let found = FieldLifting.lifts(in: cut, digests: digests, strings: strings, timestamp: timestamp)
                #expect(found.count == expected.count, "round \(round)")
                #expect(found == expected, "round \(round)")
                lifted += expected.count
            }
        }
        #expect(lifted > 1_000, "the bodies held something to lift")
    }
}
