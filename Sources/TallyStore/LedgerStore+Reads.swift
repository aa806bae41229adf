import TallyCore

/// Reads: each runs in its own LMDB read transaction on the calling thread and never waits for the writer.
/// They see every command answered before they began: its projections are written right after its answer,
/// and a read that begins in between waits for them (`ProjectionsBarrier`).
extension LedgerStore {
    private func readProjections<T>(_ body: (borrowing LMDBReadTransaction) throws -> T) throws -> T {
        try writer.awaitAnsweredProjections()
        return try projections.environment.read(body)
    }

    public func budget(_ key: BudgetKey) throws -> Budget? {
        try readProjections { txn in
            try txn.get(projections.budgets, StoreLayout.budgetKey(key)).map(ProjectionCodec.decodeBudget)
        }
    }

    /// Budgets of a tenant whose scope lies under `scopePrefix` (or anywhere in the tenant), optionally in
    /// one unit, and containing every given `level:value` segment; in (scope, unit) order.
    public func budgets(tenant: String, under scopePrefix: ScopePath? = nil, unit: Unit? = nil, segments: [ScopeLevel: String] = [:]) throws -> [Budget] {
        let start = Array("tenant:\(tenant)".utf8)
        var result: [Budget] = []
        try readProjections { txn in
            try txn.scan(projections.budgets, from: start) { key, value in
                guard key.starts(with: start) else { return false }
                let budget = try ProjectionCodec.decodeBudget(value)
                guard budget.tenant == tenant else { return true }
                if let scopePrefix, !budget.scope.hasPrefix(scopePrefix) { return true }
                if let unit, budget.unit != unit { return true }
                if segments.contains(where: { !budget.scope.contains(level: $0.key, value: $0.value) }) { return true }
                result.append(budget)
                return true
            }
        }
        return result.sorted { $0.key < $1.key }
    }

    public func reservation(_ id: ReservationID) throws -> Reservation? {
        try readProjections { txn in
            guard let bytes = try txn.get(projections.reservations, StoreLayout.reservationKey(id)) else { return nil }
            let reservation = try ProjectionCodec.decodeReservation(bytes)
            return reservation.id == id ? reservation : nil
        }
    }

    public func reservations(_ query: ReservationQuery) throws -> ReservationPage {
        var matching: [Reservation] = []
        try readProjections { txn in
            try txn.scan(projections.reservations) { _, value in
                let reservation = try ProjectionCodec.decodeReservation(value)
                if query.matches(reservation) { matching.append(reservation) }
                return true
            }
        }
        matching.sort(by: query.precedes)
        if let after = query.after.map({ ReservationID($0) }), let index = matching.firstIndex(where: { $0.id == after }) {
            matching.removeFirst(index + 1)
        }
        let limit = max(1, query.limit)
        return ReservationPage(reservations: Array(matching.prefix(limit)), hasMore: matching.count > limit)
    }

    public func idempotencyRecord(_ key: IdempotencyKey) throws -> IdempotencyRecord? {
        try readProjections { txn in
            try projections.record(for: key, get: { try txn.get(projections.idempotency, $0) })
        }
    }

    public func tenant(_ id: String) throws -> Tenant? {
        try readProjections { txn in try txn.get(projections.tenants, StoreLayout.tenantKey(id)).map(ProjectionCodec.decodeTenant) }
    }

    public func tenants() throws -> [Tenant] {
        var result: [Tenant] = []
        try readProjections { txn in
            try txn.scan(projections.tenants) { _, value in
                result.append(try ProjectionCodec.decodeTenant(value))
                return true
            }
        }
        return result
    }

    /// API keys, of one tenant or of all, in id order.
    public func apiKeys(tenant: String?) throws -> [ApiKey] {
        var result: [ApiKey] = []
        try readProjections { txn in
            try txn.scan(projections.apiKeys) { _, value in
                let key = try ProjectionCodec.decodeApiKey(value)
                if tenant == nil || key.tenant == tenant { result.append(key) }
                return true
            }
        }
        return result.sorted { $0.id < $1.id }
    }

    /// The key with this secret hash, for authentication on the network threads.
    public func apiKey(secretHash: Digest256) throws -> ApiKey? {
        try readProjections { txn in try txn.get(projections.apiKeys, StoreLayout.apiKeyKey(secretHash)).map(ProjectionCodec.decodeApiKey) }
    }

    /// Events from `sequence` on (at most `limit`), with their chain values.
    public func events(from sequence: UInt64, limit: Int) throws -> [StoredEvent] {
        try environment.readEvents(from: sequence, limit: limit)
    }

    /// Log entries from `sequence` on, undecoded (chain checks).
    public func rawEvents(from sequence: UInt64, limit: Int) throws -> [RawStoredEvent] {
        try environment.readRawEvents(from: sequence, limit: limit)
    }

    /// Log entries from `sequence` on, in place (`EventLog.visitRawEvents`).
    public func visitRawEvents(
        from sequence: UInt64, limit: Int, _ visit: (UInt64, UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try environment.visitRawEvents(from: sequence, limit: limit, visit)
    }

    /// The last durable sequence (0 for an empty log).
    public func lastSequence() throws -> UInt64 {
        try environment.read { txn in try LogPosition.current(events: environment.database(StoreLayout.events), meta: environment.database(StoreLayout.meta), txn).lastSequence }
    }

    /// Every projection as stored, including terminal reservations and idempotency records.
    public func storedState() throws -> LedgerState {
        try readProjections { txn in try projections.loadEverything(txn) }
    }
}

/// One event as the log stores it: the decoded event and its chain value.
public struct StoredEvent: Sendable, Hashable {
    public var event: Event
    public var chain: [UInt8]
    public var record: [UInt8]

    public init(event: Event, chain: [UInt8], record: [UInt8]) {
        self.event = event
        self.chain = chain
        self.record = record
    }

    init(key: [UInt8], value: [UInt8]) throws {
        guard let sequence = StoreLayout.sequence(fromKey: key), let (chain, record) = EventChain.split(value) else {
            throw StoreError(.corrupt, "a log entry is malformed")
        }
        let event = try EventCodec.decode(record)
        guard event.sequence == sequence else {
            throw StoreError(.corrupt, "the log entry at key \(sequence) holds event \(event.sequence)")
        }
        self.event = event
        self.chain = chain
        self.record = record
    }
}
