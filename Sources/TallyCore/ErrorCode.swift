/// Every refusal Tally can give, with a stable numeric code, its Cycles error string and HTTP status.
///
/// Raw values are frozen and append-only: the binary protocol and stored replies carry them. Cases are
/// declared in the order in which the semantics check them on the reserve path (request validity, then
/// identity, then idempotency, then the tenant guard, then reservation state, then budget state, with
/// the per-scope budget checks in their defined order). Each operation's own check order is stated on
/// its `decide` function and pinned by the precedence tests.
public enum ErrorCode: UInt16, CaseIterable, Sendable, Hashable {
    case invalidRequest = 1
    case unauthorized = 2
    case forbidden = 3
    case insufficientPermissions = 4
    case notFound = 5
    case tenantNotFound = 6
    case budgetNotFound = 7
    case idempotencyMismatch = 8
    case tenantClosed = 9
    case reservationExpired = 10
    case reservationFinalized = 11
    case unitMismatch = 12
    case budgetFrozen = 13
    case budgetClosed = 14
    case overdraftLimitExceeded = 15
    case debtOutstanding = 16
    case budgetExceeded = 17
    case maxExtensionsExceeded = 18
    case duplicateResource = 19
    case invalidTransition = 20
    /// Tally's own: an amount would leave the exact `Int64` range. Reported as Cycles `INVALID_REQUEST`.
    case amountOverflow = 21
    case limitExceeded = 22
    case internalError = 23
    /// Wire protocol: a frame that cannot be decoded (the connection is closed after the error frame).
    case malformedFrame = 24
    /// Wire protocol: the frame's protocol version is not one this server speaks.
    case unsupportedProtocolVersion = 25
    /// A frame or request body over the server's size limit (HTTP 413).
    case payloadTooLarge = 26

    /// The Cycles `ErrorCode` string sent in JSON error bodies.
    public var cyclesName: String {
        switch self {
        case .invalidRequest, .amountOverflow, .malformedFrame, .unsupportedProtocolVersion, .payloadTooLarge: "INVALID_REQUEST"
        case .unauthorized: "UNAUTHORIZED"
        case .forbidden: "FORBIDDEN"
        case .insufficientPermissions: "INSUFFICIENT_PERMISSIONS"
        case .notFound: "NOT_FOUND"
        case .tenantNotFound: "TENANT_NOT_FOUND"
        case .budgetNotFound: "BUDGET_NOT_FOUND"
        case .idempotencyMismatch: "IDEMPOTENCY_MISMATCH"
        case .tenantClosed: "TENANT_CLOSED"
        case .reservationExpired: "RESERVATION_EXPIRED"
        case .reservationFinalized: "RESERVATION_FINALIZED"
        case .unitMismatch: "UNIT_MISMATCH"
        case .budgetFrozen: "BUDGET_FROZEN"
        case .budgetClosed: "BUDGET_CLOSED"
        case .overdraftLimitExceeded: "OVERDRAFT_LIMIT_EXCEEDED"
        case .debtOutstanding: "DEBT_OUTSTANDING"
        case .budgetExceeded: "BUDGET_EXCEEDED"
        case .maxExtensionsExceeded: "MAX_EXTENSIONS_EXCEEDED"
        case .duplicateResource: "DUPLICATE_RESOURCE"
        case .invalidTransition: "INVALID_TRANSITION"
        case .limitExceeded: "LIMIT_EXCEEDED"
        case .internalError: "INTERNAL_ERROR"
        }
    }

    /// The HTTP status Cycles pairs with the code (section 2.12 of the semantics).
    public var httpStatus: Int {
        switch self {
        case .invalidRequest, .unitMismatch, .amountOverflow, .malformedFrame, .unsupportedProtocolVersion: 400
        case .payloadTooLarge: 413
        case .unauthorized: 401
        case .forbidden, .insufficientPermissions: 403
        case .notFound, .tenantNotFound, .budgetNotFound: 404
        case .idempotencyMismatch, .tenantClosed, .reservationFinalized, .budgetFrozen, .budgetClosed,
             .overdraftLimitExceeded, .debtOutstanding, .budgetExceeded, .maxExtensionsExceeded,
             .duplicateResource, .invalidTransition:
            409
        case .reservationExpired: 410
        case .limitExceeded: 429
        case .internalError: 500
        }
    }
}
