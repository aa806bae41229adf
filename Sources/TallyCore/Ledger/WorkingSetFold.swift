/// Folds event records into the working set (tenants, keys, budgets, ACTIVE reservations) reading only
/// what balances need, straight from the record bytes: `Ledger.apply(_:to:keepingHistory: false)` for
/// replays that run through millions of events (point-in-time balances, archive replays, the audit).
///
/// Decoding every record into an `Event` allocates and releases its strings, arrays and dictionaries, and
/// keying budgets by scope-path strings hashes each path on every event; that cost is most of a replay.
/// Here the lifecycle events (reserve, commit, release, extend, expire, debit) are walked in place with
/// `RecordCursor`: budgets are looked up by the bytes of their scope path and kept as rows of integers,
/// and an ACTIVE reservation is kept as its `Reserved` record plus the few facts settling it needs. The
/// other events are rare (tenants, keys, budgets, remembered evaluations) and go through the full decoder
/// and `Ledger.apply`. `state()` builds the same `LedgerState` that `Ledger.apply(keepingHistory: false)`
/// reaches over the same events; a model test checks it on random workloads, starting from empty states
/// and from the middle of runs.
public struct WorkingSetFold: Sendable {
    /// Tenants, keys and budgets; a budget's figures here are stale while its row in `rows` is current.
    private var base: LedgerState
    private var budgetIndex = ByteKeyTable()
    /// Per budget slot: its key, the UTF-8 of its scope path, and its current figures.
    private var budgetKeys: [BudgetKey] = []
    /// Per budget slot, what a lookup compares (kept apart from `budgetKeys`, whose strings are not read
    /// on the way): its unit and where the UTF-8 of its scope path is in `budgetScopeBytes`.
    private var budgetUnits: [Unit] = []
    private var budgetScopeRanges: [Range<Int>] = []
    private var budgetScopeBytes: [UInt8] = []
    /// Recently found budget slots (`budgetSlot`), -1 where none.
    private var budgetCache = [Int32](repeating: -1, count: WorkingSetFold.budgetCacheSize)
    private var rows: [Row] = []
    private var holdIndex = ByteKeyTable(capacity: 1_024)
    private var holds: [Hold] = []
    /// The keys of the holds (records and ids) back to back: copying a record here costs no allocation,
    /// and holds are plain values (no reference to count). Compacted when mostly settled holds' bytes.
    private var arena: [UInt8] = []
    private var arenaLiveBytes = 0
    /// The buffer of records being folded (`enterBlock`): a hold reserved from it keeps its record there
    /// until the block is left, and most holds settle before that, so their records are never copied.
    private var block: [UInt8] = []
    private var blockHolds: [Int32] = []
    /// The budget slots of each hold: `EventCodec.FieldLimit.scopesCountMax` entries per hold,
    /// `Hold.slotCount` of them used.
    private var holdSlots: [Int32] = []
    private var freeHolds: [Int32] = []
    /// Reservations that were ACTIVE in the starting state, by hold (they have no record here).
    private var startingReservations: [Int32: Reservation] = [:]
    /// The budgets of the event being folded (for the hold a `Reserved` adds, and for charges).
    private var scratchSlots = InlineList<Int32>(filler: -1)

    private static let slotsPerHold = EventCodec.FieldLimit.scopesCountMax

    /// Why a record could not be folded.
    public enum Failure: Error, Sendable {
        case undecodable(EventCodecError)
        case inconsistent(InconsistentEvent)
    }

    /// A budget's changing figures (`allocated` changes only through funding, a rare event).
    private struct Row {
        var remaining: Int64
        var reserved: Int64
        var spent: Int64
        var debt: Int64
        var isOverLimit: Bool
    }

    /// An ACTIVE reservation: `key` is where its `Reserved` record (or the UTF-8 of its id, for one from
    /// the starting state) is in the arena and `id` the range of the id in the key. An empty `key` marks a
    /// free entry (ids are never empty).
    private struct Hold {
        var key: Range<Int>
        /// Whether `key` is in `block` rather than in the arena.
        var inBlock = false
        var id: Range<Int>
        /// The id's first `idHeadBytes` bytes (zero past its end): ids that short are compared without
        /// reading the record, which is cold by the time the reservation settles.
        var idHead: SIMD2<UInt64>
        var hash: UInt64
        var unit: Unit
        var estimate: Int64
        var slotCount: Int
        var expiresAtMilliseconds: Int64?
        var extensionCount: Int?
        /// Where the tenant, the subject's agent and the action kind are in `key` (a record), for charges.
        var spendFields = SpendFields()
    }

    /// Ranges of a record's tenant, subject agent (nil when absent) and action kind.
    private struct SpendFields {
        var tenant: Range<Int> = 0..<0
        var agent: Range<Int>?
        var actionKind: Range<Int> = 0..<0

        init() {}

        /// Walks the tenant, subject and action that `Reserved` and `DebitRecorded` share, in that order,
        /// handing `sink` their strings (not the subject's dimensions or the action's tags).
        init<Sink: FoldSink>(_ cursor: inout RecordCursor, reporting sink: inout Sink) throws(EventCodecError) {
            tenant = try cursor.string(reporting: &sink)
            agent = try cursor.subjectAgent(reporting: &sink)
            actionKind = try cursor.string(reporting: &sink)
            _ = try cursor.string(reporting: &sink)  // action name
            try cursor.skipStrings()  // action tags
        }
    }

    /// Starts from an empty ledger.
    public init() {
        base = LedgerState()
    }

    /// Starts from a working set (a checkpoint's state). History in it is ignored.
    public init(_ state: LedgerState) throws(InconsistentEvent) {
        base = state
        base.reservations = [:]
        base.idempotency = [:]
        for budget in state.budgets.values { load(budget) }
        for reservation in state.reservations.values where reservation.status == .active {
            scratchSlots.removeAll()
            for scope in reservation.budgetedScopes {
                let utf8 = Array(scope.rawValue.utf8)
                let slot = utf8.withUnsafeBytes { budgetSlot($0, reservation.unit) }
                guard let slot else { throw InconsistentEvent("reservation \(reservation.id) holds on unknown budget \(scope)") }
                scratchSlots.append(slot)
            }
            let key = reservation.id.withUTF8 { Array($0) }
            let index = key.withUnsafeBytes { addHold(key: $0, id: 0..<key.count, unit: reservation.unit, estimate: reservation.estimate.value) }
            startingReservations[index] = reservation
        }
    }

    /// Folds one complete event record (header and body), the next in the log.
    public mutating func apply(_ record: UnsafeRawBufferPointer) throws(Failure) {
        var none = NoCharges()
        try apply(record, charges: &none)
    }

    /// Folds one record and hands `charges` the charge of a commit or a direct debit (before the
    /// reservation is forgotten, so that the charge can name who reserved it) and the fields it reports
    /// (`FoldSink`).
    public mutating func apply<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, charges: inout Sink) throws(Failure) {
        let header: RecordHeader
        do { header = try RecordHeader(record) } catch { throw .undecodable(error) }
        try apply(record, header, charges: &charges)
    }

    /// Starts folding records that lie in `bytes` (`apply(_:_:atBlockOffset:charges:)`), which must stay
    /// unchanged until `leaveBlock()`: this keeps a reference to it (no copy).
    public mutating func enterBlock(_ bytes: [UInt8]) {
        precondition(blockHolds.isEmpty, "the previous block was left")
        block = bytes
    }

    /// Copies the records of the holds still ACTIVE out of the block and lets go of it (after this, the
    /// caller's buffer is again its only reference, free to be reused).
    public mutating func leaveBlock() {
        let source = block
        for index in blockHolds where holds[Int(index)].inBlock {
            let key = holds[Int(index)].key
            holds[Int(index)].key = source.withUnsafeBytes { store(UnsafeRawBufferPointer(rebasing: $0[key])) }
            holds[Int(index)].inBlock = false
        }
        blockHolds.removeAll(keepingCapacity: true)
        block = []
    }

    /// `apply` for a record at `offset` in the buffer given to `enterBlock` (`record` is that slice of it).
    public mutating func apply<Sink: FoldSink>(
        _ record: UnsafeRawBufferPointer, _ header: RecordHeader, atBlockOffset offset: Int, charges: inout Sink
    ) throws(Failure) {
        precondition(block.withUnsafeBytes { $0.baseAddress.map { $0 + offset } == record.baseAddress && offset + record.count <= $0.count },
                     "the record lies in the block at that offset")
        try apply(record, header, blockOffset: offset, charges: &charges)
    }

    /// `apply` for a caller that has read and checked the record's header already (`RecordHeader`).
    public mutating func apply<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, _ header: RecordHeader, charges: inout Sink) throws(Failure) {
        try apply(record, header, blockOffset: nil, charges: &charges)
    }

    private mutating func apply<Sink: FoldSink>(
        _ record: UnsafeRawBufferPointer, _ header: RecordHeader, blockOffset: Int?, charges: inout Sink
    ) throws(Failure) {
        do {
            switch header.typeCode {
            case 8: try applyReserved(record, blockOffset: blockOffset, &charges)
            case 9: try applyCommitted(record, header, &charges)
            case 10: try applyReturned(record, released: true, &charges)
            case 11: try applyExtended(record, &charges)
            case 12: try applyReturned(record, released: false, &charges)
            case 13: try applyDebit(record, header, &charges)
            default: try applyDecoded(record, &charges)
            }
        } catch let error as Failure {
            throw error
        } catch let error as EventCodecError {
            throw .undecodable(error)
        } catch let error as InconsistentEvent {
            throw .inconsistent(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    /// The working set reached: what `Ledger.apply(keepingHistory: false)` gives over the same events.
    public func state() throws(Failure) -> LedgerState {
        precondition(blockHolds.isEmpty, "the block was left")
        var state = base
        for slot in rows.indices { write(slot, into: &state) }
        for index in holds.indices where !holds[index].key.isEmpty {
            let hold = holds[index]
            var reservation: Reservation
            if let starting = startingReservations[Int32(index)] {
                reservation = starting
            } else {
                let event: Event
                do { event = try EventCodec.decode(Array(arena[hold.key])) } catch { throw .undecodable(error) }
                guard case .reserved(let reserved) = event.body else {
                    preconditionFailure("a hold's record is the Reserved event that created it")
                }
                reservation = Reservation(reserved)
            }
            if let expiry = hold.expiresAtMilliseconds { reservation.expiresAtMilliseconds = expiry }
            if let count = hold.extensionCount { reservation.extensionCount = count }
            state.reservations[reservation.id] = reservation
        }
        return state
    }

    // MARK: Lifecycle events, walked in place

    private mutating func applyReserved<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, blockOffset: Int?, _ sink: inout Sink) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        let fields = try SpendFields(&cursor, reporting: &sink)
        let unit = try cursor.unit()
        let amount = try cursor.i64()
        _ = try cursor.string(reporting: &sink)  // scope path
        try cursor.strings(reporting: &sink)  // affected scopes
        let budgetedCount = try cursor.u16()
        guard budgetedCount <= Self.slotsPerHold else {
            throw EventCodecError(.countTooLarge, offset: cursor.offset - 2, reason: "budgeted scopes: \(budgetedCount), over the limit")
        }
        var slots = InlineList<Int32>(filler: -1)  // a local: stored lists are copied around each access
        var unknown: Range<Int>?
        for _ in 0..<budgetedCount {
            let scope = try cursor.string()
            if let slot = budgetSlot(UnsafeRawBufferPointer(rebasing: record[scope]), unit) {
                slots.append(slot)
            } else if unknown == nil {
                unknown = scope
            }
        }
        try cursor.skip(8 * 3)  // created, expires, grace
        try cursor.skip(1)  // overage policy
        try cursor.skip(8)  // max extensions
        try cursor.skipOptionalCaps()
        try cursor.stamp(reporting: &sink)
        try cursor.skip(8)  // replay retained until
        try cursor.skipOptionalString()  // metadata
        try cursor.caller(reporting: &sink)
        try cursor.expectEnd()

        let idBytes = UnsafeRawBufferPointer(rebasing: record[id])
        if findHold(idBytes) != nil { throw InconsistentEvent("Reserved reuses reservation id \(string(idBytes))") }
        if amount < 0 || budgetedCount == 0 {
            throw InconsistentEvent("Reserved \(string(idBytes)) has a negative amount or no budgeted scope")
        }
        for position in 0..<slots.count { try change(slots[position], remaining: -amount, reserved: amount) }
        if let unknown { throw unknownBudget(record, unknown, unit) }
        scratchSlots = slots
        let index = addHold(key: record, id: id, unit: unit, estimate: amount, blockOffset: blockOffset)
        holds[Int(index)].spendFields = fields
    }

    private mutating func applyCommitted<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, _ header: RecordHeader, _ charges: inout Sink) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        try cursor.skip(8)  // actual
        let charged = try cursor.i64()
        let deltas = try skipDeltas(&cursor, reporting: &charges)
        try cursor.stamp(reporting: &charges)
        try cursor.skipOptionalMetrics()
        try cursor.skipOptionalString()  // metadata
        try cursor.caller(reporting: &charges)
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        let index = try activeHold(UnsafeRawBufferPointer(rebasing: record[id]), event: "Committed")
        try applyDeltas(deltas, record, unit: holds[index].unit)
        if Sink.takesCharges, startingReservations[Int32(index)] == nil {
            let hold = holds[index]
            (hold.inBlock ? block : arena).withUnsafeBytes { keys in
                charge(charged, hold.unit, header, in: UnsafeRawBufferPointer(rebasing: keys[hold.key]), hold.spendFields, &charges)
            }
        } else if Sink.takesCharges, let reservation = startingReservations[Int32(index)] {
            chargeStarting(reservation, amount: charged, header, &charges)
        }
        removeHold(index)
    }

    /// The charge of a commit on a reservation that was ACTIVE in the starting state (no record kept).
    private func chargeStarting<Sink: FoldSink>(_ reservation: Reservation, amount: Int64, _ header: RecordHeader, _ charges: inout Sink) {
        let tenant = Array(reservation.tenant.utf8)
        let agent = reservation.subject.agent.map { Array($0.utf8) }
        let kind = Array(reservation.action.kind.utf8)
        tenant.withUnsafeBytes { tenant in
            kind.withUnsafeBytes { kind in
                func send(_ agent: UnsafeRawBufferPointer?) {
                    charges.charge(Charge(
                        amount: amount, unit: reservation.unit, timestampMilliseconds: header.timestampMilliseconds,
                        tenant: tenant, agent: agent, actionKind: kind, budgets: scratchSlots.array))
                }
                if let agent { agent.withUnsafeBytes { send($0) } } else { send(nil) }
            }
        }
    }

    /// Released and Expired: the whole hold goes back to every budgeted scope.
    private mutating func applyReturned<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, released: Bool, _ sink: inout Sink) throws {
        let event = released ? "Released" : "Expired"
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        let amount = try cursor.i64()
        if released {
            try cursor.skipOptionalString()  // reason
            try cursor.skip(1)  // cause
            if try cursor.bool() { try cursor.stamp(reporting: &sink) }
            try cursor.caller(reporting: &sink)
        }
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        let idBytes = UnsafeRawBufferPointer(rebasing: record[id])
        let index = try activeHold(idBytes, event: event)
        let estimate = holds[index].estimate
        guard amount == estimate else {
            throw InconsistentEvent("\(event) returns \(amount) but reservation \(string(idBytes)) holds \(estimate)")
        }
        for position in 0..<holds[index].slotCount {
            try change(holdSlots[index * Self.slotsPerHold + position], remaining: amount, reserved: -amount)
        }
        removeHold(index)
    }

    private mutating func applyExtended<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, _ sink: inout Sink) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        _ = try cursor.string(reporting: &sink)  // tenant
        let expiry = try cursor.i64()
        let count = try cursor.i64()
        try cursor.stamp(reporting: &sink)
        try cursor.skip(8)  // replay retained until
        try cursor.caller(reporting: &sink)
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        let index = try activeHold(UnsafeRawBufferPointer(rebasing: record[id]), event: "Extended")
        holds[index].expiresAtMilliseconds = expiry
        holds[index].extensionCount = Int(count)
    }

    private mutating func applyDebit<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, _ header: RecordHeader, _ charges: inout Sink) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        try cursor.skipString()  // event id
        let fields = try SpendFields(&cursor, reporting: &charges)
        let unit = try cursor.unit()
        try cursor.skip(8)  // actual
        let charged = try cursor.i64()
        try cursor.skip(1)  // overage policy
        _ = try cursor.string(reporting: &charges)  // scope path
        let deltas = try skipDeltas(&cursor, reporting: &charges)
        try cursor.stamp(reporting: &charges)
        try cursor.skip(8)  // replay retained until
        try cursor.skipOptionalMetrics()
        try cursor.skipOptionalI64()  // client time
        try cursor.skipOptionalString()  // metadata
        try cursor.caller(reporting: &charges)
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        try applyDeltas(deltas, record, unit: unit)
        if Sink.takesCharges { charge(charged, unit, header, in: record, fields, &charges) }
    }

    /// Reports a charge whose tenant, agent and action kind are the `fields` of `record`, on the budgets in
    /// `scratchSlots`.
    private func charge<Sink: FoldSink>(
        _ amount: Int64, _ unit: Unit, _ header: RecordHeader, in record: UnsafeRawBufferPointer, _ fields: SpendFields,
        _ charges: inout Sink
    ) {
        charges.charge(Charge(
            amount: amount, unit: unit, timestampMilliseconds: header.timestampMilliseconds,
            tenant: UnsafeRawBufferPointer(rebasing: record[fields.tenant]),
            agent: fields.agent.map { UnsafeRawBufferPointer(rebasing: record[$0]) },
            actionKind: UnsafeRawBufferPointer(rebasing: record[fields.actionKind]), budgets: scratchSlots.array))
    }

    // MARK: Rare events, decoded in full

    private mutating func applyDecoded<Sink: FoldSink>(_ record: UnsafeRawBufferPointer, _ sink: inout Sink) throws {
        let event = try EventCodec.decode(Array(record))
        sink.decoded(event.body)
        let key: BudgetKey? = switch event.body {
        case .budgetCreated(let budget): budget.key
        case .budgetFunded(let funded): funded.key
        case .budgetUpdated(let updated): updated.key
        default: nil
        }
        guard let key else { return try Ledger.apply(event.body, to: &base, keepingHistory: false) }
        let utf8 = Array(key.scope.rawValue.utf8)
        if let slot = utf8.withUnsafeBytes({ budgetSlot($0, key.unit) }) { write(Int(slot), into: &base) }
        try Ledger.apply(event.body, to: &base, keepingHistory: false)
        if let budget = base.budgets[key] { load(budget) }
    }

    // MARK: Budgets

    /// The budget a charge's `budgets` entry names.
    public func budgetKey(_ slot: Int32) -> BudgetKey { budgetKeys[Int(slot)] }

    /// The budget slot of a scope path in a unit. A small direct-mapped cache, indexed by the path's
    /// length and last eight bytes, answers most lookups with one comparison (a record names the same few
    /// budgets over and over); a miss goes to the hash table and fills the cache entry.
    private mutating func budgetSlot(_ scope: UnsafeRawBufferPointer, _ unit: Unit) -> Int32? {
        let entry = Self.cacheEntry(scope, unit)
        let cached = budgetCache[entry]
        if cached >= 0, isBudget(cached, scope, unit) { return cached }
        let slot = findBudget(scope, unit)
        if let slot { budgetCache[entry] = slot }
        return slot
    }

    private func findBudget(_ scope: UnsafeRawBufferPointer, _ unit: Unit) -> Int32? {
        budgetIndex.find(ByteKeyTable.hash(scope, seed: UInt64(unit.rawValue))) { isBudget($0, scope, unit) }
    }

    @inline(__always)
    private func isBudget(_ slot: Int32, _ scope: UnsafeRawBufferPointer, _ unit: Unit) -> Bool {
        budgetUnits[Int(slot)] == unit
            && budgetScopeBytes.withUnsafeBytes { ByteKeyTable.equal(UnsafeRawBufferPointer(rebasing: $0[budgetScopeRanges[Int(slot)]]), scope) }
    }

    private static let budgetCacheSize = 256

    @inline(__always)
    private static func cacheEntry(_ scope: UnsafeRawBufferPointer, _ unit: Unit) -> Int {
        var last: UInt64 = UInt64(unit.rawValue)
        if scope.count >= 8 { last ^= scope.loadUnaligned(fromByteOffset: scope.count - 8, as: UInt64.self) }
        let mixed = (last ^ UInt64(scope.count) << 56) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: mixed >> 56)  // 0..<256
    }

    /// Makes `budget`'s figures current, adding a slot for a budget not seen before.
    private mutating func load(_ budget: Budget) {
        let row = Row(remaining: budget.remaining.value, reserved: budget.reserved.value, spent: budget.spent.value,
                      debt: budget.debt.value, isOverLimit: budget.isOverLimit)
        let utf8 = Array(budget.scope.rawValue.utf8)
        if let slot = utf8.withUnsafeBytes({ budgetSlot($0, budget.unit) }) {
            rows[Int(slot)] = row
            return
        }
        let slot = Int32(rows.count)
        budgetKeys.append(budget.key)
        budgetUnits.append(budget.unit)
        budgetScopeRanges.append(budgetScopeBytes.count..<(budgetScopeBytes.count + utf8.count))
        budgetScopeBytes.append(contentsOf: utf8)
        rows.append(row)
        budgetIndex.insert(utf8.withUnsafeBytes { ByteKeyTable.hash($0, seed: UInt64(budget.unit.rawValue)) }, slot)
    }

    private func write(_ slot: Int, into state: inout LedgerState) {
        let row = rows[slot]
        let key = budgetKeys[slot]
        guard var budget = state.budgets[key] else { return }
        budget.remaining = Amount(row.remaining)
        budget.reserved = Amount(row.reserved)
        budget.spent = Amount(row.spent)
        budget.debt = Amount(row.debt)
        budget.isOverLimit = row.isOverLimit
        state.budgets[key] = budget
    }

    /// Adds to a budget's figures, refusing overflow as `Budget.applying` does (same order of fields).
    @inline(__always)
    private mutating func change(
        _ slot: Int32, remaining: Int64, reserved: Int64, spent: Int64 = 0, debt: Int64 = 0, marksOverLimit: Bool = false
    ) throws(InconsistentEvent) {
        let index = Int(slot)
        let row = rows[index]
        let (newRemaining, remainingOverflows) = row.remaining.addingReportingOverflow(remaining)
        let (newReserved, reservedOverflows) = row.reserved.addingReportingOverflow(reserved)
        let (newSpent, spentOverflows) = row.spent.addingReportingOverflow(spent)
        let (newDebt, debtOverflows) = row.debt.addingReportingOverflow(debt)
        if remainingOverflows || reservedOverflows || spentOverflows || debtOverflows {
            throw overflow(slot, row, [remaining, reserved, spent, debt])
        }
        rows[index] = Row(remaining: newRemaining, reserved: newReserved, spent: newSpent, debt: newDebt,
                          isOverLimit: row.isOverLimit || marksOverLimit)
    }

    /// Names the first figure of a budget that a change would take out of the Int64 range (in the order
    /// `Budget.applying` adds them).
    @inline(never)
    private func overflow(_ slot: Int32, _ row: Row, _ deltas: [Int64]) -> InconsistentEvent {
        let figures: [(String, Int64)] = [("remaining", row.remaining), ("reserved", row.reserved), ("spent", row.spent), ("debt", row.debt)]
        for ((name, value), delta) in zip(figures, deltas) where value.addingReportingOverflow(delta).overflow {
            return InconsistentEvent("event overflows budget \(budgetKeys[Int(slot)]): \(value) + \(delta) leaves the Int64 range (\(name))")
        }
        preconditionFailure("called for a change that overflows")
    }

    /// Where a record's delta list is: walked once to check its structure (`skipDeltas`), then again to
    /// apply it once the unit is known (`applyDeltas`), instead of being copied out in between.
    private struct DeltaList {
        var offset: Int
        var count: Int
    }

    private func skipDeltas<Sink: FoldSink>(_ cursor: inout RecordCursor, reporting sink: inout Sink) throws(EventCodecError) -> DeltaList {
        let count = try cursor.u16()
        guard count <= Self.slotsPerHold else {
            throw EventCodecError(.countTooLarge, offset: cursor.offset - 2, reason: "deltas: \(count), over the limit")
        }
        let list = DeltaList(offset: cursor.offset, count: count)
        for _ in 0..<count {
            _ = try cursor.string(reporting: &sink)  // scope
            try cursor.skip(8 * 4)  // remaining, reserved, spent, debt
            _ = try cursor.bool()  // marks over limit
        }
        return list
    }

    /// Applies the deltas `skipDeltas` checked, leaving the budgets they touched in `scratchSlots`.
    private mutating func applyDeltas(_ list: DeltaList, _ record: UnsafeRawBufferPointer, unit: Unit) throws {
        var cursor = RecordCursor(record, at: list.offset)
        var slots = InlineList<Int32>(filler: -1)
        for _ in 0..<list.count {
            let scope = try cursor.string()
            guard let slot = budgetSlot(UnsafeRawBufferPointer(rebasing: record[scope]), unit) else {
                throw unknownBudget(record, scope, unit)
            }
            slots.append(slot)
            try change(slot, remaining: try cursor.i64(), reserved: try cursor.i64(), spent: try cursor.i64(), debt: try cursor.i64(),
                       marksOverLimit: try cursor.bool())
        }
        scratchSlots = slots
    }

    private func unknownBudget(_ record: UnsafeRawBufferPointer, _ scope: Range<Int>, _ unit: Unit) -> InconsistentEvent {
        InconsistentEvent("event touches unknown budget \(string(UnsafeRawBufferPointer(rebasing: record[scope]))) [\(unit.cyclesName)]")
    }

    // MARK: Holds

    private func findHold(_ id: UnsafeRawBufferPointer) -> Int? {
        arena.withUnsafeBytes { arena in
            block.withUnsafeBytes { block in
                let head = Self.idHead(id)
                return holdIndex.find(ByteKeyTable.hash(id)) { index in
                    // Fields read one by one: a `Hold` is over a hundred bytes.
                    let index = Int(index)
                    guard holds[index].id.count == id.count, holds[index].idHead == head else { return false }
                    if id.count <= Self.idHeadBytes { return true }
                    let start = holds[index].key.lowerBound + holds[index].id.lowerBound
                    return ByteKeyTable.equal(UnsafeRawBufferPointer(rebasing: (holds[index].inBlock ? block : arena)[start..<(start + id.count)]), id)
                }.map(Int.init)
            }
        }
    }

    private static let idHeadBytes = 16

    @inline(__always)
    private static func idHead(_ id: UnsafeRawBufferPointer) -> SIMD2<UInt64> {
        var head = SIMD2<UInt64>(0, 0)
        if id.count >= idHeadBytes {
            head = id.loadUnaligned(as: SIMD2<UInt64>.self)
        } else {
            withUnsafeMutableBytes(of: &head) { $0.copyMemory(from: id) }
        }
        return head
    }

    private func activeHold(_ id: UnsafeRawBufferPointer, event: String) throws(InconsistentEvent) -> Int {
        guard let index = findHold(id) else { throw InconsistentEvent("\(event) for unknown reservation \(string(id))") }
        return index
    }

    /// Stores a hold on the budgets in `scratchSlots`.
    private mutating func addHold(key: UnsafeRawBufferPointer, id: Range<Int>, unit: Unit, estimate: Int64, blockOffset: Int? = nil) -> Int32 {
        let hash = ByteKeyTable.hash(UnsafeRawBufferPointer(rebasing: key[id]))
        var hold = Hold(key: 0..<0, id: id, idHead: Self.idHead(UnsafeRawBufferPointer(rebasing: key[id])), hash: hash, unit: unit, estimate: estimate, slotCount: scratchSlots.count)
        if let blockOffset {
            hold.key = blockOffset..<(blockOffset + key.count)
            hold.inBlock = true
        } else {
            hold.key = store(key)
        }
        let index: Int32
        if let free = freeHolds.popLast() {
            index = free
            holds[Int(index)] = hold
        } else {
            index = Int32(holds.count)
            holds.append(hold)
            holdSlots.append(contentsOf: repeatElement(-1, count: Self.slotsPerHold))
        }
        for position in 0..<scratchSlots.count { holdSlots[Int(index) * Self.slotsPerHold + position] = scratchSlots[position] }
        holdIndex.insert(hash, index)
        if hold.inBlock { blockHolds.append(index) }
        return index
    }

    /// Copies a hold's key into the arena.
    private mutating func store(_ key: UnsafeRawBufferPointer) -> Range<Int> {
        if arena.count >= arenaCompactionFloor && arena.count > 4 * arenaLiveBytes { compactArena() }
        let start = arena.count
        arena.append(contentsOf: key)  // one memcpy (`UnsafeRawBufferPointer._copyContents`)
        arenaLiveBytes += key.count
        return start..<arena.count
    }

    private mutating func removeHold(_ index: Int) {
        holdIndex.remove(holds[index].hash, Int32(index))
        if !holds[index].inBlock { arenaLiveBytes -= holds[index].key.count }
        holds[index].key = 0..<0
        holds[index].inBlock = false
        if !startingReservations.isEmpty { startingReservations[Int32(index)] = nil }
        freeHolds.append(Int32(index))
    }

    /// The arena is compacted only past this size (a few thousand records), and then only when at most a
    /// quarter of it is live: copying is amortized over at least three times as many bytes appended.
    /// Tests lower it to compact often.
    var arenaCompactionFloor = 1 << 20

    /// Moves the live holds' keys to the front of a new arena, in hold order.
    private mutating func compactArena() {
        var compacted: [UInt8] = []
        compacted.reserveCapacity(max(arenaLiveBytes * 2, arenaCompactionFloor))
        for index in holds.indices where !holds[index].key.isEmpty && !holds[index].inBlock {
            let start = compacted.count
            compacted.append(contentsOf: arena[holds[index].key])
            holds[index].key = start..<compacted.count
        }
        arena = compacted
    }

    private func string(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
}

/// The fixed header of an event record, read in place and checked against the record's length.
public struct RecordHeader: Sendable {
    public var typeCode: UInt8
    public var sequence: UInt64
    public var timestampMilliseconds: Int64

    public init(_ record: UnsafeRawBufferPointer) throws(EventCodecError) {
        guard record.count >= EventCodec.headerLength else {
            throw EventCodecError(.truncated, offset: record.count, reason: "truncated at offset \(record.count) reading the record header")
        }
        guard record[0] == EventCodec.formatVersion else {
            throw EventCodecError(.unsupportedVersion, offset: 0, reason: "format version \(record[0]) at offset 0 is not supported (this reader knows \(EventCodec.formatVersion))")
        }
        typeCode = record[1]
        sequence = UInt64(bigEndian: record.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
        timestampMilliseconds = Int64(bigEndian: record.loadUnaligned(fromByteOffset: 10, as: Int64.self))
        let bodyLength = Int(UInt32(bigEndian: record.loadUnaligned(fromByteOffset: 18, as: UInt32.self)))
        guard bodyLength == record.count - EventCodec.headerLength else {
            throw EventCodecError(.truncated, offset: record.count, reason: "the record is \(record.count) bytes but its header declares a body of \(bodyLength)")
        }
    }
}

/// A charge as `WorkingSetFold` reports it: the buffers are valid only during the call.
public struct Charge {
    public var amount: Int64
    public var unit: Unit
    public var timestampMilliseconds: Int64
    public var tenant: UnsafeRawBufferPointer
    public var agent: UnsafeRawBufferPointer?
    public var actionKind: UnsafeRawBufferPointer
    /// The budgets charged (`WorkingSetFold.budgetKey`), in the event's order.
    public var budgets: [Int32]

    public init(
        amount: Int64, unit: Unit, timestampMilliseconds: Int64, tenant: UnsafeRawBufferPointer, agent: UnsafeRawBufferPointer?,
        actionKind: UnsafeRawBufferPointer, budgets: [Int32]
    ) {
        self.amount = amount
        self.unit = unit
        self.timestampMilliseconds = timestampMilliseconds
        self.tenant = tenant
        self.agent = agent
        self.actionKind = actionKind
        self.budgets = budgets
    }
}

/// What a fold hands out besides the balances it keeps: the charges of commits and direct debits (the
/// audit's spend report) and, as it walks each record, the strings and digests a segment lifts out of it
/// (the sealer's `SegmentLiftHints`). Every method does nothing by default, and the fold is specialized for
/// each sink, so a fold that wants none of it pays nothing for the calls.
public protocol FoldSink {
    /// Whether the fold works out charges for this sink at all (a charge costs lookups and an array of the
    /// budgets charged): every sink says, so that one that takes them cannot be skipped by mistake.
    static var takesCharges: Bool { get }
    mutating func charge(_ charge: borrowing Charge)
    /// A string that segments count for their table, as the record holds its UTF-8: the tenant, the
    /// subject's values, the action's kind and name, the scope path, the affected scopes and the scopes of
    /// balance changes, a tenant caller's tenant and key id (`SegmentDictionary.forEachString`'s, in its order).
    mutating func string(_ utf8: UnsafeRawBufferPointer)
    /// The 32 bytes of an idempotency payload hash the record holds.
    mutating func digest(_ bytes: UnsafeRawBufferPointer)
    /// The body of a record the fold decoded in full (the rare events: tenants, keys, budgets, remembered
    /// evaluations), whose strings and digests it did not report.
    mutating func decoded(_ body: EventBody)
}

extension FoldSink {
    public mutating func charge(_ charge: borrowing Charge) {}
    public mutating func string(_ utf8: UnsafeRawBufferPointer) {}
    public mutating func digest(_ bytes: UnsafeRawBufferPointer) {}
    public mutating func decoded(_ body: EventBody) {}
}

/// The sink of a fold that only wants balances.
public struct NoCharges: FoldSink {
    public static var takesCharges: Bool { false }
    public init() {}
}

/// Up to `EventCodec.FieldLimit.scopesCountMax` values kept inline (a record names at most that many
/// scopes): the per-event lists of `WorkingSetFold` cost no allocation and no uniqueness check per write.
struct InlineList<Element: Sendable>: Sendable {
    private var storage: InlineArray<6, Element>
    private(set) var count = 0

    init(filler: Element) {
        precondition(EventCodec.FieldLimit.scopesCountMax == 6, "the inline capacity is the scope limit")
        storage = InlineArray(repeating: filler)
    }

    @inline(__always)
    mutating func removeAll() { count = 0 }

    @inline(__always)
    mutating func append(_ element: Element) {
        precondition(count < 6, "at most six entries")
        storage[count] = element
        count += 1
    }

    @inline(__always)
    subscript(position: Int) -> Element {
        _read {
            precondition(position < count, "an entry of the list")
            yield storage[position]
        }
    }

    var array: [Element] { (0..<count).map { storage[$0] } }
}
