/// A tenant API key. Only the SHA-256 of the secret is ever recorded; the secret is shown once by the
/// server that generated it.
public struct ApiKey: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var name: String
    public var description: String?
    public var secretHash: Digest256
    public var prefix: String
    public var permissions: [Permission]
    public var scopeFilter: [String]
    public var status: ApiKeyStatus
    public var expiresAtMilliseconds: Int64?
    public var metadata: JSONText?
    public var createdAtMilliseconds: Int64
    public var revokedAtMilliseconds: Int64?
    public var revokeReason: String?

    public init(
        id: String, tenant: String, name: String, description: String? = nil, secretHash: Digest256,
        prefix: String, permissions: [Permission] = Permission.defaultSet, scopeFilter: [String] = [],
        status: ApiKeyStatus = .active, expiresAtMilliseconds: Int64? = nil, metadata: JSONText? = nil,
        createdAtMilliseconds: Int64, revokedAtMilliseconds: Int64? = nil, revokeReason: String? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.name = name
        self.description = description
        self.secretHash = secretHash
        self.prefix = prefix
        self.permissions = permissions
        self.scopeFilter = scopeFilter
        self.status = status
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.metadata = metadata
        self.createdAtMilliseconds = createdAtMilliseconds
        self.revokedAtMilliseconds = revokedAtMilliseconds
        self.revokeReason = revokeReason
    }

    /// Whether the key grants a permission, with the Cycles wildcards: `admin:write` satisfies any write,
    /// `admin:read` any read, and a read never satisfies a write. Verbs such as
    /// `reservations:create` are neither reads nor writes and must be granted by name.
    public func allows(_ permission: Permission) -> Bool { permission.isGranted(by: permissions) }
}
