import Testing
@testable import TallyCore

/// Section 3.3 of the semantics, row by row: one scope with allocated 1000, spent 650 and a 300 hold
/// (remaining 50), committed at 400 (an overage of 100) under each policy.
@Suite struct WorkedExampleTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var policy: OveragePolicy
        var overdraftLimit: Int64
        /// allocated, remaining, reserved, spent, debt after the commit attempt.
        var figures: [Int64]
        var isOverLimit: Bool
        var charged: Int64?
        var refusal: ErrorCode?

        var testDescription: String { "\(policy.cyclesName) L=\(overdraftLimit)" }
    }

    static let rows: [Row] = [
        Row(policy: .reject, overdraftLimit: 0, figures: [1000, 50, 300, 650, 0], isOverLimit: false, charged: nil, refusal: .budgetExceeded),
        Row(policy: .allowIfAvailable, overdraftLimit: 0, figures: [1000, 0, 0, 1000, 0], isOverLimit: true, charged: 350, refusal: nil),
        Row(policy: .allowWithOverdraft, overdraftLimit: 500, figures: [1000, -50, 0, 1000, 50], isOverLimit: false, charged: 400, refusal: nil),
        Row(policy: .allowWithOverdraft, overdraftLimit: 20, figures: [1000, 50, 300, 650, 0], isOverLimit: false, charged: nil, refusal: .overdraftLimitExceeded),
        Row(policy: .allowWithOverdraft, overdraftLimit: 0, figures: [1000, 0, 0, 1000, 0], isOverLimit: true, charged: 350, refusal: nil),
    ]

    /// Builds the starting position of the example: spent 650, a 300 hold, remaining 50.
    static func start(policy: OveragePolicy, overdraftLimit: Int64) -> (LedgerScenario, ReservationID) {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 1000, overdraft: overdraftLimit)
        let first = ledger.hold(Subject(workspace: "w"), 650)
        _ = ledger.commit(first, 650)
        let reservation = ledger.hold(Subject(workspace: "w"), 300, policy: policy)
        #expect(ledger.figures("tenant:acme") == [1000, 50, 300, 650, 0])
        return (ledger, reservation)
    }

    @Test(arguments: rows)
    func commitAboveEstimateFollowsTheWorkedExample(row: Row) {
        var (ledger, reservation) = Self.start(policy: row.policy, overdraftLimit: row.overdraftLimit)
        let result = ledger.commit(reservation, 400)
        #expect(result.errorCode == row.refusal)
        #expect(ledger.figures("tenant:acme") == row.figures)
        #expect(ledger.balance("tenant:acme").isOverLimit == row.isOverLimit)
        if let charged = row.charged {
            guard case .committed(let reply)? = result.decision?.reply else {
                Issue.record("expected a commit reply, got \(result)")
                return
            }
            #expect(reply.charged == Quantity(.usdMicrocents, Amount(charged)))
            #expect(reply.released == nil)
            #expect(ledger.state.reservations[reservation]?.status == .committed)
        } else {
            // A refused commit leaves the reservation ACTIVE so the caller can settle it another way.
            #expect(ledger.state.reservations[reservation]?.status == .active)
        }
        #expect(ledger.replayMatches())
    }

    @Test(arguments: OveragePolicy.allCases)
    func commitBelowEstimateReleasesTheRestUnderEveryPolicy(policy: OveragePolicy) {
        var (ledger, reservation) = Self.start(policy: policy, overdraftLimit: 500)
        let result = ledger.commit(reservation, 200)
        guard case .committed(let reply)? = result.decision?.reply else {
            Issue.record("expected a commit reply, got \(result)")
            return
        }
        #expect(ledger.figures("tenant:acme") == [1000, 150, 0, 850, 0])
        #expect(reply.charged.amount == 200)
        #expect(reply.released?.amount == 100)
        #expect(reply.balances.map(\.remaining) == [150])
    }

    @Test func exactCommitHasNoReleasedField() {
        var (ledger, reservation) = Self.start(policy: .reject, overdraftLimit: 0)
        guard case .committed(let reply)? = ledger.commit(reservation, 300).decision?.reply else {
            Issue.record("expected a commit")
            return
        }
        #expect(reply.released == nil)
        #expect(ledger.figures("tenant:acme") == [1000, 50, 0, 950, 0])
    }
}
