import TallyCore

/// Rendering of the runtime plane: reserve, decide, commit, release, extend, debit and reservation reads.
public enum ReservationTool {
    public static func render(_ reply: Reply) -> Rendered {
        // A reply without balances (a DENY, a decide) shows no empty balance table.
        let tables = tables(reply).filter { !$0.rows.isEmpty }
        return Rendered(tables: tables, json: CyclesJSON.reply(reply))
    }

    static func tables(_ reply: Reply) -> [TextTable] {
        switch reply {
        case .reserved(let reserved, let remainingTTL):
            return [
                TextTable.fields([
                    ("decision", reserved.decision.cyclesName), ("reservation_id", reserved.reservationID.description),
                    ("reserved", "\(reserved.reserved)"), ("scope_path", reserved.scopePath.rawValue),
                    ("expires_at", TimeText.format(milliseconds: reserved.expiresAtMilliseconds)),
                    ("remaining_ttl_ms", "\(remainingTTL)"),
                ]),
                BalanceTool.table(reserved.balances),
            ]
        case .evaluated(let evaluation):
            return [
                TextTable.fields([
                    ("decision", evaluation.decision.cyclesName),
                    ("reason_code", evaluation.reasonCode?.cyclesName ?? ""),
                    ("reserved", evaluation.reserved.map { "\($0)" } ?? ""),
                    ("scope_path", evaluation.scopePath.rawValue),
                ]),
                BalanceTool.table(evaluation.balances),
            ]
        case .committed(let commit):
            return [
                TextTable.fields([
                    ("status", "COMMITTED"), ("charged", "\(commit.charged)"),
                    ("released", commit.released.map { "\($0)" } ?? ""),
                ]),
                BalanceTool.table(commit.balances),
            ]
        case .released(let release):
            return [
                TextTable.fields([("status", "RELEASED"), ("released", "\(release.released)")]),
                BalanceTool.table(release.balances),
            ]
        case .extended(let extend, let remainingTTL):
            return [
                TextTable.fields([
                    ("reservation_id", extend.reservationID.description),
                    ("expires_at", TimeText.format(milliseconds: extend.expiresAtMilliseconds)),
                    ("remaining_ttl_ms", "\(remainingTTL)"),
                ]),
                BalanceTool.table(extend.balances),
            ]
        case .debitRecorded(let debit):
            return [
                TextTable.fields([
                    ("status", "APPLIED"), ("event_id", debit.eventID),
                    ("charged", debit.charged.map { "\($0)" } ?? ""),
                ]),
                BalanceTool.table(debit.balances),
            ]
        case .tenant(let tenant, _):
            return [TenantTool.table([tenant])]
        case .apiKey(let key):
            return [KeyTool.table([key])]
        case .budget(let budget):
            return [BalanceTool.table([budget.balance])]
        case .funded:
            return []
        case .expired(let ids):
            return [TextTable(headers: ["EXPIRED"], rows: ids.map { [$0.description] })]
        }
    }

    public static let headers = ["RESERVATION", "STATUS", "SCOPE", "UNIT", "RESERVED", "CREATED", "EXPIRES"]

    public static func table(_ reservations: [Reservation]) -> TextTable {
        TextTable(
            headers: headers,
            rows: reservations.map { reservation in
                [
                    reservation.id.description, reservation.status.cyclesName, reservation.scopePath.rawValue,
                    reservation.unit.cyclesName,
                    "\(reservation.estimate)", TimeText.format(milliseconds: reservation.createdAtMilliseconds),
                    TimeText.format(milliseconds: reservation.expiresAtMilliseconds),
                ]
            })
    }

    public static func render(_ reservations: [Reservation], hasMore: Bool) -> Rendered {
        var table = self.table(reservations).render()
        if hasMore, let last = reservations.last { table += "\n(more: ask again with --after \(last.id))" }
        let json: [String: Any] = ["reservations": reservations.map(CyclesJSON.reservation), "has_more": hasMore]
        return Rendered(table: table, json: CyclesJSON.text(json))
    }

    public static func render(_ reservation: Reservation) -> Rendered {
        let fields = TextTable.fields([
            ("reservation_id", reservation.id.description), ("status", reservation.status.cyclesName),
            ("tenant", reservation.tenant),
            ("scope_path", reservation.scopePath.rawValue),
            ("reserved", "\(reservation.estimate) \(reservation.unit.cyclesName)"),
            ("action", "\(reservation.action.kind) \(reservation.action.name)"),
            ("overage_policy", reservation.overagePolicy.cyclesName),
            ("created_at", TimeText.format(milliseconds: reservation.createdAtMilliseconds)),
            ("expires_at", TimeText.format(milliseconds: reservation.expiresAtMilliseconds)),
            ("finalized_at", TimeText.format(milliseconds: reservation.finalizedAtMilliseconds)),
            ("extensions", "\(reservation.extensionCount)/\(reservation.maxExtensions)"),
            ("idempotency_key", reservation.idempotencyKey),
        ])
        return Rendered(tables: [fields], json: CyclesJSON.reservation(reservation))
    }
}
