import TallyCore

/// A reservation listing (semantics 2.8): the tenant's reservations matching every given filter, sorted,
/// one page at a time. Time bounds are inclusive epoch milliseconds.
public struct ReservationQuery: Sendable, Hashable {
    public enum SortKey: String, Sendable, Hashable, CaseIterable {
        case reservationID = "reservation_id", tenant, scopePath = "scope_path", status, reserved
        case createdAt = "created_at_ms", expiresAt = "expires_at_ms"
    }

    public var tenant: String
    public var idempotencyKey: String?
    public var status: ReservationStatus?
    /// Subject filters: the reservation's scope path must contain each `level:value` segment.
    public var segments: [ScopeLevel: String] = [:]
    public var createdFrom: Int64?
    public var createdTo: Int64?
    public var expiresFrom: Int64?
    public var expiresTo: Int64?
    public var finalizedFrom: Int64?
    public var finalizedTo: Int64?
    public var sortKey: SortKey = .createdAt
    public var ascending = false
    public var limit = 50
    /// The id of the last reservation of the previous page, when paging.
    public var after: String?

    public init(tenant: String) { self.tenant = tenant }

    func matches(_ reservation: Reservation) -> Bool {
        guard reservation.tenant == tenant else { return false }
        if let idempotencyKey, reservation.idempotencyKey != idempotencyKey { return false }
        if let status, reservation.status != status { return false }
        for (level, value) in segments where !reservation.scopePath.contains(level: level, value: value) { return false }
        func within(_ value: Int64, _ from: Int64?, _ to: Int64?) -> Bool {
            (from.map { value >= $0 } ?? true) && (to.map { value <= $0 } ?? true)
        }
        guard within(reservation.createdAtMilliseconds, createdFrom, createdTo),
              within(reservation.expiresAtMilliseconds, expiresFrom, expiresTo) else { return false }
        if finalizedFrom != nil || finalizedTo != nil {
            guard let finalized = reservation.finalizedAtMilliseconds, within(finalized, finalizedFrom, finalizedTo) else { return false }
        }
        return true
    }

    /// A total order: the sort key, then the id, so pages never skip or repeat a row.
    func precedes(_ lhs: Reservation, _ rhs: Reservation) -> Bool {
        func compare<T: Comparable>(_ a: T, _ b: T) -> Bool? { a == b ? nil : (ascending ? a < b : a > b) }
        let primary: Bool? = switch sortKey {
        case .reservationID: nil
        case .tenant: compare(lhs.tenant, rhs.tenant)
        case .scopePath: compare(lhs.scopePath.rawValue, rhs.scopePath.rawValue)
        case .status: compare(lhs.status.rawValue, rhs.status.rawValue)
        case .reserved: compare(lhs.estimate.value, rhs.estimate.value)
        case .createdAt: compare(lhs.createdAtMilliseconds, rhs.createdAtMilliseconds)
        case .expiresAt: compare(lhs.expiresAtMilliseconds, rhs.expiresAtMilliseconds)
        }
        return primary ?? (ascending ? lhs.id < rhs.id : lhs.id > rhs.id)
    }
}

/// One page of a listing; `hasMore` tells whether `after: last id` would return more.
public struct ReservationPage: Sendable, Hashable {
    public var reservations: [Reservation]
    public var hasMore: Bool
}
