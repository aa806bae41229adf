import Foundation
import Testing
@testable import TallyCore
@testable import TallyStore

/// Reads from read transactions: balances by scope filter, reservations by id and listed with the filters
/// and paging of semantics 2.8.
@Suite struct StoreReadTests {
    static func populated() throws -> (StoreFixture, LedgerStore) {
        let fixture = StoreFixture()
        let store = try fixture.open()
        try StoreFixture.setup(store, budgets: [
            ("tenant:acme", 100_000), ("tenant:acme/workspace:w", 50_000), ("tenant:acme/workspace:w/agent:a", 10_000),
            ("tenant:acme/workspace:other", 5_000),
        ])
        for index in 0..<9 {
            fixture.advance(1_000)
            _ = try store.executeBlocking(StoreFixture.reserve("r\(index)", Int64(100 + index), agent: index % 3 == 0 ? "a" : "b")).get()
        }
        _ = try store.executeBlocking(StoreFixture.commit("r0", 50)).get()
        _ = try store.executeBlocking(StoreFixture.release("r1")).get()
        return (fixture, store)
    }

    @Test func budgetsFilterByPrefixUnitAndSegments() throws {
        let (_, store) = try Self.populated()
        defer { store.close() }
        #expect(try store.budgets(tenant: "acme").count == 4)
        let workspace = try ScopePath(parsing: "tenant:acme/workspace:w")
        #expect(try store.budgets(tenant: "acme", under: workspace).map(\.scope.rawValue) == ["tenant:acme/workspace:w", "tenant:acme/workspace:w/agent:a"])
        #expect(try store.budgets(tenant: "acme", segments: [.agent: "A"]).map(\.scope.rawValue) == ["tenant:acme/workspace:w/agent:a"])
        #expect(try store.budgets(tenant: "acme", unit: .tokens).isEmpty)
        #expect(try store.budgets(tenant: "other").isEmpty, "another tenant sees nothing")
    }

    @Test func listingFiltersByStatusSubjectAndTime() throws {
        let (fixture, store) = try Self.populated()
        defer { store.close() }
        var query = ReservationQuery(tenant: "acme")
        query.status = .active
        #expect(try store.reservations(query).reservations.count == 7)
        query = ReservationQuery(tenant: "acme")
        query.segments = [.agent: "a"]
        #expect(Set(try store.reservations(query).reservations.map(\.id)) == ["r0", "r3", "r6"])
        query = ReservationQuery(tenant: "acme")
        query.finalizedFrom = 0
        #expect(Set(try store.reservations(query).reservations.map(\.id)) == ["r0", "r1"], "only finalized rows have finalized_at")
        query = ReservationQuery(tenant: "acme")
        let start = fixture.clock.now - 9_000
        query.createdFrom = start + 2_000
        query.createdTo = start + 4_000
        #expect(Set(try store.reservations(query).reservations.map(\.id)) == ["r1", "r2", "r3"], "bounds are inclusive")
        query = ReservationQuery(tenant: "acme")
        query.idempotencyKey = "key-r4"
        #expect(try store.reservations(query).reservations.map(\.id) == ["r4"])
        #expect(try store.reservations(ReservationQuery(tenant: "nobody")).reservations.isEmpty)
    }

    @Test func pagesNeverSkipOrRepeatARow() throws {
        let (_, store) = try Self.populated()
        defer { store.close() }
        var query = ReservationQuery(tenant: "acme")
        query.sortKey = .reserved
        query.ascending = true
        query.limit = 4
        var seen: [String] = []
        for _ in 0..<5 {
            let page = try store.reservations(query)
            seen += page.reservations.map(\.id.description)
            guard page.hasMore, let last = page.reservations.last else { break }
            query.after = last.id.description
        }
        #expect(seen == (0..<9).map { "r\($0)" }, "ascending by reserved amount, in pages of 4")
    }

    @Test func aReservationAndAnIdempotencyRecordAreReadableById() throws {
        let (_, store) = try Self.populated()
        defer { store.close() }
        #expect(try store.reservation("r0")?.status == .committed)
        #expect(try store.reservation("missing") == nil)
        let record = try store.idempotencyRecord(IdempotencyKey(tenant: "acme", endpoint: .reserve, key: "key-r5"))
        guard case .reserve(let reply)? = record?.reply else {
            Issue.record("the reserve record is kept for replays")
            return
        }
        #expect(reply.reservationID == "r5")
    }
}
