import Foundation
import TallyCore

extension CyclesJSON {
    /// The answer of a command, shaped like the matching Cycles response.
    public static func reply(_ reply: Reply) -> [String: Any] {
        switch reply {
        case .reserved(let reserved, let remainingTTL):
            var object = reservationCreated(reserved)
            object["remaining_ttl_ms"] = NSNumber(value: remainingTTL)
            return object
        case .evaluated(let evaluation):
            return evaluated(evaluation)
        case .committed(let commit):
            var object: [String: Any] = [
                "status": "COMMITTED", "charged": quantity(commit.charged), "balances": commit.balances.map(balance),
            ]
            object["released"] = commit.released.map(quantity)
            return object
        case .released(let release):
            return [
                "status": "RELEASED", "released": quantity(release.released), "balances": release.balances.map(balance),
            ]
        case .extended(let extend, let remainingTTL):
            return [
                "status": "ACTIVE", "reservation_id": extend.reservationID,
                "expires_at_ms": NSNumber(value: extend.expiresAtMilliseconds),
                "remaining_ttl_ms": NSNumber(value: remainingTTL),
                "balances": extend.balances.map(balance),
            ]
        case .debitRecorded(let debit):
            var object: [String: Any] = [
                "status": "APPLIED", "event_id": debit.eventID, "balances": debit.balances.map(balance),
            ]
            object["charged"] = debit.charged.map(quantity)
            return object
        case .tenant(let value, let created):
            var object = tenant(value)
            object["created"] = created
            return object
        case .apiKey(let key):
            return apiKey(key)
        case .budget(let value):
            return budget(value)
        case .funded(let funded):
            return funding(funded)
        case .expired(let ids):
            return ["expired_reservation_ids": ids]
        }
    }

    static func reservationCreated(_ reply: ReserveReply) -> [String: Any] {
        var object: [String: Any] = [
            "decision": reply.decision.cyclesName, "reservation_id": reply.reservationID,
            "reserved": quantity(reply.reserved), "expires_at_ms": NSNumber(value: reply.expiresAtMilliseconds),
            "scope_path": reply.scopePath.rawValue, "affected_scopes": reply.affectedScopes.map(\.rawValue),
            "balances": reply.balances.map(balance),
        ]
        object["caps"] = reply.caps.map(caps)
        return object
    }

    static func evaluated(_ reply: EvaluationReply) -> [String: Any] {
        var object: [String: Any] = [
            "decision": reply.decision.cyclesName, "scope_path": reply.scopePath.rawValue,
            "affected_scopes": reply.affectedScopes.map(\.rawValue), "balances": reply.balances.map(balance),
            "dry_run": reply.kind == .dryRun,
        ]
        object["reason_code"] = reply.reasonCode?.cyclesName
        object["caps"] = reply.caps.map(caps)
        object["reserved"] = reply.reserved.map(quantity)
        return object
    }
}
