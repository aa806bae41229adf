import TallyCore

/// `tally tail`: one line per committed event, decoded with `EventCodec`.
///
/// Table lines are `sequence  time  type  facts`, where the facts are the few `key=value` pairs that say
/// what happened (ids, scope, amounts); JSON output is one object per line (JSON Lines), since a stream
/// has no single enclosing array.
public enum TailTool {
    public static func line(_ event: Event, chain: [UInt8], format: OutputFormat) -> String {
        let facts = self.facts(event.body)
        switch format {
        case .table:
            let factText = facts.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            let time = TimeText.format(milliseconds: event.timestampMilliseconds)
            return "\(event.sequence)  \(time)  \(event.body.typeName)  \(factText)"
        case .json:
            var object: [String: Any] = [
                "sequence": event.sequence, "timestamp_ms": event.timestampMilliseconds, "type": event.body.typeName,
                "chain": hex(chain),
            ]
            for (key, value) in facts { object[key] = value }
            return CyclesJSON.line(object)
        }
    }

    /// A line for a record that does not decode: the stream goes on, the damage is visible.
    public static func undecodable(_ error: EventCodecError, chain: [UInt8]) -> String {
        "?  undecodable event (chain \(hex(chain))): \(error.reason)"
    }

    /// The main facts of an event, in reading order.
    public static func facts(_ body: EventBody) -> [(String, String)] {
        switch body {
        case .tenantCreated(let tenant), .tenantUpdated(let tenant):
            return [("tenant", tenant.id), ("status", tenant.status.cyclesName)]
        case .apiKeyCreated(let key):
            return [("key", key.id), ("tenant", key.tenant), ("name", key.name)]
        case .apiKeyRevoked(let revoked):
            return [("key", revoked.keyID), ("tenant", revoked.tenant)] + optional("reason", revoked.reason)
        case .budgetCreated(let budget):
            return [
                ("scope", budget.scope.rawValue), ("unit", budget.unit.cyclesName),
                ("allocated", "\(budget.allocated)"),
            ]
        case .budgetFunded(let funded):
            return [
                ("scope", funded.key.scope.rawValue), ("unit", funded.key.unit.cyclesName),
                ("operation", funded.operation.cyclesName), ("amount", "\(funded.amount)"),
                ("remaining", "\(funded.before.remaining)->\(funded.after.remaining)"),
            ]
        case .budgetUpdated(let updated):
            return [
                ("scope", updated.key.scope.rawValue), ("unit", updated.key.unit.cyclesName),
                ("change", "\(updated.change)"), ("status", updated.status.cyclesName),
            ]
        case .reserved(let reserved):
            return [
                ("reservation", reserved.reservationID.description), ("scope", reserved.scopePath.rawValue),
                ("amount", "\(reserved.amount)"), ("unit", reserved.unit.cyclesName),
            ]
        case .committed(let committed):
            return [
                ("reservation", committed.reservationID.description), ("actual", "\(committed.actual)"),
                ("charged", "\(committed.charged)"),
            ]
        case .released(let released):
            return [("reservation", released.reservationID.description), ("amount", "\(released.amount)")]
                + optional("reason", released.reason)
        case .extended(let extended):
            return [
                ("reservation", extended.reservationID.description),
                ("expires_at", TimeText.format(milliseconds: extended.newExpiresAtMilliseconds)),
                ("extensions", "\(extended.extensionCount)"),
            ]
        case .expired(let expired):
            return [("reservation", expired.reservationID.description), ("amount", "\(expired.amount)")]
        case .debitRecorded(let debit):
            return [
                ("event", debit.eventID), ("scope", debit.scopePath.rawValue), ("actual", "\(debit.actual)"),
                ("charged", "\(debit.charged)"), ("unit", debit.unit.cyclesName),
            ]
        case .apiKeyUpdated(let key):
            return [("key", key.id), ("tenant", key.tenant), ("permissions", key.permissions.map(\.rawValue).joined(separator: ","))]
        case .evaluationRecorded(let evaluation):
            return [
                ("tenant", evaluation.tenant), ("kind", evaluation.reply.kind == .dryRun ? "dry_run" : "decide"),
                ("decision", evaluation.reply.decision.cyclesName), ("scope", evaluation.reply.scopePath.rawValue),
            ]
        }
    }

    private static func optional(_ key: String, _ value: String?) -> [(String, String)] {
        value.map { [(key, $0)] } ?? []
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }
}
