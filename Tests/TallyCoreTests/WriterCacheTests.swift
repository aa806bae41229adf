import Testing
@testable import TallyCore

/// The two things the writer remembers from one command to the next to do less work: the scope paths of
/// subjects it derived before (`ScopeDerivations`) and the encoded head of an ACTIVE reservation
/// (`Reservation.encodedHead`). Both must give exactly what the work they skip would have given.
@Suite struct WriterCacheTests {
    // MARK: Scope derivations

    /// Subjects that differ in one level at a time, in case, in blank values and in tenant.
    static let subjects: [(tenant: String, subject: Subject)] = {
        var all: [(String, Subject)] = []
        for tenant in ["acme", "globex"] {
            for workspace in [nil, "prod", "Prod", " "] as [String?] {
                for agent in [nil, "planner", "executor"] as [String?] {
                    all.append((tenant, Subject(workspace: workspace, agent: agent)))
                    all.append((tenant, Subject(workspace: workspace, app: "chat", agent: agent)))
                    all.append((tenant, Subject(workspace: workspace, workflow: "task-7", agent: agent, toolset: "search")))
                    all.append((tenant, Subject(tenant: tenant, workspace: workspace, agent: agent, toolset: "browse")))
                }
            }
        }
        return all
    }()

    @Test(arguments: [1, 2, 7, ScopeDerivations.slotCount])
    func derivationsGiveWhatDerivingAfreshGives(slots: Int) {
        // With one slot every lookup lands on the last subject derived: the comparison of every level and of
        // the tenant is all that keeps a path from going to the wrong subject.
        let derivations = ScopeDerivations(slotCount: slots)
        for round in 0..<3 {
            let order = round == 1 ? Self.subjects.reversed() : Self.subjects
            for (tenant, subject) in order {
                let paths = derivations.paths(subject: subject, tenant: tenant)
                #expect(paths == ScopePath.derive(subject: subject, tenant: tenant), "\(tenant) \(subject)")
            }
        }
    }

    /// With one slot, each lookup meets the subject derived just before: one that differs in a single level
    /// (or only in the tenant) must not be handed the other's paths.
    @Test func subjectsThatDifferInOneLevelAreNotConfused() {
        let full = Subject(tenant: "acme", workspace: "prod", app: "chat", workflow: "task-7", agent: "planner", toolset: "search")
        for level in ScopeLevel.allCases {
            for replacement in ["other", nil] as [String?] {
                var variant = full
                switch level {
                case .tenant: variant.tenant = replacement
                case .workspace: variant.workspace = replacement
                case .app: variant.app = replacement
                case .workflow: variant.workflow = replacement
                case .agent: variant.agent = replacement
                case .toolset: variant.toolset = replacement
                }
                let derivations = ScopeDerivations(slotCount: 1)
                _ = derivations.paths(subject: full, tenant: "acme")
                let paths = derivations.paths(subject: variant, tenant: "acme")
                #expect(paths == ScopePath.derive(subject: variant, tenant: "acme"), "\(level.name) -> \(replacement ?? "nil")")
                if level != .tenant { #expect(paths != ScopePath.derive(subject: full, tenant: "acme"), "\(level.name)") }
            }
        }
        let derivations = ScopeDerivations(slotCount: 1)
        _ = derivations.paths(subject: full, tenant: "acme")
        #expect(derivations.paths(subject: full, tenant: "globex") == ScopePath.derive(subject: full, tenant: "globex"))
    }

    @Test func aSubjectDerivedAgainSharesTheFirstPaths() {
        let derivations = ScopeDerivations()
        let subject = Subject(workspace: "prod", workflow: "task-7", agent: "planner")
        let first = derivations.paths(subject: subject, tenant: "acme")
        var again = subject
        again.dimensions = ["run": "42"]  // not part of a path
        let second = derivations.paths(subject: again, tenant: "acme")
        #expect(first == second)
        #expect(first.withUnsafeBufferPointer { $0.baseAddress } == second.withUnsafeBufferPointer { $0.baseAddress })
        #expect(derivations.paths(subject: subject, tenant: "globex")[0].rawValue == "tenant:globex")
    }

    @Test func theWritersDraftWithDerivationsDecidesAsDecide() throws {
        var world = try AdminWorld.acme()
        let derivations = ScopeDerivations(slotCount: 1)
        for (index, subject) in [AdminWorld.prod, AdminWorld.dev, AdminWorld.prod, Subject(workspace: "PROD")].enumerated() {
            let command = Command.reserve(ReserveCommand(
                tenant: "acme", caller: AdminWorld.caller("acme"), reservationID: "r-\(index)",
                idempotency: AdminWorld.stamp("k-\(index)"), subject: subject, action: AdminWorld.action,
                estimate: Quantity(AdminWorld.usd, Amount(10))))
            guard case .success(.fresh(let drafted)) = Ledger.draft(world.state, command, now: world.now, derivations: derivations),
                  case .success(let decided) = Ledger.decide(world.state, command, now: world.now) else {
                Issue.record("reserve \(index) was refused")
                return
            }
            #expect(drafted == decided.events)
            world.run(command)
        }
    }

    // MARK: A reservation's encoded head

    static func encodedReusingHead(_ reservation: Reservation) -> [UInt8] {
        var writer = ByteWriter()
        ProjectionCodec.encodeReusingHead(reservation, into: &writer)
        return writer.bytes
    }

    /// Encodes the reservation both ways, expects the same bytes and that they decode back to it.
    static func expectSameEncoding(_ reservation: Reservation, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let plain = ProjectionCodec.encode(reservation)
        #expect(encodedReusingHead(reservation) == plain, "\(what)", sourceLocation: sourceLocation)
        #expect((try? ProjectionCodec.decodeReservation(plain)) == reservation, "\(what)", sourceLocation: sourceLocation)
    }

    @Test func aLifecycleEncodesTheSameWithTheHeadKept() throws {
        var world = try AdminWorld.acme()
        for id: ReservationID in ["r-commit", "r-release", "r-expire"] {
            try adminOK(world.reserve(Subject(workspace: "prod", agent: "planner"), 100, id: id))
            let active = try #require(world.state.reservations[id])
            #expect(active.encodedHead == nil)
            Self.expectSameEncoding(active, "\(id) reserved")
            #expect(active.encodedHead != nil, "kept while ACTIVE")
            #expect(world.state.reservations[id]?.encodedHead != nil, "kept in the box the state shares")
        }
        try adminOK(world.extend("r-commit", by: 30_000))
        let extended = try #require(world.state.reservations["r-commit"])
        #expect(extended.extensionCount == 1)
        Self.expectSameEncoding(extended, "extended: new expiry and count over the kept bytes")
        try adminOK(world.commit("r-commit", 80))
        try adminOK(world.release("r-release"))
        world.advance(24 * 3_600_000)
        try adminOK(world.sweep(["r-expire"]))
        for (id, status) in [(ReservationID("r-commit"), ReservationStatus.committed), ("r-release", .released), ("r-expire", .expired)] {
            let settled = try #require(world.state.reservations[id])
            #expect(settled.status == status)
            Self.expectSameEncoding(settled, "\(id) settled")
        }
    }

    @Test func aTerminalReservationKeepsNoHead() throws {
        var world = try AdminWorld.acme()
        try adminOK(world.reserve(AdminWorld.prod, 100, id: "r-1"))
        try adminOK(world.commit("r-1", 100))
        let settled = try #require(world.state.reservations["r-1"])
        Self.expectSameEncoding(settled, "committed, never encoded while ACTIVE")
        #expect(settled.encodedHead == nil)
    }

    /// Every field written before the settlement other than the three written over: changing it drops the
    /// kept bytes (each `_modify` must), so the next encoding is made afresh.
    static let headChanges: [(String, @Sendable (inout Reservation) -> Void)] = [
        ("id", { $0.id = "r-other" }),
        ("tenant", { $0.tenant = "globex" }),
        ("subject", { $0.subject.agent = "reviewer" }),
        ("action", { $0.action = Action(kind: "tool", name: "search") }),
        ("unit", { $0.unit = .tokens }),
        ("estimate", { $0.estimate = Amount(999) }),
        ("scopePath", { $0.scopePath = $0.affectedScopes[0] }),
        ("affectedScopes", { $0.affectedScopes.removeLast() }),
        ("budgetedScopes", { $0.budgetedScopes.append($0.affectedScopes[0]) }),
        ("createdAtMilliseconds", { $0.createdAtMilliseconds += 1 }),
        ("graceMilliseconds", { $0.graceMilliseconds += 1 }),
        ("overagePolicy", { $0.overagePolicy = .allowWithOverdraft }),
        ("maxExtensions", { $0.maxExtensions += 1 }),
        ("idempotencyKey", { $0.idempotencyKey = "k-other" }),
        ("caps", { $0.caps = Caps(maxTokens: 5) }),
        ("metadata", { $0.metadata = JSONText(#"{"run":1}"#) }),
        ("createdBy", { $0.createdBy = .admin }),
    ]

    @Test func changingAFieldOfTheHeadDropsTheKeptBytes() {
        #expect(Self.headChanges.count == 17)
        for (field, change) in Self.headChanges {
            let original = ValueSemanticsTests.reservation()
            _ = Self.encodedReusingHead(original)
            #expect(original.encodedHead != nil)
            var changed = original
            change(&changed)
            #expect(changed != original, "\(field) changed")
            #expect(changed.encodedHead == nil, "\(field)")
            Self.expectSameEncoding(changed, field)
            Self.expectSameEncoding(original, "\(field): the original keeps its bytes")
        }
    }

    @Test func theThreeFieldsWrittenOverKeepTheBytes() {
        var reservation = ValueSemanticsTests.reservation()
        _ = Self.encodedReusingHead(reservation)
        reservation.expiresAtMilliseconds = Int64.max - 7
        reservation.extensionCount = 2
        reservation.status = .released
        #expect(reservation.encodedHead != nil)
        Self.expectSameEncoding(reservation, "expiry, count and status written over")
        reservation.expiresAtMilliseconds = -1
        Self.expectSameEncoding(reservation, "a negative instant")
    }
}
