import TallyCore

// The frame kinds of version 1. Both tables are append-only: a kind is never reused or given another body.

/// The kind byte of every request frame.
enum RequestKind: UInt8, CaseIterable, CustomStringConvertible {
    case hello = 0x01
    case reserve = 0x02
    case commit = 0x03
    case release = 0x04
    case extend = 0x05
    case decide = 0x06
    case debit = 0x07
    case getReservation = 0x08
    case listReservations = 0x09
    case balances = 0x0A
    case createTenant = 0x10
    case updateTenant = 0x11
    case listTenants = 0x12
    case createApiKey = 0x13
    case revokeApiKey = 0x14
    case createBudget = 0x15
    case fundBudget = 0x16
    case updateBudget = 0x17
    case freezeBudget = 0x18
    case unfreezeBudget = 0x19
    case listApiKeys = 0x1A
    case subscribe = 0x20
    case grantCredit = 0x21

    var description: String {
        switch self {
        case .hello: "hello"
        case .reserve: "reserve"
        case .commit: "commit"
        case .release: "release"
        case .extend: "extend"
        case .decide: "decide"
        case .debit: "debit"
        case .getReservation: "get_reservation"
        case .listReservations: "list_reservations"
        case .balances: "balances"
        case .createTenant: "create_tenant"
        case .updateTenant: "update_tenant"
        case .listTenants: "list_tenants"
        case .createApiKey: "create_api_key"
        case .revokeApiKey: "revoke_api_key"
        case .createBudget: "create_budget"
        case .fundBudget: "fund_budget"
        case .updateBudget: "update_budget"
        case .freezeBudget: "freeze_budget"
        case .unfreezeBudget: "unfreeze_budget"
        case .listApiKeys: "list_api_keys"
        case .subscribe: "subscribe"
        case .grantCredit: "grant_credit"
        }
    }
}

/// The kind byte of every response frame; all have the high bit set, so no response kind is a request kind.
enum ResponseKind: UInt8, CaseIterable, CustomStringConvertible {
    case welcome = 0x81
    case reply = 0x82
    case apiKeyCreated = 0x83
    case reservation = 0x84
    case reservations = 0x85
    case budgets = 0x86
    case tenants = 0x87
    case apiKeys = 0x88
    case subscribed = 0x89
    case event = 0xFE
    case error = 0xFF

    var description: String {
        switch self {
        case .welcome: "welcome"
        case .reply: "reply"
        case .apiKeyCreated: "api_key_created"
        case .reservation: "reservation"
        case .reservations: "reservations"
        case .budgets: "budgets"
        case .tenants: "tenants"
        case .apiKeys: "api_keys"
        case .subscribed: "subscribed"
        case .event: "event"
        case .error: "error"
        }
    }
}

extension Request {
    /// The frame kind byte of this request (`protocol/wire.md` section 5).
    public var kind: UInt8 { requestKind.rawValue }

    var requestKind: RequestKind {
        switch self {
        case .hello: .hello
        case .reserve: .reserve
        case .commit: .commit
        case .release: .release
        case .extend: .extend
        case .decide: .decide
        case .debit: .debit
        case .getReservation: .getReservation
        case .listReservations: .listReservations
        case .balances: .balances
        case .createTenant: .createTenant
        case .updateTenant: .updateTenant
        case .listTenants: .listTenants
        case .createApiKey: .createApiKey
        case .revokeApiKey: .revokeApiKey
        case .createBudget: .createBudget
        case .fundBudget: .fundBudget
        case .updateBudget: .updateBudget
        case .freezeBudget: .freezeBudget
        case .unfreezeBudget: .unfreezeBudget
        case .listApiKeys: .listApiKeys
        case .subscribe: .subscribe
        case .grantCredit: .grantCredit
        }
    }
}

extension Response {
    /// The frame kind byte of this response (`protocol/wire.md` section 6).
    public var kind: UInt8 { responseKind.rawValue }

    /// The response's kind in words (`reply`, `budgets`, ...), for messages about unexpected responses.
    public var kindName: String { responseKind.description }

    var responseKind: ResponseKind {
        switch self {
        case .welcome: .welcome
        case .reply: .reply
        case .apiKeyCreated: .apiKeyCreated
        case .reservation: .reservation
        case .reservations: .reservations
        case .budgets: .budgets
        case .tenants: .tenants
        case .apiKeys: .apiKeys
        case .subscribed: .subscribed
        case .event: .event
        case .error: .error
        }
    }
}
