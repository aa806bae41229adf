/// The endpoints whose idempotency keys live in their own namespace (semantics 4.1). Commit and release
/// keys are stored on the reservation instead (decision 10).
public enum IdempotencyEndpoint: UInt8, CaseIterable, Sendable, Hashable {
    /// Live and dry-run reserve share one namespace, so changing only `dry_run` is a mismatch.
    case reserve = 1
    case decide = 2
    case event = 3
    /// Qualified by the reservation id: the same key may extend two reservations.
    case extend = 4
    /// Admin funding, keyed per tenant (decision 11).
    case fund = 5
}

/// Where an idempotency key is unique: (tenant, endpoint, qualifier, key).
public struct IdempotencyKey: Sendable, Hashable {
    public var tenant: String
    public var endpoint: IdempotencyEndpoint
    /// The reservation id for `extend`, empty otherwise.
    public var qualifier: String
    public var key: String

    public init(tenant: String, endpoint: IdempotencyEndpoint, qualifier: String = "", key: String) {
        self.tenant = tenant
        self.endpoint = endpoint
        self.qualifier = qualifier
        self.key = key
    }
}

/// The original answer to a successful request and the fingerprint of its payload.
public struct IdempotencyRecord: Sendable, Hashable {
    public var payloadHash: Digest256
    /// After this instant the key is forgotten and a retry is a fresh request (as the reference does).
    public var retainUntilMilliseconds: Int64
    public var reply: StoredReply

    public init(payloadHash: Digest256, retainUntilMilliseconds: Int64, reply: StoredReply) {
        self.payloadHash = payloadHash
        self.retainUntilMilliseconds = retainUntilMilliseconds
        self.reply = reply
    }
}

public enum StoredReply: Sendable, Hashable {
    case reserve(ReserveReply)
    case evaluation(EvaluationReply)
    case extend(ExtendReply)
    case debit(DebitReply)
    case funding(FundingReply)
}

/// What the caller stamps on a request: the key and the SHA-256 of the request's canonical payload.
public struct IdempotencyStamp: Sendable, Hashable {
    public var key: String
    public var payloadHash: Digest256

    public init(key: String, payloadHash: Digest256) {
        self.key = key
        self.payloadHash = payloadHash
    }

    func validate() throws(Refusal) {
        if key.isEmpty || key.hasMoreScalars(than: Limits.idempotencyKeyLengthMax) {
            throw Refusal(.invalidRequest, "idempotency_key must be 1-\(Limits.idempotencyKeyLengthMax) characters")
        }
    }
}
