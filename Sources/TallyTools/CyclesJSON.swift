import Foundation
import TallyCore

/// Ledger values as the Cycles API writes them in JSON: snake_case keys, amounts as `{unit, amount}` objects
/// with integer amounts, times as integer milliseconds (`*_ms`), enumerations by their Cycles names.
///
/// The objects are Foundation property lists for `JSONSerialization`; `text(_:)` prints them with sorted keys
/// so the output is stable for scripts and tests. Absent optional fields are left out, as Cycles does.
public enum CyclesJSON {
    public static func text(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value),
            let data = try? JSONSerialization.data(
                withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else {
            preconditionFailure("CyclesJSON builds only arrays and objects of strings, numbers and booleans")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// One line of JSON (for streams such as `tally tail`).
    public static func line(_ value: [String: Any]) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Values

    public static func amount(_ amount: Amount, _ unit: TallyCore.Unit) -> [String: Any] {
        ["unit": unit.cyclesName, "amount": NSNumber(value: amount.value)]
    }

    public static func quantity(_ quantity: Quantity) -> [String: Any] {
        amount(quantity.amount, quantity.unit)
    }

    /// The runtime `Balance` object, with the ledger fields Tally always reports.
    public static func balance(_ balance: Balance) -> [String: Any] {
        let unit = balance.unit
        return [
            "scope": balance.scope.leaf, "scope_path": balance.scope.rawValue,
            "allocated": amount(balance.allocated, unit), "remaining": amount(balance.remaining, unit),
            "reserved": amount(balance.reserved, unit), "spent": amount(balance.spent, unit),
            "debt": amount(balance.debt, unit), "overdraft_limit": amount(balance.overdraftLimit, unit),
            "is_over_limit": balance.isOverLimit, "status": balance.status.cyclesName,
        ]
    }

    /// The admin `BudgetLedger` object.
    public static func budget(_ budget: Budget) -> [String: Any] {
        var object = balance(budget.balance)
        object["scope"] = budget.scope.rawValue
        object["unit"] = budget.unit.cyclesName
        object["tenant_id"] = budget.tenant
        object["rollover_policy"] = budget.rolloverPolicy.cyclesName
        object["created_at_ms"] = NSNumber(value: budget.createdAtMilliseconds)
        object["updated_at_ms"] = NSNumber(value: budget.updatedAtMilliseconds)
        object["commit_overage_policy"] = budget.commitOveragePolicy?.cyclesName
        object["caps"] = budget.caps.map(caps)
        object["period_start_ms"] = budget.periodStartMilliseconds.map { NSNumber(value: $0) }
        object["period_end_ms"] = budget.periodEndMilliseconds.map { NSNumber(value: $0) }
        object["metadata"] = budget.metadata.map(metadata)
        return object
    }

    public static func caps(_ caps: Caps) -> [String: Any] {
        var object: [String: Any] = [:]
        object["max_tokens"] = caps.maxTokens.map { NSNumber(value: $0) }
        object["max_steps_remaining"] = caps.maxStepsRemaining.map { NSNumber(value: $0) }
        object["tool_allowlist"] = caps.toolAllowlist
        object["tool_denylist"] = caps.toolDenylist
        object["cooldown_ms"] = caps.cooldownMilliseconds.map { NSNumber(value: $0) }
        return object
    }

    public static func subject(_ subject: Subject) -> [String: Any] {
        var object: [String: Any] = [:]
        for level in ScopeLevel.allCases { object[level.name] = subject.value(at: level) }
        if !subject.dimensions.isEmpty { object["dimensions"] = subject.dimensions }
        return object
    }

    public static func action(_ action: Action) -> [String: Any] {
        var object: [String: Any] = ["kind": action.kind, "name": action.name]
        if !action.tags.isEmpty { object["tags"] = action.tags }
        return object
    }

    /// Free JSON carried by the ledger: embedded as JSON when it parses, as a string otherwise.
    public static func metadata(_ text: JSONText) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(text.text.utf8), options: [.fragmentsAllowed])) ?? text.text
    }

    public static func reservation(_ reservation: Reservation) -> [String: Any] {
        var object: [String: Any] = [
            "reservation_id": reservation.id, "status": reservation.status.cyclesName, "tenant_id": reservation.tenant,
            "subject": subject(reservation.subject), "action": action(reservation.action),
            "reserved": amount(reservation.estimate, reservation.unit), "scope_path": reservation.scopePath.rawValue,
            "affected_scopes": reservation.affectedScopes.map(\.rawValue),
            "budgeted_scopes": reservation.budgetedScopes.map(\.rawValue),
            "created_at_ms": NSNumber(value: reservation.createdAtMilliseconds),
            "expires_at_ms": NSNumber(value: reservation.expiresAtMilliseconds),
            "grace_period_ms": NSNumber(value: reservation.graceMilliseconds),
            "overage_policy": reservation.overagePolicy.cyclesName, "idempotency_key": reservation.idempotencyKey,
            "extension_count": reservation.extensionCount, "max_extensions": reservation.maxExtensions,
        ]
        object["finalized_at_ms"] = reservation.finalizedAtMilliseconds.map { NSNumber(value: $0) }
        object["caps"] = reservation.caps.map(caps)
        object["metadata"] = reservation.metadata.map(metadata)
        switch reservation.settlement {
        case .committed(let commit):
            object["committed"] = amount(commit.actual, reservation.unit)
            object["charged"] = quantity(commit.reply.charged)
        case .released(let release):
            object["release_reason"] = release.reason
        case .expired(let at):
            object["expired_at_ms"] = NSNumber(value: at)
        case nil:
            break
        }
        return object
    }

    public static func tenant(_ tenant: Tenant) -> [String: Any] {
        var object: [String: Any] = [
            "tenant_id": tenant.id, "name": tenant.name, "status": tenant.status.cyclesName,
            "default_commit_overage_policy": tenant.defaultOveragePolicy.cyclesName,
            "default_reservation_ttl_ms": NSNumber(value: tenant.defaultTTLMilliseconds),
            "max_reservation_ttl_ms": NSNumber(value: tenant.maxTTLMilliseconds),
            "max_reservation_extensions": tenant.maxExtensions,
            "reservation_expiry_policy": tenant.expiryPolicy.cyclesName,
            "created_at_ms": NSNumber(value: tenant.createdAtMilliseconds),
            "updated_at_ms": NSNumber(value: tenant.updatedAtMilliseconds),
        ]
        object["parent_tenant_id"] = tenant.parentTenantID
        object["metadata"] = tenant.metadata.map(metadata)
        return object
    }

    /// An API key without its secret (the ledger never has it; only `key create` prints it, once).
    public static func apiKey(_ key: ApiKey) -> [String: Any] {
        var object: [String: Any] = [
            "key_id": key.id, "tenant_id": key.tenant, "name": key.name, "key_prefix": key.prefix,
            "permissions": key.permissions.map(\.rawValue), "scope_filter": key.scopeFilter,
            "status": key.status.cyclesName, "created_at_ms": NSNumber(value: key.createdAtMilliseconds),
        ]
        object["description"] = key.description
        object["expires_at_ms"] = key.expiresAtMilliseconds.map { NSNumber(value: $0) }
        object["revoked_at_ms"] = key.revokedAtMilliseconds.map { NSNumber(value: $0) }
        object["revoke_reason"] = key.revokeReason
        object["metadata"] = key.metadata.map(metadata)
        return object
    }

    /// The Cycles `BudgetFundingResponse`, with every figure before and after.
    public static func funding(_ funding: FundingReply) -> [String: Any] {
        let unit = funding.key.unit
        var object: [String: Any] = [
            "scope": funding.key.scope.rawValue, "unit": unit.cyclesName, "operation": funding.operation.cyclesName,
            "timestamp_ms": NSNumber(value: funding.atMilliseconds),
        ]
        let figures: [(String, KeyPath<LedgerFigures, Amount>)] = [
            ("allocated", \.allocated), ("remaining", \.remaining), ("reserved", \.reserved), ("spent", \.spent),
            ("debt", \.debt),
        ]
        for (name, path) in figures {
            object["previous_\(name)"] = amount(funding.previous[keyPath: path], unit)
            object["new_\(name)"] = amount(funding.new[keyPath: path], unit)
        }
        return object
    }
}
