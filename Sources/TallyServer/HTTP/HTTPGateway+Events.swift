import HTTPTypes
import TallyCore
import TallyStore
import TallyWire

/// Event listings from the ledger's own log (semantics 8, decision 17): `GET /v1/admin/events`,
/// `GET /v1/admin/events/{id}` and the tenant feed `GET /v1/events`.
extension HTTPGateway {
    /// How many log events one page may scan before it answers with what it found and a cursor to go on.
    static let eventScanBudget = 50_000

    struct EventFilter {
        var tenant: String?
        var types: Set<String>?
        var category: String?
        var scopePrefix: String?
        var from: Int64?
        var to: Int64?

        func matches(_ event: CyclesEvent) -> Bool {
            if let tenant, event.tenant != tenant { return false }
            if let types, !types.contains(event.type) { return false }
            if let category, event.category != category { return false }
            if let scopePrefix, !(event.scope ?? "").hasPrefix(scopePrefix) { return false }
            if let from, event.timestampMilliseconds < from { return false }
            if let to, event.timestampMilliseconds > to { return false }
            return true
        }
    }

    /// The tenant feed: a tenant key with `events:read` sees its own tenant; the admin key names one.
    func tenantEvents(_ query: HTTPQuery, _ principal: Principal) throws -> Response {
        let tenant: String
        switch principal {
        case .tenant(let id, _, let permissions):
            guard Permission.eventsRead.isGranted(by: permissions) else {
                throw WireError(code: .forbidden, message: "the API key lacks the events:read permission")
            }
            if let asked = query["tenant_id"] ?? query["tenant"], asked != id {
                throw WireError(code: .forbidden, message: "tenant \(asked) is not the tenant of this API key")
            }
            tenant = id
        case .admin:
            guard let asked = query["tenant_id"] ?? query["tenant"] else {
                throw WireError(code: .invalidRequest, message: "tenant_id is required when using the admin key")
            }
            tenant = asked
        }
        return try listEvents(query, tenant: tenant)
    }

    func listEvents(_ query: HTTPQuery, tenant: String?) throws -> Response {
        var filter = EventFilter(tenant: tenant)
        if let types = query["event_type"] ?? query["event_types"] { filter.types = Set(types.split(separator: ",").map(String.init)) }
        filter.category = query["category"]
        filter.scopePrefix = query["scope"]?.lowercased()
        (filter.from, filter.to) = (try query.instant("from"), try query.instant("to"))
        if let from = filter.from, let to = filter.to, from > to {
            throw WireError(code: .invalidRequest, message: "from is after to")
        }
        let limit = Int(try query.integer("limit", in: 1...Int64(shared.listLimitMax)) ?? 50)
        let filters = query.filterFingerprint()
        var next = (sequence: UInt64(1), skip: 0)
        if let position = try PageCursor.position(query["cursor"], filters: filters) {
            let parts = position.split(separator: ".")
            guard parts.count == 2, let sequence = UInt64(parts[0]), let skip = Int(parts[1]) else {
                throw WireError(code: .invalidRequest, message: "cursor is not a cursor this server issued")
            }
            next = (sequence, skip)
        }
        var found: [CyclesEvent] = []
        var scanned = 0
        var resume: (UInt64, Int)?
        var lookups: [ReservationID: Reservation] = [:]
        let store = shared.store
        // Commits, releases and expiries name only their reservation: each is read once per page.
        let lookup: CyclesEvents.ReservationLookup = { id in
            if let known = lookups[id] { return known }
            let reservation = try? store.reservation(id)
            if let reservation, lookups.count < 100_000 { lookups[id] = reservation }
            return reservation
        }
        scanning: while resume == nil {
            let chunk = try store.events(from: next.sequence, limit: 1_000)
            if chunk.isEmpty { break }
            for stored in chunk {
                let expanded = CyclesEvents.expand(stored.event, reservation: lookup)
                for (index, event) in expanded.enumerated() where index >= next.skip && filter.matches(event) {
                    if found.count == limit {
                        resume = (stored.event.sequence, index)
                        break scanning
                    }
                    found.append(event)
                }
                next = (stored.event.sequence + 1, 0)
                scanned += 1
                if scanned >= Self.eventScanBudget {
                    resume = (next.sequence, 0)
                    break scanning
                }
            }
        }
        return page("events", found, next: resume.map { PageCursor.make(position: "\($0.0).\($0.1)", filters: filters) }) { CyclesEvents.write(&$0, $1) }
    }

    /// `GET /v1/admin/events/{event_id}`.
    func event(_ id: String) throws -> Response {
        let parts = id.split(separator: "_")
        guard parts.count >= 2, parts[0] == "evt", let sequence = UInt64(parts[1]), sequence > 0 else {
            throw WireError(code: .notFound, message: "event \(id) not found (event ids look like evt_123)")
        }
        let index = parts.count > 2 ? Int(parts[2]) ?? -1 : 0
        guard let stored = try shared.store.events(from: sequence, limit: 1).first, stored.event.sequence == sequence else {
            throw WireError(code: .notFound, message: "event \(id) not found")
        }
        let store = shared.store
        let expanded = CyclesEvents.expand(stored.event) { try? store.reservation($0) }
        guard index >= 0, index < expanded.count else { throw WireError(code: .notFound, message: "event \(id) not found") }
        return json { CyclesEvents.write(&$0, expanded[index]) }
    }
}
