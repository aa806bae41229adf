import Testing
@testable import TallyCore

/// The error table of semantics 2.12 (plus the admin-plane codes of section 5), and for every code the
/// ledger itself can refuse with, a scenario that produces it through `Ledger.decide`.
@Suite struct ErrorCodeTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var code: ErrorCode
        var rawValue: UInt16
        var cyclesName: String
        var httpStatus: Int

        var testDescription: String { "\(code) = \(rawValue)" }
    }

    /// Raw values are frozen (stored replies and the binary protocol carry them); names and statuses are
    /// those of the Cycles table.
    static let table: [Row] = [
        Row(code: .invalidRequest, rawValue: 1, cyclesName: "INVALID_REQUEST", httpStatus: 400),
        Row(code: .unauthorized, rawValue: 2, cyclesName: "UNAUTHORIZED", httpStatus: 401),
        Row(code: .forbidden, rawValue: 3, cyclesName: "FORBIDDEN", httpStatus: 403),
        Row(code: .insufficientPermissions, rawValue: 4, cyclesName: "INSUFFICIENT_PERMISSIONS", httpStatus: 403),
        Row(code: .notFound, rawValue: 5, cyclesName: "NOT_FOUND", httpStatus: 404),
        Row(code: .tenantNotFound, rawValue: 6, cyclesName: "TENANT_NOT_FOUND", httpStatus: 404),
        Row(code: .budgetNotFound, rawValue: 7, cyclesName: "BUDGET_NOT_FOUND", httpStatus: 404),
        Row(code: .idempotencyMismatch, rawValue: 8, cyclesName: "IDEMPOTENCY_MISMATCH", httpStatus: 409),
        Row(code: .tenantClosed, rawValue: 9, cyclesName: "TENANT_CLOSED", httpStatus: 409),
        Row(code: .reservationExpired, rawValue: 10, cyclesName: "RESERVATION_EXPIRED", httpStatus: 410),
        Row(code: .reservationFinalized, rawValue: 11, cyclesName: "RESERVATION_FINALIZED", httpStatus: 409),
        Row(code: .unitMismatch, rawValue: 12, cyclesName: "UNIT_MISMATCH", httpStatus: 400),
        Row(code: .budgetFrozen, rawValue: 13, cyclesName: "BUDGET_FROZEN", httpStatus: 409),
        Row(code: .budgetClosed, rawValue: 14, cyclesName: "BUDGET_CLOSED", httpStatus: 409),
        Row(code: .overdraftLimitExceeded, rawValue: 15, cyclesName: "OVERDRAFT_LIMIT_EXCEEDED", httpStatus: 409),
        Row(code: .debtOutstanding, rawValue: 16, cyclesName: "DEBT_OUTSTANDING", httpStatus: 409),
        Row(code: .budgetExceeded, rawValue: 17, cyclesName: "BUDGET_EXCEEDED", httpStatus: 409),
        Row(code: .maxExtensionsExceeded, rawValue: 18, cyclesName: "MAX_EXTENSIONS_EXCEEDED", httpStatus: 409),
        Row(code: .duplicateResource, rawValue: 19, cyclesName: "DUPLICATE_RESOURCE", httpStatus: 409),
        Row(code: .invalidTransition, rawValue: 20, cyclesName: "INVALID_TRANSITION", httpStatus: 409),
        // Tally's own overflow refusal is an invalid request to a Cycles client.
        Row(code: .amountOverflow, rawValue: 21, cyclesName: "INVALID_REQUEST", httpStatus: 400),
        Row(code: .limitExceeded, rawValue: 22, cyclesName: "LIMIT_EXCEEDED", httpStatus: 429),
        Row(code: .internalError, rawValue: 23, cyclesName: "INTERNAL_ERROR", httpStatus: 500),
        Row(code: .malformedFrame, rawValue: 24, cyclesName: "INVALID_REQUEST", httpStatus: 400),
        Row(code: .unsupportedProtocolVersion, rawValue: 25, cyclesName: "INVALID_REQUEST", httpStatus: 400),
        Row(code: .payloadTooLarge, rawValue: 26, cyclesName: "INVALID_REQUEST", httpStatus: 413),
    ]

    @Test(arguments: table)
    func codeHasItsFrozenRawValueCyclesNameAndStatus(row: Row) {
        #expect(row.code.rawValue == row.rawValue)
        #expect(ErrorCode(rawValue: row.rawValue) == row.code)
        #expect(row.code.cyclesName == row.cyclesName)
        #expect(row.code.httpStatus == row.httpStatus)
    }

    @Test func tableCoversEveryCodeExactlyOnce() {
        #expect(Self.table.map(\.code) == ErrorCode.allCases)
    }

    @Test func rawValuesAreUnique() {
        let rawValues = ErrorCode.allCases.map(\.rawValue)
        #expect(Set(rawValues).count == rawValues.count)
    }

    @Test func onlyTallysOwnRequestErrorsShareACyclesName() {
        let byName = Dictionary(grouping: ErrorCode.allCases, by: \.cyclesName).filter { $0.value.count > 1 }
        #expect(byName.count == 1)
        #expect(Set(byName["INVALID_REQUEST"] ?? []) == [.invalidRequest, .amountOverflow, .malformedFrame, .unsupportedProtocolVersion, .payloadTooLarge])
    }

    @Test func deterministicExhaustionIsNeverAThrottle() {
        // Semantics 2.12: budget exhaustion MUST NOT use 429.
        let exhaustion: [ErrorCode] = [
            .budgetExceeded, .overdraftLimitExceeded, .debtOutstanding, .maxExtensionsExceeded,
        ]
        #expect(exhaustion.allSatisfy { $0.httpStatus == 409 })
        #expect(ErrorCode.allCases.filter { $0.httpStatus == 429 } == [.limitExceeded])
    }

    // MARK: - Every ledger refusal, produced

    struct Scenario: Sendable, CustomTestStringConvertible {
        var code: ErrorCode
        /// Builds a world, then returns the result of the one command that must be refused.
        var produce: @Sendable (inout AdminWorld) throws -> Result<Decision, Refusal>

        var testDescription: String { code.cyclesName + (code == .amountOverflow ? " (overflow)" : "") }
    }

    /// Codes no `decide` can return: authentication and permissions are checked by the gateway (and
    /// `LedgerState.authenticate`), throttling, framing and sizes by the server.
    static let notFromDecide: Set<ErrorCode> = [
        .unauthorized, .insufficientPermissions, .limitExceeded, .malformedFrame, .unsupportedProtocolVersion, .payloadTooLarge,
    ]

    static let scenarios: [Scenario] = [
        Scenario(code: .invalidRequest) { world in world.tenant("Not-Lower-Case") },
        Scenario(code: .forbidden) { world in
            world.reserve(Subject(tenant: "globex", workspace: "prod"), 10, id: "r1")
        },
        Scenario(code: .notFound) { world in world.commit("never-reserved", 10) },
        Scenario(code: .tenantNotFound) { world in world.key("key-initech", tenant: "initech", secret: 2) },
        Scenario(code: .budgetNotFound) { world in world.fund("tenant:acme/workspace:nowhere", .credit, 10) },
        Scenario(code: .idempotencyMismatch) { world in
            try adminOK(world.reserve(AdminWorld.prod, 10, id: "r1", key: "k"))
            return world.reserve(AdminWorld.prod, 20, id: "r1", key: "k", payload: 2)
        },
        Scenario(code: .tenantClosed) { world in
            try adminOK(world.setStatus("acme", .closed))
            return world.reserve(AdminWorld.prod, 10, id: "r1")
        },
        Scenario(code: .reservationExpired) { world in
            try adminOK(world.reserve(AdminWorld.prod, 10, id: "r1"))
            world.advance(60_000 + 5_000 + 1)
            return world.commit("r1", 10)
        },
        Scenario(code: .reservationFinalized) { world in
            try adminOK(world.reserve(AdminWorld.prod, 10, id: "r1"))
            try adminOK(world.commit("r1", 10, key: "c1"))
            return world.commit("r1", 10, key: "c2")
        },
        Scenario(code: .unitMismatch) { world in world.reserve(AdminWorld.prod, 10, id: "r1", unit: .tokens) },
        Scenario(code: .budgetFrozen) { world in
            try adminOK(world.freeze("tenant:acme/workspace:prod"))
            return world.reserve(AdminWorld.prod, 10, id: "r1")
        },
        Scenario(code: .budgetClosed) { world in
            try world.closeBudgetByEvent("tenant:acme/workspace:prod")
            return world.reserve(AdminWorld.prod, 10, id: "r1")
        },
        Scenario(code: .overdraftLimitExceeded) { world in
            // A capped debit marks prod (1 000) over limit; the next hold there is refused.
            try adminOK(world.debit(AdminWorld.prod, 2_000, eventID: "evt-1", policy: .allowIfAvailable))
            return world.reserve(AdminWorld.prod, 10, id: "r1")
        },
        Scenario(code: .debtOutstanding) { world in
            // Debt only accrues under a positive limit, and every update recomputes the flag, so a budget in
            // debt with a zero limit and no over-limit flag comes from a log written before decision 5.
            try adminOK(world.budget("tenant:acme/workspace:lab", 100, overdraft: 500))
            try adminOK(world.debit(Subject(workspace: "lab"), 300, eventID: "evt-1", policy: .allowWithOverdraft))
            let budget = try #require(world.budgetAt("tenant:acme/workspace:lab"))
            try Ledger.apply(.budgetUpdated(BudgetUpdated(
                key: budget.key, change: .properties, overdraftLimit: .zero, commitOveragePolicy: nil, caps: nil,
                metadata: nil, status: .active, isOverLimit: false, reason: nil, caller: .admin,
                atMilliseconds: world.now)), to: &world.state)
            return world.reserve(Subject(workspace: "lab"), 1, id: "r1")
        },
        Scenario(code: .budgetExceeded) { world in world.reserve(AdminWorld.prod, 1_001, id: "r1") },
        Scenario(code: .maxExtensionsExceeded) { world in
            try adminOK(world.run(.updateTenant(UpdateTenantCommand(tenantID: "acme", maxExtensions: 0))))
            try adminOK(world.reserve(AdminWorld.prod, 10, id: "r1"))
            return world.extend("r1", by: 1_000)
        },
        Scenario(code: .duplicateResource) { world in world.budget("tenant:acme/workspace:prod", 10) },
        Scenario(code: .invalidTransition) { world in world.unfreeze("tenant:acme/workspace:prod") },
        Scenario(code: .amountOverflow) { world in world.fund("tenant:acme", .credit, Int64.max) },
        Scenario(code: .internalError) { world in
            // The same reservation id under another idempotency key: the id generator collided.
            try adminOK(world.reserve(AdminWorld.prod, 10, id: "r1", key: "k1"))
            return world.reserve(AdminWorld.prod, 10, id: "r1", key: "k2")
        },
    ]

    @Test(arguments: scenarios)
    func ledgerProducesTheCodeInItsScenario(scenario: Scenario) throws {
        var world = try AdminWorld.acme()
        let result = try scenario.produce(&world)
        guard case .failure(let refusal) = result else {
            Issue.record("expected \(scenario.code), the command succeeded: \(result)")
            return
        }
        #expect(refusal.code == scenario.code, "\(refusal)")
        #expect(!refusal.message.isEmpty)
        #expect(refusal.description.hasPrefix(scenario.code.cyclesName))
    }

    @Test func everyCodeIsEitherProducedByTheLedgerOrDocumentedAsNotFromDecide() {
        let produced = Set(Self.scenarios.map(\.code))
        #expect(produced.count == Self.scenarios.count, "one scenario per code")
        #expect(produced.isDisjoint(with: Self.notFromDecide))
        #expect(produced.union(Self.notFromDecide) == Set(ErrorCode.allCases))
    }

    @Test func unauthorizedComesFromAuthentication() throws {
        let world = try AdminWorld.acme()
        let result = world.state.authenticate(secretHash: AdminWorld.secret(404), now: world.now)
        guard case .failure(let refusal) = result else {
            Issue.record("an unknown secret authenticated")
            return
        }
        #expect(refusal.code == .unauthorized)
    }

    @Test(arguments: DenyReason.allCases)
    func denyReasonMapsToTheLiveErrorOfTheSameName(reason: DenyReason) {
        // A DENY on dry-run/decide is the 409 (or 404) a live reserve gets; BUDGET_NOT_FOUND is the
        // runtime's NOT_FOUND (semantics 2.12: "no budget at any derived scope").
        let code = reason.errorCode
        if reason == .budgetNotFound {
            #expect(code == .notFound)
        } else {
            #expect(code.cyclesName == reason.cyclesName)
        }
    }
}
