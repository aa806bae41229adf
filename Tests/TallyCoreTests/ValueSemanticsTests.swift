import Testing
@testable import TallyCore

/// The values the writer copies around cheaply (a reservation's shared box, a scope path's kept hash)
/// still behave as plain values.
@Suite struct ValueSemanticsTests {
    static func reservation(id: ReservationID = "r-1") -> Reservation {
        let scopes = ScopePath.derive(subject: Subject(workspace: "prod", agent: "bot"), tenant: "acme")
        return Reservation(
            id: id, tenant: "acme", subject: Subject(workspace: "prod", agent: "bot"), action: Action(kind: "llm", name: "gpt"),
            unit: .usdMicrocents, estimate: Amount(500), scopePath: scopes[scopes.count - 1], affectedScopes: scopes,
            budgetedScopes: [scopes[0]], createdAtMilliseconds: 1_000, expiresAtMilliseconds: 61_000, graceMilliseconds: 5_000,
            overagePolicy: .reject, maxExtensions: 3, idempotencyKey: "k-1", createdBy: .tenant(id: "acme", keyID: "key-1"))
    }

    @Test func changingACopyOfAReservationLeavesTheOriginalAlone() {
        let original = Self.reservation()
        var copy = original
        copy.status = .released
        copy.extensionCount += 1
        copy.subject.agent = "other"
        copy.budgetedScopes.append(original.affectedScopes[1])
        #expect(original.status == .active && original.extensionCount == 0)
        #expect(original.subject.agent == "bot" && original.budgetedScopes.count == 1)
        #expect(copy.status == .released && copy.extensionCount == 1 && copy.subject.agent == "other" && copy.budgetedScopes.count == 2)
        #expect(copy != original)
    }

    @Test func aReservationInAStateIsChangedInPlaceWithoutTouchingEarlierCopies() {
        var state = LedgerState()
        state.reservations["r-1"] = Self.reservation()
        let before = state
        state.reservations["r-1"]!.status = .committed
        #expect(before.reservations["r-1"]!.status == .active)
        #expect(state.reservations["r-1"]!.status == .committed)
        #expect(before != state)
    }

    @Test func equalReservationsBuiltApartAreEqualAndHashAlike() {
        let first = Self.reservation(), second = Self.reservation()
        #expect(first == second)
        #expect(first.hashValue == second.hashValue)
        #expect(Set([first, second]).count == 1)
        #expect(Self.reservation(id: "r-2") != first)
    }

    @Test func scopePathsEqualAndHashByTheirTextHoweverTheyWereBuilt() throws {
        let derived = ScopePath.derive(subject: Subject(workspace: "Prod"), tenant: "acme")[1]
        let parsed = try ScopePath(parsing: "tenant:acme/workspace:prod")
        let decoded = try ScopePath(decoding: "tenant:acme/workspace:prod")
        #expect(derived == parsed && parsed == decoded)
        #expect(Set([derived, parsed, decoded]).count == 1)
        #expect([BudgetKey(derived, .tokens): 1][BudgetKey(decoded, .tokens)] == 1)
        #expect(try ScopePath(parsing: "tenant:acme/workspace:dev") != parsed)
    }

    @Test func lengthLimitsCountUnicodeScalarsNotBytes() {
        #expect(!"abc".hasMoreScalars(than: 3))
        #expect("abcd".hasMoreScalars(than: 3))
        #expect(!"ééé".hasMoreScalars(than: 3), "six UTF-8 bytes, three scalars")
        #expect("éééé".hasMoreScalars(than: 3))
        #expect(!"".hasMoreScalars(than: 0))
    }
}

extension ValueSemanticsTests {
    @Test func aReservationPrintsItsFields() {
        let text = String(describing: Self.reservation())
        #expect(text.contains("r-1") && text.contains("idempotencyKey") && !text.contains("storage"))
    }
}
