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
    private var budgetScopes: [[UInt8]] = []
    private var rows: [Row] = []
    private var holdIndex = ByteKeyTable(capacity: 1_024)
    private var holds: [Hold] = []
    /// The budget slots of each hold: `EventCodec.FieldLimit.scopesCountMax` entries per hold,
    /// `Hold.slotCount` of them used.
    private var holdSlots: [Int32] = []
    private var freeHolds: [Int32] = []
    /// Reservations that were ACTIVE in the starting state, by hold (they have no record here).
    private var startingReservations: [Int32: Reservation] = [:]
    /// Reused between events, so that only a `Reserved` allocates (the copy of its record).
    private var scratchSlots: [Int32] = []
    private var scratchDeltas: [PendingDelta] = []

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

    /// An ACTIVE reservation: `key` is its `Reserved` record (or the UTF-8 of its id for one from the
    /// starting state) and `id` the range of the id in it. An empty `key` marks a free entry (ids are
    /// never empty).
    private struct Hold {
        var key: [UInt8]
        var id: Range<Int>
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

        /// Walks the tenant, subject and action that `Reserved` and `DebitRecorded` share, in that order.
        init(_ cursor: inout RecordCursor) throws(EventCodecError) {
            tenant = try cursor.string()
            agent = try cursor.subjectAgent()
            actionKind = try cursor.string()
            try cursor.skipString()  // action name
            try cursor.skipStrings()  // action tags
        }
    }

    /// One per-scope change as a record states it, before the scope is resolved to a budget.
    private struct PendingDelta {
        var scope: Range<Int>
        var remaining: Int64
        var reserved: Int64
        var spent: Int64
        var debt: Int64
        var marksOverLimit: Bool
    }

    /// Starts from an empty ledger.
    public init() {
        base = LedgerState()
        scratchSlots.reserveCapacity(Self.slotsPerHold)
        scratchDeltas.reserveCapacity(Self.slotsPerHold)
    }

    /// Starts from a working set (a checkpoint's state). History in it is ignored.
    public init(_ state: LedgerState) throws(InconsistentEvent) {
        base = state
        base.reservations = [:]
        base.idempotency = [:]
        scratchSlots.reserveCapacity(Self.slotsPerHold)
        scratchDeltas.reserveCapacity(Self.slotsPerHold)
        for budget in state.budgets.values { load(budget) }
        for reservation in state.reservations.values where reservation.status == .active {
            scratchSlots.removeAll(keepingCapacity: true)
            for scope in reservation.budgetedScopes {
                let utf8 = Array(scope.rawValue.utf8)
                let slot = utf8.withUnsafeBytes { budgetSlot($0, reservation.unit) }
                guard let slot else { throw InconsistentEvent("reservation \(reservation.id) holds on unknown budget \(scope)") }
                scratchSlots.append(slot)
            }
            let key = Array(reservation.id.utf8)
            let index = addHold(key: key, id: 0..<key.count, unit: reservation.unit, estimate: reservation.estimate.value)
            startingReservations[index] = reservation
        }
    }

    /// Folds one complete event record (header and body), the next in the log.
    public mutating func apply(_ record: UnsafeRawBufferPointer) throws(Failure) {
        var none = NoCharges()
        try apply(record, charges: &none)
    }

    /// Folds one record and hands the charge of a commit or a direct debit to `charges` (before the
    /// reservation is forgotten, so that the charge can name who reserved it).
    public mutating func apply<Sink: ChargeSink>(_ record: UnsafeRawBufferPointer, charges: inout Sink) throws(Failure) {
        let header: RecordHeader
        do { header = try RecordHeader(record) } catch { throw .undecodable(error) }
        try apply(record, header, charges: &charges)
    }

    /// `apply` for a caller that has read and checked the record's header already (`RecordHeader`).
    public mutating func apply<Sink: ChargeSink>(_ record: UnsafeRawBufferPointer, _ header: RecordHeader, charges: inout Sink) throws(Failure) {
        do {
            switch header.typeCode {
            case 8: try applyReserved(record)
            case 9: try applyCommitted(record, header, &charges)
            case 10: try applyReturned(record, released: true)
            case 11: try applyExtended(record)
            case 12: try applyReturned(record, released: false)
            case 13: try applyDebit(record, header, &charges)
            default: try applyDecoded(record)
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
        var state = base
        for slot in rows.indices { write(slot, into: &state) }
        for index in holds.indices where !holds[index].key.isEmpty {
            let hold = holds[index]
            var reservation: Reservation
            if let starting = startingReservations[Int32(index)] {
                reservation = starting
            } else {
                let event: Event
                do { event = try EventCodec.decode(hold.key) } catch { throw .undecodable(error) }
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

    private mutating func applyReserved(_ record: UnsafeRawBufferPointer) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        let fields = try SpendFields(&cursor)
        let unit = try cursor.unit()
        let amount = try cursor.i64()
        try cursor.skipString()  // scope path
        try cursor.skipStrings()  // affected scopes
        let budgetedCount = try cursor.u16()
        guard budgetedCount <= Self.slotsPerHold else {
            throw EventCodecError(.countTooLarge, offset: cursor.offset - 2, reason: "budgeted scopes: \(budgetedCount), over the limit")
        }
        scratchSlots.removeAll(keepingCapacity: true)
        var unknown: Range<Int>?
        for _ in 0..<budgetedCount {
            let scope = try cursor.string()
            if let slot = budgetSlot(UnsafeRawBufferPointer(rebasing: record[scope]), unit) {
                scratchSlots.append(slot)
            } else if unknown == nil {
                unknown = scope
            }
        }
        try cursor.skip(8 * 3)  // created, expires, grace
        try cursor.skip(1)  // overage policy
        try cursor.skip(8)  // max extensions
        try cursor.skipOptionalCaps()
        try cursor.skipStamp()
        try cursor.skip(8)  // replay retained until
        try cursor.skipOptionalString()  // metadata
        try cursor.skipCaller()
        try cursor.expectEnd()

        let idBytes = UnsafeRawBufferPointer(rebasing: record[id])
        if findHold(idBytes) != nil { throw InconsistentEvent("Reserved reuses reservation id \(string(idBytes))") }
        if amount < 0 || budgetedCount == 0 {
            throw InconsistentEvent("Reserved \(string(idBytes)) has a negative amount or no budgeted scope")
        }
        for slot in scratchSlots { try change(slot, remaining: -amount, reserved: amount) }
        if let unknown { throw unknownBudget(record, unknown, unit) }
        let index = addHold(key: Array(record), id: id, unit: unit, estimate: amount)
        holds[Int(index)].spendFields = fields
    }

    private mutating func applyCommitted<Sink: ChargeSink>(_ record: UnsafeRawBufferPointer, _ header: RecordHeader, _ charges: inout Sink) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        try cursor.skip(8)  // actual
        let charged = try cursor.i64()
        try readDeltas(&cursor)
        try cursor.skipStamp()
        try cursor.skipOptionalMetrics()
        try cursor.skipOptionalString()  // metadata
        try cursor.skipCaller()
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        let index = try activeHold(UnsafeRawBufferPointer(rebasing: record[id]), event: "Committed")
        try applyDeltas(record, unit: holds[index].unit)
        if Sink.self != NoCharges.self, startingReservations[Int32(index)] == nil {
            holds[index].key.withUnsafeBytes { reserved in
                charge(charged, holds[index].unit, header, in: reserved, holds[index].spendFields, &charges)
            }
        } else if Sink.self != NoCharges.self, let reservation = startingReservations[Int32(index)] {
            chargeStarting(reservation, amount: charged, header, &charges)
        }
        removeHold(index)
    }

    /// The charge of a commit on a reservation that was ACTIVE in the starting state (no record kept).
    private func chargeStarting<Sink: ChargeSink>(_ reservation: Reservation, amount: Int64, _ header: RecordHeader, _ charges: inout Sink) {
        let tenant = Array(reservation.tenant.utf8)
        let agent = reservation.subject.agent.map { Array($0.utf8) }
        let kind = Array(reservation.action.kind.utf8)
        tenant.withUnsafeBytes { tenant in
            kind.withUnsafeBytes { kind in
                func send(_ agent: UnsafeRawBufferPointer?) {
                    charges.charge(Charge(
                        amount: amount, unit: reservation.unit, timestampMilliseconds: header.timestampMilliseconds,
                        tenant: tenant, agent: agent, actionKind: kind, budgets: scratchSlots))
                }
                if let agent { agent.withUnsafeBytes { send($0) } } else { send(nil) }
            }
        }
    }

    /// Released and Expired: the whole hold goes back to every budgeted scope.
    private mutating func applyReturned(_ record: UnsafeRawBufferPointer, released: Bool) throws {
        let event = released ? "Released" : "Expired"
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        let amount = try cursor.i64()
        if released {
            try cursor.skipOptionalString()  // reason
            try cursor.skip(1)  // cause
            if try cursor.bool() { try cursor.skipStamp() }
            try cursor.skipCaller()
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

    private mutating func applyExtended(_ record: UnsafeRawBufferPointer) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        let id = try cursor.string()
        try cursor.skipString()  // tenant
        let expiry = try cursor.i64()
        let count = try cursor.i64()
        try cursor.skipStamp()
        try cursor.skip(8)  // replay retained until
        try cursor.skipCaller()
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        let index = try activeHold(UnsafeRawBufferPointer(rebasing: record[id]), event: "Extended")
        holds[index].expiresAtMilliseconds = expiry
        holds[index].extensionCount = Int(count)
    }

    private mutating func applyDebit<Sink: ChargeSink>(_ record: UnsafeRawBufferPointer, _ header: RecordHeader, _ charges: inout Sink) throws {
        var cursor = RecordCursor(record, at: EventCodec.headerLength)
        try cursor.skipString()  // event id
        let fields = try SpendFields(&cursor)
        let unit = try cursor.unit()
        try cursor.skip(8)  // actual
        let charged = try cursor.i64()
        try cursor.skip(1)  // overage policy
        try cursor.skipString()  // scope path
        try readDeltas(&cursor)
        try cursor.skipStamp()
        try cursor.skip(8)  // replay retained until
        try cursor.skipOptionalMetrics()
        try cursor.skipOptionalI64()  // client time
        try cursor.skipOptionalString()  // metadata
        try cursor.skipCaller()
        try cursor.skip(8)  // at
        try cursor.expectEnd()
        try applyDeltas(record, unit: unit)
        if Sink.self != NoCharges.self { charge(charged, unit, header, in: record, fields, &charges) }
    }

    /// Reports a charge whose tenant, agent and action kind are the `fields` of `record`, on the budgets in
    /// `scratchSlots`.
    private func charge<Sink: ChargeSink>(
        _ amount: Int64, _ unit: Unit, _ header: RecordHeader, in record: UnsafeRawBufferPointer, _ fields: SpendFields,
        _ charges: inout Sink
    ) {
        charges.charge(Charge(
            amount: amount, unit: unit, timestampMilliseconds: header.timestampMilliseconds,
            tenant: UnsafeRawBufferPointer(rebasing: record[fields.tenant]),
            agent: fields.agent.map { UnsafeRawBufferPointer(rebasing: record[$0]) },
            actionKind: UnsafeRawBufferPointer(rebasing: record[fields.actionKind]), budgets: scratchSlots))
    }

    // MARK: Rare events, decoded in full

    private mutating func applyDecoded(_ record: UnsafeRawBufferPointer) throws {
        let event = try EventCodec.decode(Array(record))
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

    private func budgetSlot(_ scope: UnsafeRawBufferPointer, _ unit: Unit) -> Int32? {
        budgetIndex.find(ByteKeyTable.hash(scope, seed: UInt64(unit.rawValue))) { slot in
            budgetKeys[Int(slot)].unit == unit && budgetScopes[Int(slot)].withUnsafeBytes { Self.equal($0, scope) }
        }
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
        budgetScopes.append(utf8)
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
    private mutating func change(
        _ slot: Int32, remaining: Int64, reserved: Int64, spent: Int64 = 0, debt: Int64 = 0, marksOverLimit: Bool = false
    ) throws(InconsistentEvent) {
        var row = rows[Int(slot)]
        func add(_ value: inout Int64, _ delta: Int64, _ name: String) throws(InconsistentEvent) {
            let (sum, overflow) = value.addingReportingOverflow(delta)
            if overflow {
                throw InconsistentEvent("event overflows budget \(budgetKeys[Int(slot)]): \(value) + \(delta) leaves the Int64 range (\(name))")
            }
            value = sum
        }
        try add(&row.remaining, remaining, "remaining")
        try add(&row.reserved, reserved, "reserved")
        try add(&row.spent, spent, "spent")
        try add(&row.debt, debt, "debt")
        if marksOverLimit { row.isOverLimit = true }
        rows[Int(slot)] = row
    }

    /// Reads a delta list into `scratchDeltas`; the scopes are resolved once the unit is known.
    private mutating func readDeltas(_ cursor: inout RecordCursor) throws(EventCodecError) {
        let count = try cursor.u16()
        guard count <= Self.slotsPerHold else {
            throw EventCodecError(.countTooLarge, offset: cursor.offset - 2, reason: "deltas: \(count), over the limit")
        }
        scratchDeltas.removeAll(keepingCapacity: true)
        for _ in 0..<count {
            scratchDeltas.append(PendingDelta(
                scope: try cursor.string(), remaining: try cursor.i64(), reserved: try cursor.i64(), spent: try cursor.i64(),
                debt: try cursor.i64(), marksOverLimit: try cursor.bool()))
        }
    }

    /// Applies `scratchDeltas`, leaving the budgets they touched in `scratchSlots`.
    private mutating func applyDeltas(_ record: UnsafeRawBufferPointer, unit: Unit) throws(InconsistentEvent) {
        scratchSlots.removeAll(keepingCapacity: true)
        for delta in scratchDeltas {
            guard let slot = budgetSlot(UnsafeRawBufferPointer(rebasing: record[delta.scope]), unit) else {
                throw unknownBudget(record, delta.scope, unit)
            }
            scratchSlots.append(slot)
            try change(slot, remaining: delta.remaining, reserved: delta.reserved, spent: delta.spent, debt: delta.debt,
                       marksOverLimit: delta.marksOverLimit)
        }
    }

    private func unknownBudget(_ record: UnsafeRawBufferPointer, _ scope: Range<Int>, _ unit: Unit) -> InconsistentEvent {
        InconsistentEvent("event touches unknown budget \(string(UnsafeRawBufferPointer(rebasing: record[scope]))) [\(unit.cyclesName)]")
    }

    // MARK: Holds

    private func findHold(_ id: UnsafeRawBufferPointer) -> Int? {
        // Fields read in place: copying a `Hold` out would retain and release its record on every probe.
        holdIndex.find(ByteKeyTable.hash(id)) { index in
            let range = holds[Int(index)].id
            return range.count == id.count && holds[Int(index)].key.withUnsafeBytes { Self.equal(UnsafeRawBufferPointer(rebasing: $0[range]), id) }
        }.map(Int.init)
    }

    private func activeHold(_ id: UnsafeRawBufferPointer, event: String) throws(InconsistentEvent) -> Int {
        guard let index = findHold(id) else { throw InconsistentEvent("\(event) for unknown reservation \(string(id))") }
        return index
    }

    /// Stores a hold on the budgets in `scratchSlots`.
    private mutating func addHold(key: [UInt8], id: Range<Int>, unit: Unit, estimate: Int64) -> Int32 {
        let hash = key.withUnsafeBytes { ByteKeyTable.hash(UnsafeRawBufferPointer(rebasing: $0[id])) }
        let hold = Hold(key: key, id: id, hash: hash, unit: unit, estimate: estimate, slotCount: scratchSlots.count)
        let index: Int32
        if let free = freeHolds.popLast() {
            index = free
            holds[Int(index)] = hold
        } else {
            index = Int32(holds.count)
            holds.append(hold)
            holdSlots.append(contentsOf: repeatElement(-1, count: Self.slotsPerHold))
        }
        for (position, slot) in scratchSlots.enumerated() { holdSlots[Int(index) * Self.slotsPerHold + position] = slot }
        holdIndex.insert(hash, index)
        return index
    }

    private mutating func removeHold(_ index: Int) {
        holdIndex.remove(holds[index].hash, Int32(index))
        holds[index].key = []
        if !startingReservations.isEmpty { startingReservations[Int32(index)] = nil }
        freeHolds.append(Int32(index))
    }

    /// Byte equality eight bytes at a time (keys are a few dozen bytes; `elementsEqual` goes byte by byte).
    @inline(__always)
    private static func equal(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        let count = left.count
        guard count >= 8 else { return left.elementsEqual(right) }
        var offset = 0
        while offset + 8 <= count {
            if left.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != right.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
                return false
            }
            offset += 8
        }
        // The last eight bytes (overlapping the words compared) instead of a byte loop.
        return offset == count
            || left.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == right.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
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

/// Takes the charges of a fold (the audit's spend report).
public protocol ChargeSink {
    mutating func charge(_ charge: borrowing Charge)
}

/// The sink of a fold that only wants balances.
public struct NoCharges: ChargeSink {
    public init() {}
    public func charge(_ charge: borrowing Charge) {}
}
