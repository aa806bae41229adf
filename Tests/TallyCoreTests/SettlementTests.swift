import Testing
@testable import TallyCore

/// Commit, release, extend and expiry: check order (semantics 2.4-2.6), TTL and grace (4.2-4.4).
@Suite struct SettlementTests {
    static let agent = Subject(workspace: "w", agent: "a")

    /// A tenant `acme` with a workspace and an agent budget, plus tenant `other` with its own budget.
    static func ledger() -> LedgerScenario {
        var ledger = LedgerScenario(tenants: ["acme", "other"])
        ledger.budget("tenant:acme/workspace:w", 10_000)
        ledger.budget("tenant:acme/workspace:w/agent:a", 5_000)
        ledger.budget("tenant:other", 10_000, tenant: "other")
        return ledger
    }

    func closeTenant(_ ledger: inout LedgerScenario, _ tenant: String) {
        #expect(ledger.run(.updateTenant(UpdateTenantCommand(tenantID: tenant, status: .closed))).errorCode == nil)
    }

    // MARK: Commit precedence

    @Test func commitOfAnUnknownReservationIsNotFound() {
        var ledger = Self.ledger()
        #expect(ledger.commit("missing", 1).errorCode == .notFound)
    }

    @Test func commitOfAnotherTenantsReservationIsForbiddenEvenWhenItIsFinalized() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        _ = ledger.release(id)
        #expect(ledger.commit(id, 10, caller: LedgerScenario.caller("other")).errorCode == .forbidden)
        #expect(ledger.commit(id, 10, caller: .admin).errorCode == .forbidden, "the admin key cannot commit")
    }

    @Test func sameKeyCommitReplayBeatsTheClosedTenantGuard() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        guard case .committed(let original)? = ledger.commit(id, 80, key: "c1").decision?.reply else {
            Issue.record("commit failed")
            return
        }
        var copy = ledger
        closeTenant(&copy, "acme")
        let replay = copy.commit(id, 80, key: "c1")
        #expect(replay.decision?.reply == .committed(original))
        #expect(replay.decision?.isReplay == true && replay.decision?.events == [])
        #expect(copy.commit(id, 81, key: "c1").errorCode == .idempotencyMismatch)
        #expect(copy.commit(id, 80, key: "c2").errorCode == .tenantClosed, "a fresh request on a closed tenant")
        #expect(ledger.commit(id, 80, key: "c2").errorCode == .reservationFinalized, "another key on a committed reservation")
    }

    @Test func expiredStatusBeatsUnitMismatchAndFinalizedBeatsUnitMismatch() {
        var ledger = Self.ledger()
        let expired = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 0)
        let released = ledger.hold(Self.agent, 100)
        _ = ledger.release(released)
        ledger.advance(1_001)
        ledger.sweep()
        #expect(ledger.commit(expired, 10, unit: .tokens).errorCode == .reservationExpired)
        #expect(ledger.commit(released, 10, unit: .tokens).errorCode == .reservationFinalized)
    }

    @Test func unitMismatchBeatsAPassedDeadline() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 0)
        ledger.advance(5_000)
        #expect(ledger.commit(id, 10, unit: .tokens).errorCode == .unitMismatch)
        #expect(ledger.commit(id, 10).errorCode == .reservationExpired, "past expires_at + grace, before any sweep")
    }

    @Test func commitIsAcceptedInsideGraceAndRefusedOneMillisecondAfter() {
        var ledger = Self.ledger()
        let inside = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 2_000)
        let outside = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 2_000)
        ledger.advance(3_000)
        #expect(ledger.commit(inside, 50).errorCode == nil, "now == expires_at + grace is still inside")
        ledger.advance(1)
        #expect(ledger.commit(outside, 50).errorCode == .reservationExpired)
    }

    @Test func commitOnAFrozenBudgetGoesThrough() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        #expect(ledger.run(.freezeBudget(BudgetStatusCommand(caller: .admin, scope: "tenant:acme/workspace:w", unit: .usdMicrocents))).errorCode == nil)
        #expect(ledger.commit(id, 100).errorCode == nil)
        #expect(ledger.figures("tenant:acme/workspace:w") == [10_000, 9_900, 0, 100, 0])
    }

    @Test func commitTouchesExactlyTheScopesBudgetedAtReserveTime() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        ledger.budget("tenant:acme", 1_000)
        #expect(ledger.commit(id, 60).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [1_000, 1_000, 0, 0, 0], "a budget created later is not charged")
        #expect(ledger.figures("tenant:acme/workspace:w/agent:a") == [5_000, 4_940, 0, 60, 0])
    }

    // MARK: Release

    @Test func releaseReturnsTheHoldOnEveryScopeAndReplaysWithTheSameKey() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 700)
        guard case .released(let reply)? = ledger.release(id, key: "r1").decision?.reply else {
            Issue.record("release failed")
            return
        }
        #expect(reply.released == Quantity(.usdMicrocents, 700))
        #expect(reply.balances.map(\.remaining) == [10_000, 5_000])
        #expect(ledger.release(id, key: "r1").decision?.reply == .released(reply))
        #expect(ledger.release(id, key: "r2").errorCode == .reservationFinalized, "double release")
        #expect(ledger.commit(id, 1).errorCode == .reservationFinalized)
        #expect(ledger.extend(id, by: 1_000).errorCode == .reservationFinalized)
        #expect(ledger.figures("tenant:acme/workspace:w") == [10_000, 10_000, 0, 0, 0])
    }

    @Test func theAdminKeyMayReleaseAnyTenantsReservationButAnotherTenantMayNot() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        #expect(ledger.release(id, caller: LedgerScenario.caller("other")).errorCode == .forbidden)
        #expect(ledger.release(id, caller: .admin, reason: "[INCIDENT_FORCE_RELEASE]").errorCode == nil)
        guard case .released(let settlement)? = ledger.state.reservations[id]?.settlement else { return }
        #expect(settlement.releasedBy == .admin && settlement.reason == "[INCIDENT_FORCE_RELEASE]")
    }

    @Test(arguments: [true, false])
    func commitAndAdminForceReleaseRaceHasExactlyOneWinner(commitFirst: Bool) {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        let first = commitFirst ? ledger.commit(id, 100) : ledger.release(id, caller: .admin)
        let second = commitFirst ? ledger.release(id, caller: .admin) : ledger.commit(id, 100)
        #expect(first.errorCode == nil)
        #expect(second.errorCode == .reservationFinalized)
        #expect(ledger.balance("tenant:acme/workspace:w").reserved == 0)
        #expect(ledger.balance("tenant:acme/workspace:w").spent.value == (commitFirst ? 100 : 0))
    }

    @Test func releaseAfterTheDeadlineIsExpiredAndOfAnUnknownIDIsNotFound() {
        var ledger = Self.ledger()
        let late = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 0)
        ledger.advance(1_001)
        #expect(ledger.release(late).errorCode == .reservationExpired)
        #expect(ledger.release("missing").errorCode == .notFound)
    }

    // MARK: Extend

    @Test func extendMovesExpiryFromTheCurrentExpiryNotFromNow() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100, ttl: 10_000)
        let createdAt = ledger.now
        ledger.advance(4_000)
        guard case .extended(let reply, let remaining)? = ledger.extend(id, by: 5_000, key: "e1").decision?.reply else {
            Issue.record("extend failed")
            return
        }
        #expect(reply.expiresAtMilliseconds == createdAt + 15_000)
        #expect(remaining == 11_000)
        ledger.advance(1_000)
        // A lost-response retry does not extend twice, and its remaining TTL is recomputed.
        #expect(ledger.extend(id, by: 5_000, key: "e1").decision?.reply == .extended(reply, remainingTTLMilliseconds: 10_000))
        #expect(ledger.state.reservations[id]?.expiresAtMilliseconds == createdAt + 15_000)
        #expect(ledger.extend(id, by: 6_000, key: "e1").errorCode == .idempotencyMismatch)
    }

    @Test func extendHasNoGrace() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 60_000)
        ledger.advance(1_000)
        #expect(ledger.extend(id, by: 1_000).errorCode == nil, "now == expires_at is still in time")
        ledger.advance(1_001)
        #expect(ledger.extend(id, by: 1_000).errorCode == .reservationExpired)
        #expect(ledger.commit(id, 10).errorCode == nil, "commit still has its grace")
    }

    @Test func extendStopsAtTheTenantsMaximumSnapshottedAtReserveTime() {
        var ledger = LedgerScenario()
        ledger.createTenant("tiny", maxExtensions: 2)
        ledger.budget("tenant:tiny", 1_000, tenant: "tiny")
        let id = ledger.hold(Subject(agent: "a"), 10, tenant: "tiny")
        #expect(ledger.run(.updateTenant(UpdateTenantCommand(tenantID: "tiny", maxExtensions: 50))).errorCode == nil)
        #expect(ledger.extend(id, by: 1_000).errorCode == nil)
        #expect(ledger.extend(id, by: 1_000).errorCode == nil)
        #expect(ledger.extend(id, by: 1_000).errorCode == .maxExtensionsExceeded)
        #expect(ledger.state.reservations[id]?.extensionCount == 2)
    }

    @Test func extendChecksReplayThenExistenceThenOwnership() {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        #expect(ledger.extend("missing", by: 1_000).errorCode == .notFound)
        #expect(ledger.extend(id, by: 1_000, caller: LedgerScenario.caller("other")).errorCode == .forbidden)
        #expect(ledger.extend(id, by: 1_000, caller: .admin).errorCode == .forbidden)
    }

    // MARK: TTL, grace and bounds

    struct Bound: Sendable, CustomTestStringConvertible {
        var field: String
        var value: Int64
        var accepted: Bool
        var testDescription: String { "\(field)=\(value)" }
    }

    static let bounds: [Bound] = [
        Bound(field: "ttl_ms", value: 999, accepted: false), Bound(field: "ttl_ms", value: 1_000, accepted: true),
        Bound(field: "ttl_ms", value: 86_400_000, accepted: true), Bound(field: "ttl_ms", value: 86_400_001, accepted: false),
        Bound(field: "grace_period_ms", value: -1, accepted: false), Bound(field: "grace_period_ms", value: 0, accepted: true),
        Bound(field: "grace_period_ms", value: 60_000, accepted: true), Bound(field: "grace_period_ms", value: 60_001, accepted: false),
        Bound(field: "extend_by_ms", value: 0, accepted: false), Bound(field: "extend_by_ms", value: 1, accepted: true),
        Bound(field: "extend_by_ms", value: 86_400_000, accepted: true), Bound(field: "extend_by_ms", value: 86_400_001, accepted: false),
    ]

    @Test(arguments: bounds)
    func timeBoundsAreAcceptedAndRejectedExactlyAtTheLimits(bound: Bound) {
        var ledger = Self.ledger()
        let result: Result<Decision, Refusal>
        switch bound.field {
        case "ttl_ms": result = ledger.reserve(Self.agent, 1, ttl: bound.value)
        case "grace_period_ms": result = ledger.reserve(Self.agent, 1, grace: bound.value)
        default:
            let id = ledger.hold(Self.agent, 1)
            result = ledger.extend(id, by: bound.value)
        }
        #expect(result.errorCode == (bound.accepted ? nil : .invalidRequest))
    }

    @Test func ttlComesFromTheRequestThenTheTenantAndIsCappedSilently() {
        var ledger = LedgerScenario()
        ledger.createTenant("capped", defaultTTL: 20_000, maxTTL: 30_000)
        ledger.budget("tenant:capped", 1_000, tenant: "capped")
        ledger.budget("tenant:acme", 1_000)
        func expiry(_ ttl: Int64?, _ tenant: String) -> Int64? {
            guard case .reserved(let reply, let remaining)? = ledger.reserve(Subject(agent: "a"), 1, ttl: ttl, tenant: tenant).decision?.reply else { return nil }
            #expect(remaining == reply.expiresAtMilliseconds - ledger.now, "a fresh create reports the granted TTL")
            return reply.expiresAtMilliseconds - ledger.now
        }
        #expect(expiry(nil, "capped") == 20_000)
        #expect(expiry(25_000, "capped") == 25_000)
        #expect(expiry(80_000, "capped") == 30_000)
        #expect(expiry(nil, "acme") == 60_000)
        #expect(expiry(86_400_000, "acme") == 3_600_000)
        // A tenant with no record at all gets the built-in defaults and no guard.
        ledger.state.tenants["acme"] = nil
        #expect(expiry(nil, "acme") == 60_000)
        let id = ledger.hold(Subject(agent: "a"), 1)
        #expect(ledger.state.reservations[id]?.graceMilliseconds == 5_000)
        #expect(ledger.state.reservations[id]?.maxExtensions == 10)
        #expect(ledger.state.reservations[id]?.overagePolicy == .allowIfAvailable)
    }

    @Test func overagePolicyComesFromTheRequestThenTheTenantThenAllowIfAvailable() {
        var ledger = LedgerScenario()
        ledger.createTenant("strict", policy: .reject)
        ledger.budget("tenant:strict", 1_000, tenant: "strict")
        let inherited = ledger.hold(Subject(agent: "a"), 1, tenant: "strict")
        let explicit = ledger.hold(Subject(agent: "a"), 1, policy: .allowWithOverdraft, tenant: "strict")
        #expect(ledger.state.reservations[inherited]?.overagePolicy == .reject)
        #expect(ledger.state.reservations[explicit]?.overagePolicy == .allowWithOverdraft)
        // The policy is frozen on the reservation: changing the tenant default later changes nothing.
        #expect(ledger.run(.updateTenant(UpdateTenantCommand(tenantID: "strict", defaultOveragePolicy: .allowIfAvailable))).errorCode == nil)
        #expect(ledger.commit(inherited, 5_000).errorCode == .budgetExceeded)
    }

    // MARK: Expiry

    @Test func theSweepExpiresOnlyActiveReservationsPastTheirGraceAndReturnsHoldsOnce() {
        var ledger = Self.ledger()
        let stale = ledger.hold(Self.agent, 300, ttl: 1_000, grace: 1_000)
        let inGrace = ledger.hold(Self.agent, 200, ttl: 1_000, grace: 10_000)
        let committed = ledger.hold(Self.agent, 100, ttl: 1_000, grace: 0)
        _ = ledger.commit(committed, 100)
        ledger.advance(2_001)
        let ids = ledger.run(.expireReservations(ExpireCommand(candidates: [stale, stale, inGrace, committed, "ghost"])))
        #expect(ids.decision?.reply == .expired([stale]))
        #expect(ledger.state.reservations[stale]?.status == .expired)
        #expect(ledger.figures("tenant:acme/workspace:w") == [10_000, 9_700, 200, 100, 0])
        #expect(ledger.figures("tenant:acme/workspace:w/agent:a") == [5_000, 4_700, 200, 100, 0])
        #expect(ledger.sweep() == [], "a second sweep finds nothing new")
        #expect(ledger.commit(stale, 10).errorCode == .reservationExpired)
        #expect(ledger.release(stale).errorCode == .reservationExpired)
        #expect(ledger.replayMatches())
    }
}
