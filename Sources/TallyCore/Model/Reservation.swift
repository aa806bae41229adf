/// A hold on one or more budgets, from reserve until commit, release or expiry.
///
/// Invariants: `budgetedScopes` is the non-empty set of scopes that had a budget in `unit` at reserve
/// time (later settlement touches exactly these); while ACTIVE, `estimate` is counted in `reserved` on
/// each of them; once terminal, the status never changes again.
public struct Reservation: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var subject: Subject
    public var action: Action
    public var unit: Unit
    public var estimate: Amount
    public var scopePath: ScopePath
    public var affectedScopes: [ScopePath]
    public var budgetedScopes: [ScopePath]
    public var createdAtMilliseconds: Int64
    public var expiresAtMilliseconds: Int64
    public var graceMilliseconds: Int64
    public var overagePolicy: OveragePolicy
    public var maxExtensions: Int
    public var extensionCount: Int
    public var status: ReservationStatus
    public var idempotencyKey: String
    public var caps: Caps?
    public var metadata: JSONText?
    public var createdBy: Caller
    public var settlement: Settlement?

    /// The deadline for commit and release: `expires_at + grace`.
    public var settleDeadlineMilliseconds: Int64 {
        let (sum, overflow) = expiresAtMilliseconds.addingReportingOverflow(graceMilliseconds)
        return overflow ? Int64.max : sum
    }

    /// `finalized_at_ms` on the wire: COMMITTED and RELEASED only.
    public var finalizedAtMilliseconds: Int64? {
        switch settlement {
        case .committed(let commit): commit.atMilliseconds
        case .released(let release): release.atMilliseconds
        case .expired, nil: nil
        }
    }

    public init(
        id: String, tenant: String, subject: Subject, action: Action, unit: Unit, estimate: Amount,
        scopePath: ScopePath, affectedScopes: [ScopePath], budgetedScopes: [ScopePath], createdAtMilliseconds: Int64,
        expiresAtMilliseconds: Int64, graceMilliseconds: Int64, overagePolicy: OveragePolicy, maxExtensions: Int,
        extensionCount: Int = 0, status: ReservationStatus = .active, idempotencyKey: String, caps: Caps? = nil,
        metadata: JSONText? = nil, createdBy: Caller, settlement: Settlement? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.subject = subject
        self.action = action
        self.unit = unit
        self.estimate = estimate
        self.scopePath = scopePath
        self.affectedScopes = affectedScopes
        self.budgetedScopes = budgetedScopes
        self.createdAtMilliseconds = createdAtMilliseconds
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.graceMilliseconds = graceMilliseconds
        self.overagePolicy = overagePolicy
        self.maxExtensions = maxExtensions
        self.extensionCount = extensionCount
        self.status = status
        self.idempotencyKey = idempotencyKey
        self.caps = caps
        self.metadata = metadata
        self.createdBy = createdBy
        self.settlement = settlement
    }

    /// How a reservation ended, with what commit and release replays need.
    public enum Settlement: Sendable, Hashable {
        case committed(CommitSettlement)
        case released(ReleaseSettlement)
        case expired(atMilliseconds: Int64)
    }

    public struct CommitSettlement: Sendable, Hashable {
        public var atMilliseconds: Int64
        public var actual: Amount
        public var idempotencyKey: String
        public var payloadHash: Digest256
        public var metrics: StandardMetrics?
        public var metadata: JSONText?
        /// The original reply, returned byte for byte on a same-key replay.
        public var reply: CommitReply
    }

    public struct ReleaseSettlement: Sendable, Hashable {
        public var atMilliseconds: Int64
        public var reason: String?
        public var releasedBy: Caller
        public var cause: ReleaseCause
        /// `nil` when the release came from a tenant-close cascade rather than a request.
        public var idempotencyKey: String?
        public var payloadHash: Digest256?
        public var reply: ReleaseReply
    }
}

/// Why a reservation was released.
public enum ReleaseCause: UInt8, CaseIterable, Sendable, Hashable {
    /// A release request (the tenant's key, or the admin key's force release).
    case request = 1
    /// The tenant was closed and its ACTIVE reservations returned their holds (decision 15).
    case tenantClosed = 2
}
