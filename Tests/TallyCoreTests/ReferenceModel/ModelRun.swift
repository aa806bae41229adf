@testable import TallyCore

/// One randomized run: the same command stream goes to the reference model and to `Ledger.execute`, and
/// every outcome, every budget and every reservation must agree; the core's state must keep the ledger
/// invariants after every step, and folding the collected events must rebuild the final state.
struct ModelRun {
    let seed: UInt64
    let steps: Int
    let allowOverdraft: Bool
    var model = ReferenceLedger()
    var state = LedgerState()
    var generator: WorkloadGenerator
    var events: [EventBody] = []
    var terminal: [ReservationID: ReservationStatus] = [:]
    /// How often each kind of outcome happened (for the coverage test and the report).
    var outcomes: [String: Int] = [:]
    /// Known core discrepancies met on the way, with where they happened.

    init(seed: UInt64, steps: Int, allowOverdraft: Bool) {
        self.seed = seed
        self.steps = steps
        self.allowOverdraft = allowOverdraft
        generator = WorkloadGenerator(seed: seed, allowOverdraft: allowOverdraft)
    }

    /// Runs to the end, or stops at the first disagreement and describes it.
    mutating func run() -> String? {
        var index = 0
        for command in generator.setupCommands() {
            if let failure = step(index, command) { return failure }
            index += 1
        }
        while index < steps {
            generator.advanceTime(model: model)
            // Two thirds in, one tenant is always closed, so that every run exercises the cascade, the
            // closed-tenant guard and replays across the close.
            let command = index == steps * 2 / 3
                ? generator.closeSomeTenant(model: model) : generator.nextCommand(model: model)
            if let failure = step(index, command) { return failure }
            index += 1
        }
        return checkReplay()
    }

    mutating func step(_ index: Int, _ command: Command) -> String? {
        let now = generator.now
        let expected = model.execute(command, now: now)
        let result = Ledger.execute(command, on: &state, now: now)
        let actual = ModelOutcome(result)
        var label = Self.label(command, actual)
        if case .success(let decision) = result, decision.isReplay { label += " (replay)" }
        if case .success(let decision) = result, decision.events.contains(where: Self.incursDebt) { label += " with debt" }
        outcomes[label, default: 0] += 1
        if expected != actual {
            var message = "seed \(seed) step \(index) now \(now) (overdraft world: \(allowOverdraft))\n"
            message += "command: \(command)\nexpected (model): \(expected)\nactual (core):    \(actual)"
            if case .failure(let refusal) = result { message += "\ncore message: \(refusal.message)" }
            return message
        }
        if case .success(let decision) = result { events += decision.events }
        // Scanning every reservation costs more than the step itself, so full scans run every 16 steps and
        // after the commands that can touch many reservations; other steps check what the command named.
        let full = index % 16 == 0 || index == steps - 1
            || { if case .expireReservations = command { true } else if case .updateTenant = command { true } else { false } }()
        if let broken = checkInvariants(full: full) ?? checkAgreement(full: full, touched: Self.touched(command, actual)) {
            return "seed \(seed) step \(index) now \(now) after \(command)\n\(broken)"
        }
        return nil
    }

    static func incursDebt(_ event: EventBody) -> Bool {
        switch event {
        case .committed(let c): c.deltas.contains { $0.debt > .zero }
        case .debitRecorded(let d): d.deltas.contains { $0.debt > .zero }
        default: false
        }
    }

    static func label(_ command: Command, _ outcome: ModelOutcome) -> String {
        let name = switch command {
        case .reserve(let c): c.dryRun ? "dryRun" : "reserve"
        case .decide: "decide"
        case .commit: "commit"
        case .release: "release"
        case .extend: "extend"
        case .recordDebit: "recordDebit"
        case .expireReservations: "expireReservations"
        case .createTenant: "createTenant"
        case .updateTenant: "updateTenant"
        case .createApiKey: "createApiKey"
        case .revokeApiKey: "revokeApiKey"
        case .updateApiKey: "updateApiKey"
        case .createBudget: "createBudget"
        case .fundBudget: "fundBudget"
        case .updateBudget: "updateBudget"
        case .freezeBudget: "freezeBudget"
        case .unfreezeBudget: "unfreezeBudget"
        }
        switch outcome {
        case .refused(let code): return "\(name) \(code)"
        case .replied(.evaluated(let reply)): return "\(name) \(reply.decision.cyclesName) \(reply.reasonCode?.cyclesName ?? "")"
        case .replied(.committed(let reply)): return "\(name) ok" + (reply.released != nil ? " under" : "")
        case .replied(.debitRecorded(let reply)): return "\(name) ok" + (reply.charged != nil ? " capped" : "")
        case .replied(.expired(let ids)): return "\(name) " + (ids.isEmpty ? "none" : "some")
        case .replied: return "\(name) ok"
        }
    }

    // MARK: Invariants on the core's state

    /// The reservation ids a command names (and the id a reserve created), for the per-step checks.
    static func touched(_ command: Command, _ outcome: ModelOutcome) -> [ReservationID] {
        switch command {
        case .commit(let c): [c.reservationID]
        case .release(let c): [c.reservationID]
        case .extend(let c): [c.reservationID]
        case .reserve: if case .replied(.reserved(let reply, _)) = outcome { [reply.reservationID] } else { [] }
        default: []
        }
    }

    func checkInvariants(full: Bool) -> String? {
        var held: [BudgetKey: Int128] = [:]
        var active = 0
        let holding: [Reservation] = full
            ? Array(state.reservations.values)
            : model.data.activeIDs.compactMap { state.reservations[$0] }
        for reservation in holding where reservation.status == .active {
            active += 1
            for scope in reservation.budgetedScopes {
                held[BudgetKey(scope, reservation.unit), default: 0] += Int128(reservation.estimate.value)
            }
        }
        if !full && active != model.data.activeIDs.count {
            return "the core has \(active) of the model's \(model.data.activeIDs.count) ACTIVE reservations active"
        }
        for (key, budget) in state.budgets {
            let a = Int128(budget.allocated.value), s = Int128(budget.spent.value)
            let r = Int128(budget.reserved.value), d = Int128(budget.debt.value)
            if Int128(budget.remaining.value) != a - s - r - d || a < 0 || s < 0 || r < 0 || d < 0 {
                return "ledger invariant broken on \(key): \(budget.balance)"
            }
            if r != held[key, default: 0] {
                return "reserved on \(key) is \(r) but ACTIVE reservations hold \(held[key, default: 0])"
            }
            if !allowOverdraft && d != 0 { return "debt \(d) on \(key) in a world without ALLOW_WITH_OVERDRAFT" }
        }
        return nil
    }

    /// Terminal reservation statuses never change (nothing settles twice).
    mutating func checkTerminal(_ reservations: [Reservation]) -> String? {
        for reservation in reservations {
            if let seen = terminal[reservation.id], seen != reservation.status {
                return "reservation \(reservation.id) went from \(seen.cyclesName) to \(reservation.status.cyclesName)"
            }
            if reservation.status.isTerminal { terminal[reservation.id] = reservation.status }
        }
        return nil
    }

    /// The model's budgets, reservations, tenants and keys must equal the core's, field by field.
    mutating func checkAgreement(full: Bool, touched: [ReservationID]) -> String? {
        let ids = full ? model.reservations.map(\.id) : model.data.activeIDs + touched
        let coreRows = ids.compactMap { state.reservations[$0] }
        if let broken = checkTerminal(full ? Array(state.reservations.values) : coreRows) { return broken }
        if model.budgets.count != state.budgets.count {
            return "model has \(model.budgets.count) budgets, core \(state.budgets.count)"
        }
        for row in model.budgets {
            let expected = model.balance(row)
            guard let budget = state.budgets[BudgetKey(expected.scope, row.unit)] else { return "core lacks \(row.scope)" }
            if budget.balance != expected { return "budget differs:\n model \(expected)\n core  \(budget.balance)" }
        }
        if model.reservations.count != state.reservations.count {
            return "model has \(model.reservations.count) reservations, core \(state.reservations.count)"
        }
        for id in ids {
            guard let position = model.reservationIndex(id) else { continue }
            let row = model.reservations[position]
            guard let core = state.reservations[id] else { return "core lacks reservation \(id)" }
            if core.status != row.status || core.expiresAtMilliseconds != row.expiresAt
                || core.extensionCount != row.extensionCount || core.budgetedScopes.map(\.rawValue) != row.budgetedScopes
                || core.overagePolicy != row.policy || core.graceMilliseconds != row.grace
            {
                return "reservation \(row.id) differs:\n model \(row)\n core  \(core)"
            }
        }
        for tenant in model.tenants where state.tenants[tenant.id]?.status != tenant.status {
            return "tenant \(tenant.id) is \(tenant.status) in the model, \(String(describing: state.tenants[tenant.id]?.status)) in the core"
        }
        for key in model.keys where state.apiKeys[key.id]?.status != key.status {
            return "key \(key.id) is \(key.status) in the model, \(String(describing: state.apiKeys[key.id]?.status)) in the core"
        }
        return nil
    }

    /// Folding the run's records with `WorkingSetFold` reaches the same working set as `Ledger.apply`, both
    /// from an empty state and from the working set a third of the way in (as a replay from a checkpoint).
    func checkRecordFold(expected: LedgerState) throws -> String? {
        let records = events.enumerated().map { index, body in
            EventCodec.encode(Event(sequence: UInt64(index + 1), timestampMilliseconds: 1_750_000_000_000 + Int64(index), body: body))
        }
        var fromStart = try WorkingSetFold()
        for record in records { try record.withUnsafeBytes { try fromStart.apply($0) } }
        if try fromStart.state() != expected { return "seed \(seed): folding the records differs from the working-set replay" }
        let third = events.count / 3
        var checkpoint = LedgerState()
        for event in events[..<third] { try Ledger.apply(event, to: &checkpoint, keepingHistory: false) }
        var fromCheckpoint = try WorkingSetFold(checkpoint)
        if try fromCheckpoint.state() != checkpoint { return "seed \(seed): a fold does not give back the state it started from" }
        for record in records[third...] { try record.withUnsafeBytes { try fromCheckpoint.apply($0) } }
        if try fromCheckpoint.state() != expected {
            return "seed \(seed): folding the records from event \(third + 1) on differs from the working-set replay"
        }
        return try checkBlockFold(records, expected: expected)
    }

    /// Folding the records as they lie in blocks (as a segment replay does: holds keep their records in the
    /// block until it is left), with a tiny arena that compacts often, reaches the same state, and every
    /// block is again its caller's alone once left.
    private func checkBlockFold(_ records: [[UInt8]], expected: LedgerState) throws -> String? {
        var fold = WorkingSetFold()
        fold.arenaCompactionFloor = 64
        var generator = ModelSplitMix64(seed: seed)
        var next = 0
        while next < records.count {
            let end = min(records.count, next + 1 + Int(generator.next() % 40))
            var block: [UInt8] = []
            var offsets: [Int] = []
            for record in records[next..<end] {
                offsets.append(block.count)
                block.append(contentsOf: record)
            }
            fold.enterBlock(block)
            try block.withUnsafeBytes { bytes in
                for (position, record) in records[next..<end].enumerated() {
                    let slice = UnsafeRawBufferPointer(rebasing: bytes[offsets[position]..<(offsets[position] + record.count)])
                    var none = NoCharges()
                    try fold.apply(slice, try RecordHeader(slice), atBlockOffset: offsets[position], charges: &none)
                }
            }
            fold.leaveBlock()
            // Left, the block is its caller's alone: writing to it does not copy it (a segment reader
            // reuses its buffer), and later blocks' commits still find the holds the fold copied out.
            let before = block.withUnsafeBufferPointer { $0.baseAddress }
            block[0] = 0xEE
            if block.withUnsafeBufferPointer({ $0.baseAddress }) != before { return "seed \(seed): the fold kept a reference to a block it left" }
            next = end
        }
        if try fold.state() != expected { return "seed \(seed): folding the records in blocks differs from the working-set replay" }
        return nil
    }

    /// Folding every event of the run from an empty state gives exactly the state the run ended with.
    func checkReplay() -> String? {
        do {
            let rebuilt = try LedgerState().applying(events)
            if rebuilt != state { return "seed \(seed): replaying \(events.count) events does not rebuild the final state" }
            // A working-set replay (no history kept) reaches the same tenants, keys, budgets and ACTIVE
            // reservations, and nothing else.
            var working = LedgerState()
            for event in events { try Ledger.apply(event, to: &working, keepingHistory: false) }
            var expected = state
            expected.reservations = expected.reservations.filter { $0.value.status == .active }
            expected.idempotency.removeAll()
            if working != expected { return "seed \(seed): a working-set replay differs from the final state's working set" }
            if let failure = try checkRecordFold(expected: expected) { return failure }
        } catch {
            return "seed \(seed): replaying the events failed: \(error)"
        }
        return nil
    }
}
