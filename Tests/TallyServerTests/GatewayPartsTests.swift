import Foundation
import Synchronization
import Testing
import TallyCore
import TallyWire
@testable import TallyServer

/// The gateway's small pure parts: ISO-8601 times, page cursors, trace ids.
@Suite struct GatewayPartsTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_795_853_296_789, "2026-11-28T08:08:16.789Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func isoTimesFormatAsUTCWithMilliseconds(milliseconds: Int64, text: String) {
        #expect(ISOTime.format(milliseconds) == text)
        #expect(ISOTime.parse(text) == milliseconds)
    }

    @Test func isoTimesRoundTripAndAcceptTheCommonForms() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2_000 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let milliseconds = Int64(seed >> 20) % 4_000_000_000_000
            #expect(ISOTime.parse(ISOTime.format(milliseconds)) == milliseconds)
        }
        #expect(ISOTime.parse("2026-11-29") == ISOTime.parse("2026-11-29T00:00:00Z"))
        #expect(ISOTime.parse("2026-11-29T10:42:00+01:00") == ISOTime.parse("2026-11-29T09:42:00Z"))
        #expect(ISOTime.parse("2026-11-29T10:42:00.5Z")! - ISOTime.parse("2026-11-29T10:42:00Z")! == 500)
        #expect(ISOTime.parse("2026-11-29T10:42") == ISOTime.parse("2026-11-29T10:42:00Z"))
        for bad in ["", "2026-13-01", "2026-02-29", "2026-11-31", "2026-11-29T25:00:00Z", "2026-11-29T10:42:00Q", "29/11/2026", "2026-11-29T10:42:00.Z"] {
            #expect(ISOTime.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func cursorsRoundTripAndAreBoundToTheirFilters() throws {
        for position in ["", "a", "ab", "abc", "tenant:acme/workspace:x|USD_MICROCENTS", "17.2", String(repeating: "é", count: 40)] {
            let cursor = PageCursor.make(position: position, filters: "agent=planner")
            #expect(cursor.utf8.allSatisfy { $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "=") })
            #expect(try PageCursor.position(cursor, filters: "agent=planner") == position)
            #expect(throws: WireError.self) { try PageCursor.position(cursor, filters: "agent=executor") }
        }
        #expect(throws: WireError.self) { try PageCursor.position("!!!", filters: "") }
        #expect(throws: WireError.self) { try PageCursor.position("YWJj", filters: "") }
        #expect(try PageCursor.position(nil, filters: "x") == nil)
    }

    @Test func pagingNeverSkipsOrRepeatsARow() {
        let rows = (0..<23).map { "row\($0)" }
        var seen: [String] = []
        var after: String?
        for _ in 0..<10 {
            let page = Paged(rows, limit: 5, after: after, filters: "f") { $0 }
            seen += page.rows
            guard let next = page.nextCursor else { break }
            after = try? PageCursor.position(next, filters: "f")
        }
        #expect(seen == rows)
    }

    @Test func traceIDsFollowTheCyclesResolutionOrder() {
        let parent = "4bf92f3577b34da6a3ce929d0e0e4736"
        let other = "0af7651916cd43dd8448eb211c80319c"
        #expect(TraceContext.resolve(traceparent: "00-\(parent)-00f067aa0ba902b7-01", cyclesTraceID: other).traceID == parent)
        #expect(TraceContext.resolve(traceparent: nil, cyclesTraceID: other).traceID == other)
        // Malformed or all-zero ids are ignored, never refused.
        for bad in ["01-\(parent)-00f067aa0ba902b7-01", "00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01",
                    "00-\(parent)-0000000000000000-01", "00-\(parent.uppercased())-00f067aa0ba902b7-01", "garbage"] {
            #expect(TraceContext.resolve(traceparent: bad, cyclesTraceID: other).traceID == other, "\(bad)")
        }
        let generated = TraceContext.resolve(traceparent: nil, cyclesTraceID: String(repeating: "0", count: 32))
        #expect(TraceContext.isTraceID(generated.traceID))
        #expect(generated.requestID.hasPrefix("req_") && generated.requestID.count == 36)
        #expect(TraceContext.resolve(traceparent: nil, cyclesTraceID: nil).traceID != generated.traceID)
    }
}

/// Server-generated ids: RFC 9562 version 7 UUIDs, lower-case, carrying the creation millisecond, never
/// repeating, and ordered by time (what keeps the reservations B-tree appending).
@Suite struct TimeOrderedUUIDTests {
    @Test func idsAreVersion7UUIDsOrderedByTheirMillisecond() throws {
        let before = Int64(Date().timeIntervalSince1970 * 1_000)
        let made = (0..<2_000).map { _ in TimeOrderedUUID.make() }
        let after = Int64(Date().timeIntervalSince1970 * 1_000)
        let ids = made.map(\.description)
        #expect(Set(ids).count == ids.count)
        #expect(made.allSatisfy { $0.uuid != nil }, "kept as bits")
        #expect(ids.map { ReservationID($0) } == made, "the text reads back as the same id")
        #expect(made.sorted().map(\.description) == ids.sorted(), "ordered by their bits as by their text")
        for id in ids {
            let parts = id.split(separator: "-", omittingEmptySubsequences: false)
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12], "\(id)")
            #expect(id.allSatisfy { "0123456789abcdef-".contains($0) }, "\(id)")
            #expect(parts[2].first == "7", "version nibble of \(id)")
            #expect("89ab".contains(parts[3].first!), "variant bits of \(id)")
            let milliseconds = try #require(Int64(String(parts[0] + parts[1]), radix: 16))
            #expect(milliseconds >= before && milliseconds <= after, "\(id) carries \(milliseconds), made between \(before) and \(after)")
        }
        // Time-ordered: an id made in a later millisecond sorts after every earlier one (as text too).
        let first = TimeOrderedUUID.make()
        let start = Date()
        while Date().timeIntervalSince(start) < 0.005 {}  // bounded: five milliseconds
        #expect(TimeOrderedUUID.make() > first)
    }

    /// The pool hands out each word once, across refills, from many threads at once, and its words look
    /// random (about half of all bits set; a pool of zeros or a repeated block would fail).
    @Test func theRandomPoolNeverHandsOutAWordTwice() {
        let pool = RandomPool()
        let drawn = Mutex<[UInt64]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            var mine: [UInt64] = []
            for _ in 0..<1_000 {
                let (first, second) = pool.next()
                mine += [first, second]
            }
            drawn.withLock { $0 += mine }
        }
        let words = drawn.withLock { $0 }
        #expect(words.count == 8_000 && Set(words).count == 8_000, "8,000 words over 15 refills, all distinct")
        let ones = words.reduce(0) { $0 + $1.nonzeroBitCount }
        #expect(abs(Double(ones) / Double(words.count * 64) - 0.5) < 0.01)
    }
}

@Suite struct ExchangeIDsTests {
    @Test func everyExchangeOfAConnectionGetsIdsNoOtherHas() {
        var connection = ExchangeIDs()
        var seen = Set<String>()
        for _ in 0..<5_000 {
            var exchange = connection.split()
            let trace = TraceContext.resolve(traceparent: nil, cyclesTraceID: nil, ids: &exchange)
            #expect(trace.requestID.hasPrefix("req_") && trace.requestID.utf8.count == 36)
            #expect(TraceContext.isTraceID(trace.traceID))
            #expect(seen.insert(String(trace.requestID.dropFirst(4))).inserted && seen.insert(trace.traceID).inserted)
        }
        var other = ExchangeIDs()
        #expect(!seen.contains(other.hex(prefix: "")), "another connection's generator starts elsewhere")
    }
}

@Suite struct GatewayRequestTests {
    @Test func anAbsoluteFormTargetIsServedAsItsPath() {
        #expect(GatewayRequest.originForm("/v1/balances?tenant=a") == "/v1/balances?tenant=a")
        #expect(GatewayRequest.originForm("http://127.0.0.1:7878/v1/balances?tenant=a") == "/v1/balances?tenant=a")
        #expect(GatewayRequest.originForm("HTTPS://example.com?x=1") == "/?x=1")
        #expect(GatewayRequest.originForm("http://example.com") == "/")
    }

    @Test func queryValuesArePercentDecodedAndNamesKeptAsSent() {
        let pairs = GatewayRequest.parseQuery("tenant=acme%2Dcorp&flag&scope_prefix=tenant%3Aacme&x=%zz")
        #expect(pairs.map(\.0) == ["tenant", "flag", "scope_prefix", "x"])
        #expect(pairs.map(\.1) == ["acme-corp", "", "tenant:acme", "%zz"])
    }
}

@Suite struct HTTPDateTests {
    @Test func theDateHeaderIsAnIMFFixdate() {
        #expect(HTTPDate.format(epochSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(epochSeconds: 1_796_000_000) == "Mon, 30 Nov 2026 00:53:20 GMT")
        #expect(HTTPDate.now().hasSuffix(" GMT"))
    }
}
