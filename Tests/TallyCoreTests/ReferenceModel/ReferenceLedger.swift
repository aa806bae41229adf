@testable import TallyCore

/// What the reference model predicts for one command: a refusal code or the full success reply.
enum ModelOutcome: Equatable, CustomStringConvertible {
    case refused(ErrorCode)
    case replied(Reply)

    init(_ result: Result<Decision, Refusal>) {
        switch result {
        case .success(let decision): self = .replied(decision.reply)
        case .failure(let refusal): self = .refused(refusal.code)
        }
    }

    var description: String {
        switch self {
        case .refused(let code): "refused \(code.cyclesName)"
        case .replied(let reply): "replied \(reply)"
        }
    }
}

/// A deliberately naive reference ledger written from `cycles-semantics.md` alone (decisions table,
/// sections 1-5 and 9), never from the rule files of TallyCore. Arrays and linear scans keep it obvious;
/// every amount is computed in `Int128` and checked against the `Int64` range only at the end, so that the
/// model states the exact mathematical result and leaves no room for wrap-around.
///
/// It reuses TallyCore's plain value types (`Tenant`, `Budget`, `Reply`...) only to spell its answers in
/// the same shape the core replies with; all rules live here.
final class ReferenceLedger {
    struct BudgetRow {
        var scope: String
        var unit: Unit
        var tenant: String
        var allocated: Int64
        var remaining: Int64
        var reserved: Int64
        var spent: Int64
        var debt: Int64
        var overdraftLimit: Int64
        var isOverLimit: Bool
        var status: BudgetStatus
        var commitOveragePolicy: OveragePolicy?
        var rolloverPolicy: RolloverPolicy
        var caps: Caps?
        var periodStart: Int64?
        var periodEnd: Int64?
        var metadata: JSONText?
        var createdAt: Int64
        var updatedAt: Int64
    }

    struct ReservationRow {
        var id: ReservationID
        var tenant: String
        var unit: Unit
        var estimate: Int64
        var scopePath: String
        var affectedScopes: [String]
        var budgetedScopes: [String]
        var expiresAt: Int64
        var grace: Int64
        var policy: OveragePolicy
        var maxExtensions: Int
        var extensionCount: Int
        var status: ReservationStatus
        var commitKey: String?
        var commitHash: Digest256?
        var commitReply: CommitReply?
        var releaseKey: String?
        var releaseHash: Digest256?
        var releaseReply: ReleaseReply?
    }

    /// One remembered success for an idempotency namespace (section 4.1 table, decisions 10 and 11).
    struct IdempotencyRow {
        var tenant: String
        var endpoint: String
        var qualifier: String
        var key: String
        var hash: Digest256
        var retainUntil: Int64
        var reply: Reply
    }

    /// Everything the model knows, as one value.
    struct Snapshot {
        var tenants: [Tenant] = []
        var keys: [ApiKey] = []
        var budgets: [BudgetRow] = []
        var reservations: [ReservationRow] = []
        /// Position of each reservation in `reservations`: the one concession to speed, since the expiry
        /// sweep looks up every live reservation.
        var reservationPositions: [ReservationID: Int] = [:]
        /// By "tenant|endpoint|qualifier|key".
        var idempotency: [String: IdempotencyRow] = [:]
        /// Ids of the ACTIVE reservations, in creation order.
        var activeIDs: [ReservationID] = []
    }

    var data = Snapshot()
    var pathCache: [String: ScopePath] = [:]

    var tenants: [Tenant] {
        get { data.tenants }
        set { data.tenants = newValue }
    }
    var keys: [ApiKey] {
        get { data.keys }
        set { data.keys = newValue }
    }
    var budgets: [BudgetRow] {
        get { data.budgets }
        _modify { yield &data.budgets }
    }
    var reservations: [ReservationRow] {
        get { data.reservations }
        _modify { yield &data.reservations }
    }

    init() {}

    func addReservation(_ row: ReservationRow) {
        data.reservationPositions[row.id] = data.reservations.count
        data.reservations.append(row)
        data.activeIDs.append(row.id)
    }

    /// Moves a reservation to a terminal status (once: terminal statuses never change).
    func finish(_ index: Int, _ status: ReservationStatus) {
        precondition(data.reservations[index].status == .active && status.isTerminal)
        data.reservations[index].status = status
        let id = data.reservations[index].id
        data.activeIDs.removeAll { $0 == id }
    }

    var activeReservations: [ReservationRow] {
        data.activeIDs.map { data.reservations[data.reservationPositions[$0]!] }
    }

    // MARK: Lookups

    func tenant(_ id: String) -> Tenant? { tenants.first { $0.id == id } }

    func tenantIndex(_ id: String) -> Int? { tenants.firstIndex { $0.id == id } }

    func budgetIndex(_ scope: String, _ unit: Unit) -> Int? {
        budgets.firstIndex { $0.scope == scope && $0.unit == unit }
    }

    func reservationIndex(_ id: ReservationID) -> Int? { data.reservationPositions[id] }

    static func idempotencyKey(_ tenant: String, _ endpoint: String, _ qualifier: String, _ key: String) -> String {
        "\(tenant)|\(endpoint)|\(qualifier)|\(key)"
    }

    func remembered(_ tenant: String, _ endpoint: String, _ qualifier: String, _ key: String, now: Int64)
        -> IdempotencyRow?
    {
        guard let row = data.idempotency[Self.idempotencyKey(tenant, endpoint, qualifier, key)], now <= row.retainUntil
        else { return nil }
        return row
    }

    func remember(_ row: IdempotencyRow) {
        data.idempotency[Self.idempotencyKey(row.tenant, row.endpoint, row.qualifier, row.key)] = row
    }

    // MARK: Shapes of answers

    /// The model's scope strings as the core's path type (cached: parsing dominated the run time).
    func path(_ text: String) -> ScopePath {
        if let cached = pathCache[text] { return cached }
        do {
            let parsed = try ScopePath(decoding: text)
            pathCache[text] = parsed
            return parsed
        } catch {
            preconditionFailure("model built a bad path \(text)")
        }
    }

    func balance(_ row: BudgetRow) -> Balance {
        Balance(
            scope: path(row.scope), unit: row.unit, allocated: Amount(row.allocated),
            remaining: Amount(row.remaining), reserved: Amount(row.reserved), spent: Amount(row.spent),
            debt: Amount(row.debt), overdraftLimit: Amount(row.overdraftLimit), isOverLimit: row.isOverLimit,
            status: row.status)
    }

    func balances(_ scopes: [String], _ unit: Unit) -> [Balance] {
        scopes.compactMap { scope in budgetIndex(scope, unit).map { balance(budgets[$0]) } }
    }

    func budgetValue(_ row: BudgetRow) -> Budget {
        Budget(
            key: BudgetKey(path(row.scope), row.unit), tenant: row.tenant, allocated: Amount(row.allocated),
            remaining: Amount(row.remaining), reserved: Amount(row.reserved), spent: Amount(row.spent),
            debt: Amount(row.debt), overdraftLimit: Amount(row.overdraftLimit), isOverLimit: row.isOverLimit,
            status: row.status, commitOveragePolicy: row.commitOveragePolicy, rolloverPolicy: row.rolloverPolicy,
            caps: row.caps, periodStartMilliseconds: row.periodStart, periodEndMilliseconds: row.periodEnd,
            metadata: row.metadata, createdAtMilliseconds: row.createdAt, updatedAtMilliseconds: row.updatedAt)
    }

    // MARK: Scope derivation (section 1.3, decisions 8 and 9)

    /// Every cumulative prefix of the subject's path, the effective tenant always first, values
    /// lower-cased, blank values skipped.
    static func derivedScopes(_ subject: Subject, tenant: String) -> [String] {
        var parts = ["tenant:" + tenant.lowercased()]
        let levels: [(String, String?)] = [
            ("workspace", subject.workspace), ("app", subject.app), ("workflow", subject.workflow),
            ("agent", subject.agent), ("toolset", subject.toolset),
        ]
        var result = [parts[0]]
        for (name, value) in levels {
            guard let value, !value.allSatisfy({ $0 == " " || $0 == "\t" }) else { continue }
            parts.append(name + ":" + value.lowercased())
            result.append(parts.joined(separator: "/"))
        }
        return result
    }

    // MARK: Request validity helpers

    static func validSubject(_ subject: Subject) -> Bool {
        let values = [subject.tenant, subject.workspace, subject.app, subject.workflow, subject.agent, subject.toolset]
        var any = false
        for value in values {
            guard let value, !value.allSatisfy({ $0 == " " || $0 == "\t" }) else { continue }
            any = true
            if value.count > 128 { return false }
            if !value.unicodeScalars.allSatisfy({
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_"
                    || $0 == "." || $0 == "-"
            }) { return false }
        }
        return any && subject.dimensions.count <= 16
    }

    static func validAction(_ action: Action) -> Bool {
        !action.kind.isEmpty && action.kind.count <= 64 && !action.name.isEmpty && action.name.count <= 256
            && action.tags.count <= 10
    }

    static func validKey(_ stamp: IdempotencyStamp) -> Bool { !stamp.key.isEmpty && stamp.key.count <= 256 }

    static func fits(_ value: Int128) -> Bool { value >= Int128(Int64.min) && value <= Int128(Int64.max) }
}
