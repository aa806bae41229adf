// This file is longer than 800 lines on purpose: it is one suite for the whole admin plane (tenants,
// keys, authentication, budgets, funding, freeze and the close cascade), which share one small world, and
// splitting it would scatter the ledger scripts that the semantics sections 5.5-5.10 describe together.

import Testing
@testable import TallyCore

@Suite struct AdminPlaneTests {
    // MARK: - Tenant create (semantics 1.7, 5.5; decision 14)

    @Test(arguments: [
        ("abc", true), (String(repeating: "a", count: 64), true), ("acme-2", true), ("0-9", true),
        ("ab", false), (String(repeating: "a", count: 65), false), ("Acme", false), ("acme_co", false),
        ("acme.co", false), ("acme co", false), ("", false), ("ácme", false),
    ])
    func tenantIDMustBeLowerCaseLettersDigitsAndDashesOfThreeToSixtyFourCharacters(id: String, accepted: Bool) {
        var world = AdminWorld()
        let result = world.tenant(id)
        #expect(adminCode(result) == (accepted ? nil : .invalidRequest))
        #expect((world.state.tenants[id] != nil) == accepted)
    }

    @Test func createdTenantGetsTheCyclesDefaults() throws {
        var world = AdminWorld()
        let result = world.run(.createTenant(CreateTenantCommand(tenantID: "acme", name: "Acme")))
        let (tenant, created) = try adminTenant(result)
        #expect(created)
        #expect(tenant.status == .active)
        #expect(tenant.defaultTTLMilliseconds == 60_000)
        #expect(tenant.maxTTLMilliseconds == 3_600_000)
        #expect(tenant.maxExtensions == 10)
        #expect(tenant.defaultOveragePolicy == .allowIfAvailable)
        #expect(tenant.expiryPolicy == .autoRelease)
        #expect(try result.get().events == [.tenantCreated(tenant)])
        #expect(world.state.tenants["acme"] == tenant)
    }

    @Test func createdTenantKeepsTheDefaultsItWasGiven() throws {
        var world = AdminWorld()
        let (tenant, _) = try adminTenant(world.run(.createTenant(CreateTenantCommand(
            tenantID: "acme", name: "Acme", parentTenantID: "holding", defaultOveragePolicy: .reject,
            defaultTTLMilliseconds: 5_000, maxTTLMilliseconds: 7_200_000, maxExtensions: 0,
            expiryPolicy: .autoRelease))))
        #expect(tenant.parentTenantID == "holding")
        #expect(tenant.defaultOveragePolicy == .reject)
        #expect(tenant.defaultTTLMilliseconds == 5_000)
        #expect(tenant.maxTTLMilliseconds == 7_200_000)
        #expect(tenant.maxExtensions == 0)
    }

    @Test func creatingAnExistingTenantWithTheSameNameAnswersItUnchangedWithoutEvents() throws {
        var world = AdminWorld()
        try adminOK(world.tenant("acme", name: "Acme"))
        world.advance(1_000)
        let before = world.state
        let again = world.tenant("acme", name: "Acme")
        #expect(try again.get().events.isEmpty)
        let (tenant, created) = try adminTenant(again)
        #expect(!created)
        #expect(tenant == before.tenants["acme"])
        #expect(world.state == before)
    }

    @Test func creatingAnExistingTenantWithAnotherNameIsADuplicate() throws {
        var world = AdminWorld()
        try adminOK(world.tenant("acme", name: "Acme"))
        let before = world.state
        #expect(adminCode(world.tenant("acme", name: "Acme Corp")) == .duplicateResource)
        #expect(world.state == before)
    }

    @Test(arguments: ExpiryPolicy.allCases)
    func onlyTheAutoReleaseExpiryPolicyIsAccepted(policy: ExpiryPolicy) {
        var world = AdminWorld()
        let result = world.run(.createTenant(CreateTenantCommand(tenantID: "acme", name: "Acme", expiryPolicy: policy)))
        if policy == .autoRelease {
            #expect(adminCode(result) == nil)
        } else {
            guard case .failure(let refusal) = result else {
                Issue.record("\(policy.cyclesName) was accepted")
                return
            }
            #expect(refusal.code == .invalidRequest)
            #expect(refusal.message.contains(policy.cyclesName))
            #expect(world.state.tenants.isEmpty)
        }
    }

    @Test(arguments: [(Int64(999), false), (1_000, true), (86_400_000, true), (86_400_001, false)])
    func tenantTTLsAreAcceptedExactlyFromOneSecondToOneDay(ttl: Int64, accepted: Bool) {
        var defaults = AdminWorld()
        let asDefault = defaults.run(.createTenant(CreateTenantCommand(
            tenantID: "acme", name: "Acme", defaultTTLMilliseconds: ttl)))
        #expect(adminCode(asDefault) == (accepted ? nil : .invalidRequest))
        var maxima = AdminWorld()
        let asMaximum = maxima.run(.createTenant(CreateTenantCommand(
            tenantID: "acme", name: "Acme", maxTTLMilliseconds: ttl)))
        #expect(adminCode(asMaximum) == (accepted ? nil : .invalidRequest))
    }

    @Test func tenantNeedsANameAndANonNegativeExtensionLimit() {
        var world = AdminWorld()
        #expect(adminCode(world.run(.createTenant(CreateTenantCommand(tenantID: "acme", name: "")))) == .invalidRequest)
        let negative = CreateTenantCommand(tenantID: "acme", name: "Acme", maxExtensions: -1)
        #expect(adminCode(world.run(.createTenant(negative))) == .invalidRequest)
        #expect(world.state.tenants.isEmpty)
    }

    // MARK: - Tenant update (semantics 5.5, 5.3)

    @Test func tenantMovesBetweenActiveAndSuspended() throws {
        var world = try AdminWorld.acme()
        let suspended = world.setStatus("acme", .suspended)
        #expect(adminTranscript(try suspended.get().events) == ["TenantUpdated acme -> SUSPENDED"])
        #expect(try adminTenant(suspended).tenant.status == .suspended)
        #expect(world.state.tenants["acme"]?.status == .suspended)

        let active = world.setStatus("acme", .active)
        #expect(adminTranscript(try active.get().events) == ["TenantUpdated acme -> ACTIVE"])
        #expect(world.state.tenants["acme"]?.status == .active)
        // Suspension is not a cascade: keys and budgets are as they were.
        #expect(world.state.apiKeys["key-acme"]?.status == .active)
        #expect(world.budgetAt("tenant:acme")?.status == .active)
    }

    @Test func updatingAnUnknownTenantIsTenantNotFound() {
        var world = AdminWorld()
        #expect(adminCode(world.setStatus("ghost", .suspended)) == .tenantNotFound)
    }

    struct ClosedTenantChange: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var command: UpdateTenantCommand
        var refusal: ErrorCode
    }

    static let changesOfAClosedTenant: [ClosedTenantChange] = [
        ClosedTenantChange(
            testDescription: "back to ACTIVE", command: UpdateTenantCommand(tenantID: "acme", status: .active),
            refusal: .invalidRequest),
        ClosedTenantChange(
            testDescription: "to SUSPENDED", command: UpdateTenantCommand(tenantID: "acme", status: .suspended),
            refusal: .invalidRequest),
        ClosedTenantChange(
            testDescription: "rename", command: UpdateTenantCommand(tenantID: "acme", name: "Acme 2"),
            refusal: .tenantClosed),
        ClosedTenantChange(
            testDescription: "new default TTL",
            command: UpdateTenantCommand(tenantID: "acme", defaultTTLMilliseconds: 5_000),
            refusal: .tenantClosed),
        ClosedTenantChange(
            testDescription: "new metadata", command: UpdateTenantCommand(tenantID: "acme", metadata: JSONText("{}")),
            refusal: .tenantClosed),
        ClosedTenantChange(
            testDescription: "close again with a rename",
            command: UpdateTenantCommand(tenantID: "acme", name: "Acme 2", status: .closed), refusal: .tenantClosed),
    ]

    @Test(arguments: changesOfAClosedTenant)
    func closedTenantIsTerminal(change: ClosedTenantChange) throws {
        var world = try AdminWorld.acme()
        try adminOK(world.setStatus("acme", .closed))
        let before = world.state
        #expect(adminCode(world.run(.updateTenant(change.command))) == change.refusal)
        #expect(world.state == before)
    }

    @Test func closingAClosedTenantAgainIsANoOp() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.setStatus("acme", .closed))
        let before = world.state
        let again = world.setStatus("acme", .closed)
        #expect(try again.get().events.isEmpty)
        #expect(try adminTenant(again).tenant == before.tenants["acme"])
        #expect(world.state == before)
    }

    /// Semantics 5.5 and 5.10: a re-PATCH to CLOSED re-runs the cascade, so a log that holds the tenant's
    /// CLOSED flip without its children (a store that flips first, Mode B) converges on the next close.
    @Test func closingAgainFinishesACascadeThatWasCutShort() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.reserve(AdminWorld.prod, 100, id: "r1"))
        var flipped = try #require(world.state.tenants["acme"])
        flipped.status = .closed
        try Ledger.apply(.tenantUpdated(flipped), to: &world.state)

        let again = try world.setStatus("acme", .closed).get()
        #expect(adminTranscript(again.events) == [
            "Released r1 100 (tenantClosed)",
            "BudgetUpdated close tenant:acme [USD_MICROCENTS] -> CLOSED",
            "BudgetUpdated close tenant:acme/workspace:prod [USD_MICROCENTS] -> CLOSED",
            "ApiKeyRevoked key-acme (tenantClosed)",
        ])
        #expect(world.ledgerRow("tenant:acme/workspace:prod") == [1_000, 1_000, 0, 0, 0])
        #expect(try world.setStatus("acme", .closed).get().events.isEmpty)
    }

    @Test func suspendedTenantCanBeClosedAndTheCascadeRuns() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.reserve(AdminWorld.prod, 100, id: "r1"))
        try adminOK(world.setStatus("acme", .suspended))
        let closed = try world.setStatus("acme", .closed).get()
        #expect(adminTranscript(closed.events) == [
            "Released r1 100 (tenantClosed)",
            "BudgetUpdated close tenant:acme [USD_MICROCENTS] -> CLOSED",
            "BudgetUpdated close tenant:acme/workspace:prod [USD_MICROCENTS] -> CLOSED",
            "ApiKeyRevoked key-acme (tenantClosed)",
            "TenantUpdated acme -> CLOSED",
        ])
    }

    // MARK: - Tenant close cascade (decision 15, semantics 5.3, 5.10)

    /// What acme answered before it was closed, for the replay checks after the close.
    struct PreClose: Sendable {
        var reserveR1: ReserveReply
        var extendR1: ExtendReply
        var commitR4: CommitReply
        var releaseR5: ReleaseReply
        var debit: DebitReply
        var decide: EvaluationReply
        var dryRun: EvaluationReply
        var funding: FundingReply
    }

    /// acme with two USD budgets and one TOKENS budget on prod, a FROZEN lab budget, two live keys and a
    /// revoked one; r1, r2, r3 and r6 ACTIVE (r3 only on `tenant:acme`, r6 in TOKENS), r4 COMMITTED, r5
    /// RELEASED; plus a direct debit, a decide, a dry run and a keyed CREDIT. globex lives next door.
    static func acmeBeforeClose() throws -> (AdminWorld, PreClose) {
        var world = try AdminWorld.acme()
        try adminOK(world.key("key-acme-2", tenant: "acme", secret: 2))
        try adminOK(world.key("key-acme-old", tenant: "acme", secret: 3))
        try adminOK(world.revoke("key-acme-old"))
        try adminOK(world.budget("tenant:acme/workspace:prod", 500, unit: .tokens))
        try adminOK(world.budget("tenant:acme/workspace:lab", 300))
        try adminOK(world.freeze("tenant:acme/workspace:lab"))

        try adminOK(world.tenant("globex"))
        try adminOK(world.key("key-globex", tenant: "globex", secret: 9))
        try adminOK(world.budget("tenant:globex", 5_000, tenant: "globex"))
        try adminOK(world.reserve(Subject(workspace: "ops"), 100, id: "g1", tenant: "globex"))

        guard case .reserved(let reserveR1, _) = try world.reserve(AdminWorld.prod, 100, id: "r1").get().reply,
              case .extended(let extendR1, _) = try world.extend("r1", by: 1_000).get().reply
        else { throw AdminUnexpectedReply(description: "r1") }
        try adminOK(world.reserve(AdminWorld.prod, 200, id: "r2"))
        try adminOK(world.reserve(AdminWorld.dev, 50, id: "r3"))
        try adminOK(world.reserve(AdminWorld.prod, 300, id: "r4"))
        guard case .committed(let commitR4) = try world.commit("r4", 250).get().reply else {
            throw AdminUnexpectedReply(description: "r4")
        }
        try adminOK(world.reserve(AdminWorld.prod, 70, id: "r5"))
        guard case .released(let releaseR5) = try world.release("r5").get().reply else {
            throw AdminUnexpectedReply(description: "r5")
        }
        try adminOK(world.reserve(AdminWorld.prod, 40, id: "r6", unit: .tokens))
        guard case .debitRecorded(let debit) = try world.debit(AdminWorld.prod, 25, eventID: "evt-1").get().reply else {
            throw AdminUnexpectedReply(description: "evt-1")
        }
        let decide = try adminEvaluation(world.evaluate(AdminWorld.prod, 10, key: "decide-1"))
        let dryRun = try adminEvaluation(world.reserve(AdminWorld.prod, 10, id: "dry-1", dryRun: true))
        let funding = try adminFunding(world.fund("tenant:acme", .credit, 500, key: "fund-1"))
        #expect(decide.decision == .allow && dryRun.decision == .allow)
        let pre = PreClose(
            reserveR1: reserveR1, extendR1: extendR1, commitR4: commitR4, releaseR5: releaseR5, debit: debit,
            decide: decide, dryRun: dryRun, funding: funding)
        return (world, pre)
    }

    static func closedAcme() throws -> (AdminWorld, PreClose) {
        var (world, pre) = try acmeBeforeClose()
        world.advance(1_000)
        try adminOK(world.setStatus("acme", .closed))
        return (world, pre)
    }

    @Test func closingATenantSettlesEverythingItOwnsInOneDecisionTenantLast() throws {
        var (world, _) = try Self.acmeBeforeClose()
        #expect(world.ledgerRow("tenant:acme") == [10_500, 9_875, 350, 275, 0])
        #expect(world.ledgerRow("tenant:acme/workspace:prod") == [1_000, 425, 300, 275, 0])
        #expect(world.ledgerRow("tenant:acme/workspace:prod", unit: .tokens) == [500, 460, 40, 0, 0])

        let close = try world.setStatus("acme", .closed).get()

        #expect(adminTranscript(close.events) == [
            "Released r1 100 (tenantClosed)",
            "Released r2 200 (tenantClosed)",
            "Released r3 50 (tenantClosed)",
            "Released r6 40 (tenantClosed)",
            "BudgetUpdated close tenant:acme [USD_MICROCENTS] -> CLOSED",
            "BudgetUpdated close tenant:acme/workspace:lab [USD_MICROCENTS] -> CLOSED",
            "BudgetUpdated close tenant:acme/workspace:prod [USD_MICROCENTS] -> CLOSED",
            "BudgetUpdated close tenant:acme/workspace:prod [TOKENS] -> CLOSED",
            "ApiKeyRevoked key-acme (tenantClosed)",
            "ApiKeyRevoked key-acme-2 (tenantClosed)",
            "TenantUpdated acme -> CLOSED",
        ])
        #expect(try adminTenant(.success(close)).tenant.status == .closed)
        // Every hold went back to every budgeted scope: reserved drains to 0, spent and allocated stay.
        #expect(world.ledgerRow("tenant:acme") == [10_500, 10_225, 0, 275, 0])
        #expect(world.ledgerRow("tenant:acme/workspace:prod") == [1_000, 725, 0, 275, 0])
        #expect(world.ledgerRow("tenant:acme/workspace:prod", unit: .tokens) == [500, 500, 0, 0, 0])
        let acmeBudgets = world.state.budgets.values.filter { $0.tenant == "acme" }
        #expect(acmeBudgets.count == 4)
        #expect(acmeBudgets.allSatisfy { $0.status == .closed && $0.satisfiesInvariant })
        for id: ReservationID in ["r1", "r2", "r3", "r6"] {
            let reservation = try #require(world.state.reservations[id])
            #expect(reservation.status == .released)
            guard case .released(let settlement)? = reservation.settlement else {
                Issue.record("\(id) has no release settlement")
                continue
            }
            #expect(settlement.cause == .tenantClosed)
            #expect(settlement.idempotencyKey == nil)
        }
        #expect(world.state.reservations["r4"]?.status == .committed)
        #expect(world.state.reservations["r5"]?.status == .released)
        #expect(world.state.apiKeys.values.filter { $0.tenant == "acme" }.allSatisfy { $0.status == .revoked })
        // The key revoked before the close keeps its own revocation.
        #expect(world.state.apiKeys["key-acme-old"]?.revokeReason == "rotated")
        #expect(world.logReplaysToState)
    }

    @Test func closeCascadeNeverSettlesAnythingTwice() throws {
        var (world, _) = try Self.closedAcme()
        let before = world.state

        let again = try world.setStatus("acme", .closed).get()
        #expect(again.events.isEmpty)

        // The expiry sweep, long after every deadline, finds nothing of acme's left to return.
        world.advance(86_400_000)
        #expect(!world.state.expiryCandidates(now: world.now).contains { $0.description.hasPrefix("r") })
        let sweep = try world.sweep(["r1", "r2", "r3", "r4", "r5", "r6"]).get()
        #expect(sweep.events.isEmpty)
        #expect(world.state == before)
    }

    @Test func closingOneTenantLeavesAnotherUntouched() throws {
        var (world, _) = try Self.acmeBeforeClose()
        let globex = world.state.tenants["globex"]
        let globexKey = world.state.apiKeys["key-globex"]
        let globexBudget = world.budgetAt("tenant:globex")
        let g1 = world.state.reservations["g1"]

        try adminOK(world.setStatus("acme", .closed))

        #expect(world.state.tenants["globex"] == globex)
        #expect(world.state.apiKeys["key-globex"] == globexKey)
        #expect(world.budgetAt("tenant:globex") == globexBudget)
        #expect(world.state.reservations["g1"] == g1)
        let globexLogin = world.state.authenticate(secretHash: AdminWorld.secret(9), now: world.now)
        #expect(globexLogin.map(\.id) == .success("key-globex"))
        #expect(adminCode(world.reserve(Subject(workspace: "ops"), 100, id: "g2", tenant: "globex")) == nil)
        #expect(adminCode(world.commit("g1", 80)) == nil)
    }

    struct ClosedTenantAttempt: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var attempt: @Sendable (inout AdminWorld) -> Result<Decision, Refusal>
    }

    static let persistingAttemptsOnAClosedTenant: [ClosedTenantAttempt] = [
        ClosedTenantAttempt(testDescription: "reserve") { $0.reserve(AdminWorld.prod, 10, id: "r9") },
        ClosedTenantAttempt(testDescription: "commit of a cascade-released reservation") {
            $0.commit("r1", 10, key: "late")
        },
        ClosedTenantAttempt(testDescription: "commit of a committed reservation with a new key") {
            $0.commit("r4", 10, key: "late")
        },
        ClosedTenantAttempt(testDescription: "release by the tenant key") { $0.release("r2", key: "late") },
        ClosedTenantAttempt(testDescription: "force release by the admin key") {
            $0.release("r2", key: "late", caller: .admin)
        },
        ClosedTenantAttempt(testDescription: "extend") { $0.extend("r1", by: 1_000, key: "late") },
        ClosedTenantAttempt(testDescription: "direct debit") { $0.debit(AdminWorld.prod, 5, eventID: "evt-9") },
        ClosedTenantAttempt(testDescription: "fund") { $0.fund("tenant:acme", .credit, 5, key: "fund-9") },
        ClosedTenantAttempt(testDescription: "update budget") { $0.updateBudget("tenant:acme", overdraft: 10) },
        ClosedTenantAttempt(testDescription: "freeze") { $0.freeze("tenant:acme") },
        ClosedTenantAttempt(testDescription: "unfreeze") { $0.unfreeze("tenant:acme/workspace:lab") },
        ClosedTenantAttempt(testDescription: "create budget") { $0.budget("tenant:acme/workspace:new", 10) },
        ClosedTenantAttempt(testDescription: "create key") { $0.key("key-acme-3", tenant: "acme", secret: 4) },
    ]

    @Test(arguments: persistingAttemptsOnAClosedTenant)
    func freshPersistingOperationsOfAClosedTenantAreTenantClosed(attempt: ClosedTenantAttempt) throws {
        var (world, _) = try Self.closedAcme()
        let before = world.state
        #expect(adminCode(attempt.attempt(&world)) == .tenantClosed)
        #expect(world.state == before)
    }

    @Test func dryRunAndDecideOfAClosedTenantAnswerDenyTenantClosed() throws {
        var (world, _) = try Self.closedAcme()
        let budgets = world.state.budgets
        let decide = try adminEvaluation(world.evaluate(AdminWorld.prod, 10, key: "decide-9"))
        #expect(decide.decision == .deny)
        #expect(decide.reasonCode == .tenantClosed)
        let dryRun = try adminEvaluation(world.reserve(AdminWorld.prod, 10, id: "dry-9", dryRun: true))
        #expect(dryRun.decision == .deny)
        #expect(dryRun.reasonCode == .tenantClosed)
        #expect(dryRun.reserved == nil)
        #expect(world.state.budgets == budgets)
    }

    struct PreCloseReplay: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var replay: @Sendable (inout AdminWorld) -> Result<Decision, Refusal>
        var original: @Sendable (PreClose) -> Reply
    }

    static let replaysAcrossTheClose: [PreCloseReplay] = [
        PreCloseReplay(testDescription: "reserve", replay: { $0.reserve(AdminWorld.prod, 100, id: "r1") }) {
            .reserved($0.reserveR1, remainingTTLMilliseconds: 0)
        },
        PreCloseReplay(testDescription: "extend", replay: { $0.extend("r1", by: 1_000) }) {
            .extended($0.extendR1, remainingTTLMilliseconds: 0)
        },
        PreCloseReplay(testDescription: "commit", replay: { $0.commit("r4", 250) }) { .committed($0.commitR4) },
        PreCloseReplay(testDescription: "release", replay: { $0.release("r5") }) { .released($0.releaseR5) },
        PreCloseReplay(testDescription: "direct debit", replay: { $0.debit(AdminWorld.prod, 25, eventID: "evt-1") }) {
            .debitRecorded($0.debit)
        },
        PreCloseReplay(testDescription: "decide", replay: { $0.evaluate(AdminWorld.prod, 10, key: "decide-1") }) {
            .evaluated($0.decide)
        },
        PreCloseReplay(
            testDescription: "dry run", replay: { $0.reserve(AdminWorld.prod, 10, id: "dry-1", dryRun: true) }
        ) {
            .evaluated($0.dryRun)
        },
        PreCloseReplay(testDescription: "fund", replay: { $0.fund("tenant:acme", .credit, 500, key: "fund-1") }) {
            .funded($0.funding)
        },
    ]

    /// Replays recompute only `remaining_ttl_ms`, which is 0 once the cascade released the reservation.
    @Test(arguments: replaysAcrossTheClose)
    func sameKeyReplaysOfPreCloseSuccessesReturnTheOriginalReplies(replay: PreCloseReplay) throws {
        var (world, pre) = try Self.closedAcme()
        let before = world.state
        let decision = try replay.replay(&world).get()
        #expect(decision.isReplay)
        #expect(decision.events.isEmpty)
        #expect(decision.reply == replay.original(pre))
        #expect(world.state == before)
    }

    // MARK: - API keys (semantics 5.9; decisions 22, 23)

    @Test func keyCreatedWithoutPermissionsGetsTheReservationVerbsAndBalancesRead() throws {
        var world = try AdminWorld.acme()
        let key = try adminApiKey(world.key("key-2", tenant: "acme", secret: 2))
        #expect(Set(key.permissions) == [
            .reservationsCreate, .reservationsCommit, .reservationsRelease, .reservationsExtend, .reservationsList,
            .balancesRead,
        ])
        #expect(key.status == .active)
        #expect(key.tenant == "acme")
        #expect(key.secretHash == AdminWorld.secret(2))
        // Decision 22: a default key can neither read nor write budgets.
        #expect(!key.allows(.budgetsRead))
        #expect(!key.allows(.budgetsWrite))
        #expect(world.state.apiKeyIDsByHash[AdminWorld.secret(2)] == "key-2")
    }

    @Test func keyKeepsThePermissionsItWasGivenOnce() throws {
        var world = try AdminWorld.acme()
        let twice: [Permission] = [.budgetsWrite, .budgetsRead, .budgetsWrite]
        let key = try adminApiKey(world.key("key-2", tenant: "acme", secret: 2, permissions: twice))
        #expect(Set(key.permissions) == [.budgetsRead, .budgetsWrite])
        #expect(key.permissions.count == 2)
    }

    @Test(arguments: [
        ("initech", TenantStatus?.none, ErrorCode.tenantNotFound),
        ("acme", .closed, .tenantClosed),
        ("acme", .suspended, .invalidRequest),
    ])
    func keysAreOnlyCreatedForAnExistingActiveTenant(tenant: String, status: TenantStatus?, refusal: ErrorCode) throws {
        var world = try AdminWorld.acme()
        if let status { try adminOK(world.setStatus("acme", status)) }
        let before = world.state
        #expect(adminCode(world.key("key-2", tenant: tenant, secret: 2)) == refusal)
        #expect(world.state == before)
    }

    @Test func keyIDAndSecretAreUnique() throws {
        var world = try AdminWorld.acme()
        let before = world.state
        #expect(adminCode(world.key("key-acme", tenant: "acme", secret: 2)) == .duplicateResource)
        #expect(adminCode(world.key("key-other", tenant: "acme", secret: 1)) == .duplicateResource)
        #expect(world.state == before)
    }

    @Test func revokedKeyStaysRevokedAndASecondRevokeIsAnInvalidTransition() throws {
        var world = try AdminWorld.acme()
        world.advance(500)
        let revoked = try adminApiKey(world.revoke("key-acme"))
        #expect(revoked.status == .revoked)
        #expect(revoked.revokedAtMilliseconds == world.now)
        #expect(revoked.revokeReason == "rotated")
        let before = world.state
        #expect(adminCode(world.revoke("key-acme")) == .invalidTransition)
        #expect(adminCode(world.revoke("key-ghost")) == .notFound)
        #expect(world.state == before)
    }

    @Test func keyUpdateReplacesOnlyTheEditableFieldsAndReplaysFromTheLog() throws {
        var world = try AdminWorld.acme()
        let before = try #require(world.state.apiKeys["key-acme"])
        let update = UpdateApiKeyCommand(keyID: "key-acme", name: "renamed", permissions: [.budgetsRead, .balancesRead, .budgetsRead], scopeFilter: ["agent:*"])
        let decision = try world.run(.updateApiKey(update)).get()
        let key = try adminApiKey(.success(decision))
        #expect(key.name == "renamed")
        #expect(key.permissions == [.balancesRead, .budgetsRead])
        #expect(key.scopeFilter == ["agent:*"])
        // Untouched: identity, secret, status, expiry, description.
        #expect(key.id == before.id && key.secretHash == before.secretHash && key.status == before.status)
        #expect(key.expiresAtMilliseconds == before.expiresAtMilliseconds && key.description == before.description)
        #expect(world.state.apiKeys["key-acme"] == key)
        // The log alone rebuilds the same key.
        var replayed = LedgerState()
        for event in world.log { try Ledger.apply(event, to: &replayed) }
        #expect(replayed.apiKeys["key-acme"] == key)
        #expect(replayed.apiKeyIDsByHash[key.secretHash] == "key-acme")
    }

    @Test func keyUpdateIsRefusedForUnknownRevokedAndClosedTenantKeys() throws {
        var world = try AdminWorld.acme()
        #expect(adminCode(world.run(.updateApiKey(UpdateApiKeyCommand(keyID: "key-ghost", name: "x")))) == .notFound)
        #expect(adminCode(world.run(.updateApiKey(UpdateApiKeyCommand(keyID: "key-acme", name: "")))) == .invalidRequest)
        try adminOK(world.revoke("key-acme"))
        let before = world.state
        #expect(adminCode(world.run(.updateApiKey(UpdateApiKeyCommand(keyID: "key-acme", name: "x")))) == .invalidTransition)
        #expect(world.state == before)
        var closed = try AdminWorld.acme()
        try adminOK(closed.setStatus("acme", .closed))
        #expect(adminCode(closed.run(.updateApiKey(UpdateApiKeyCommand(keyID: "key-acme", name: "x")))) == .tenantClosed)
    }

    @Test(arguments: [
        ([Permission.budgetsWrite], Permission.budgetsWrite, true),
        ([.budgetsRead], .budgetsWrite, false),
        ([.adminWrite], .budgetsWrite, true),
        ([.adminWrite], .adminTenantsWrite, true),
        ([.adminWrite], .webhooksWrite, true),
        ([.adminWrite], .policiesWrite, true),
        ([.adminRead], .budgetsRead, true),
        ([.adminRead], .adminAuditRead, true),
        ([.adminRead], .eventsRead, true),
        ([.adminRead], .budgetsWrite, false),
        ([.adminRead], .adminApiKeysWrite, false),
        ([.adminRead], .adminWrite, false),
        ([.adminBudgetsWrite], .adminBudgetsWrite, true),
        ([.adminBudgetsWrite], .budgetsWrite, false),
        ([.adminBudgetsRead], .adminTenantsRead, false),
        ([], .balancesRead, false),
    ])
    func keyPermissionsFollowTheCyclesWildcards(granted: [Permission], asked: Permission, allowed: Bool) {
        let key = ApiKey(
            id: "k", tenant: "acme", name: "k", secretHash: AdminWorld.secret(1), prefix: "cyc_live_",
            permissions: granted, createdAtMilliseconds: 0)
        #expect(key.allows(asked) == allowed)
    }

    // MARK: - Authentication (semantics 5.1, 2.12; decision 13)

    struct AuthenticationCase: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var world: @Sendable () throws -> AdminWorld
        var secret: UInt64 = 1
        var after: Int64 = 0
        var acceptedKeyID: String?
    }

    static let authenticationCases: [AuthenticationCase] = [
        AuthenticationCase(
            testDescription: "active key of an active tenant", world: { try AdminWorld.acme() },
            acceptedKeyID: "key-acme"),
        AuthenticationCase(testDescription: "unknown secret", world: { try AdminWorld.acme() }, secret: 77),
        AuthenticationCase(testDescription: "revoked key", world: {
            var world = try AdminWorld.acme()
            try adminOK(world.revoke("key-acme"))
            return world
        }),
        AuthenticationCase(testDescription: "key before its expiry", world: {
            var world = try AdminWorld.acme()
            try adminOK(world.key("key-temp", tenant: "acme", secret: 5, expiresAt: AdminWorld.start + 10_000))
            return world
        }, secret: 5, after: 9_999, acceptedKeyID: "key-temp"),
        AuthenticationCase(testDescription: "expired key", world: {
            var world = try AdminWorld.acme()
            try adminOK(world.key("key-temp", tenant: "acme", secret: 5, expiresAt: AdminWorld.start + 10_000))
            return world
        }, secret: 5, after: 10_001),
        AuthenticationCase(testDescription: "suspended tenant", world: {
            var world = try AdminWorld.acme()
            try adminOK(world.setStatus("acme", .suspended))
            return world
        }),
        AuthenticationCase(testDescription: "tenant reactivated after a suspension", world: {
            var world = try AdminWorld.acme()
            try adminOK(world.setStatus("acme", .suspended))
            try adminOK(world.setStatus("acme", .active))
            return world
        }, acceptedKeyID: "key-acme"),
        AuthenticationCase(testDescription: "tenant closed by the cascade", world: {
            var world = try AdminWorld.acme()
            try adminOK(world.setStatus("acme", .closed))
            return world
        }),
        // A store that flips the tenant first and cascades afterwards (Mode B) can hold a CLOSED tenant
        // whose key is still ACTIVE; the tenant check alone must refuse it.
        AuthenticationCase(testDescription: "closed tenant whose key the cascade has not reached", world: {
            var world = try AdminWorld.acme()
            var tenant = try #require(world.state.tenants["acme"])
            tenant.status = .closed
            try Ledger.apply(.tenantUpdated(tenant), to: &world.state)
            return world
        }),
    ]

    @Test(arguments: authenticationCases)
    func authenticationAcceptsOnlyALiveKeyOfAnActiveTenant(check: AuthenticationCase) throws {
        let world = try check.world()
        let result = world.state.authenticate(
            secretHash: AdminWorld.secret(check.secret), now: AdminWorld.start + check.after)
        switch result {
        case .success(let key):
            #expect(key.id == check.acceptedKeyID)
        case .failure(let refusal):
            #expect(check.acceptedKeyID == nil, "refused: \(refusal)")
            #expect(refusal.code == .unauthorized)
            #expect(refusal.code.httpStatus == 401)
        }
    }

    // MARK: - Budget create (semantics 5.6; decisions 8, 9)

    @Test(arguments: [
        ("tenant:acme", "tenant:acme"),
        ("tenant:Acme", "tenant:acme"),
        ("tenant:ACME/workspace:Prod/agent:Bot-1", "tenant:acme/workspace:prod/agent:bot-1"),
        ("tenant:acme/app:chat/toolset:web", "tenant:acme/app:chat/toolset:web"),
        ("tenant:acme/workspace:a.b_c-d", "tenant:acme/workspace:a.b_c-d"),
        ("tenant:acme/workspace:" + String(repeating: "W", count: 128),
         "tenant:acme/workspace:" + String(repeating: "w", count: 128)),
    ])
    func budgetScopeIsStoredLowerCased(written: String, stored: String) throws {
        var world = try AdminWorld.acme()
        let budget = try adminBudget(world.budget(written, 100, unit: .credits))
        #expect(budget.scope.rawValue == stored)
        #expect(world.state.budgets[BudgetKey(AdminWorld.scope(stored), .credits)] == budget)
    }

    @Test(arguments: [
        "", "workspace:prod", "tenant:acme/agent:bot/workspace:prod", "tenant:acme/workspace:a/workspace:b",
        "tenant:acme/tenant:acme", "tenant:acme/team:x", "tenant:acme/workspace", "tenant:acme/workspace:",
        "tenant:acme/workspace:-prod", "tenant:acme/workspace:prod-", "tenant:acme/workspace:pr od",
        "tenant:acme/workspace:pr*d", "tenant:acme//workspace:prod", "tenant:acme/",
        "tenant:acme/workspace:" + String(repeating: "w", count: 129),
    ])
    func budgetScopeOutsideTheGrammarIsInvalid(scope: String) throws {
        var world = try AdminWorld.acme()
        let before = world.state
        #expect(adminCode(world.budget(scope, 100, unit: .credits)) == .invalidRequest)
        #expect(world.state == before)
    }

    @Test func budgetScopeMustStartWithItsOwnTenant() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.tenant("globex"))
        let before = world.state
        #expect(adminCode(world.budget("tenant:globex/workspace:prod", 100, tenant: "acme")) == .invalidRequest)
        #expect(world.state == before)
    }

    @Test func tenantKeyCreatesBudgetsOnlyForItsOwnTenant() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.tenant("globex"))
        let before = world.state
        let foreign = world.budget("tenant:acme/workspace:eng", 100, caller: AdminWorld.caller("globex"))
        #expect(adminCode(foreign) == .forbidden)
        #expect(world.state == before)
        let own = world.budget("tenant:acme/workspace:eng", 100, caller: AdminWorld.caller("acme"))
        #expect(try adminBudget(own).tenant == "acme")
    }

    @Test func budgetOfAMissingTenantIsTenantNotFoundAndSaysHowToCreateIt() {
        var world = AdminWorld()
        guard case .failure(let refusal) = world.budget("tenant:initech", 100, tenant: "initech") else {
            Issue.record("a budget was created without its tenant")
            return
        }
        #expect(refusal.code == .tenantNotFound)
        #expect(refusal.code.httpStatus == 404)
        #expect(refusal.message.contains("initech"))
        #expect(refusal.message.contains("tenant create"))
        #expect(world.state.budgets.isEmpty)
    }

    @Test(arguments: [(TenantStatus.suspended, ErrorCode.invalidRequest), (.closed, .tenantClosed)])
    func budgetsAreOnlyCreatedForActiveTenants(status: TenantStatus, refusal: ErrorCode) throws {
        var world = try AdminWorld.acme()
        try adminOK(world.setStatus("acme", status))
        let before = world.state
        #expect(adminCode(world.budget("tenant:acme/workspace:eng", 100)) == refusal)
        #expect(world.state == before)
    }

    @Test func budgetIsUniquePerScopeAndUnit() throws {
        var world = try AdminWorld.acme()
        let before = world.state
        #expect(adminCode(world.budget("tenant:acme/workspace:prod", 5)) == .duplicateResource)
        #expect(adminCode(world.budget("tenant:ACME/workspace:PROD", 5)) == .duplicateResource)
        #expect(world.state == before)
        #expect(adminCode(world.budget("tenant:acme/workspace:prod", 5, unit: .tokens)) == nil)
    }

    @Test func newBudgetStartsWithEverythingRemaining() throws {
        var world = try AdminWorld.acme()
        world.advance(42)
        let result = world.budget("tenant:acme/workspace:eng", 750, overdraft: 300)
        let budget = try adminBudget(result)
        #expect(budget.figures == adminFigures(allocated: 750, remaining: 750, reserved: 0, spent: 0, debt: 0))
        #expect(budget.overdraftLimit == 300)
        #expect(!budget.isOverLimit)
        #expect(budget.status == .active)
        #expect(budget.tenant == "acme")
        #expect(budget.rolloverPolicy == .none)
        #expect(budget.createdAtMilliseconds == world.now)
        #expect(try result.get().events == [.budgetCreated(budget)])
    }

    @Test func budgetFiguresMustNotBeNegative() throws {
        var world = try AdminWorld.acme()
        #expect(adminCode(world.budget("tenant:acme/workspace:eng", -1)) == .invalidRequest)
        #expect(adminCode(world.budget("tenant:acme/workspace:eng", 10, overdraft: -1)) == .invalidRequest)
        #expect(world.budgetAt("tenant:acme/workspace:eng") == nil)
    }

    // MARK: - Funding (semantics 5.7, 3.5; decisions 4, 5)

    enum FundingStart: String, Sendable {
        /// allocated 1000, a 200 hold, 300 spent: remaining 500, no debt, no overdraft.
        case clean
        /// allocated 500, a 200 hold, 300 spent and 150 of debt under a 200 limit: remaining -150.
        case inDebt

        var figures: LedgerFigures {
            switch self {
            case .clean: adminFigures(allocated: 1_000, remaining: 500, reserved: 200, spent: 300, debt: 0)
            case .inDebt: adminFigures(allocated: 500, remaining: -150, reserved: 200, spent: 300, debt: 150)
            }
        }
    }

    static func fundingWorld(_ start: FundingStart) throws -> AdminWorld {
        var world = AdminWorld()
        try adminOK(world.tenant("acme"))
        let only = Subject(tenant: "acme")
        switch start {
        case .clean:
            try adminOK(world.budget("tenant:acme", 1_000))
            try adminOK(world.reserve(only, 200, id: "hold"))
            try adminOK(world.debit(only, 300, eventID: "spend"))
        case .inDebt:
            try adminOK(world.budget("tenant:acme", 500, overdraft: 200))
            try adminOK(world.reserve(only, 200, id: "hold"))
            try adminOK(world.debit(only, 450, eventID: "spend", policy: .allowWithOverdraft))
        }
        #expect(world.figures("tenant:acme") == start.figures, "fixture drifted")
        return world
    }

    struct FundingRow: Sendable, CustomTestStringConvertible {
        var start: FundingStart
        var operation: FundingOperation
        var amount: Int64
        var spent: Int64? = nil
        /// allocated, remaining, reserved, spent, debt after; nil when refused.
        var after: [Int64]?
        var refusal: ErrorCode? = nil

        var testDescription: String {
            "\(start.rawValue): \(operation.cyclesName) \(amount)" + (spent.map { " spent \($0)" } ?? "")
        }
    }

    static let fundingRows: [FundingRow] = [
        // CREDIT adds to allocated and remaining and never touches debt (decision 4).
        FundingRow(start: .clean, operation: .credit, amount: 250, after: [1_250, 750, 200, 300, 0]),
        FundingRow(start: .inDebt, operation: .credit, amount: 250, after: [750, 100, 200, 300, 150]),
        // DEBIT takes from both, and never more than remains.
        FundingRow(start: .clean, operation: .debit, amount: 400, after: [600, 100, 200, 300, 0]),
        FundingRow(start: .clean, operation: .debit, amount: 500, after: [500, 0, 200, 300, 0]),
        FundingRow(start: .clean, operation: .debit, amount: 501, after: nil, refusal: .budgetExceeded),
        FundingRow(start: .inDebt, operation: .debit, amount: 1, after: nil, refusal: .budgetExceeded),
        // RESET resizes the ceiling: remaining = a - reserved - spent - debt, possibly negative.
        FundingRow(start: .clean, operation: .reset, amount: 800, after: [800, 300, 200, 300, 0]),
        FundingRow(start: .clean, operation: .reset, amount: 400, after: [400, -100, 200, 300, 0]),
        FundingRow(start: .inDebt, operation: .reset, amount: 1_000, after: [1_000, 350, 200, 300, 150]),
        // RESET_SPENT starts a new period: spent is the given figure or 0; holds and debt stay.
        FundingRow(start: .clean, operation: .resetSpent, amount: 1_000, after: [1_000, 800, 200, 0, 0]),
        FundingRow(start: .clean, operation: .resetSpent, amount: 1_000, spent: 100, after: [1_000, 700, 200, 100, 0]),
        FundingRow(start: .inDebt, operation: .resetSpent, amount: 600, spent: 50, after: [600, 200, 200, 50, 150]),
        // REPAY_DEBT pays debt first; any excess is credited to allocated and remaining.
        FundingRow(start: .inDebt, operation: .repayDebt, amount: 100, after: [500, -50, 200, 300, 50]),
        FundingRow(start: .inDebt, operation: .repayDebt, amount: 150, after: [500, 0, 200, 300, 0]),
        FundingRow(start: .inDebt, operation: .repayDebt, amount: 400, after: [750, 250, 200, 300, 0]),
        FundingRow(start: .clean, operation: .repayDebt, amount: 100, after: [1_100, 600, 200, 300, 0]),
    ]

    @Test(arguments: fundingRows)
    func fundingOperationSetsTheLedgerFigures(row: FundingRow) throws {
        var world = try Self.fundingWorld(row.start)
        let before = world.state
        let result = world.fund("tenant:acme", row.operation, row.amount, spent: row.spent)
        guard let after = row.after else {
            #expect(adminCode(result) == row.refusal)
            #expect(world.state == before)
            return
        }
        let expected = adminFigures(
            allocated: after[0], remaining: after[1], reserved: after[2], spent: after[3], debt: after[4])
        let reply = try adminFunding(result)
        #expect(reply.operation == row.operation)
        #expect(reply.previous == row.start.figures)
        #expect(reply.new == expected)
        #expect(reply.atMilliseconds == world.now)
        #expect(world.figures("tenant:acme") == expected)
        let budget = try #require(world.budgetAt("tenant:acme"))
        #expect(budget.satisfiesInvariant)
        #expect(!budget.isOverLimit)
        #expect(try result.get().events.count == 1)
    }

    @Test func debitBeyondRemainingSaysInsufficientFunds() throws {
        var world = try Self.fundingWorld(.clean)
        guard case .failure(let refusal) = world.fund("tenant:acme", .debit, 501) else {
            Issue.record("the DEBIT went through")
            return
        }
        #expect(refusal.code == .budgetExceeded)
        #expect(refusal.message.contains("insufficient funds"))
    }

    @Test(arguments: [FundingOperation.credit, .debit, .reset, .repayDebt])
    func spentIsOnlyAcceptedWithResetSpent(operation: FundingOperation) throws {
        var world = try Self.fundingWorld(.clean)
        let before = world.state
        #expect(adminCode(world.fund("tenant:acme", operation, 10, spent: 0)) == .invalidRequest)
        #expect(world.state == before)
    }

    @Test func fundingAmountsMustNotBeNegative() throws {
        var world = try Self.fundingWorld(.clean)
        let before = world.state
        #expect(adminCode(world.fund("tenant:acme", .credit, -1)) == .invalidRequest)
        #expect(adminCode(world.fund("tenant:acme", .resetSpent, 1_000, spent: -1)) == .invalidRequest)
        #expect(world.state == before)
    }

    /// A capped ALLOW_IF_AVAILABLE debit of 150 on a 100 budget flags it over limit with no debt at all.
    static func cappedWorld() throws -> AdminWorld {
        var world = AdminWorld()
        try adminOK(world.tenant("acme"))
        try adminOK(world.budget("tenant:acme", 100))
        try adminOK(world.debit(Subject(tenant: "acme"), 150, eventID: "capped", policy: .allowIfAvailable))
        let budget = try #require(world.budgetAt("tenant:acme"))
        #expect(budget.isOverLimit && budget.debt == .zero, "fixture drifted")
        return world
    }

    @Test(arguments: [
        (FundingOperation.credit, Int64(50)), (.debit, 0), (.reset, 500), (.resetSpent, 500), (.repayDebt, 10),
    ])
    func everyFundingOperationClearsACappingFlagWithoutDebt(operation: FundingOperation, amount: Int64) throws {
        var world = try Self.cappedWorld()
        #expect(adminCode(world.reserve(Subject(tenant: "acme"), 0, id: "probe-1")) == .overdraftLimitExceeded)
        try adminOK(world.fund("tenant:acme", operation, amount))
        #expect(world.budgetAt("tenant:acme")?.isOverLimit == false)
        #expect(adminCode(world.reserve(Subject(tenant: "acme"), 0, id: "probe-2")) == nil)
    }

    @Test func budgetUpdateClearsACappingFlagWithoutDebt() throws {
        var world = try Self.cappedWorld()
        try adminOK(world.updateBudget("tenant:acme", metadata: "{\"note\":\"reviewed\"}"))
        #expect(world.budgetAt("tenant:acme")?.isOverLimit == false)
    }

    @Test func overLimitIsRecomputedAsDebtAboveTheLimitAfterEveryFundingAndUpdate() throws {
        var world = try Self.fundingWorld(.inDebt)
        func overLimit() -> Bool? { world.budgetAt("tenant:acme")?.isOverLimit }
        #expect(overLimit() == false)                      // debt 150, limit 200

        try adminOK(world.updateBudget("tenant:acme", overdraft: 100))
        #expect(overLimit() == true)                       // debt 150 > limit 100
        try adminOK(world.fund("tenant:acme", .credit, 1_000))
        #expect(overLimit() == true)                       // CREDIT leaves the debt, so still over
        try adminOK(world.fund("tenant:acme", .repayDebt, 50))
        #expect(world.budgetAt("tenant:acme")?.debt == 100)
        #expect(overLimit() == false)                      // debt 100 == limit 100 is not over
        try adminOK(world.updateBudget("tenant:acme", overdraft: 99))
        #expect(overLimit() == true)                       // debt 100 > limit 99
        try adminOK(world.updateBudget("tenant:acme", overdraft: 100))
        #expect(overLimit() == false)                      // and back again by an update alone
    }

    @Test(arguments: FundingOperation.allCases)
    func fundingAFrozenBudgetIsBudgetFrozen(operation: FundingOperation) throws {
        var world = try AdminWorld.acme()
        try adminOK(world.freeze("tenant:acme/workspace:prod"))
        let before = world.state
        #expect(adminCode(world.fund("tenant:acme/workspace:prod", operation, 10)) == .budgetFrozen)
        #expect(world.state == before)
    }

    @Test(arguments: FundingOperation.allCases)
    func fundingAClosedBudgetIsBudgetClosed(operation: FundingOperation) throws {
        var world = try AdminWorld.acme()
        try world.closeBudgetByEvent("tenant:acme/workspace:prod")
        let before = world.state
        #expect(adminCode(world.fund("tenant:acme/workspace:prod", operation, 10)) == .budgetClosed)
        #expect(world.state == before)
    }

    @Test func fundingNeedsAnExistingBudgetOfTheCallersTenant() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.tenant("globex"))
        #expect(adminCode(world.fund("tenant:acme/workspace:nowhere", .credit, 10)) == .budgetNotFound)
        #expect(adminCode(world.fund("tenant:acme", .credit, 10, caller: AdminWorld.caller("globex"))) == .forbidden)
        #expect(adminCode(world.fund("tenant:acme", .credit, 10, caller: AdminWorld.caller("acme"))) == nil)
    }

    // MARK: - Funding idempotency (semantics 5.7; decision 11)

    @Test func sameFundingKeyAndPayloadReplaysTheOriginalReplyWithoutEvents() throws {
        var world = try AdminWorld.acme()
        let original = try adminFunding(world.fund("tenant:acme", .credit, 100, key: "fund-1"))
        #expect(original.new.allocated == 10_100)
        try adminOK(world.fund("tenant:acme", .credit, 7))  // the budget moves on meanwhile
        world.advance(60_000)
        let before = world.state

        let replay = world.fund("tenant:acme", .credit, 100, key: "fund-1")
        let decision = try replay.get()
        #expect(decision.isReplay)
        #expect(decision.events.isEmpty)
        #expect(try adminFunding(replay) == original)
        #expect(world.state == before)
    }

    @Test func sameFundingKeyWithAnotherPayloadIsAMismatch() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.fund("tenant:acme", .credit, 100, key: "fund-1"))
        let before = world.state
        #expect(adminCode(world.fund("tenant:acme", .credit, 200, key: "fund-1", payload: 2)) == .idempotencyMismatch)
        #expect(world.state == before)
    }

    @Test func fundingKeysAreIndependentPerTenant() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.tenant("globex"))
        try adminOK(world.budget("tenant:globex", 1_000, tenant: "globex"))
        try adminOK(world.fund("tenant:acme", .credit, 100, key: "fund-1"))

        let globex = world.fund("tenant:globex", .credit, 100, key: "fund-1")
        let decision = try globex.get()
        #expect(!decision.isReplay)
        #expect(decision.events.count == 1)
        #expect(try adminFunding(globex).new.allocated == 1_100)
        #expect(world.budgetAt("tenant:globex")?.allocated == 1_100)
        // Even a different payload under the same key is a fresh request in the other tenant.
        #expect(adminCode(world.fund("tenant:globex", .credit, 5, key: "fund-2", payload: 9)) == nil)
        #expect(adminCode(world.fund("tenant:acme", .credit, 5, key: "fund-2", payload: 1)) == nil)
    }

    // MARK: - Budget update (semantics 5.6; decisions 5, 7)

    @Test func frozenBudgetCanStillBeUpdatedAndStaysFrozen() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.freeze("tenant:acme/workspace:prod"))
        let budget = try adminBudget(world.updateBudget("tenant:acme/workspace:prod", overdraft: 250))
        #expect(budget.status == .frozen)
        #expect(budget.overdraftLimit == 250)
        #expect(world.budgetAt("tenant:acme/workspace:prod") == budget)
    }

    @Test func closedBudgetCannotBeUpdated() throws {
        var world = try AdminWorld.acme()
        try world.closeBudgetByEvent("tenant:acme/workspace:prod")
        let before = world.state
        #expect(adminCode(world.updateBudget("tenant:acme/workspace:prod", overdraft: 250)) == .budgetClosed)
        #expect(world.state == before)
    }

    @Test func updatingAMissingBudgetIsBudgetNotFound() throws {
        var world = try AdminWorld.acme()
        #expect(adminCode(world.updateBudget("tenant:acme/workspace:nowhere", overdraft: 1)) == .budgetNotFound)
    }

    @Test func capsAreSetByAnUpdateAndClearedByEmptyCaps() throws {
        var world = try AdminWorld.acme()
        let caps = Caps(maxTokens: 512, toolDenylist: ["shell"])
        try adminOK(world.updateBudget("tenant:acme/workspace:prod", caps: caps))
        #expect(world.budgetAt("tenant:acme/workspace:prod")?.caps == caps)
        let capped = try adminEvaluation(world.evaluate(AdminWorld.prod, 10, key: "d1"))
        #expect(capped.decision == .allowWithCaps)
        #expect(capped.caps == caps)

        try adminOK(world.updateBudget("tenant:acme/workspace:prod", metadata: "{}"))
        #expect(world.budgetAt("tenant:acme/workspace:prod")?.caps == caps)

        try adminOK(world.updateBudget("tenant:acme/workspace:prod", caps: Caps()))
        #expect(world.budgetAt("tenant:acme/workspace:prod")?.caps == nil)
        let plain = try adminEvaluation(world.evaluate(AdminWorld.prod, 10, key: "d2"))
        #expect(plain.decision == .allow)
        #expect(plain.caps == nil)
    }

    // MARK: - Freeze and unfreeze (semantics 5.6, 1.5; decision 2)

    @Test func budgetFreezesAndUnfreezesOnceEach() throws {
        var world = try AdminWorld.acme()
        let prod = "tenant:acme/workspace:prod"
        #expect(adminCode(world.unfreeze(prod)) == .invalidTransition)

        let frozen = world.freeze(prod)
        #expect(try adminBudget(frozen).status == .frozen)
        #expect(adminTranscript(try frozen.get().events) == ["BudgetUpdated freeze \(prod) [USD_MICROCENTS] -> FROZEN"])
        #expect(adminCode(world.freeze(prod)) == .invalidTransition)

        let thawed = world.unfreeze(prod)
        #expect(try adminBudget(thawed).status == .active)
        #expect(adminTranscript(try thawed.get().events) == [
            "BudgetUpdated unfreeze \(prod) [USD_MICROCENTS] -> ACTIVE",
        ])
        #expect(adminCode(world.unfreeze(prod)) == .invalidTransition)
        #expect(world.budgetAt(prod)?.status == .active)
    }

    @Test func closedBudgetCannotBeFrozenOrUnfrozen() throws {
        var world = try AdminWorld.acme()
        try world.closeBudgetByEvent("tenant:acme/workspace:prod")
        #expect(adminCode(world.freeze("tenant:acme/workspace:prod")) == .budgetClosed)
        #expect(adminCode(world.unfreeze("tenant:acme/workspace:prod")) == .budgetClosed)
    }

    @Test(arguments: ["tenant:acme/workspace:prod", "tenant:acme"])
    func frozenBudgetRefusesNewHoldsAndSpend(frozenScope: String) throws {
        var world = try AdminWorld.acme()
        try adminOK(world.freeze(frozenScope))
        let before = world.state.budgets

        #expect(adminCode(world.reserve(AdminWorld.prod, 10, id: "r1")) == .budgetFrozen)
        #expect(adminCode(world.debit(AdminWorld.prod, 10, eventID: "evt-1")) == .budgetFrozen)
        let decide = try adminEvaluation(world.evaluate(AdminWorld.prod, 10, key: "d1"))
        #expect(decide.decision == .deny)
        #expect(decide.reasonCode == .budgetFrozen)
        let dryRun = try adminEvaluation(world.reserve(AdminWorld.prod, 10, id: "dry-1", dryRun: true))
        #expect(dryRun.decision == .deny)
        #expect(dryRun.reasonCode == .budgetFrozen)
        #expect(world.state.budgets == before)

        try adminOK(world.unfreeze(frozenScope))
        #expect(adminCode(world.reserve(AdminWorld.prod, 10, id: "r2")) == nil)
    }

    @Test func reservationsMadeBeforeAFreezeStillSettle() throws {
        var world = try AdminWorld.acme()
        let prod = "tenant:acme/workspace:prod"
        try adminOK(world.reserve(AdminWorld.prod, 100, id: "r1"))
        try adminOK(world.reserve(AdminWorld.prod, 200, id: "r2"))
        try adminOK(world.reserve(AdminWorld.prod, 50, id: "r3"))
        try adminOK(world.reserve(AdminWorld.prod, 30, id: "r4"))
        try adminOK(world.freeze(prod))
        try adminOK(world.freeze("tenant:acme"))

        #expect(adminCode(world.commit("r1", 120)) == nil)
        #expect(adminCode(world.release("r2")) == nil)
        #expect(adminCode(world.extend("r3", by: 10_000)) == nil)
        world.advance(60_000 + 5_000 + 1)
        #expect(try world.sweep(["r3", "r4"]).get().reply == .expired(["r4"]))
        world.advance(10_000)
        #expect(try world.sweep(["r3"]).get().reply == .expired(["r3"]))

        #expect(world.ledgerRow(prod) == [1_000, 880, 0, 120, 0])
        #expect(world.ledgerRow("tenant:acme") == [10_000, 9_880, 0, 120, 0])
        #expect(world.budgetAt(prod)?.status == .frozen)
        #expect(world.logReplaysToState)
    }
}
