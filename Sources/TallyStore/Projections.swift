import TallyCore

/// Reading and writing the projection tables from and into a `LedgerState`, in the projections' own
/// environment (`StoreFiles`), whose `meta` holds the log position they cover.
struct Projections {
    let environment: LMDBEnvironment
    let budgets, reservations, expiry, idempotency, tenants, apiKeys: LMDBDatabase
    let meta: LMDBDatabase
    /// Where each idempotency record's row is (the table keeps them in the order they were written).
    let records: IdempotencyIndex

    init(_ environment: LMDBEnvironment, recordDigest: (@Sendable (IdempotencyKey) -> UInt64)? = nil) {
        self.environment = environment
        records = IdempotencyIndex(digest: recordDigest)
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
        try records.knowEnd { try txn.last(idempotency).flatMap { StoreLayout.ordinal(fromRowKey: $0.key) } }
        var writes = WriteSet()
        write(touched, from: state, oldDeadlines: oldDeadlines, into: &writes)
        try writes.apply(txn)
    }

    /// The same entries as bytes to write later (the writer hands them to the flusher). Each idempotency record
    /// gets a new row at the table's end, indexed in `records` at once (the index must know the table's end:
    /// built, or `knowEnd`).
    func write(
        _ touched: TouchedKeys, from state: LedgerState, oldDeadlines: [ReservationID: Int64], into writes: inout WriteSet
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
            // A key used again (its record aged out) gets a new row too: the newest row is the record.
            let ordinal = records.add(digest: records.digest(key))
            writes.put(idempotency, key: { StoreLayout.appendRowKey(ordinal, to: &$0) }) {
                Projections.writeIdempotencyValue(key, state.idempotency.values[index], into: &$0)
            }
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
    /// idempotency key whose digest no row has is not looked up at all (the usual case: a new key).
    func hydrate(
        for command: borrowing Command, into state: inout LedgerState, adding added: inout TouchedKeys,
        from txn: borrowing LMDBReadTransaction
    ) throws {
        let budgets = state.budgets  // shares the dictionary's storage: the closures below change `state`
        try command.forEachLookup(
            budgets: budgets,
            reservation: { id in try hydrateReservation(id, into: &state, adding: &added, from: txn) },
            idempotency: { key in try hydrateRecord(key, into: &state, adding: &added, from: txn) })
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
        _ key: IdempotencyKey, into state: inout LedgerState, adding added: inout TouchedKeys, from txn: borrowing LMDBReadTransaction
    ) throws {
        guard state.idempotency.index(forKey: key) == nil,
              let record = try record(for: key, get: { try txn.get(idempotency, $0) }) else { return }
        state.idempotency[key] = record
        added.idempotency.insert(key)
    }

    /// The stored record of `key`: the newest row among the index's candidates whose key equals `key` (as keys
    /// are equal in the ledger's state: strings compared as `String`s). Needs the index built (`indexRecords`).
    func record(for key: IdempotencyKey, get: ([UInt8]) throws -> [UInt8]?) throws -> IdempotencyRecord? {
        for ordinal in records.candidates(records.digest(key)) {
            guard let row = try get(StoreLayout.idempotencyRowKey(ordinal)) else { continue }  // not written (yet)
            let (stored, record) = try Projections.idempotencyEntry(row)
            if stored == key { return record }  // else another key with the same digest
        }
        return nil
    }

    /// Builds the index of idempotency rows from the table, unless it is built already.
    func indexRecordsIfNeeded(_ txn: borrowing LMDBReadTransaction) throws {
        guard !records.isBuilt else { return }
        try indexRecords(txn)
    }

    /// Builds the index of idempotency rows from the table, forgetting what it held (rows handed out for
    /// batches that failed, say).
    func indexRecords(_ txn: borrowing LMDBReadTransaction) throws {
        try records.build { add in
            try txn.scanInPlace(idempotency) { key, value in
                guard let ordinal = StoreLayout.ordinal(fromRowKey: key) else {
                    throw StoreError(.corrupt, "the idempotency table holds an entry whose key is not a row ordinal: a format 2 table not converted yet (open the directory once with tallyd)")
                }
                add(ordinal, try Projections.storedKey(in: value))
                return true
            }
        }
    }

    /// Format 2 kept each idempotency record under its key: this gives every one of them a row (in the order a
    /// scan meets them: a key had one record, so any order will do) and writes format 3. In chunks, each one
    /// transaction that deletes the entries it rewrites, so a conversion that stops halfway goes on from
    /// there at the next open (rows sort before format 2 keys: an ordinal's first byte is 0, a tenant id's never).
    @available(*, noasync, message: "runs write transactions")
    func convertKeyOrderedRecords(doing: String, limitBytes: Int, progress: inout StoreFiles.OpenProgress) throws {
        var next: UInt64 = 1
        try environment.read { txn in
            try txn.scanInPlace(idempotency) { key, _ in
                guard key.count == 8, key[0] == 0, let ordinal = StoreLayout.ordinal(fromRowKey: key) else { return false }
                next = ordinal + 1
                return true
            }
        }
        var converted = 0
        while true {
            var chunk: [(old: [UInt8], row: [UInt8], value: [UInt8])] = []
            try environment.read { txn in
                try txn.scan(idempotency, from: [0x01]) { key, value in
                    chunk.append((key, StoreLayout.idempotencyRowKey(next + UInt64(chunk.count)), value))
                    return chunk.count < 8_192
                }
            }
            if converted == 0 && !chunk.isEmpty { progress.say("converting the idempotency records to format \(StoreLayout.projectionsFormatVersion)") }
            let last = chunk.isEmpty
            try environment.writeGrowing(doing: doing, limitBytes: limitBytes) { txn in
                for entry in chunk {
                    try txn.delete(idempotency, entry.old)
                    try txn.put(idempotency, entry.row, entry.value)
                }
                if last {
                    try txn.put(meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.projectionsFormatVersion)))
                }
            }
            if last { break }
            next += UInt64(chunk.count)
            converted += chunk.count
            progress.tick("converting the idempotency records: \(converted) done")
        }
        if converted > 0 { progress.say("converted \(converted) idempotency records in \(progress.elapsed)") }
    }

    /// The number of idempotency keys the table holds records for (rows that a newer row of the same key
    /// replaced are not counted). Needs the index built.
    func storedRecordCount(_ txn: borrowing LMDBReadTransaction) throws -> Int {
        var single = 0
        var shared = Set<IdempotencyKey>()
        try txn.scanInPlace(idempotency) { _, value in
            let key = try Projections.storedKey(in: value)
            if records.candidates(records.digest(key)).older == nil { single += 1 } else { shared.insert(key) }
            return true
        }
        return single + shared.count
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
        // In the order the rows were written: a key's newest row is the one that stays.
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
        try indexRecordsIfNeeded(txn)
        return try keys.map { key in try record(for: key, get: { try txn.get(idempotency, $0) }) }
    }

    /// An idempotency row stores its full key before the record (the table key is an ordinal; in format 2 it
    /// was the key itself, shortened when long). Appended to the write set's buffer: u64 big-endian key
    /// length, `tenant 0 endpoint qualifier 0 key`, then the encoded record.
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

    /// Where the full key ends in a row: the u64 big-endian length before it says.
    private static func keyEnd(_ value: some Collection<UInt8>) throws -> Int {
        guard value.count >= 8 else { throw StoreError(.corrupt, "an idempotency entry is truncated") }
        let length = value.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(value.count - 8) else { throw StoreError(.corrupt, "an idempotency entry is truncated") }
        return 8 + Int(length)
    }

    /// The key a row holds, read from the row in LMDB's memory (the record is not decoded).
    static func storedKey(in value: UnsafeRawBufferPointer) throws -> IdempotencyKey {
        guard let key = parseIdempotencyKey(Array(value[8..<(try keyEnd(value))])) else {
            throw StoreError(.corrupt, "an idempotency entry has an unreadable key")
        }
        return key
    }

    /// Until when a row's record is kept for replays (`IdempotencyRecord.retainUntilMilliseconds`), read from the
    /// row in LMDB's memory without decoding the rest of the record.
    static func storedRetainUntil(in value: UnsafeRawBufferPointer) throws -> Int64 {
        try ProjectionCodec.retainUntil(ofEncodedRecord: value[(try keyEnd(value))...])
    }

    static func idempotencyEntry(_ value: [UInt8]) throws -> (IdempotencyKey, IdempotencyRecord) {
        let end = try keyEnd(value)
        guard let key = parseIdempotencyKey(Array(value[8..<end])) else { throw StoreError(.corrupt, "an idempotency entry has an unreadable key") }
        return (key, try ProjectionCodec.decodeIdempotencyRecord(Array(value[end...])))
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
