import Testing
@testable import TallyCore

/// Money is exact: amounts near `Int64.max` stay exact on every path, and anything that would leave the
/// range is refused with nothing changed, never wrapped.
@Suite struct Int64BoundaryTests {
    static let max = Int64.max
    /// 2^53 + 1: the first integer a double cannot hold, where the reference admin plane loses precision.
    static let aboveDouble: Int64 = 9_007_199_254_740_993

    @Test func reserveCommitReleaseAndExpiryStayExactAboveTwoToTheFiftyThird() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", Self.max)
        ledger.budget("tenant:acme/workspace:w", Self.max - 1)
        let subject = Subject(workspace: "w")
        let committed = ledger.hold(subject, Self.aboveDouble)
        let released = ledger.hold(subject, Self.aboveDouble + 2)
        let expired = ledger.hold(subject, Self.aboveDouble + 4, ttl: 1_000, grace: 0)
        #expect(ledger.balance("tenant:acme").reserved.value == 3 * Self.aboveDouble + 6)
        _ = ledger.commit(committed, Self.aboveDouble - 2)
        _ = ledger.release(released)
        ledger.advance(1_001)
        #expect(ledger.sweep() == [expired])
        #expect(ledger.figures("tenant:acme") == [Self.max, Self.max - (Self.aboveDouble - 2), 0, Self.aboveDouble - 2, 0])
        #expect(ledger.figures("tenant:acme/workspace:w") == [Self.max - 1, Self.max - 1 - (Self.aboveDouble - 2), 0, Self.aboveDouble - 2, 0])
        #expect(ledger.replayMatches())
    }

    @Test func theWholeRangeCanBeReservedAndSpentExactly() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", Self.max)
        let first = ledger.hold(Subject(agent: "a"), Self.max - 1)
        let second = ledger.hold(Subject(agent: "a"), 1)
        #expect(ledger.figures("tenant:acme") == [Self.max, 0, Self.max, 0, 0])
        _ = ledger.commit(first, Self.max - 1)
        _ = ledger.commit(second, 1)
        #expect(ledger.figures("tenant:acme") == [Self.max, 0, 0, Self.max, 0])
        #expect(ledger.debit(Subject(agent: "a"), Self.max).decision != nil, "a capped debit of the whole range")
    }

    @Test func creditPastTheRangeIsRefusedAndChangesNothing() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", Self.max - 10)
        let before = ledger.state
        #expect(ledger.fund("tenant:acme", .credit, 11).errorCode == .amountOverflow)
        #expect(ledger.state == before)
        #expect(ledger.fund("tenant:acme", .credit, 10).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [Self.max, Self.max, 0, 0, 0])
    }

    @Test func debtThatWouldLeaveTheRangeIsRefusedNeverWrapped() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", Self.max, overdraft: Self.max)
        // Spend the whole allocation, then overdraw it by the whole overdraft limit.
        #expect(ledger.debit(Subject(agent: "a"), Self.max, policy: .allowWithOverdraft).errorCode == nil)
        #expect(ledger.debit(Subject(agent: "a"), Self.max, policy: .allowWithOverdraft).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [Self.max, -Self.max, 0, Self.max, Self.max])
        let before = ledger.state
        #expect(ledger.debit(Subject(agent: "a"), 1, policy: .allowWithOverdraft).errorCode == .overdraftLimitExceeded)
        #expect(ledger.state == before)
        // Repaying one unit makes room for exactly one more unit of debt, which lands exactly on Int64.max.
        _ = ledger.fund("tenant:acme", .repayDebt, 1)
        #expect(ledger.debit(Subject(agent: "a"), 1, policy: .allowWithOverdraft).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [Self.max, -Self.max, 0, Self.max, Self.max])
        #expect(before.budgets.count == ledger.state.budgets.count)
        #expect(ledger.replayMatches())
    }

    @Test func resetThatWouldLeaveTheRangeIsRefused() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", Self.max, overdraft: Self.max)
        _ = ledger.debit(Subject(agent: "a"), Self.max, policy: .allowWithOverdraft)
        _ = ledger.debit(Subject(agent: "a"), 5, policy: .allowWithOverdraft)
        // RESET to 0 computes 0 - spent - debt = -(max + 5).
        #expect(ledger.fund("tenant:acme", .reset, 0).errorCode == .amountOverflow)
        #expect(ledger.fund("tenant:acme", .reset, 10).errorCode == nil)
        #expect(ledger.figures("tenant:acme") == [10, 10 - Self.max - 5, 0, Self.max, 5])
    }

    @Test func repayDebtExcessPastTheRangeIsRefused() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", Self.max)
        #expect(ledger.fund("tenant:acme", .repayDebt, 1).errorCode == .amountOverflow)
        #expect(ledger.fund("tenant:acme", .repayDebt, 0).errorCode == nil)
    }

    @Test func amountPrimitivesReportOverflowInsteadOfTrapping() throws {
        #expect(throws: Refusal.self) { try Amount(Int64.max).adding(1) }
        #expect(throws: Refusal.self) { try Amount(Int64.min).subtracting(1) }
        #expect(throws: Refusal.self) { try Amount(Int64.min).negated() }
        #expect(try Amount(Int64.max - 1).adding(1) == Amount(Int64.max))
        #expect(Amount(-5).flooredAtZero == .zero)
    }

    @Test func extendBeyondTheTimeRangeIsRefused() {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 100)
        ledger.now = Int64.max - 70_000
        let id = ledger.hold(Subject(agent: "a"), 1, ttl: 60_000)
        #expect(ledger.extend(id, by: 86_400_000).errorCode == .invalidRequest)
        #expect(ledger.extend(id, by: 1_000).errorCode == nil)
    }
}
