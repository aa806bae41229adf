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
///
/// Hashed once, when it is made: the writer looks a key up, stores it, adds it to the batch's touched keys,
/// checks it against later batches and evicts it, about seven hashes of the four strings per command before
/// (3.5% of the writer's CPU at 16 x 64, BENCHMARKS.md). Made from a request's `IdempotencyStamp`, the key's
/// own string is not hashed again either (the stamp hashed it when the request was decoded).
public struct IdempotencyKey: Sendable, Hashable {
    public let tenant: String
    public let endpoint: IdempotencyEndpoint
    /// The reservation id for `extend`, empty otherwise.
    public let qualifier: String
    public let key: String
    /// The fields hashed (with the process's seed, as `Hasher` always is): all that `hash(into:)` feeds.
    private let fieldsHash: Int

    public init(tenant: String, endpoint: IdempotencyEndpoint, qualifier: String = "", key: String) {
        self.init(tenant: tenant, endpoint: endpoint, qualifier: qualifier, key: key, keyHash: key.hashValue)
    }

    /// The key of a request's stamp, reusing the hash of its key string.
    public init(tenant: String, endpoint: IdempotencyEndpoint, qualifier: String = "", stamp: IdempotencyStamp) {
        self.init(tenant: tenant, endpoint: endpoint, qualifier: qualifier, key: stamp.key, keyHash: stamp.keyHash)
    }

    private init(tenant: String, endpoint: IdempotencyEndpoint, qualifier: String, key: String, keyHash: Int) {
        self.tenant = tenant
        self.endpoint = endpoint
        self.qualifier = qualifier
        self.key = key
        var hasher = Hasher()
        hasher.combine(tenant)
        hasher.combine(endpoint)
        hasher.combine(qualifier)
        hasher.combine(keyHash)
        fieldsHash = hasher.finalize()
    }

    public static func == (left: IdempotencyKey, right: IdempotencyKey) -> Bool {
        left.fieldsHash == right.fieldsHash && left.key == right.key && left.tenant == right.tenant
            && left.endpoint == right.endpoint && left.qualifier == right.qualifier
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fieldsHash)
    }

    public func _rawHashValue(seed: Int) -> Int { KeyHash.mix(UInt64(bitPattern: Int64(fieldsHash)), seed: seed) }

    /// The hash of all four fields, taken once when the key was made (seeded per process, like every `Hasher`):
    /// what the store indexes its idempotency rows by.
    public var fieldsDigest: UInt64 { UInt64(bitPattern: Int64(fieldsHash)) }
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
    public let key: String
    public var payloadHash: Digest256
    /// `key.hashValue`, taken once when the request is decoded (`IdempotencyKey` reuses it).
    let keyHash: Int

    public init(key: String, payloadHash: Digest256) {
        self.key = key
        self.payloadHash = payloadHash
        keyHash = key.hashValue
    }

    public static func == (left: IdempotencyStamp, right: IdempotencyStamp) -> Bool {
        left.key == right.key && left.payloadHash == right.payloadHash
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(keyHash)
        hasher.combine(payloadHash)
    }

    func validate() throws(Refusal) {
        if key.isEmpty || key.hasMoreScalars(than: Limits.idempotencyKeyLengthMax) {
            throw Refusal(.invalidRequest, "idempotency_key must be 1-\(Limits.idempotencyKeyLengthMax) characters")
        }
    }
}
