import TallyCore

/// Reading and writing the projection tables from and into a `LedgerState`, in the projections' own
/// environment (`StoreFiles`), whose `meta` holds the log position they cover.
struct Projections {
    let environment: LMDBEnvironment
    let budgets, reservations, expiry, idempotency, tenants, apiKeys: LMDBDatabase
    let meta: LMDBDatabase

    init(_ environment: LMDBEnvironment) {
        self.environment = environment
        meta = environment.database(StoreLayout.meta)
        budgets = environment.database(StoreLayout.budgets)
        reservations = environment.database(StoreLayout.reservations)
        expiry = environment.database(StoreLayout.expiry)
        idempotency = environment.database(StoreLayout.idempotency)
        tenants = environment.database(StoreLayout.tenants)
        apiKeys = environment.database(StoreLayout.apiKeys)
    }

    /// Writes every touched entry once, as it is in `state` (deleting entries that no longer exist), and
    /// keeps the expiry index in step: the old deadline of each touched reservation is removed and the new
    /// one added while it is ACTIVE.
    func write(_ touched: TouchedKeys, from state: LedgerState, oldDeadlines: [ReservationID: Int64], in txn: borrowing LMDBWriteTransaction) throws {
        var writes = WriteSet()
        write(touched, from: state, oldDeadlines: oldDeadlines, into: &writes)
        try writes.apply(txn)
    }

    /// The same entries as bytes to write later (the writer hands them to the flusher). `keyFilter` is told
    /// each idempotency key written.
    func write(
        _ touched: TouchedKeys, from state: LedgerState, oldDeadlines: [ReservationID: Int64], into writes: inout WriteSet,
        keyFilter: IdempotencyKeyFilter? = nil
    ) {
        for id in touched.tenants {
            if let tenant = state.tenants[id] { writes.put(tenants, StoreLayout.tenantKey(id)) { ProjectionCodec.encode(tenant, into: &$0) } }
        }
        for id in touched.apiKeys {
            if let key = state.apiKeys[id] { writes.put(apiKeys, StoreLayout.apiKeyKey(key.secretHash)) { ProjectionCodec.encode(key, into: &$0) } }
        }
        // The values are read in place (`values[index]` yields the stored value): a copy out of the dictionary
        // would retain and release each of its strings and arrays. The keys are built in the set's buffer.
        for key in touched.budgets {
            guard let index = state.budgets.index(forKey: key) else { continue }
            writes.put(budgets, key: { StoreLayout.appendBudgetKey(key, to: &$0) }) { ProjectionCodec.encode(state.budgets.values[index], into: &$0) }
        }
        for id in touched.reservations {
            guard let index = state.reservations.index(forKey: id) else { continue }
            writes.put(reservations, key: { StoreLayout.appendReservationKey(id, to: &$0) }) {
                ProjectionCodec.encodeReusingHead(state.reservations.values[index], into: &$0)
            }
            if let old = oldDeadlines[id] { writes.delete(expiry, key: { StoreLayout.appendExpiryKey(deadline: old, id: id, to: &$0) }) }
            if state.reservations.values[index].status == .active {
                let deadline = state.reservations.values[index].settleDeadlineMilliseconds
                writes.put(expiry, key: { StoreLayout.appendExpiryKey(deadline: deadline, id: id, to: &$0) }) { writer in id.withUTF8 { writer.writeBytes($0) } }
            }
        }
        for key in touched.idempotency {
            guard let index = state.idempotency.index(forKey: key) else { continue }
            let stored = writes.put(idempotency, key: { StoreLayout.appendIdempotencyKey(key, to: &$0) }) {
                Projections.writeIdempotencyValue(key, state.idempotency.values[index], into: &$0)
            }
            if let keyFilter { writes.withKey(stored) { keyFilter.add($0) } }
        }
    }

    /// Loads into `state` the reservations and idempotency records a command may consult that are not
    /// already there. Records what it loaded in `added`, so the writer can drop it again after the batch.
    func hydrate(
        _ lookups: TouchedKeys, into state: inout LedgerState, adding added: inout TouchedKeys,
        from txn: borrowing LMDBReadTransaction
    ) throws {
        for id in lookups.reservations { try hydrateReservation(id, into: &state, adding: &added, from: txn) }
        for key in lookups.idempotency { try hydrateRecord(key, into: &state, adding: &added, from: txn) }
    }

    /// The same for what `command` may consult (`Command.forEachLookup`), without building sets for it. An
    /// idempotency key `keyFilter` has never seen is not looked up (the table cannot hold it).
    func hydrate(
        for command: borrowing Command, into state: inout LedgerState, adding added: inout TouchedKeys,
        from txn: borrowing LMDBReadTransaction, keyFilter: IdempotencyKeyFilter? = nil
    ) throws {
        let budgets = state.budgets  // shares the dictionary's storage: the closures below change `state`
        try command.forEachLookup(
            budgets: budgets,
            reservation: { id in try hydrateReservation(id, into: &state, adding: &added, from: txn) },
            idempotency: { key in try hydrateRecord(key, into: &state, adding: &added, from: txn, keyFilter: keyFilter) })
    }

    private func hydrateReservation(
        _ id: ReservationID, into state: inout LedgerState, adding added: inout TouchedKeys, from txn: borrowing LMDBReadTransaction
    ) throws {
        // `index(forKey:)` tests presence without copying the value out.
        guard state.reservations.index(forKey: id) == nil,
              let bytes = try txn.get(reservations, StoreLayout.reservationKey(id)) else { return }
        let reservation = try ProjectionCodec.decodeReservation(bytes)
        guard reservation.id == id else { return }  // a hashed long key that collided
        state.reservations[id] = reservation
        added.reservations.insert(id)
    }

    private func hydrateRecord(
        _ key: IdempotencyKey, into state: inout LedgerState, adding added: inout TouchedKeys, from txn: borrowing LMDBReadTransaction,
        keyFilter: IdempotencyKeyFilter? = nil
    ) throws {
        guard state.idempotency.index(forKey: key) == nil else { return }
        let stored = StoreLayout.idempotencyKey(key)
        guard keyFilter?.mayHold(stored) ?? true, let bytes = try txn.get(idempotency, stored) else { return }
        let (storedKey, record) = try Projections.idempotencyEntry(bytes)
        guard storedKey == key else { return }  // a hashed long key that collided
        state.idempotency[key] = record
        added.idempotency.insert(key)
    }

    /// The writer's working set: every tenant, key and budget, and the ACTIVE reservations (found through
    /// the expiry index, so terminal history is never read at start-up).
    func loadWorkingSet(_ txn: borrowing LMDBReadTransaction) throws -> LedgerState {
        var state = LedgerState()
        try txn.scan(tenants) { _, value in
            let tenant = try ProjectionCodec.decodeTenant(value)
            state.tenants[tenant.id] = tenant
            return true
        }
        try txn.scan(apiKeys) { _, value in
            let key = try ProjectionCodec.decodeApiKey(value)
            state.apiKeys[key.id] = key
            state.apiKeyIDsByHash[key.secretHash] = key.id
            return true
        }
        try txn.scan(budgets) { _, value in
            let budget = try ProjectionCodec.decodeBudget(value)
            state.budgets[budget.key] = budget
            return true
        }
        var activeIDs: [ReservationID] = []
        try txn.scanInPlace(expiry) { _, value in
            guard let id = ReservationID(utf8: value) else {
                throw StoreError(.corrupt, "the expiry index holds a reservation id that is not UTF-8")
            }
            activeIDs.append(id)
            return true
        }
        for id in activeIDs {
            guard let bytes = try txn.get(reservations, StoreLayout.reservationKey(id)) else {
                throw StoreError(.corrupt, "the expiry index names reservation \(id), which is not stored")
            }
            let reservation = try ProjectionCodec.decodeReservation(bytes)
            guard reservation.status == .active else {
                throw StoreError(.corrupt, "the expiry index names reservation \(id), which is \(reservation.status.cyclesName)")
            }
            state.reservations[id] = reservation
        }
        return state
    }

    /// Everything stored, including terminal reservations and idempotency records (for `verify`).
    func loadEverything(_ txn: borrowing LMDBReadTransaction) throws -> LedgerState {
        var state = try loadWorkingSet(txn)
        try txn.scan(reservations) { _, value in
            let reservation = try ProjectionCodec.decodeReservation(value)
            state.reservations[reservation.id] = reservation
            return true
        }
        try txn.scan(idempotency) { _, value in
            let (key, record) = try Projections.idempotencyEntry(value)
            state.idempotency[key] = record
            return true
        }
        return state
    }

    /// The stored encodings of these reservations, nil where none is stored.
    func storedReservations(_ ids: [ReservationID], _ txn: borrowing LMDBReadTransaction) throws -> [[UInt8]?] {
        try ids.map { id in try txn.get(reservations, StoreLayout.reservationKey(id)) }
    }

    /// The stored idempotency records under these keys, nil where none is stored (or a shortened table key
    /// holds another key's record).
    func storedRecords(_ keys: [IdempotencyKey], _ txn: borrowing LMDBReadTransaction) throws -> [IdempotencyRecord?] {
        try keys.map { key in
            guard let bytes = try txn.get(idempotency, StoreLayout.idempotencyKey(key)) else { return nil }
            let (storedKey, record) = try Projections.idempotencyEntry(bytes)
            return storedKey == key ? record : nil
        }
    }

    /// An idempotency entry stores its full key before the record, because the table key may be shortened.
    /// Appended to the write set's buffer: u64 big-endian key length, `tenant 0 endpoint qualifier 0 key`,
    /// then the encoded record.
    static func writeIdempotencyValue(_ key: IdempotencyKey, _ record: IdempotencyRecord, into writer: inout ByteWriter) {
        let fullCount = key.tenant.utf8.count + 2 + key.qualifier.utf8.count + 1 + key.key.utf8.count
        writer.writeU64(UInt64(fullCount))
        writer.writeBytes(key.tenant.utf8)
        writer.writeU8(0)
        writer.writeU8(key.endpoint.rawValue)
        writer.writeBytes(key.qualifier.utf8)
        writer.writeU8(0)
        writer.writeBytes(key.key.utf8)
        ProjectionCodec.encode(record, into: &writer)
    }

    static func idempotencyEntry(_ value: [UInt8]) throws -> (IdempotencyKey, IdempotencyRecord) {
        guard value.count >= 8, let length = StoreLayout.uint64(Array(value.prefix(8))), length <= UInt64(value.count - 8) else {
            throw StoreError(.corrupt, "an idempotency entry is truncated")
        }
        let keyBytes = Array(value[8..<(8 + Int(length))])
        guard let key = parseIdempotencyKey(keyBytes) else { throw StoreError(.corrupt, "an idempotency entry has an unreadable key") }
        return (key, try ProjectionCodec.decodeIdempotencyRecord(Array(value[(8 + Int(length))...])))
    }

    static func parseIdempotencyKey(_ bytes: [UInt8]) -> IdempotencyKey? {
        guard let first = bytes.firstIndex(of: 0), first + 1 < bytes.count,
              let endpoint = IdempotencyEndpoint(rawValue: bytes[first + 1]) else { return nil }
        let rest = bytes[(first + 2)...]
        guard let second = rest.firstIndex(of: 0) else { return nil }
        return IdempotencyKey(
            tenant: String(decoding: bytes[..<first], as: UTF8.self), endpoint: endpoint,
            qualifier: String(decoding: rest[..<second], as: UTF8.self),
            key: String(decoding: rest[(second + 1)...], as: UTF8.self))
    }
}
