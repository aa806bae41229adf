import Testing
@testable import TallyCore

/// A reservation id held as a UUID's bits must behave exactly as its text did: the same equality, order,
/// hash buckets and bytes in every encoding, so nothing stored or sent changes.
@Suite struct ReservationIDTests {
    static let text = "01a231a8-a0c7-7935-b469-926f4085a0f3"

    @Test func aCanonicalUUIDIsHeldAsItsBitsAndWritesTheSameText() throws {
        let id = ReservationID(Self.text)
        let bits = try #require(id.uuid)
        #expect(bits.high == 0x01a2_31a8_a0c7_7935 && bits.low == 0xb469_926f_4085_a0f3)
        #expect(id == ReservationID(high: bits.high, low: bits.low))
        #expect(id.description == Self.text)
        #expect(id.withUTF8 { Array($0) } == Array(Self.text.utf8))
        #expect(id.utf8Count == 36 && id.scalarCount == 36 && !id.isEmpty)
        #expect(ReservationID(high: 0, low: 0).description == "00000000-0000-0000-0000-000000000000")
        #expect(ReservationID(high: .max, low: .max).description == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }

    @Test func anyOtherTextIsKeptAsTextAndNeverEqualsAUUID() {
        let others = [
            Self.text.uppercased(),                          // upper-case hex: another id, as its text was
            "01a231a8a0c7-7935-b469-926f4085a0f3-",          // dashes elsewhere
            "01a231a8-a0c7-7935-b469-926f4085a0f",           // 35 bytes
            "01a231a8-a0c7-7935-b469-926f4085a0f3 ",         // 37 bytes
            "01a231a8-a0c7-7935-b469-926f4085a0g3",          // not hex
            "r-1", "", "réservation-ü",
        ]
        for text in others {
            let id = ReservationID(text)
            #expect(id.uuid == nil, "\(text)")
            #expect(id.description == text)
            #expect(id.withUTF8 { Array($0) } == Array(text.utf8))
            #expect(id != ReservationID(Self.text))
            #expect(id.scalarCount == text.unicodeScalars.count && id.utf8Count == text.utf8.count)
        }
        #expect(ReservationID("").isEmpty)
    }

    @Test func equalityHashAndOrderAreTheTexts() {
        var random = ModelSplitMix64(seed: 7)
        var ids: [ReservationID] = []
        for index in 0..<400 {
            switch index % 4 {
            case 0: ids.append(ReservationID(high: random.next(), low: random.next()))
            case 1: ids.append(ReservationID(high: random.next() & 0xFFFF, low: random.next()))  // leading zeros
            case 2: ids.append(ReservationID("r-\(random.next() % 50)"))
            default: ids.append(ReservationID(String(ReservationID(high: random.next(), low: random.next()).description.prefix(20))))
            }
        }
        ids.append(contentsOf: ids.prefix(40))  // repeats
        for (left, right) in zip(ids, ids.shuffled(using: &random)) {
            #expect((left == right) == (left.description == right.description), "\(left) \(right)")
            #expect((left < right) == (left.description < right.description), "\(left) \(right)")
            if left == right { #expect(left.hashValue == right.hashValue) }
        }
        #expect(ids.sorted().map(\.description) == ids.map(\.description).sorted())
        #expect(Set(ids).count == Set(ids.map(\.description)).count)
    }

    @Test func theCodecWritesAnIdAsItsStringAndReadsItBack() throws {
        let bytesMax = EventCodec.FieldLimit.reservationIDBytesMax
        for id: ReservationID in [ReservationID(Self.text), "r-1", "", "réservation-ü", ReservationID(Self.text.uppercased())] {
            var asID = ByteWriter()
            asID.writeReservationID(id, bytesMax: bytesMax, field: "id")
            var asString = ByteWriter()
            asString.writeString(id.description, bytesMax: bytesMax, field: "id")
            #expect(asID.bytes == asString.bytes, "\(id)")
            var reader = ByteReader(asID.bytes)
            let read = try reader.readReservationID("id", bytesMax: bytesMax)
            #expect(read == id && read.uuid.map { _ in true } == id.uuid.map { _ in true })
            #expect(reader.remainingCount == 0)
        }
    }

    @Test func theCodecRefusesWhatAStringFieldRefuses() {
        let invalidUTF8: [UInt8] = [0, 0, 0, 3, 0x61, 0xFF, 0x62]
        var reader = ByteReader(invalidUTF8)
        #expect(throws: EventCodecError.self) { try reader.readReservationID("id", bytesMax: 128) }
        var long = ByteWriter()
        long.writeString(String(repeating: "a", count: 40), bytesMax: 100, field: "id")
        var longReader = ByteReader(long.bytes)
        #expect(throws: EventCodecError.self) { try longReader.readReservationID("id", bytesMax: 36) }
        var truncated = ByteReader(Array(long.bytes.prefix(20)))
        #expect(throws: EventCodecError.self) { try truncated.readReservationID("id", bytesMax: 128) }
    }

    @Test func tableHashesAgreeForEqualKeysAndSpreadRandomIds() {
        var random = ModelSplitMix64(seed: 11)
        let seeds = [0, 1, -1, Int.max, 0x5EED]
        let uuid = ReservationID(Self.text)
        let sameUUID = ReservationID(high: uuid.uuid!.high, low: uuid.uuid!.low)
        let scope = ScopePath.derive(subject: Subject(workspace: "prod", agent: "bot"), tenant: "acme").last!
        let sameScope = ScopePath.derive(subject: Subject(workspace: "prod", agent: "bot"), tenant: "acme").last!
        let key = IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "k-1")
        let sameKey = IdempotencyKey(tenant: "acme", endpoint: .reserve, stamp: IdempotencyStamp(key: "k-1", payloadHash: .zero))
        for seed in seeds {
            #expect(uuid._rawHashValue(seed: seed) == sameUUID._rawHashValue(seed: seed))
            #expect(ReservationID("r-1")._rawHashValue(seed: seed) == ReservationID("r-" + "1")._rawHashValue(seed: seed))
            #expect(scope._rawHashValue(seed: seed) == sameScope._rawHashValue(seed: seed))
            #expect(BudgetKey(scope, .usdMicrocents)._rawHashValue(seed: seed) == BudgetKey(sameScope, .usdMicrocents)._rawHashValue(seed: seed))
            #expect(key._rawHashValue(seed: seed) == sameKey._rawHashValue(seed: seed))
        }
        #expect(BudgetKey(scope, .usdMicrocents)._rawHashValue(seed: 3) != BudgetKey(scope, .tokens)._rawHashValue(seed: 3))
        // Ids as tallyd makes them (one millisecond, random bits) fill 1,024 buckets about evenly under any seed,
        // and two seeds put them in different buckets.
        let now: UInt64 = 0x01a2_31a8_a0c7
        let ids = (0..<16_384).map { _ in ReservationID(high: now << 16 | 0x7000 | random.next() & 0xFFF, low: random.next() >> 2 | 1 << 63) }
        for seed in seeds {
            var buckets = [Int](repeating: 0, count: 1_024)
            for id in ids { buckets[id._rawHashValue(seed: seed) & 1_023] += 1 }
            #expect(buckets.max()! < 40 && buckets.min()! > 0, "seed \(seed): \(buckets.min()!)...\(buckets.max()!) per bucket, 16 expected")
        }
        let moved = ids.prefix(1_000).filter { $0._rawHashValue(seed: 1) & 1_023 != $0._rawHashValue(seed: 2) & 1_023 }.count
        #expect(moved > 950)
        // The tables themselves.
        var table: [ReservationID: Int] = [:]
        for (index, id) in ids.enumerated() { table[id] = index }
        #expect(table.count == ids.count && ids.enumerated().allSatisfy { table[$0.element] == $0.offset })
    }

    /// `format` and `parse` work eight digits at a time; the one-digit versions are their reference: the same
    /// text for every nibble value in every position and for random bits, and the same verdict for every byte
    /// value (digits, letters, their neighbours, upper case, non-ASCII) put in every position of a valid text.
    @Test func theWordAtATimeTextAgreesWithTheDigitByDigitOne() {
        func texts(_ high: UInt64, _ low: UInt64) -> ([UInt8], [UInt8]) {
            var fast = [UInt8](repeating: 0, count: 36)
            var slow = fast
            _ = fast.withUnsafeMutableBytes { ReservationID.format(high, low, into: $0) }
            _ = slow.withUnsafeMutableBytes { ReservationID.formatByDigit(high, low, into: $0) }
            return (fast, slow)
        }
        var random = ModelSplitMix64(seed: 21)
        var patterns: [(UInt64, UInt64)] = [(0, 0), (.max, .max), (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)]
        for shift in stride(from: 0, to: 64, by: 4) {
            for nibble in UInt64(0)...15 { patterns.append((nibble << shift, (15 - nibble) << shift)) }
        }
        for _ in 0..<2_000 { patterns.append((random.next(), random.next())) }
        for (high, low) in patterns {
            let (fast, slow) = texts(high, low)
            #expect(fast == slow, "\(String(decoding: fast, as: UTF8.self)) != \(String(decoding: slow, as: UTF8.self))")
            let parsed = fast.withUnsafeBytes { ReservationID.parse($0) }
            guard case .uuid(let readHigh, let readLow) = parsed else {
                Issue.record("\(String(decoding: fast, as: UTF8.self)) did not parse")
                continue
            }
            #expect(readHigh == high && readLow == low)
        }
        let valid = Array(Self.text.utf8)
        for position in valid.indices {
            for byte in UInt8(0)...255 {
                var bytes = valid
                bytes[position] = byte
                let fast = bytes.withUnsafeBytes { ReservationID.parse($0) }
                let slow = bytes.withUnsafeBytes { ReservationID.parseByDigit($0) }
                switch (fast, slow) {
                case (.uuid(let a, let b), .uuid(let c, let d)): #expect(a == c && b == d)
                case (nil, nil): break
                default: Issue.record("position \(position), byte \(byte): \(String(describing: fast)) against \(String(describing: slow))")
                }
            }
        }
    }
}
