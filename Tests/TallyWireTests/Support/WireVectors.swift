// The golden frames of protocol/vectors: each one's value, the bytes the encoder wrote for it once, and
// for the malformed ones the error a reader must give. Longer than the house median because it lists a
// value for every message of the protocol; the list is the point.

@testable import TallyCore
import TallyWire

/// One golden vector: a file `<name>.hex` under `protocol/vectors`.
struct WireVector: Sendable, CustomStringConvertible {
    enum Message: Sendable {
        case request(Request)
        case response(Response)
    }

    var name: String
    var summary: String
    /// The decoded value; nil for a malformed frame.
    var message: Message?
    /// For a valid vector, the serialized frame of `message`; for a malformed one, the damaged bytes.
    var bytes: [UInt8]
    /// The error a reader gives for a malformed frame; nil for a valid one.
    var expectedError: ErrorCode?

    var description: String { name }

    static let requestID: UInt32 = 7

    init(_ name: String, _ summary: String, request: Request) {
        self.name = name
        self.summary = summary
        message = .request(request)
        bytes = WireCodec.encodeRequest(request, requestID: WireVector.requestID).serialized
    }

    init(_ name: String, _ summary: String, response: Response) {
        self.name = name
        self.summary = summary
        message = .response(response)
        bytes = WireCodec.encodeResponse(response, requestID: WireVector.requestID).serialized
    }

    init(malformed name: String, _ summary: String, bytes: [UInt8], expectedError: ErrorCode) {
        self.name = name
        self.summary = summary
        self.bytes = bytes
        self.expectedError = expectedError
    }
}

enum WireVectors {
    static func scope(_ text: String) -> ScopePath {
        do { return try ScopePath(decoding: text) } catch { preconditionFailure("\(text) is a valid path") }
    }

    static let agentScope = scope("tenant:acme/workspace:prod/agent:bot")
    static let tenantScope = scope("tenant:acme")
    static let subject = Subject(tenant: "acme", workspace: "prod", agent: "bot", dimensions: ["region": "eu", "cost-center": "42"])
    static let action = Action(kind: "llm.completion", name: "openai:gpt-4o-mini", tags: ["chat"])
    static let usd = Quantity(.usdMicrocents, 1500)
    static let balance = Balance(
        scope: tenantScope, unit: .usdMicrocents, allocated: 100_000, remaining: 98_500, reserved: 1500, spent: 0,
        debt: 0, overdraftLimit: 0, isOverLimit: false, status: .active)
    static let caps = Caps(maxTokens: 512, toolDenylist: ["shell"])
    static let hash = Digest256(words: (0x0102_0304_0506_0708, 0x1112_1314_1516_1718, 0x2122_2324_2526_2728, 0x3132_3334_3536_3738))
    static let tenant = Tenant(id: "acme", name: "Acme Corp", createdAtMilliseconds: 1_700_000_000_000, updatedAtMilliseconds: 1_700_000_000_000)
    static let apiKey = ApiKey(
        id: "key-1", tenant: "acme", name: "ci", secretHash: hash, prefix: "tly_live_ab12",
        createdAtMilliseconds: 1_700_000_000_000)
    static let budget = Budget(
        key: BudgetKey(tenantScope, .usdMicrocents), tenant: "acme", allocated: 100_000, remaining: 98_500,
        reserved: 1500, createdAtMilliseconds: 1_700_000_000_000, updatedAtMilliseconds: 1_700_000_000_123)
    static let reservation = Reservation(
        id: "res-1", tenant: "acme", subject: subject, action: action, unit: .usdMicrocents, estimate: 1500,
        scopePath: agentScope, affectedScopes: [tenantScope, agentScope], budgetedScopes: [tenantScope],
        createdAtMilliseconds: 1_700_000_000_000, expiresAtMilliseconds: 1_700_000_060_000, graceMilliseconds: 5000,
        overagePolicy: .allowIfAvailable, maxExtensions: 10, idempotencyKey: "req-1",
        createdBy: .tenant(id: "acme", keyID: "key-1"))
    static let committedReservation: Reservation = {
        var committed = reservation
        committed.id = "res-2"
        committed.status = .committed
        committed.settlement = .committed(Reservation.CommitSettlement(
            atMilliseconds: 1_700_000_030_000, actual: 1200, idempotencyKey: "commit-1", payloadHash: hash,
            metrics: StandardMetrics(tokensInput: 100, tokensOutput: 40), metadata: nil,
            reply: CommitReply(charged: Quantity(.usdMicrocents, 1200), released: Quantity(.usdMicrocents, 300), balances: [balance])))
        return committed
    }()

    static let requests: [WireVector] = [
        WireVector("hello-request", "hello with tenant key `tly_live_ab12secret`, client name `tally-cli/1.0`",
                   request: .hello(Hello(credential: .tenantKey("tly_live_ab12secret"), clientName: "tally-cli/1.0"))),
        WireVector("hello-admin-request", "hello with admin key `admin-secret`, client name `ops`",
                   request: .hello(Hello(credential: .adminKey("admin-secret"), clientName: "ops"))),
        WireVector("reserve-request",
                   "live reserve: key `req-1`, subject acme/prod/bot with dimensions cost-center=42 and region=eu, "
                   + "action llm.completion openai:gpt-4o-mini tag chat, estimate 1500 USD_MICROCENTS, ttl 60000, "
                   + "grace absent, overage ALLOW_WITH_OVERDRAFT, dry_run false, metadata `{\"run\":1}`",
                   request: .reserve(ReserveRequest(
                       idempotencyKey: "req-1", subject: subject, action: action, estimate: usd, ttlMilliseconds: 60_000,
                       overagePolicy: .allowWithOverdraft, metadata: JSONText("{\"run\":1}")))),
        WireVector("reserve-dry-run-request", "dry-run reserve: key `req-2`, subject tenant acme only, 10 TOKENS",
                   request: .reserve(ReserveRequest(
                       idempotencyKey: "req-2", subject: Subject(tenant: "acme"), action: Action(kind: "tool", name: "search"),
                       estimate: Quantity(.tokens, 10), dryRun: true))),
        WireVector("commit-request", "commit res-1 with key `commit-1`, actual 1200 USD_MICROCENTS, metrics tokens 100/40",
                   request: .commit(CommitRequest(
                       reservationID: "res-1", idempotencyKey: "commit-1", actual: Quantity(.usdMicrocents, 1200),
                       metrics: StandardMetrics(tokensInput: 100, tokensOutput: 40)))),
        WireVector("release-request", "release res-1 with key `rel-1`, reason `done`",
                   request: .release(ReleaseRequest(reservationID: "res-1", idempotencyKey: "rel-1", reason: "done"))),
        WireVector("extend-request", "extend res-1 by 30000 ms with key `ext-1`",
                   request: .extend(ExtendRequest(reservationID: "res-1", idempotencyKey: "ext-1", extendByMilliseconds: 30_000))),
        WireVector("decide-request", "decide: key `dec-1`, subject acme/prod/bot, 1500 USD_MICROCENTS",
                   request: .decide(DecideRequest(idempotencyKey: "dec-1", subject: subject, action: action, estimate: usd))),
        WireVector("debit-request", "direct debit: key `evt-1`, 700 CREDITS under REJECT, client time 1700000000000",
                   request: .debit(DebitRequest(
                       idempotencyKey: "evt-1", subject: subject, action: action, actual: Quantity(.credits, 700),
                       overagePolicy: .reject, clientTimeMilliseconds: 1_700_000_000_000))),
        WireVector("get-reservation-request", "get reservation res-1",
                   request: .getReservation(reservationID: "res-1")),
        WireVector("list-reservations-request",
                   "list ACTIVE reservations of tenant acme with workspace=prod and agent=bot, created from 1700000000000, "
                   + "sorted by expires_at ascending, limit 50, after cursor `c1`",
                   request: .listReservations(ListReservationsRequest(
                       tenant: "acme", status: .active, segments: [.agent: "bot", .workspace: "prod"],
                       createdFrom: 1_700_000_000_000, sortKey: .expiresAt, ascending: true, limit: 50, after: "c1"))),
        WireVector("balances-request", "balances under tenant:acme in USD_MICROCENTS, ACTIVE only",
                   request: .balances(BalancesRequest(scopePrefix: "tenant:acme", unit: .usdMicrocents, status: .active))),
        WireVector("create-tenant-request", "create tenant acme named `Acme Corp`, default TTL 120000",
                   request: .createTenant(CreateTenantCommand(tenantID: "acme", name: "Acme Corp", defaultTTLMilliseconds: 120_000))),
        WireVector("update-tenant-request", "suspend tenant acme",
                   request: .updateTenant(UpdateTenantCommand(tenantID: "acme", status: .suspended))),
        WireVector("list-tenants-request", "list ACTIVE tenants", request: .listTenants(status: .active)),
        WireVector("create-api-key-request",
                   "create key `ci` for acme with permissions reservations:create and balances:read, scope filter workspace:prod",
                   request: .createApiKey(CreateApiKeyRequest(
                       tenantID: "acme", name: "ci", permissions: [.reservationsCreate, .balancesRead], scopeFilter: ["workspace:prod"]))),
        WireVector("revoke-api-key-request", "revoke key-1, reason `rotated`",
                   request: .revokeApiKey(RevokeApiKeyCommand(keyID: "key-1", reason: "rotated"))),
        WireVector("create-budget-request",
                   "create budget tenant:acme USD_MICROCENTS for tenant acme, allocated 100000, overdraft 5000, caps max_tokens 512",
                   request: .createBudget(CreateBudgetRequest(
                       tenantID: "acme", scope: "tenant:acme", unit: .usdMicrocents, allocated: 100_000, overdraftLimit: 5000,
                       caps: Caps(maxTokens: 512)))),
        WireVector("fund-budget-request", "CREDIT 50000 to tenant:acme USD_MICROCENTS, key `fund-1`",
                   request: .fundBudget(FundBudgetRequest(
                       scope: "tenant:acme", unit: .usdMicrocents, operation: .credit, amount: 50_000, idempotencyKey: "fund-1"))),
        WireVector("update-budget-request", "set overdraft limit 10000 on tenant:acme USD_MICROCENTS",
                   request: .updateBudget(UpdateBudgetRequest(scope: "tenant:acme", unit: .usdMicrocents, overdraftLimit: 10_000))),
        WireVector("freeze-budget-request", "freeze tenant:acme USD_MICROCENTS, reason `incident`",
                   request: .freezeBudget(BudgetStatusRequest(scope: "tenant:acme", unit: .usdMicrocents, reason: "incident"))),
        WireVector("unfreeze-budget-request", "unfreeze tenant:acme USD_MICROCENTS",
                   request: .unfreezeBudget(BudgetStatusRequest(scope: "tenant:acme", unit: .usdMicrocents))),
        WireVector("list-api-keys-request", "list keys of tenant acme", request: .listApiKeys(tenantID: "acme")),
        WireVector("subscribe-request", "subscribe from sequence 1 with credit 100",
                   request: .subscribe(fromSequence: 1, credit: 100)),
        WireVector("grant-credit-request", "grant 50 more events to the subscription opened by request 7",
                   request: .grantCredit(50)),
    ]

    static let reserveReply = ReserveReply(
        decision: .allowWithCaps, reservationID: "res-1", reserved: usd, expiresAtMilliseconds: 1_700_000_060_000,
        scopePath: agentScope, affectedScopes: [tenantScope, agentScope], caps: caps, balances: [balance])

    static let replies: [WireVector] = [
        WireVector("reply-reserved-response", "reply tag 1: ALLOW_WITH_CAPS reservation res-1, remaining TTL 60000",
                   response: .reply(.reserved(reserveReply, remainingTTLMilliseconds: 60_000))),
        WireVector("reply-evaluated-response", "reply tag 2: dry-run DENY, BUDGET_EXCEEDED",
                   response: .reply(.evaluated(EvaluationReply(
                       kind: .dryRun, decision: .deny, reasonCode: .budgetExceeded, caps: nil, scopePath: agentScope,
                       affectedScopes: [tenantScope, agentScope], reserved: nil, balances: [])))),
        WireVector("reply-committed-response", "reply tag 3: charged 1200, released 300",
                   response: .reply(.committed(CommitReply(
                       charged: Quantity(.usdMicrocents, 1200), released: Quantity(.usdMicrocents, 300), balances: [balance])))),
        WireVector("reply-released-response", "reply tag 4: released 1500",
                   response: .reply(.released(ReleaseReply(released: usd, balances: [balance])))),
        WireVector("reply-extended-response", "reply tag 5: res-1 now expires at 1700000090000, remaining TTL 90000",
                   response: .reply(.extended(
                       ExtendReply(reservationID: "res-1", expiresAtMilliseconds: 1_700_000_090_000, balances: [balance]),
                       remainingTTLMilliseconds: 90_000))),
        WireVector("reply-debit-recorded-response", "reply tag 6: event evt-9 applied, charged 500 of 700 CREDITS",
                   response: .reply(.debitRecorded(DebitReply(eventID: "evt-9", charged: Quantity(.credits, 500), balances: [])))),
        WireVector("reply-tenant-response", "reply tag 7: tenant acme, created", response: .reply(.tenant(tenant, created: true))),
        WireVector("reply-api-key-response", "reply tag 8: key-1 after revocation",
                   response: .reply(.apiKey({
                       var key = apiKey
                       key.status = .revoked
                       key.revokedAtMilliseconds = 1_700_000_100_000
                       key.revokeReason = "rotated"
                       return key
                   }()))),
        WireVector("reply-budget-response", "reply tag 9: budget tenant:acme USD_MICROCENTS", response: .reply(.budget(budget))),
        WireVector("reply-funded-response", "reply tag 10: CREDIT 50000 on tenant:acme",
                   response: .reply(.funded(FundingReply(
                       key: BudgetKey(tenantScope, .usdMicrocents), operation: .credit,
                       previous: LedgerFigures(allocated: 100_000, remaining: 98_500, reserved: 1500, spent: 0, debt: 0),
                       new: LedgerFigures(allocated: 150_000, remaining: 148_500, reserved: 1500, spent: 0, debt: 0),
                       atMilliseconds: 1_700_000_200_000)))),
        WireVector("reply-expired-response", "reply tag 11: the sweep expired res-3 and res-4",
                   response: .reply(.expired(["res-3", "res-4"]))),
    ]

    static let responses: [WireVector] = [
        WireVector("welcome-response", "welcome: version 1, tenant acme key key-1 with the default permissions, "
                   + "limits 4194304 / 64 / 200, server `tallyd/0.1`",
                   response: .welcome(Welcome(
                       protocolVersion: 1, principal: .tenant(id: "acme", keyID: "key-1", permissions: Permission.defaultSet),
                       limits: ServerLimits(frameBytesMax: 4_194_304, inFlightRequestsMax: 64, listLimitMax: 200),
                       serverName: "tallyd/0.1"))),
        WireVector("welcome-admin-response", "welcome: version 1, admin principal",
                   response: .welcome(Welcome(
                       protocolVersion: 1, principal: .admin,
                       limits: ServerLimits(frameBytesMax: 4_194_304, inFlightRequestsMax: 64, listLimitMax: 200),
                       serverName: "tallyd/0.1"))),
        WireVector("api-key-created-response", "key-1 created; secret `tly_live_ab12secret` shown once",
                   response: .apiKeyCreated(apiKey, secret: "tly_live_ab12secret")),
        WireVector("reservation-response", "reservation res-2, COMMITTED with its settlement",
                   response: .reservation(committedReservation)),
        WireVector("reservations-response", "one ACTIVE reservation res-1, has_more true",
                   response: .reservations([reservation], hasMore: true)),
        WireVector("budgets-response", "one budget", response: .budgets([budget])),
        WireVector("tenants-response", "one tenant", response: .tenants([tenant])),
        WireVector("api-keys-response", "one key", response: .apiKeys([apiKey])),
        WireVector("subscribed-response", "subscription open from sequence 1", response: .subscribed(fromSequence: 1)),
        WireVector("event-response", "event: record = the Released example of protocol/events.md section 7, chain 0x00..0x1f",
                   response: .event(record: releasedRecord, chain: Array(0..<32))),
        WireVector("error-response", "BUDGET_EXCEEDED with a message",
                   response: .error(WireError(code: .budgetExceeded, message: "insufficient budget at scope tenant:acme"))),
        WireVector("error-unit-mismatch-response", "UNIT_MISMATCH with details: scope tenant:acme, requested TOKENS, expected USD_MICROCENTS",
                   response: .error(WireError(
                       code: .unitMismatch, message: "scope tenant:acme has no TOKENS budget",
                       unitMismatch: UnitMismatchDetails(scope: tenantScope, requestedUnit: .tokens, expectedUnits: [.usdMicrocents])))),
    ]

    /// The 73-byte record of `protocol/events.md` section 7.
    static let releasedRecord: [UInt8] = hexBytes(
        "010a00000000000000070000018bcfe5687b00000033000000057265732d3100000000000009c40100000004646f6e65"
            + "0100010000000461636d65000000026b310000018bcfe5687b")

    static var malformed: [WireVector] {
        let release = requests.first { $0.name == "release-request" }!.bytes
        var wrongVersion = release
        wrongVersion[4] = 2
        var unknownKind = release
        unknownKind[5] = 0x7F
        var flags = release
        flags[7] = 1
        var badBool = requests.first { $0.name == "reserve-request" }!.bytes
        badBool[badBool.count - 15] = 2  // dry_run: before the 14 metadata bytes
        return [
            WireVector(malformed: "truncated-frame", "the release request without its last byte (its length field still says 35)",
                       bytes: Array(release.dropLast()), expectedError: .malformedFrame),
            WireVector(malformed: "trailing-bytes-frame", "the release request with one extra byte after the declared length",
                       bytes: release + [0], expectedError: .malformedFrame),
            WireVector(malformed: "oversized-length-frame",
                       "a header announcing 0x7fffffff bytes: a reader refuses it before buffering (PAYLOAD_TOO_LARGE)",
                       bytes: [0x7F, 0xFF, 0xFF, 0xFF, 1, 0x08, 0, 0, 0, 0, 0, 7], expectedError: .payloadTooLarge),
            WireVector(malformed: "short-length-frame", "a length of 4, shorter than the 8-byte header",
                       bytes: [0, 0, 0, 4, 1, 0x08, 0, 0], expectedError: .malformedFrame),
            WireVector(malformed: "wrong-version-frame", "the release request with version 2 at offset 4",
                       bytes: wrongVersion, expectedError: .unsupportedProtocolVersion),
            WireVector(malformed: "unknown-kind-frame", "the release request with kind 0x7f at offset 5",
                       bytes: unknownKind, expectedError: .malformedFrame),
            WireVector(malformed: "nonzero-flags-frame", "the release request with flags 0x0001 at offset 6",
                       bytes: flags, expectedError: .malformedFrame),
            WireVector(malformed: "bad-bool-frame", "the reserve request with dry_run (a bool) set to 2",
                       bytes: badBool, expectedError: .malformedFrame),
        ]
    }

    static var all: [WireVector] { requests + replies + responses + malformed }

    static func hexBytes(_ text: String) -> [UInt8] {
        let digits = Array(text.utf8).filter { !$0.isWhitespace }
        precondition(digits.count % 2 == 0, "hex text has an odd number of digits")
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(hexDigit(digits[$0]) << 4 | hexDigit(digits[$0 + 1])) }
    }

    private static func hexDigit(_ ascii: UInt8) -> UInt8 {
        switch ascii {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): ascii - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): ascii - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): ascii - UInt8(ascii: "A") + 10
        default: preconditionFailure("not a hex digit: \(ascii)")
        }
    }
}

private extension UInt8 {
    var isWhitespace: Bool { self == 0x20 || self == 0x0A || self == 0x0D || self == 0x09 }
}
