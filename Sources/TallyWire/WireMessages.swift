import TallyCore

/// The Tally wire protocol, version 1: the Swift shape of every message. `protocol/wire.md` is the
/// normative byte layout; `WireCodec` implements it.
public enum WireProtocol {
    public static let version: UInt8 = 1
    /// Frame header after the length prefix: version (1), kind (1), flags (2), request id (4).
    public static let headerBytes = 8
}

/// What the first frame of a connection presents.
public enum Credential: Sendable, Hashable {
    case tenantKey(String)
    case adminKey(String)
}

public struct Hello: Sendable, Hashable {
    public var credential: Credential
    /// Free text for the server's logs (`tally-cli/1.0`, `agent-gateway`).
    public var clientName: String

    public init(credential: Credential, clientName: String) {
        self.credential = credential
        self.clientName = clientName
    }
}

/// Who the connection acts for once the handshake succeeded.
public enum Principal: Sendable, Hashable {
    case tenant(id: String, keyID: String, permissions: [Permission])
    case admin
}

/// The limits a server enforces, announced in the handshake so clients can stay inside them.
public struct ServerLimits: Sendable, Hashable {
    public var frameBytesMax: UInt32
    public var inFlightRequestsMax: UInt32
    public var listLimitMax: UInt32

    public init(frameBytesMax: UInt32, inFlightRequestsMax: UInt32, listLimitMax: UInt32) {
        self.frameBytesMax = frameBytesMax
        self.inFlightRequestsMax = inFlightRequestsMax
        self.listLimitMax = listLimitMax
    }
}

public struct Welcome: Sendable, Hashable {
    public var protocolVersion: UInt8
    public var principal: Principal
    public var limits: ServerLimits
    public var serverName: String

    public init(protocolVersion: UInt8, principal: Principal, limits: ServerLimits, serverName: String) {
        self.protocolVersion = protocolVersion
        self.principal = principal
        self.limits = limits
        self.serverName = serverName
    }
}

// MARK: Runtime requests

public struct ReserveRequest: Sendable, Hashable {
    public var idempotencyKey: String
    public var subject: Subject
    public var action: Action
    public var estimate: Quantity
    public var ttlMilliseconds: Int64?
    public var graceMilliseconds: Int64?
    public var overagePolicy: OveragePolicy?
    public var dryRun: Bool
    public var metadata: JSONText?

    public init(
        idempotencyKey: String, subject: Subject, action: Action, estimate: Quantity, ttlMilliseconds: Int64? = nil,
        graceMilliseconds: Int64? = nil, overagePolicy: OveragePolicy? = nil, dryRun: Bool = false, metadata: JSONText? = nil
    ) {
        self.idempotencyKey = idempotencyKey
        self.subject = subject
        self.action = action
        self.estimate = estimate
        self.ttlMilliseconds = ttlMilliseconds
        self.graceMilliseconds = graceMilliseconds
        self.overagePolicy = overagePolicy
        self.dryRun = dryRun
        self.metadata = metadata
    }
}

public struct CommitRequest: Sendable, Hashable {
    public var reservationID: ReservationID
    public var idempotencyKey: String
    public var actual: Quantity
    public var metrics: StandardMetrics?
    public var metadata: JSONText?

    public init(reservationID: ReservationID, idempotencyKey: String, actual: Quantity, metrics: StandardMetrics? = nil, metadata: JSONText? = nil) {
        self.reservationID = reservationID
        self.idempotencyKey = idempotencyKey
        self.actual = actual
        self.metrics = metrics
        self.metadata = metadata
    }
}

public struct ReleaseRequest: Sendable, Hashable {
    public var reservationID: ReservationID
    public var idempotencyKey: String
    public var reason: String?

    public init(reservationID: ReservationID, idempotencyKey: String, reason: String? = nil) {
        self.reservationID = reservationID
        self.idempotencyKey = idempotencyKey
        self.reason = reason
    }
}

public struct ExtendRequest: Sendable, Hashable {
    public var reservationID: ReservationID
    public var idempotencyKey: String
    public var extendByMilliseconds: Int64
    public var metadata: JSONText?

    public init(reservationID: ReservationID, idempotencyKey: String, extendByMilliseconds: Int64, metadata: JSONText? = nil) {
        self.reservationID = reservationID
        self.idempotencyKey = idempotencyKey
        self.extendByMilliseconds = extendByMilliseconds
        self.metadata = metadata
    }
}

public struct DecideRequest: Sendable, Hashable {
    public var idempotencyKey: String
    public var subject: Subject
    public var action: Action
    public var estimate: Quantity
    public var metadata: JSONText?

    public init(idempotencyKey: String, subject: Subject, action: Action, estimate: Quantity, metadata: JSONText? = nil) {
        self.idempotencyKey = idempotencyKey
        self.subject = subject
        self.action = action
        self.estimate = estimate
        self.metadata = metadata
    }
}

public struct DebitRequest: Sendable, Hashable {
    public var idempotencyKey: String
    public var subject: Subject
    public var action: Action
    public var actual: Quantity
    public var overagePolicy: OveragePolicy?
    public var metrics: StandardMetrics?
    public var clientTimeMilliseconds: Int64?
    public var metadata: JSONText?

    public init(
        idempotencyKey: String, subject: Subject, action: Action, actual: Quantity, overagePolicy: OveragePolicy? = nil,
        metrics: StandardMetrics? = nil, clientTimeMilliseconds: Int64? = nil, metadata: JSONText? = nil
    ) {
        self.idempotencyKey = idempotencyKey
        self.subject = subject
        self.action = action
        self.actual = actual
        self.overagePolicy = overagePolicy
        self.metrics = metrics
        self.clientTimeMilliseconds = clientTimeMilliseconds
        self.metadata = metadata
    }
}

/// Reservation listing (semantics 2.8). `tenant` is required with the admin key and must be the key's
/// own tenant (or absent) with a tenant key.
public struct ListReservationsRequest: Sendable, Hashable {
    public var tenant: String?
    public var idempotencyKey: String?
    public var status: ReservationStatus?
    public var segments: [ScopeLevel: String]
    public var createdFrom, createdTo, expiresFrom, expiresTo, finalizedFrom, finalizedTo: Int64?
    /// One of `ReservationSortKey`'s raw values.
    public var sortKey: ReservationSortKey
    public var ascending: Bool
    public var limit: UInt32
    public var after: String?

    public init(
        tenant: String? = nil, idempotencyKey: String? = nil, status: ReservationStatus? = nil,
        segments: [ScopeLevel: String] = [:], createdFrom: Int64? = nil, createdTo: Int64? = nil,
        expiresFrom: Int64? = nil, expiresTo: Int64? = nil, finalizedFrom: Int64? = nil, finalizedTo: Int64? = nil,
        sortKey: ReservationSortKey = .createdAt, ascending: Bool = false, limit: UInt32 = 50, after: String? = nil
    ) {
        self.tenant = tenant
        self.idempotencyKey = idempotencyKey
        self.status = status
        self.segments = segments
        self.createdFrom = createdFrom
        self.createdTo = createdTo
        self.expiresFrom = expiresFrom
        self.expiresTo = expiresTo
        self.finalizedFrom = finalizedFrom
        self.finalizedTo = finalizedTo
        self.sortKey = sortKey
        self.ascending = ascending
        self.limit = limit
        self.after = after
    }
}

public enum ReservationSortKey: UInt8, CaseIterable, Sendable, Hashable {
    case reservationID = 1, tenant = 2, scopePath = 3, status = 4, reserved = 5, createdAt = 6, expiresAt = 7
}

/// Budgets with their balances: under `scopePrefix` (or the whole tenant), optionally one unit and/or
/// status, containing every `level:value` segment. `tenant` as in `ListReservationsRequest`.
public struct BalancesRequest: Sendable, Hashable {
    public var tenant: String?
    public var scopePrefix: String?
    public var unit: Unit?
    public var status: BudgetStatus?
    public var segments: [ScopeLevel: String]

    public init(tenant: String? = nil, scopePrefix: String? = nil, unit: Unit? = nil, status: BudgetStatus? = nil, segments: [ScopeLevel: String] = [:]) {
        self.tenant = tenant
        self.scopePrefix = scopePrefix
        self.unit = unit
        self.status = status
        self.segments = segments
    }
}

// MARK: Admin requests

public struct CreateApiKeyRequest: Sendable, Hashable {
    public var tenantID: String
    public var name: String
    public var description: String?
    public var permissions: [Permission]?
    public var scopeFilter: [String]
    public var expiresAtMilliseconds: Int64?
    public var metadata: JSONText?

    public init(
        tenantID: String, name: String, description: String? = nil, permissions: [Permission]? = nil,
        scopeFilter: [String] = [], expiresAtMilliseconds: Int64? = nil, metadata: JSONText? = nil
    ) {
        self.tenantID = tenantID
        self.name = name
        self.description = description
        self.permissions = permissions
        self.scopeFilter = scopeFilter
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.metadata = metadata
    }
}

/// `tenantID` is required with the admin key and must be absent with a tenant key (Cycles 5.6).
public struct CreateBudgetRequest: Sendable, Hashable {
    public var tenantID: String?
    public var scope: String
    public var unit: Unit
    public var allocated: Amount
    public var overdraftLimit: Amount
    public var commitOveragePolicy: OveragePolicy?
    public var rolloverPolicy: RolloverPolicy
    public var caps: Caps?
    public var periodStartMilliseconds: Int64?
    public var periodEndMilliseconds: Int64?
    public var metadata: JSONText?

    public init(
        tenantID: String? = nil, scope: String, unit: Unit, allocated: Amount, overdraftLimit: Amount = .zero,
        commitOveragePolicy: OveragePolicy? = nil, rolloverPolicy: RolloverPolicy = .none, caps: Caps? = nil,
        periodStartMilliseconds: Int64? = nil, periodEndMilliseconds: Int64? = nil, metadata: JSONText? = nil
    ) {
        self.tenantID = tenantID
        self.scope = scope
        self.unit = unit
        self.allocated = allocated
        self.overdraftLimit = overdraftLimit
        self.commitOveragePolicy = commitOveragePolicy
        self.rolloverPolicy = rolloverPolicy
        self.caps = caps
        self.periodStartMilliseconds = periodStartMilliseconds
        self.periodEndMilliseconds = periodEndMilliseconds
        self.metadata = metadata
    }
}

public struct FundBudgetRequest: Sendable, Hashable {
    public var scope: String
    public var unit: Unit
    public var operation: FundingOperation
    public var amount: Amount
    public var spent: Amount?
    public var reason: String?
    public var idempotencyKey: String?

    public init(scope: String, unit: Unit, operation: FundingOperation, amount: Amount, spent: Amount? = nil, reason: String? = nil, idempotencyKey: String? = nil) {
        self.scope = scope
        self.unit = unit
        self.operation = operation
        self.amount = amount
        self.spent = spent
        self.reason = reason
        self.idempotencyKey = idempotencyKey
    }
}

public struct UpdateBudgetRequest: Sendable, Hashable {
    public var scope: String
    public var unit: Unit
    public var overdraftLimit: Amount?
    public var commitOveragePolicy: OveragePolicy?
    public var caps: Caps?
    public var metadata: JSONText?

    public init(scope: String, unit: Unit, overdraftLimit: Amount? = nil, commitOveragePolicy: OveragePolicy? = nil, caps: Caps? = nil, metadata: JSONText? = nil) {
        self.scope = scope
        self.unit = unit
        self.overdraftLimit = overdraftLimit
        self.commitOveragePolicy = commitOveragePolicy
        self.caps = caps
        self.metadata = metadata
    }
}

public struct BudgetStatusRequest: Sendable, Hashable {
    public var scope: String
    public var unit: Unit
    public var reason: String?

    public init(scope: String, unit: Unit, reason: String? = nil) {
        self.scope = scope
        self.unit = unit
        self.reason = reason
    }
}

// MARK: Frames

/// Every message a client sends, with its frame kind (responses have kinds of their own, 0x81 and up).
public enum Request: Sendable, Hashable {
    case hello(Hello)                                   // 0x01
    case reserve(ReserveRequest)                        // 0x02
    case commit(CommitRequest)                          // 0x03
    case release(ReleaseRequest)                        // 0x04
    case extend(ExtendRequest)                          // 0x05
    case decide(DecideRequest)                          // 0x06
    case debit(DebitRequest)                            // 0x07
    case getReservation(reservationID: ReservationID)          // 0x08
    case listReservations(ListReservationsRequest)      // 0x09
    case balances(BalancesRequest)                      // 0x0A
    case createTenant(CreateTenantCommand)              // 0x10
    case updateTenant(UpdateTenantCommand)              // 0x11
    case listTenants(status: TenantStatus?)             // 0x12
    case createApiKey(CreateApiKeyRequest)              // 0x13
    case revokeApiKey(RevokeApiKeyCommand)              // 0x14
    case createBudget(CreateBudgetRequest)              // 0x15
    case fundBudget(FundBudgetRequest)                  // 0x16
    case updateBudget(UpdateBudgetRequest)              // 0x17
    case freezeBudget(BudgetStatusRequest)              // 0x18
    case unfreezeBudget(BudgetStatusRequest)            // 0x19
    case listApiKeys(tenantID: String?)                 // 0x1A
    /// Stream committed events from `fromSequence` on; the server sends at most `credit` before more is granted.
    case subscribe(fromSequence: UInt64, credit: UInt32) // 0x20
    /// Grants a subscription (named by its request id) `credit` more events; never answered.
    case grantCredit(UInt32)                            // 0x21
}

/// Every message a server sends.
public enum Response: Sendable, Hashable {
    case welcome(Welcome)
    /// The answer to any command-backed request: reserve (live or dry run), commit, release, extend,
    /// decide, debit, tenant create/update, key revoke, budget create/update/freeze/unfreeze, fund.
    case reply(Reply)
    case apiKeyCreated(ApiKey, secret: String)
    case reservation(Reservation)
    case reservations([Reservation], hasMore: Bool)
    case budgets([Budget])
    case tenants([Tenant])
    case apiKeys([ApiKey])
    case subscribed(fromSequence: UInt64)
    /// One committed event of a subscription: its encoded record and chain value, as the log stores them.
    case event(record: [UInt8], chain: [UInt8])
    case error(WireError)
}

/// A refusal or a protocol error, as the error frame carries it.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var unitMismatch: UnitMismatchDetails?

    public init(code: ErrorCode, message: String, unitMismatch: UnitMismatchDetails? = nil) {
        self.code = code
        self.message = message
        self.unitMismatch = unitMismatch
    }

    public init(_ refusal: Refusal) {
        self.init(code: refusal.code, message: refusal.message, unitMismatch: refusal.unitMismatch)
    }

    public var description: String { "\(code.cyclesName) (\(code.rawValue)): \(message)" }
}
