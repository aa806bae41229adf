import Testing
@testable import TallyCore

/// Semantics 4.1: per-endpoint namespaces, payload fingerprints, replays that return the original reply
/// (with `remaining_ttl_ms` recomputed), mismatches, and failures that are never remembered.
@Suite struct IdempotencyTests {
    static let agent = Subject(workspace: "w", agent: "a")

    static func ledger() -> LedgerScenario {
        var ledger = LedgerScenario(tenants: ["acme", "other"])
        ledger.budget("tenant:acme/workspace:w", 1_000)
        ledger.budget("tenant:other", 1_000, tenant: "other")
        return ledger
    }

    @Test func reserveReplayReturnsTheOriginalReplyWithoutASecondHold() {
        var ledger = Self.ledger()
        guard case .reserved(let original, let ttl)? = ledger.reserve(Self.agent, 100, key: "k", ttl: 30_000).decision?.reply else {
            Issue.record("reserve failed")
            return
        }
        #expect(ttl == 30_000)
        ledger.advance(10_000)
        let replay = ledger.reserve(Self.agent, 100, key: "k", ttl: 30_000)
        #expect(replay.decision?.reply == .reserved(original, remainingTTLMilliseconds: 20_000))
        #expect(replay.decision?.isReplay == true && replay.decision?.events == [])
        #expect(ledger.figures("tenant:acme/workspace:w") == [1_000, 900, 100, 0, 0])
        _ = ledger.commit(original.reservationID, 50)
        // Once the reservation is no longer ACTIVE the remaining TTL is 0, and the balances are still the
        // original ones (the reply is a record of that moment, not a fresh read).
        #expect(ledger.reserve(Self.agent, 100, key: "k", ttl: 30_000).decision?.reply == .reserved(original, remainingTTLMilliseconds: 0))
    }

    @Test func aDifferentPayloadUnderTheSameKeyIsAMismatchOnEveryEndpoint() {
        var ledger = Self.ledger()
        _ = ledger.reserve(Self.agent, 100, key: "k")
        #expect(ledger.reserve(Self.agent, 101, key: "k").errorCode == .idempotencyMismatch)
        _ = ledger.decide(Self.agent, 100, key: "d")
        #expect(ledger.decide(Self.agent, 101, key: "d").errorCode == .idempotencyMismatch)
        _ = ledger.debit(Self.agent, 10, key: "e")
        #expect(ledger.debit(Self.agent, 11, key: "e").errorCode == .idempotencyMismatch)
        #expect(ledger.figures("tenant:acme/workspace:w") == [1_000, 890, 100, 10, 0])
    }

    @Test(arguments: [true, false])
    func liveAndDryRunShareOneNamespaceInEitherOrder(dryRunFirst: Bool) {
        var ledger = Self.ledger()
        #expect(ledger.reserve(Self.agent, 100, key: "k", dryRun: dryRunFirst).errorCode == nil)
        #expect(ledger.reserve(Self.agent, 100, key: "k", dryRun: !dryRunFirst).errorCode == .idempotencyMismatch)
    }

    @Test func aMismatchIsDetectedEvenWhenTheCallerFingerprintsDryRunAndLiveAlike() {
        var ledger = Self.ledger()
        let stamp = IdempotencyStamp(key: "same", payloadHash: .fingerprint("identical"))
        func command(dryRun: Bool) -> Command {
            .reserve(ReserveCommand(
                tenant: "acme", caller: LedgerScenario.caller("acme"), reservationID: "r-\(dryRun)", idempotency: stamp,
                subject: Self.agent, action: Action(kind: "k", name: "n"), estimate: Quantity(.usdMicrocents, 1), dryRun: dryRun))
        }
        #expect(ledger.run(command(dryRun: true)).errorCode == nil)
        #expect(ledger.run(command(dryRun: false)).errorCode == .idempotencyMismatch)
    }

    @Test func aDryRunDenyIsRememberedAndReplayedLikeASuccess() {
        var ledger = Self.ledger()
        guard case .evaluated(let deny)? = ledger.reserve(Self.agent, 5_000, key: "k", dryRun: true).decision?.reply else {
            Issue.record("dry run answers 200")
            return
        }
        #expect(deny.decision == .deny && deny.reasonCode == .budgetExceeded)
        #expect(deny.reserved == nil && deny.balances.isEmpty)
        _ = ledger.fund("tenant:acme/workspace:w", .credit, 10_000)
        #expect(ledger.reserve(Self.agent, 5_000, key: "k", dryRun: true).decision?.reply == .evaluated(deny))
    }

    @Test func aRefusalIsNotRememberedSoARetryWithTheSameKeyIsFresh() {
        var ledger = Self.ledger()
        #expect(ledger.reserve(Self.agent, 5_000, key: "k").errorCode == .budgetExceeded)
        _ = ledger.fund("tenant:acme/workspace:w", .credit, 10_000)
        #expect(ledger.reserve(Self.agent, 5_000, key: "k").errorCode == nil)
    }

    @Test func keysAreScopedPerTenant() {
        var ledger = Self.ledger()
        _ = ledger.reserve(Self.agent, 10, key: "shared")
        #expect(ledger.reserve(Subject(agent: "x"), 77, key: "shared", tenant: "other").errorCode == nil)
    }

    @Test func namespacesArePerEndpoint() {
        var ledger = Self.ledger()
        #expect(ledger.reserve(Self.agent, 10, key: "one-key").errorCode == nil)
        #expect(ledger.decide(Self.agent, 20, key: "one-key").errorCode == nil)
        #expect(ledger.debit(Self.agent, 30, key: "one-key").errorCode == nil)
    }

    @Test func theSameCommitKeyMayBeUsedOnTwoReservations() {
        var ledger = Self.ledger()
        let first = ledger.hold(Self.agent, 10)
        let second = ledger.hold(Self.agent, 10)
        #expect(ledger.commit(first, 5, key: "commit").errorCode == nil)
        #expect(ledger.commit(second, 5, key: "commit").errorCode == nil)
    }

    @Test func afterTheReplayRecordAgesOutALateRetryCreatesANewReservation() {
        var ledger = Self.ledger()
        guard case .reserved(let first, _)? = ledger.reserve(Self.agent, 10, key: "k").decision?.reply else { return }
        ledger.advance(Limits.reserveReplayRetentionMilliseconds + 1)
        guard case .reserved(let second, _)? = ledger.reserve(Self.agent, 10, key: "k").decision?.reply else {
            Issue.record("a late retry is a fresh request")
            return
        }
        #expect(second.reservationID != first.reservationID)
    }

    @Test func debitReplayReturnsTheOriginalEventWithoutChargingTwice() {
        var ledger = Self.ledger()
        guard case .debitRecorded(let original)? = ledger.debit(Self.agent, 40, key: "e").decision?.reply else {
            Issue.record("debit failed")
            return
        }
        ledger.advance(1_000)
        #expect(ledger.debit(Self.agent, 40, key: "e").decision?.reply == .debitRecorded(original))
        #expect(ledger.figures("tenant:acme/workspace:w") == [1_000, 960, 0, 40, 0])
        ledger.advance(Limits.eventReplayRetentionMilliseconds)
        #expect(ledger.debit(Self.agent, 40, key: "e").decision?.isReplay == false, "event keys are kept for 7 days")
    }

    @Test func decideReplayReturnsTheOriginalAnswerEvenAfterTheBudgetChanged() {
        var ledger = Self.ledger()
        guard case .evaluated(let allow)? = ledger.decide(Self.agent, 900, key: "d").decision?.reply else { return }
        #expect(allow.decision == .allow && allow.balances.isEmpty && allow.reserved == nil)
        _ = ledger.debit(Self.agent, 500)
        #expect(ledger.decide(Self.agent, 900, key: "d").decision?.reply == .evaluated(allow))
        guard case .evaluated(let fresh)? = ledger.decide(Self.agent, 900, key: "d2").decision?.reply else { return }
        #expect(fresh.decision == .deny && fresh.reasonCode == .budgetExceeded)
    }

    @Test func replayedRepliesAreAlsoReproducedByReplayingTheLog() throws {
        var ledger = Self.ledger()
        let id = ledger.hold(Self.agent, 100)
        _ = ledger.commit(id, 120, key: "c")
        _ = ledger.decide(Self.agent, 1, key: "d")
        _ = ledger.debit(Self.agent, 3, key: "e")
        let rebuilt = try LedgerState().applying(ledger.events)
        #expect(rebuilt == ledger.state)
        #expect(rebuilt.idempotency == ledger.state.idempotency)
    }

    /// Keys are hashed once, when made: a key made from a request's stamp (the ledger's way) must equal and
    /// hash like one made from the strings (the store's way, reading a record back), and differ in each field.
    @Test func keysMadeFromAStampOrFromStringsAreTheSameKey() {
        let stamp = IdempotencyStamp(key: "k-1", payloadHash: .zero)
        let fromStamp = IdempotencyKey(tenant: "acme", endpoint: .extend, qualifier: "r1", stamp: stamp)
        let fromStrings = IdempotencyKey(tenant: "acme", endpoint: .extend, qualifier: "r1", key: "k-1")
        #expect(fromStamp == fromStrings && fromStamp.hashValue == fromStrings.hashValue)
        #expect(Set([fromStamp, fromStrings]).count == 1)
        let others = [
            IdempotencyKey(tenant: "acme2", endpoint: .extend, qualifier: "r1", key: "k-1"),
            IdempotencyKey(tenant: "acme", endpoint: .reserve, qualifier: "r1", key: "k-1"),
            IdempotencyKey(tenant: "acme", endpoint: .extend, qualifier: "r2", key: "k-1"),
            IdempotencyKey(tenant: "acme", endpoint: .extend, qualifier: "r1", key: "k-2"),
            // The fields' boundaries count: the same characters split differently are another key.
            IdempotencyKey(tenant: "acmer", endpoint: .extend, qualifier: "1", key: "k-1"),
        ]
        for other in others { #expect(other != fromStamp) }
        var records: [IdempotencyKey: Int] = [fromStrings: 1]
        for (index, other) in others.enumerated() { records[other] = index + 2 }
        #expect(records[fromStamp] == 1 && records.count == others.count + 1)
        // A stamp's payload fingerprint is no part of the key, but is of the stamp.
        let otherPayload = IdempotencyStamp(key: "k-1", payloadHash: Digest256(words: (1, 0, 0, 0)))
        #expect(IdempotencyKey(tenant: "acme", endpoint: .extend, qualifier: "r1", stamp: otherPayload) == fromStamp)
        #expect(otherPayload != stamp && IdempotencyStamp(key: "k-1", payloadHash: .zero) == stamp)
    }
}
