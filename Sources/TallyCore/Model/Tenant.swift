/// A tenant: the owner of budgets, keys and reservations, and the source of reservation defaults.
public struct Tenant: Sendable, Hashable {
    public var id: String
    public var name: String
    public var status: TenantStatus
    public var parentTenantID: String?
    public var defaultOveragePolicy: OveragePolicy
    public var defaultTTLMilliseconds: Int64
    public var maxTTLMilliseconds: Int64
    public var maxExtensions: Int
    public var expiryPolicy: ExpiryPolicy
    public var metadata: JSONText?
    public var createdAtMilliseconds: Int64
    public var updatedAtMilliseconds: Int64

    public init(
        id: String, name: String, status: TenantStatus = .active, parentTenantID: String? = nil,
        defaultOveragePolicy: OveragePolicy = .allowIfAvailable,
        defaultTTLMilliseconds: Int64 = Limits.ttlMillisecondsDefault,
        maxTTLMilliseconds: Int64 = Limits.ttlMillisecondsCapDefault, maxExtensions: Int = Limits.extensionsDefault,
        expiryPolicy: ExpiryPolicy = .autoRelease, metadata: JSONText? = nil, createdAtMilliseconds: Int64,
        updatedAtMilliseconds: Int64
    ) {
        self.id = id
        self.name = name
        self.status = status
        self.parentTenantID = parentTenantID
        self.defaultOveragePolicy = defaultOveragePolicy
        self.defaultTTLMilliseconds = defaultTTLMilliseconds
        self.maxTTLMilliseconds = maxTTLMilliseconds
        self.maxExtensions = maxExtensions
        self.expiryPolicy = expiryPolicy
        self.metadata = metadata
        self.createdAtMilliseconds = createdAtMilliseconds
        self.updatedAtMilliseconds = updatedAtMilliseconds
    }

    /// `^[a-z0-9-]+$`, 3-64 characters (Cycles `tenant_id`).
    public static func isValidID(_ id: String) -> Bool {
        let bytes = id.utf8
        return bytes.count >= Limits.tenantIDLengthMin && bytes.count <= Limits.tenantIDLengthMax
            && bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d }
    }
}
