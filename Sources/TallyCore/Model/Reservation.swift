/// A hold on one or more budgets, from reserve until commit, release or expiry.
///
/// Invariants: `budgetedScopes` is the non-empty set of scopes that had a budget in `unit` at reserve
/// time (later settlement touches exactly these); while ACTIVE, `estimate` is counted in `reserved` on
/// each of them; once terminal, the status never changes again.
public struct Reservation: Sendable, Hashable {
    /// The fields live in one shared box, copied only when a shared value is changed (copy on write): a
    /// reservation is some 600 bytes with two dozen strings and arrays, and the writer, the codecs and the
    /// reads pass it around by value. A copy is one retain instead of a retain of every string in it.
    private var storage: Storage

    public var id: ReservationID {
        get { storage.fields.id }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.id
        }
    }

    public var tenant: String {
        get { storage.fields.tenant }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.tenant
        }
    }

    public var subject: Subject {
        get { storage.fields.subject }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.subject
        }
    }

    public var action: Action {
        get { storage.fields.action }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.action
        }
    }

    public var unit: Unit {
        get { storage.fields.unit }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.unit
        }
    }

    public var estimate: Amount {
        get { storage.fields.estimate }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.estimate
        }
    }

    public var scopePath: ScopePath {
        get { storage.fields.scopePath }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.scopePath
        }
    }

    public var affectedScopes: [ScopePath] {
        get { storage.fields.affectedScopes }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.affectedScopes
        }
    }

    public var budgetedScopes: [ScopePath] {
        get { storage.fields.budgetedScopes }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.budgetedScopes
        }
    }

    public var createdAtMilliseconds: Int64 {
        get { storage.fields.createdAtMilliseconds }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.createdAtMilliseconds
        }
    }

    public var expiresAtMilliseconds: Int64 {
        get { storage.fields.expiresAtMilliseconds }
        _modify {
            makeUnique()
            yield &storage.fields.expiresAtMilliseconds
        }
    }

    public var graceMilliseconds: Int64 {
        get { storage.fields.graceMilliseconds }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.graceMilliseconds
        }
    }

    public var overagePolicy: OveragePolicy {
        get { storage.fields.overagePolicy }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.overagePolicy
        }
    }

    public var maxExtensions: Int {
        get { storage.fields.maxExtensions }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.maxExtensions
        }
    }

    public var extensionCount: Int {
        get { storage.fields.extensionCount }
        _modify {
            makeUnique()
            yield &storage.fields.extensionCount
        }
    }

    public var status: ReservationStatus {
        get { storage.fields.status }
        _modify {
            makeUnique()
            yield &storage.fields.status
        }
    }

    public var idempotencyKey: String {
        get { storage.fields.idempotencyKey }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.idempotencyKey
        }
    }

    public var caps: Caps? {
        get { storage.fields.caps }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.caps
        }
    }

    public var metadata: JSONText? {
        get { storage.fields.metadata }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.metadata
        }
    }

    public var createdBy: Caller {
        get { storage.fields.createdBy }
        _modify {
            makeUnique()
            storage.encodedHead = nil
            yield &storage.fields.createdBy
        }
    }

    public var settlement: Settlement? {
        get { storage.fields.settlement }
        _modify {
            makeUnique()
            yield &storage.fields.settlement
        }
    }

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
        id: ReservationID, tenant: String, subject: Subject, action: Action, unit: Unit, estimate: Amount,
        scopePath: ScopePath, affectedScopes: [ScopePath], budgetedScopes: [ScopePath], createdAtMilliseconds: Int64,
        expiresAtMilliseconds: Int64, graceMilliseconds: Int64, overagePolicy: OveragePolicy, maxExtensions: Int,
        extensionCount: Int = 0, status: ReservationStatus = .active, idempotencyKey: String, caps: Caps? = nil,
        metadata: JSONText? = nil, createdBy: Caller, settlement: Settlement? = nil
    ) {
        storage = Storage(Fields(
            id: id,
            tenant: tenant,
            subject: subject,
            action: action,
            unit: unit,
            estimate: estimate,
            scopePath: scopePath,
            affectedScopes: affectedScopes,
            budgetedScopes: budgetedScopes,
            createdAtMilliseconds: createdAtMilliseconds,
            expiresAtMilliseconds: expiresAtMilliseconds,
            graceMilliseconds: graceMilliseconds,
            overagePolicy: overagePolicy,
            maxExtensions: maxExtensions,
            extensionCount: extensionCount,
            status: status,
            idempotencyKey: idempotencyKey,
            caps: caps,
            metadata: metadata,
            createdBy: createdBy,
            settlement: settlement))
    }

    public static func == (left: Reservation, right: Reservation) -> Bool {
        left.storage === right.storage || left.storage.fields == right.storage.fields
    }

    public func hash(into hasher: inout Hasher) { storage.fields.hash(into: &hasher) }

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields, encodedHead: storage.encodedHead) }
    }

    /// The projection record's format byte and every field before the settlement, kept from the last time the store's
    /// writer encoded this reservation while it was ACTIVE (`ProjectionCodec.encodeReusingHead`). Only the
    /// three fields that change while a reservation is ACTIVE (`expiresAtMilliseconds`, `extensionCount`,
    /// `status`) may differ from the bytes: they have a fixed width and are written over at their offsets.
    /// Changing any other field drops it.
    package var encodedHead: EncodedHead? { storage.encodedHead }

    /// Keeps `head` in the box this value shares. Not `mutating`: the bytes are a function of the fields,
    /// so every value sharing the box may use them. Only the thread that owns the state being written reads
    /// or sets it (`Projections.write`: the store's writer, or a catch-up, rebuild or restore on its own state).
    package func rememberEncodedHead(_ head: EncodedHead) { storage.encodedHead = head }

    package struct EncodedHead: Sendable {
        package var bytes: [UInt8]
        package var expiresAtOffset: Int
        package var extensionCountOffset: Int
        package var statusOffset: Int

        package init(bytes: [UInt8], expiresAtOffset: Int, extensionCountOffset: Int, statusOffset: Int) {
            self.bytes = bytes
            self.expiresAtOffset = expiresAtOffset
            self.extensionCountOffset = extensionCountOffset
            self.statusOffset = statusOffset
        }
    }

    private struct Fields: Sendable, Hashable {
        var id: ReservationID
        var tenant: String
        var subject: Subject
        var action: Action
        var unit: Unit
        var estimate: Amount
        var scopePath: ScopePath
        var affectedScopes: [ScopePath]
        var budgetedScopes: [ScopePath]
        var createdAtMilliseconds: Int64
        var expiresAtMilliseconds: Int64
        var graceMilliseconds: Int64
        var overagePolicy: OveragePolicy
        var maxExtensions: Int
        var extensionCount: Int
        var status: ReservationStatus
        var idempotencyKey: String
        var caps: Caps?
        var metadata: JSONText?
        var createdBy: Caller
        var settlement: Settlement?
    }

    // `encodedHead`, a cache of bytes derived from `fields`, is read and set only by the thread that owns the state.
    // Safe: `fields` is changed only through `makeUnique`, that is while no other value shares the box.
    private final class Storage: @unchecked Sendable {  // Safe: copy on write, see above
        var fields: Fields
        var encodedHead: EncodedHead?

        init(_ fields: Fields, encodedHead: EncodedHead? = nil) {
            self.fields = fields
            self.encodedHead = encodedHead
        }
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

extension Reservation: CustomReflectable {
    /// The fields, not the box: what `print`, `dump` and test failures show.
    public var customMirror: Mirror { Mirror(reflecting: storage.fields) }
}
