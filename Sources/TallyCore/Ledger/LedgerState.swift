/// Everything `decide` consults and `apply` changes: the projections of the event log, as one value.
///
/// It holds terminal reservations and idempotency records too (commit and release replays need them);
/// expired idempotency records are ignored by lookups rather than deleted, so that folding the log always
/// gives the same value. A store may keep only part of this in memory as long as what a command touches
/// is present when it is decided.
public struct LedgerState: Sendable, Hashable {
    public var tenants: [String: Tenant] = [:]
    public var apiKeys: [String: ApiKey] = [:]
    public var apiKeyIDsByHash: [Digest256: String] = [:]
    public var budgets: [BudgetKey: Budget] = [:]
    public var reservations: [ReservationID: Reservation] = [:]
    public var idempotency: [IdempotencyKey: IdempotencyRecord] = [:]

    public init() {}

    /// Keeps the working set only (tenants, keys, budgets, ACTIVE reservations): settled reservations and
    /// idempotency records are history, which `Ledger.apply` never reads back, so replays that compare or
    /// store it elsewhere drop it as they go.
    public mutating func dropHistory() {
        reservations = reservations.filter { !$0.value.status.isTerminal }
        idempotency.removeAll()
    }

    /// The keys of the history this state holds (settled reservations, idempotency records), to store it.
    public var historyKeys: TouchedKeys {
        var keys = TouchedKeys()
        keys.reservations = Set(reservations.filter { $0.value.status.isTerminal }.keys)
        keys.idempotency = Set(idempotency.keys)
        return keys
    }

    /// The live idempotency record for a key, or `nil` if none was kept or it has aged out.
    public func idempotencyRecord(_ key: IdempotencyKey, now: Int64) -> IdempotencyRecord? {
        guard let record = idempotency[key], now <= record.retainUntilMilliseconds else { return nil }
        return record
    }

    /// Balances of the given scopes in one unit, in the order given (canonical for derived scopes).
    public func balances(of scopes: [ScopePath], unit: Unit) -> [Balance] {
        // Sized once and read in place: `compactMap` grew the array one balance at a time and copied each budget
        // out of the dictionary (a retain and a release of its strings) to read its balance.
        var balances: [Balance] = []
        balances.reserveCapacity(scopes.count)
        for scope in scopes {
            if let index = budgets.index(forKey: BudgetKey(scope, unit)) { balances.append(budgets.values[index].balance) }
        }
        return balances
    }

    /// The budgets `scopes` have in `unit`, in the order of `scopes` (those without one left out), in an array
    /// sized once.
    func budgets(of scopes: [ScopePath], unit: Unit) -> [Budget] {
        var found: [Budget] = []
        found.reserveCapacity(scopes.count)
        for scope in scopes {
            if let index = budgets.index(forKey: BudgetKey(scope, unit)) { found.append(budgets.values[index]) }
        }
        return found
    }

    /// Reservations whose settle deadline has passed, soonest deadline first, for the expiry sweep and for
    /// stores that keep their working set in memory.
    public func expiryCandidates(now: Int64, limit: Int = Limits.expirySweepCountMax) -> [ReservationID] {
        reservations.values
            .filter { $0.status == .active && now > $0.settleDeadlineMilliseconds }
            .sorted { ($0.settleDeadlineMilliseconds, $0.id) < ($1.settleDeadlineMilliseconds, $1.id) }
            .prefix(limit)
            .map(\.id)
    }

    /// Authenticates a tenant key by the SHA-256 of its secret (semantics 5.1): the key must exist, be
    /// ACTIVE and unexpired, and its tenant must be ACTIVE (decision 13: SUSPENDED and CLOSED are 401).
    public func authenticate(secretHash: Digest256, now: Int64) -> Result<ApiKey, Refusal> {
        guard let id = apiKeyIDsByHash[secretHash], let key = apiKeys[id] else {
            return .failure(Refusal(.unauthorized, "the API key is not valid"))
        }
        if key.status == .revoked { return .failure(Refusal(.unauthorized, "the API key \(key.id) is revoked")) }
        if let expiry = key.expiresAtMilliseconds, now >= expiry {
            return .failure(Refusal(.unauthorized, "the API key \(key.id) has expired"))
        }
        switch tenants[key.tenant]?.status {
        case .active?: return .success(key)
        case .suspended?: return .failure(Refusal(.unauthorized, "tenant \(key.tenant) is suspended"))
        case .closed?: return .failure(Refusal(.unauthorized, "tenant \(key.tenant) is closed"))
        case nil: return .failure(Refusal(.unauthorized, "the API key's tenant \(key.tenant) does not exist"))
        }
    }
}

extension LedgerState {
    /// Reads a stored reservation in place. The getter of `reservations.values[index]` returns a copy (a
    /// retain and a release of the reservation's shared box) on every field read; an `inout` access goes
    /// through `_modify`, which yields the stored value itself.
    /// `read` must only read: this is `mutating` solely to reach that accessor.
    package mutating func peekReservation<T>(
        at index: Dictionary<ReservationID, Reservation>.Index, _ read: (inout Reservation) -> T
    ) -> T {
        read(&reservations.values[index])
    }
}
