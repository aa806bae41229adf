/// Who asked for a change: a tenant's API key, the operator's admin key, or the ledger itself (expiry).
/// Recorded on events so that the audit trail can attribute every change.
public enum Caller: Sendable, Hashable {
    case tenant(id: String, keyID: String)
    case admin
    case system

    /// The tenant a tenant key acts for; `nil` for the admin key and the system.
    public var tenantID: String? {
        if case .tenant(let id, _) = self { return id }
        return nil
    }
}
