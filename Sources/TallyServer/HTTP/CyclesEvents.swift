import TallyCore
import TallyWire

/// The ledger's own events as Cycles `Event` envelopes (semantics 8, decision 17).
///
/// Each recorded event maps to its Cycles type (`budget.created`, `reservation.expired`, ...); the
/// transition types are derived from the deltas the event recorded (`budget.debt_incurred` per scope that
/// gained debt, `budget.over_limit_entered` per scope a decision marked, `reservation.commit_overage` when
/// the actual exceeded the estimate). Lifecycle steps Cycles has no type for (a reservation created,
/// committed, released or extended, a direct debit applied) use the `custom.tally.` prefix, which Cycles
/// consumers are required to ignore if they do not know it.
///
/// Ids are derived from the log position: `evt_<sequence>` for the event itself and `evt_<sequence>_<n>`
/// for the n-th type derived from it, so they are unique and stable across restarts and replays.
struct CyclesEvent: Sendable {
    var id: String
    var type: String
    var category: String
    var timestampMilliseconds: Int64
    var tenant: String
    var scope: String?
    var actor: Caller?
    var source: String
    var data: JSONValue
}

enum CyclesEvents {
    /// The reservation facts an event without its own tenant needs (commit, release, expiry).
    typealias ReservationLookup = (ReservationID) -> Reservation?

    static func expand(_ event: Event, reservation: ReservationLookup) -> [CyclesEvent] {
        var events: [CyclesEvent] = []
        let at = event.timestampMilliseconds
        func add(_ type: String, _ tenant: String, scope: String? = nil, actor: Caller? = nil, source: String = "tally", _ data: JSONValue) {
            let category = String(type.hasPrefix("custom.") ? "reservation" : type.prefix(while: { $0 != "." }))
            let id = events.isEmpty ? "evt_\(event.sequence)" : "evt_\(event.sequence)_\(events.count)"
            events.append(CyclesEvent(
                id: id, type: type, category: category, timestampMilliseconds: at,
                tenant: tenant, scope: scope, actor: actor, source: source, data: data))
        }
        switch event.body {
        case .tenantCreated(let tenant):
            add("tenant.created", tenant.id, actor: .admin, tenantData(tenant))
        case .tenantUpdated(let tenant):
            let type = switch tenant.status {
            case .closed: "tenant.closed"
            case .suspended: "tenant.suspended"
            case .active: "tenant.updated"
            }
            add(type, tenant.id, actor: .admin, tenantData(tenant))
        case .apiKeyCreated(let key):
            add("api_key.created", key.tenant, actor: .admin, .object([
                "key_id": .string(key.id), "name": .string(key.name), "key_prefix": .string(key.prefix),
                "permissions": .array(key.permissions.map { .string($0.rawValue) }),
            ]))
        case .apiKeyUpdated(let key):
            add("api_key.permissions_changed", key.tenant, actor: .admin, .object([
                "key_id": .string(key.id), "name": .string(key.name),
                "permissions": .array(key.permissions.map { .string($0.rawValue) }),
            ]))
        case .apiKeyRevoked(let revoked):
            let type = revoked.cause == .tenantClosed ? "api_key.revoked_via_tenant_cascade" : "api_key.revoked"
            add(type, revoked.tenant, actor: revoked.cause == .tenantClosed ? .system : .admin, .object([
                "key_id": .string(revoked.keyID), "reason": revoked.reason.map(JSONValue.string) ?? .null,
            ]))
        case .budgetCreated(let budget):
            add("budget.created", budget.tenant, scope: budget.scope.rawValue, .object([
                "ledger_id": .string(ledgerID(budget.key)), "scope": .string(budget.scope.rawValue),
                "unit": .string(budget.unit.cyclesName), "operation": .string("CREATE"),
                "new_state": state(budget.figures, budget.unit, status: budget.status),
            ]))
        case .budgetFunded(let funded):
            let type = switch funded.operation {
            case .credit: "budget.funded"
            case .debit: "budget.debited"
            case .reset: "budget.reset"
            case .resetSpent: "budget.reset_spent"
            case .repayDebt: "budget.debt_repaid"
            }
            add(type, funded.key.scope.tenant, scope: funded.key.scope.rawValue, actor: funded.caller, .object([
                "ledger_id": .string(ledgerID(funded.key)), "scope": .string(funded.key.scope.rawValue),
                "unit": .string(funded.key.unit.cyclesName), "operation": .string(funded.operation.cyclesName),
                "previous_state": state(funded.before, funded.key.unit, status: nil),
                "new_state": state(funded.after, funded.key.unit, status: nil),
                "spent_override_provided": .bool(funded.spentOverride != nil),
                "reason": funded.reason.map(JSONValue.string) ?? .null,
            ]))
        case .budgetUpdated(let updated):
            let (type, operation) = switch updated.change {
            case .properties: ("budget.updated", "UPDATE")
            case .freeze: ("budget.frozen", "STATUS_CHANGE")
            case .unfreeze: ("budget.unfrozen", "STATUS_CHANGE")
            case .close: ("budget.closed_via_tenant_cascade", "STATUS_CHANGE")
            }
            add(type, updated.key.scope.tenant, scope: updated.key.scope.rawValue, actor: updated.caller, .object([
                "ledger_id": .string(ledgerID(updated.key)), "scope": .string(updated.key.scope.rawValue),
                "unit": .string(updated.key.unit.cyclesName), "operation": .string(operation),
                "status": .string(updated.status.cyclesName), "is_over_limit": .bool(updated.isOverLimit),
                "overdraft_limit": amount(updated.overdraftLimit, updated.key.unit),
                "reason": updated.reason.map(JSONValue.string) ?? .null,
            ]))
        case .reserved(let reserved):
            add("custom.tally.reservation_created", reserved.tenant, scope: reserved.scopePath.rawValue, actor: reserved.caller, .object([
                "reservation_id": .string(reserved.reservationID.description), "subject": subject(reserved.subject),
                "action": .object(["kind": .string(reserved.action.kind), "name": .string(reserved.action.name)]),
                "estimated_amount": amount(reserved.amount, reserved.unit),
                "budgeted_scopes": .array(reserved.budgetedScopes.map { .string($0.rawValue) }),
                "expires_at_ms": .integer(reserved.expiresAtMilliseconds),
            ]))
        case .committed(let committed):
            guard let owner = reservation(committed.reservationID) else { break }
            let unit = owner.unit
            add("custom.tally.reservation_committed", owner.tenant, scope: owner.scopePath.rawValue, actor: committed.caller, .object([
                "reservation_id": .string(committed.reservationID.description), "subject": subject(owner.subject),
                "action": .object(["kind": .string(owner.action.kind), "name": .string(owner.action.name)]),
                "estimated_amount": amount(owner.estimate, unit), "actual_amount": amount(committed.actual, unit),
                "charged_amount": amount(committed.charged, unit),
            ]))
            if committed.actual > owner.estimate {
                add("reservation.commit_overage", owner.tenant, scope: owner.scopePath.rawValue, actor: committed.caller, .object([
                    "reservation_id": .string(committed.reservationID.description), "scope": .string(owner.scopePath.rawValue),
                    "unit": .string(unit.cyclesName), "estimated_amount": amount(owner.estimate, unit),
                    "actual_amount": amount(committed.actual, unit),
                    "overage": amount(Amount(committed.actual.value - owner.estimate.value), unit),
                    "overage_policy": .string(owner.overagePolicy.cyclesName),
                    "debt_incurred": amount(committed.deltas.map(\.debt).max() ?? .zero, unit),
                ]))
            }
            derived(committed.deltas, unit, owner.tenant, reservationID: committed.reservationID, policy: owner.overagePolicy, add)
        case .released(let released):
            guard let owner = reservation(released.reservationID) else { break }
            let type = released.cause == .tenantClosed ? "reservation.released_via_tenant_cascade" : "custom.tally.reservation_released"
            add(type, owner.tenant, scope: owner.scopePath.rawValue, actor: released.caller, .object([
                "reservation_id": .string(released.reservationID.description), "released_amount": amount(released.amount, owner.unit),
                "reason": released.reason.map(JSONValue.string) ?? .null,
            ]))
        case .extended(let extended):
            add("custom.tally.reservation_extended", extended.tenant, actor: extended.caller, .object([
                "reservation_id": .string(extended.reservationID.description), "expires_at_ms": .integer(extended.newExpiresAtMilliseconds),
                "extensions_used": .integer(Int64(extended.extensionCount)),
            ]))
        case .expired(let expired):
            guard let owner = reservation(expired.reservationID) else { break }
            add("reservation.expired", owner.tenant, scope: owner.scopePath.rawValue, actor: .system, source: "expiry-sweeper", .object([
                "reservation_id": .string(expired.reservationID.description), "scope": .string(owner.scopePath.rawValue),
                "unit": .string(owner.unit.cyclesName), "estimated_amount": amount(expired.amount, owner.unit),
                "created_at_ms": .integer(owner.createdAtMilliseconds), "expired_at_ms": .integer(expired.atMilliseconds),
                "ttl_ms": .integer(owner.expiresAtMilliseconds - owner.createdAtMilliseconds),
                "extensions_used": .integer(Int64(owner.extensionCount)),
            ]))
        case .debitRecorded(let debit):
            add("custom.tally.event_applied", debit.tenant, scope: debit.scopePath.rawValue, actor: debit.caller, .object([
                "event_id": .string(debit.eventID), "subject": subject(debit.subject),
                "action": .object(["kind": .string(debit.action.kind), "name": .string(debit.action.name)]),
                "actual_amount": amount(debit.actual, debit.unit), "charged_amount": amount(debit.charged, debit.unit),
            ]))
            derived(debit.deltas, debit.unit, debit.tenant, reservationID: nil, policy: debit.overagePolicy, add)
        case .evaluationRecorded(let evaluation):
            let reply = evaluation.reply
            if reply.decision == .deny {
                add("reservation.denied", evaluation.tenant, scope: reply.scopePath.rawValue, actor: evaluation.caller, .object([
                    "scope": .string(reply.scopePath.rawValue), "reason_code": .string(reply.reasonCode?.cyclesName ?? "DENIED"),
                    "source": .string(reply.kind == .dryRun ? "dry_run" : "decide"),
                ]))
            } else {
                add("custom.tally.evaluated", evaluation.tenant, scope: reply.scopePath.rawValue, actor: evaluation.caller, .object([
                    "decision": .string(reply.decision.cyclesName), "source": .string(reply.kind == .dryRun ? "dry_run" : "decide"),
                ]))
            }
        }
        return events
    }

    /// `budget.debt_incurred` and `budget.over_limit_entered` from a settlement's per-scope deltas.
    private static func derived(
        _ deltas: [ScopeDelta], _ unit: TallyCore.Unit, _ tenant: String, reservationID: ReservationID?, policy: OveragePolicy,
        _ add: (String, String, String?, Caller?, String, JSONValue) -> Void
    ) {
        for delta in deltas where delta.debt.value > 0 {
            add("budget.debt_incurred", tenant, delta.scope.rawValue, .system, "tally", .object([
                "scope": .string(delta.scope.rawValue), "unit": .string(unit.cyclesName),
                "reservation_id": reservationID.map { .string($0.description) } ?? .null,
                "debt_incurred": amount(delta.debt, unit), "overage_policy": .string(policy.cyclesName),
            ]))
        }
        for delta in deltas where delta.marksOverLimit {
            add("budget.over_limit_entered", tenant, delta.scope.rawValue, .system, "tally", .object([
                "scope": .string(delta.scope.rawValue), "unit": .string(unit.cyclesName), "is_over_limit": .bool(true),
            ]))
        }
    }

    // MARK: JSON pieces

    static func write(_ w: inout JSONWriter, _ event: CyclesEvent) {
        w.beginObject()
        w.key(literal: "event_id")
        w.string(event.id)
        w.key(literal: "event_type")
        w.string(event.type)
        w.key(literal: "category")
        w.string(event.category)
        w.key(literal: "timestamp")
        w.string(ISOTime.format(event.timestampMilliseconds))
        w.key(literal: "tenant_id")
        w.string(event.tenant)
        w.key(literal: "source")
        w.string(event.source)
        if let scope = event.scope {
            w.key(literal: "scope")
            w.string(scope)
        }
        if let actor = event.actor {
            w.key(literal: "actor")
            w.beginObject()
            w.key(literal: "type")
            switch actor {
            case .tenant(_, let keyID):
                w.string("api_key")
                w.key(literal: "key_id")
                w.string(keyID)
            case .admin: w.string("admin")
            case .system: w.string("system")
            }
            w.endObject()
        }
        w.key(literal: "data")
        w.value(event.data.droppingNulls())
        w.endObject()
    }

    private static func ledgerID(_ key: BudgetKey) -> String { "\(key.scope.rawValue):\(key.unit.cyclesName)" }

    private static func amount(_ amount: Amount, _ unit: TallyCore.Unit) -> JSONValue {
        .object(["unit": .string(unit.cyclesName), "amount": .integer(amount.value)])
    }

    private static func state(_ figures: LedgerFigures, _ unit: TallyCore.Unit, status: BudgetStatus?) -> JSONValue {
        var members = [
            JSONMember("allocated", amount(figures.allocated, unit)), JSONMember("remaining", amount(figures.remaining, unit)),
            JSONMember("reserved", amount(figures.reserved, unit)), JSONMember("spent", amount(figures.spent, unit)),
            JSONMember("debt", amount(figures.debt, unit)),
        ]
        if let status { members.append(JSONMember("status", .string(status.cyclesName))) }
        return .object(members)
    }

    private static func tenantData(_ tenant: Tenant) -> JSONValue {
        .object(["tenant_id": .string(tenant.id), "name": .string(tenant.name), "status": .string(tenant.status.cyclesName)])
    }

    private static func subject(_ subject: Subject) -> JSONValue {
        var members: [JSONMember] = []
        for level in ScopeLevel.allCases {
            if let value = subject.value(at: level) { members.append(JSONMember(level.name, .string(value))) }
        }
        return .object(members)
    }
}

extension JSONValue {
    /// The value with null object members left out (Cycles omits absent fields).
    func droppingNulls() -> JSONValue {
        switch self {
        case .object(let members):
            return .object(members.compactMap { member in
                if case .null = member.value { return nil }
                return JSONMember(member.name, member.value.droppingNulls())
            })
        case .array(let items):
            return .array(items.map { $0.droppingNulls() })
        default:
            return self
        }
    }
}
