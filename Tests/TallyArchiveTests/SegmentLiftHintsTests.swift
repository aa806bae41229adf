import Testing
@testable import TallyArchive
import TallyCore
import TallyStore

/// The sealer no longer keeps every decoded body of a segment until it encodes it: it keeps, per record,
/// the digests and the dictionary ids of the strings its body offers to lift (`SegmentLiftHints`). A segment
/// encoded from those hints must be the segment the bodies give, byte for byte.
@Suite struct SegmentLiftHintsTests {
    @Test func hintsEncodeTheSegmentTheBodiesEncode() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 23)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 900)
        let events = try store.events(from: 1, limit: Int.max)
        var counted = SegmentDictionary()
        for stored in events { counted.add(stored.event.body) }
        var hints = SegmentLiftHints(capacity: events.count)
        for stored in events { hints.append(stored.event.body) }
        let hinted = hints.strings

        #expect(hints.count == events.count)
        #expect(hinted.table() == counted.table() && hinted.table().count > 10)
        #expect(hinted.bytes() == counted.bytes())
        for (index, stored) in events.enumerated() {
            #expect(hints.digests(of: index) == FieldLifting.digests(of: stored.event.body))
            var strings: [String] = []
            SegmentDictionary.forEachString(in: stored.event.body) { if !strings.contains($0) { strings.append($0) } }
            #expect(hints.stringIDs(of: index).map { hinted.string($0) } == strings, "event \(index + 1)")
        }

        let records = events.map(\.record), chains = events.map(\.chain)
        let fromBodies = try SegmentCodec.encode(
            records: records, chains: chains, entryChain: EventChain.genesis, strings: counted, bodies: events.map(\.event.body))
        let fromHints = try SegmentCodec.encode(records: records, chains: chains, entryChain: EventChain.genesis, strings: hinted, hints: hints)
        #expect(fromHints == fromBodies)
        #expect(Array(try SegmentCodec.decode(fromHints, file: "memory").records) == records)
        store.close()
    }

    /// The sealer gathers its hints as `WorkingSetFold` walks each record in place, without decoding it:
    /// every kind of event a workload writes (lifecycle events walked in place, the rare ones decoded by the
    /// fold) gives the hints its decoded body gives, and so the same segment, byte for byte.
    @Test func hintsTheFoldReportsAreTheHintsTheBodiesGive() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 31)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 1_200)
        // Extensions and expiries too, which the workload does not make.
        for (step, id) in workload.open.prefix(3).enumerated() {
            _ = try store.executeBlocking(.extend(ExtendCommand(
                caller: .tenant(id: "acme", keyID: "k1"), reservationID: id,
                idempotency: IdempotencyStamp(key: "extend-\(step)", payloadHash: Digest256(words: (7, 7, 7, UInt64(step)))),
                extendByMilliseconds: 60_000))).get()
        }
        fixture.clock.advance(10 * 3_600_000)
        _ = try store.executeBlocking(.expireReservations(ExpireCommand(candidates: workload.open)))
        let events = try store.events(from: 1, limit: Int.max)
        let kinds = Set(events.map { $0.record[1] })
        #expect(kinds.isSuperset(of: [8, 9, 10, 11, 12, 13]), "every lifecycle event is walked in place: \(kinds.sorted())")

        var fromBodies = SegmentLiftHints(capacity: events.count)
        for stored in events { fromBodies.append(stored.event.body) }
        var walked = SegmentLiftHints(capacity: events.count)
        var fold = WorkingSetFold()
        for stored in events {
            try stored.record.withUnsafeBytes { try fold.apply($0, charges: &walked) }
            walked.endRecord()
        }
        #expect(walked.count == events.count)
        #expect(walked.strings.table() == fromBodies.strings.table() && walked.strings.table().count > 10)
        for index in events.indices {
            #expect(walked.digests(of: index) == fromBodies.digests(of: index), "event \(index + 1)")
            #expect(walked.stringIDs(of: index).map { walked.strings.string($0) }
                    == fromBodies.stringIDs(of: index).map { fromBodies.strings.string($0) }, "event \(index + 1)")
        }
        let records = events.map(\.record), chains = events.map(\.chain)
        let segment = try SegmentCodec.encode(records: records, chains: chains, entryChain: EventChain.genesis, strings: walked.strings, hints: walked)
        #expect(segment == (try SegmentCodec.encode(
            records: records, chains: chains, entryChain: EventChain.genesis, strings: fromBodies.strings, hints: fromBodies)))
        store.close()
    }

    /// Swift compares strings by Unicode equivalence, so "café" spelt with a combining accent equals the
    /// precomposed "café". Lifting one as the other's table entry would give back the other spelling's bytes
    /// (the sealer once did, and its check of the new segment then refused it on every pass). The dictionary
    /// counts strings by their bytes: each spelling is an entry of its own, lifted as itself, and the segment
    /// holds every record exactly.
    @Test func aStringEqualToATableEntryOnlyByUnicodeEquivalenceKeepsItsOwnBytes() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        try Workload(seed: 5).setup(store)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed && Array(composed.utf8) != Array(decomposed.utf8))
        for (step, name) in [composed, decomposed, composed, decomposed].enumerated() {
            fixture.clock.advance(10)
            let reply = try store.executeBlocking(.reserve(ReserveCommand(
                tenant: "acme", caller: .tenant(id: "acme", keyID: "k0"), reservationID: "r-\(step)",
                idempotency: IdempotencyStamp(key: "unicode-\(step)", payloadHash: Digest256(words: (1, 2, 3, UInt64(step)))),
                subject: Subject(workspace: "w0", agent: "a0"), action: Action(kind: "llm.completion", name: name),
                estimate: Quantity(.usdMicrocents, Amount(100)), ttlMilliseconds: 60_000)))
            guard case .success = reply else { Issue.record("reserve \(step): \(reply)"); return }
        }
        let events = try store.events(from: 1, limit: Int.max)
        var hints = SegmentLiftHints(capacity: events.count)
        for stored in events { hints.append(stored.event.body) }
        let dictionary = hints.strings
        let spellings = dictionary.table().map { Array($0.utf8) }
        #expect(spellings.contains(Array(composed.utf8)) && spellings.contains(Array(decomposed.utf8)))

        let bytes = try SegmentCodec.encode(
            records: events.map(\.record), chains: events.map(\.chain), entryChain: EventChain.genesis, strings: dictionary, hints: hints)
        let decoded = try SegmentCodec.decode(bytes, file: "memory")
        #expect(Array(decoded.records) == events.map(\.record))
        #expect(throws: Never.self) { try SegmentCodec.verify(bytes, holds: events.map(\.record)) }
        // Encoding from the bodies (tests and format 1) takes the table's bytes too.
        let fromBodies = try SegmentCodec.encode(
            records: events.map(\.record), chains: events.map(\.chain), entryChain: EventChain.genesis, strings: dictionary,
            bodies: events.map(\.event.body))
        #expect(fromBodies == bytes)

        // And the sealer itself seals them (before, its check of the new segment refused it on every pass).
        let sealer = fixture.sealer(store, everyEvents: 1_000)
        let outcome = try sealer.sealPending(nowMilliseconds: fixture.now, force: true)
        #expect(outcome.sealed.count == 1)
        let (segments, _) = try fixture.archive.list()
        let sealed = try SegmentCodec.decode(try fixture.archive.read(try #require(segments.first).name), file: "sealed")
        #expect(Array(sealed.records) == events.map(\.record))
        store.close()
    }
}
