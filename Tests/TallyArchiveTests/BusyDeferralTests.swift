import Testing
import TallyArchive
import TallyCore
import TallyStore

/// While events arrive fast, full segments wait for a quieter pass, up to `busyBacklogEvents` pending; from
/// there a pass seals what brings the backlog back under it. A quiet pass, old events, `force` and a backlog no
/// larger than a segment seal at once.
@Suite struct BusyDeferralTests {
    /// Appends `count` events (one tenant each) without moving the clock.
    static func append(_ count: Int, to store: LedgerStore, from first: Int) throws {
        for index in first..<(first + count) {
            _ = try store.executeBlocking(.createTenant(CreateTenantCommand(tenantID: "t-\(index)", name: "t"))).get()
        }
    }

    static func sealer(_ fixture: ArchiveFixture, _ store: LedgerStore, backlog: UInt64, everySeconds: Int64? = nil) -> ArchiveSealer {
        var configuration = fixture.configuration(everyEvents: 100)
        configuration.busyBacklogEvents = backlog
        configuration.everySeconds = everySeconds
        return ArchiveSealer(log: store, configuration: configuration)
    }

    @Test func aBurstWaitsForAQuietPassUpToTheBacklog() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        defer { store.close() }
        let sealer = Self.sealer(fixture, store, backlog: 400)
        try Self.append(50, to: store, from: 0)
        #expect(try sealer.sealPending(nowMilliseconds: fixture.now).sealed.isEmpty, "below one segment")

        // 250 events in 100 ms: busy, and 300 pending is below the backlog of 400.
        try Self.append(250, to: store, from: 50)
        fixture.clock.advance(100)
        #expect(try sealer.sealPending(nowMilliseconds: fixture.now).sealed.isEmpty, "a burst below the backlog waits")

        // 150 more in 100 ms: 450 pending, busy: one segment, which brings the backlog under 400 again.
        try Self.append(150, to: store, from: 300)
        fixture.clock.advance(100)
        let atBacklog = try sealer.sealPending(nowMilliseconds: fixture.now)
        #expect(atBacklog.sealed.map(\.lastSequence) == [100])

        // Nothing new for ten seconds: quiet, so every full segment is sealed.
        fixture.clock.advance(10_000)
        let quiet = try sealer.sealPending(nowMilliseconds: fixture.now)
        #expect(quiet.sealed.map(\.lastSequence) == [200, 300, 400])
        #expect(try store.lastSequence() == 450)
    }

    @Test func slowArrivalsAreNotABurst() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        defer { store.close() }
        let sealer = Self.sealer(fixture, store, backlog: 1_000_000)
        #expect(try sealer.sealPending(nowMilliseconds: fixture.now).sealed.isEmpty)
        // 150 events in 10 s is 15 a second, under the busy rate of 1,000.
        try Self.append(150, to: store, from: 0)
        fixture.clock.advance(10_000)
        #expect(try sealer.sealPending(nowMilliseconds: fixture.now).sealed.map(\.lastSequence) == [100])
        // 150 more in 100 ms is a burst: with the default backlog they wait.
        try Self.append(150, to: store, from: 150)
        fixture.clock.advance(100)
        #expect(try sealer.sealPending(nowMilliseconds: fixture.now).sealed.isEmpty)
    }

    @Test func forceOldEventsAndASmallBacklogSealAtOnce() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        defer { store.close() }

        // A backlog no larger than a segment: no waiting, busy or not.
        let eager = Self.sealer(fixture, store, backlog: 100)
        _ = try eager.sealPending(nowMilliseconds: fixture.now)
        try Self.append(250, to: store, from: 0)
        fixture.clock.advance(100)
        #expect(try eager.sealPending(nowMilliseconds: fixture.now).sealed.map(\.lastSequence) == [100, 200])

        // Events older than `everySeconds` are sealed during a burst: 201-250 were appended at `start`.
        let start = fixture.now - 100
        let aging = Self.sealer(fixture, store, backlog: 1_000_000, everySeconds: 60)
        #expect(try aging.sealPending(nowMilliseconds: fixture.now).sealed.isEmpty)
        fixture.clock.advance(59_850)
        #expect(try aging.sealPending(nowMilliseconds: fixture.now).sealed.isEmpty, "59.95 s old, below one segment")
        try Self.append(150, to: store, from: 250)
        fixture.clock.advance(100)
        #expect(fixture.now - start == 60_050)
        #expect(try aging.sealPending(nowMilliseconds: fixture.now).sealed.map(\.lastSequence) == [300],
                "a burst, but the oldest pending event is over a minute old; the next segment starts with a new one")

        // `force` (tally archive seal, a requested seal) takes everything, busy or not.
        let forced = Self.sealer(fixture, store, backlog: 1_000_000)
        #expect(try forced.sealPending(nowMilliseconds: fixture.now).sealed.map(\.lastSequence) == [400], "a first pass is never busy")
        try Self.append(120, to: store, from: 400)
        fixture.clock.advance(10)
        #expect(try forced.sealPending(nowMilliseconds: fixture.now, force: true).sealed.map(\.lastSequence) == [500, 520])
    }
}
