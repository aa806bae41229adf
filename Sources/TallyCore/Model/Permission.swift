/// A Cycles API key permission (the normative `Permission` enum).
public enum Permission: String, CaseIterable, Sendable, Hashable, Comparable {
    case reservationsCreate = "reservations:create"
    case reservationsCommit = "reservations:commit"
    case reservationsRelease = "reservations:release"
    case reservationsExtend = "reservations:extend"
    case reservationsList = "reservations:list"
    case balancesRead = "balances:read"
    case budgetsRead = "budgets:read"
    case budgetsWrite = "budgets:write"
    case policiesRead = "policies:read"
    case policiesWrite = "policies:write"
    case webhooksRead = "webhooks:read"
    case webhooksWrite = "webhooks:write"
    case eventsRead = "events:read"
    case adminRead = "admin:read"
    case adminWrite = "admin:write"
    case adminTenantsRead = "admin:tenants:read"
    case adminTenantsWrite = "admin:tenants:write"
    case adminBudgetsRead = "admin:budgets:read"
    case adminBudgetsWrite = "admin:budgets:write"
    case adminPoliciesRead = "admin:policies:read"
    case adminPoliciesWrite = "admin:policies:write"
    case adminApiKeysRead = "admin:apikeys:read"
    case adminApiKeysWrite = "admin:apikeys:write"
    case adminWebhooksRead = "admin:webhooks:read"
    case adminWebhooksWrite = "admin:webhooks:write"
    case adminEventsRead = "admin:events:read"
    case adminAuditRead = "admin:audit:read"

    /// Decision 22: a key created without permissions gets the `reservations:*` verbs plus `balances:read`.
    public static let defaultSet: [Permission] = [
        .reservationsCreate, .reservationsCommit, .reservationsRelease, .reservationsExtend, .reservationsList,
        .balancesRead,
    ]

    /// Stable numbering for the binary codec: the position in `allCases`, which is append-only.
    public var code: UInt8 { UInt8(Permission.allCases.firstIndex(of: self)! + 1) }

    public init?(code: UInt8) {
        guard code >= 1, Int(code) <= Permission.allCases.count else { return nil }
        self = Permission.allCases[Int(code) - 1]
    }

    /// Whether a set of granted permissions includes this one, with the Cycles wildcards: `admin:write`
    /// satisfies any write, `admin:read` any read, a read never a write; verbs such as
    /// `reservations:create` must be granted by name.
    public func isGranted(by granted: [Permission]) -> Bool {
        if granted.contains(self) { return true }
        if isWrite { return granted.contains(.adminWrite) }
        if isRead { return granted.contains(.adminRead) }
        return false
    }

    public var isWrite: Bool { rawValue.hasSuffix(":write") }
    public var isRead: Bool { rawValue.hasSuffix(":read") }

    public static func < (lhs: Permission, rhs: Permission) -> Bool { lhs.code < rhs.code }
}
