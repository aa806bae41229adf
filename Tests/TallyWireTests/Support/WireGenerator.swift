// This file is longer than the house median because the generator must name every field of every
// message; splitting it would only scatter one list across files.

@testable import TallyCore
import TallyWire

/// Random but encodable messages: every optional both present and absent, numbers at their extremes,
/// strings with multi-byte scalars, arrays from empty to a few elements. Strings stay short so that the
/// corruption tests can afford to visit every byte of a frame.
struct WireGenerator {
    var random: WirePRNG

    init(seed: UInt64) { random = WirePRNG(state: seed) }

    // MARK: Primitives

    mutating func int64() -> Int64 {
        switch random.below(4) {
        case 0: random.pick([Int64.min, Int64.max, 0, -1, 1])
        case 1: Int64(random.below(2001) - 1000)
        default: Int64(bitPattern: random.next())
        }
    }

    mutating func optional<Value>(_ make: (inout WireGenerator) -> Value) -> Value? {
        random.oneIn(2) ? nil : make(&self)
    }

    mutating func string(maxScalars: Int = 8) -> String {
        let pieces = ["a", "b", "z", "0", "-", "_", " ", "é", "日", "🙂", "\u{0}", "Ω"]
        return (0..<random.below(maxScalars + 1)).map { _ in random.pick(pieces) }.joined()
    }

    mutating func strings(countMax: Int = 3) -> [String] { (0..<random.below(countMax + 1)).map { _ in string() } }

    mutating func ident() -> String { "id-" + String(random.next() % 100_000) }

    /// Half UUIDs (kept as their bits), half other text (kept as text): both must encode as their text.
    mutating func reservationID() -> ReservationID {
        random.next() % 2 == 0 ? ReservationID(high: random.next(), low: random.next()) : ReservationID(ident())
    }

    mutating func tenantID() -> String { random.pick(["acme", "beta-co", "t-01"]) }

    mutating func json() -> JSONText { JSONText("{\"k\":\"\(string())\"}") }

    mutating func enumeration<Value: CaseIterable>(_ type: Value.Type) -> Value { random.pick(Array(Value.allCases)) }

    mutating func amount() -> Amount { Amount(int64()) }

    mutating func quantity() -> Quantity { Quantity(enumeration(Unit.self), amount()) }

    mutating func digest() -> Digest256 { Digest256(words: (random.next(), random.next(), random.next(), random.next())) }

    // MARK: Composite values

    mutating func scopePath() -> ScopePath {
        var text = "tenant:" + tenantID()
        for level in ScopeLevel.allCases.dropFirst() where random.oneIn(2) {
            text += "/\(level.name):v\(random.below(50))"
        }
        do { return try ScopePath(decoding: text) } catch { preconditionFailure("generated an invalid path \(text)") }
    }

    mutating func scopePaths() -> [ScopePath] { (0..<random.below(4)).map { _ in scopePath() } }

    mutating func subject() -> Subject {
        var dimensions: [String: String] = [:]
        for _ in 0..<random.below(4) { dimensions["d" + string(maxScalars: 4)] = string() }
        return Subject(
            tenant: optional { $0.string() }, workspace: optional { $0.string() }, app: optional { $0.string() },
            workflow: optional { $0.string() }, agent: optional { $0.string() }, toolset: optional { $0.string() },
            dimensions: dimensions)
    }

    mutating func action() -> Action { Action(kind: string(), name: string(), tags: strings()) }

    mutating func caps() -> Caps {
        Caps(
            maxTokens: optional { $0.int64() }, maxStepsRemaining: optional { $0.int64() },
            toolAllowlist: optional { $0.strings() }, toolDenylist: optional { $0.strings() },
            cooldownMilliseconds: optional { $0.int64() })
    }

    mutating func metrics() -> StandardMetrics {
        StandardMetrics(
            tokensInput: optional { $0.int64() }, tokensOutput: optional { $0.int64() },
            latencyMilliseconds: optional { $0.int64() }, modelVersion: optional { $0.string() },
            custom: optional { $0.json() })
    }

    mutating func segments() -> [ScopeLevel: String] {
        var segments: [ScopeLevel: String] = [:]
        for level in ScopeLevel.allCases where random.oneIn(3) { segments[level] = string() }
        return segments
    }

    mutating func permissions() -> [Permission] { (0..<random.below(6)).map { _ in enumeration(Permission.self) } }

    mutating func balance() -> Balance {
        Balance(
            scope: scopePath(), unit: enumeration(Unit.self), allocated: amount(), remaining: amount(),
            reserved: amount(), spent: amount(), debt: amount(), overdraftLimit: amount(),
            isOverLimit: random.oneIn(2), status: enumeration(BudgetStatus.self))
    }

    mutating func balances() -> [Balance] { (0..<random.below(3)).map { _ in balance() } }

    mutating func figures() -> LedgerFigures {
        LedgerFigures(allocated: amount(), remaining: amount(), reserved: amount(), spent: amount(), debt: amount())
    }

    mutating func caller() -> Caller {
        switch random.below(3) {
        case 0: .tenant(id: tenantID(), keyID: ident())
        case 1: .admin
        default: .system
        }
    }

    mutating func tenant() -> Tenant {
        Tenant(
            id: tenantID(), name: string(), status: enumeration(TenantStatus.self), parentTenantID: optional { $0.tenantID() },
            defaultOveragePolicy: enumeration(OveragePolicy.self), defaultTTLMilliseconds: int64(),
            maxTTLMilliseconds: int64(), maxExtensions: Int(int64()), expiryPolicy: enumeration(ExpiryPolicy.self),
            metadata: optional { $0.json() }, createdAtMilliseconds: int64(), updatedAtMilliseconds: int64())
    }

    mutating func apiKey() -> ApiKey {
        ApiKey(
            id: ident(), tenant: tenantID(), name: string(), description: optional { $0.string() }, secretHash: digest(),
            prefix: string(), permissions: permissions(), scopeFilter: strings(), status: enumeration(ApiKeyStatus.self),
            expiresAtMilliseconds: optional { $0.int64() }, metadata: optional { $0.json() },
            createdAtMilliseconds: int64(), revokedAtMilliseconds: optional { $0.int64() },
            revokeReason: optional { $0.string() })
    }

    mutating func budget() -> Budget {
        Budget(
            key: BudgetKey(scopePath(), enumeration(Unit.self)), tenant: tenantID(), allocated: amount(),
            remaining: amount(), reserved: amount(), spent: amount(), debt: amount(), overdraftLimit: amount(),
            isOverLimit: random.oneIn(2), status: enumeration(BudgetStatus.self),
            commitOveragePolicy: optional { $0.enumeration(OveragePolicy.self) },
            rolloverPolicy: enumeration(RolloverPolicy.self), caps: optional { $0.caps() },
            periodStartMilliseconds: optional { $0.int64() }, periodEndMilliseconds: optional { $0.int64() },
            metadata: optional { $0.json() }, createdAtMilliseconds: int64(), updatedAtMilliseconds: int64())
    }

    mutating func settlement() -> Reservation.Settlement {
        switch random.below(3) {
        case 0:
            .committed(Reservation.CommitSettlement(
                atMilliseconds: int64(), actual: amount(), idempotencyKey: string(), payloadHash: digest(),
                metrics: optional { $0.metrics() }, metadata: optional { $0.json() },
                reply: CommitReply(charged: quantity(), released: optional { $0.quantity() }, balances: balances())))
        case 1:
            .released(Reservation.ReleaseSettlement(
                atMilliseconds: int64(), reason: optional { $0.string() }, releasedBy: caller(),
                cause: enumeration(ReleaseCause.self), idempotencyKey: optional { $0.string() },
                payloadHash: optional { $0.digest() },
                reply: ReleaseReply(released: quantity(), balances: balances())))
        default:
            .expired(atMilliseconds: int64())
        }
    }

    mutating func reservation() -> Reservation {
        Reservation(
            id: reservationID(), tenant: tenantID(), subject: subject(), action: action(), unit: enumeration(Unit.self),
            estimate: amount(), scopePath: scopePath(), affectedScopes: scopePaths(), budgetedScopes: scopePaths(),
            createdAtMilliseconds: int64(), expiresAtMilliseconds: int64(), graceMilliseconds: int64(),
            overagePolicy: enumeration(OveragePolicy.self), maxExtensions: Int(int64()), extensionCount: Int(int64()),
            status: enumeration(ReservationStatus.self), idempotencyKey: string(), caps: optional { $0.caps() },
            metadata: optional { $0.json() }, createdBy: caller(), settlement: optional { $0.settlement() })
    }

    // MARK: Messages

    mutating func request(_ index: Int) -> Request {
        switch index {
        case 0:
            .hello(Hello(credential: random.oneIn(2) ? .tenantKey(string()) : .adminKey(string()), clientName: string()))
        case 1:
            .reserve(ReserveRequest(
                idempotencyKey: string(), subject: subject(), action: action(), estimate: quantity(),
                ttlMilliseconds: optional { $0.int64() }, graceMilliseconds: optional { $0.int64() },
                overagePolicy: optional { $0.enumeration(OveragePolicy.self) }, dryRun: random.oneIn(2),
                metadata: optional { $0.json() }))
        case 2:
            .commit(CommitRequest(
                reservationID: reservationID(), idempotencyKey: string(), actual: quantity(), metrics: optional { $0.metrics() },
                metadata: optional { $0.json() }))
        case 3: .release(ReleaseRequest(reservationID: reservationID(), idempotencyKey: string(), reason: optional { $0.string() }))
        case 4:
            .extend(ExtendRequest(
                reservationID: reservationID(), idempotencyKey: string(), extendByMilliseconds: int64(), metadata: optional { $0.json() }))
        case 5:
            .decide(DecideRequest(
                idempotencyKey: string(), subject: subject(), action: action(), estimate: quantity(),
                metadata: optional { $0.json() }))
        case 6:
            .debit(DebitRequest(
                idempotencyKey: string(), subject: subject(), action: action(), actual: quantity(),
                overagePolicy: optional { $0.enumeration(OveragePolicy.self) }, metrics: optional { $0.metrics() },
                clientTimeMilliseconds: optional { $0.int64() }, metadata: optional { $0.json() }))
        case 7: .getReservation(reservationID: reservationID())
        case 8:
            .listReservations(ListReservationsRequest(
                tenant: optional { $0.tenantID() }, idempotencyKey: optional { $0.string() },
                status: optional { $0.enumeration(ReservationStatus.self) }, segments: segments(),
                createdFrom: optional { $0.int64() }, createdTo: optional { $0.int64() },
                expiresFrom: optional { $0.int64() }, expiresTo: optional { $0.int64() },
                finalizedFrom: optional { $0.int64() }, finalizedTo: optional { $0.int64() },
                sortKey: enumeration(ReservationSortKey.self), ascending: random.oneIn(2),
                limit: UInt32(truncatingIfNeeded: random.next()), after: optional { $0.string() }))
        case 9:
            .balances(BalancesRequest(
                tenant: optional { $0.tenantID() }, scopePrefix: optional { $0.string() },
                unit: optional { $0.enumeration(Unit.self) }, status: optional { $0.enumeration(BudgetStatus.self) },
                segments: segments()))
        default: adminRequest(index)
        }
    }

    private mutating func adminRequest(_ index: Int) -> Request {
        switch index {
        case 10:
            .createTenant(CreateTenantCommand(
                tenantID: tenantID(), name: string(), parentTenantID: optional { $0.tenantID() },
                defaultOveragePolicy: optional { $0.enumeration(OveragePolicy.self) },
                defaultTTLMilliseconds: optional { $0.int64() }, maxTTLMilliseconds: optional { $0.int64() },
                maxExtensions: optional { Int($0.int64()) }, expiryPolicy: optional { $0.enumeration(ExpiryPolicy.self) },
                metadata: optional { $0.json() }))
        case 11:
            .updateTenant(UpdateTenantCommand(
                tenantID: tenantID(), name: optional { $0.string() }, status: optional { $0.enumeration(TenantStatus.self) },
                defaultOveragePolicy: optional { $0.enumeration(OveragePolicy.self) },
                defaultTTLMilliseconds: optional { $0.int64() }, maxTTLMilliseconds: optional { $0.int64() },
                maxExtensions: optional { Int($0.int64()) }, expiryPolicy: optional { $0.enumeration(ExpiryPolicy.self) },
                metadata: optional { $0.json() }))
        case 12: .listTenants(status: optional { $0.enumeration(TenantStatus.self) })
        case 13:
            .createApiKey(CreateApiKeyRequest(
                tenantID: tenantID(), name: string(), description: optional { $0.string() },
                permissions: optional { $0.permissions() }, scopeFilter: strings(),
                expiresAtMilliseconds: optional { $0.int64() }, metadata: optional { $0.json() }))
        case 14: .revokeApiKey(RevokeApiKeyCommand(keyID: ident(), reason: optional { $0.string() }))
        case 15:
            .createBudget(CreateBudgetRequest(
                tenantID: optional { $0.tenantID() }, scope: string(), unit: enumeration(Unit.self), allocated: amount(),
                overdraftLimit: amount(), commitOveragePolicy: optional { $0.enumeration(OveragePolicy.self) },
                rolloverPolicy: enumeration(RolloverPolicy.self), caps: optional { $0.caps() },
                periodStartMilliseconds: optional { $0.int64() }, periodEndMilliseconds: optional { $0.int64() },
                metadata: optional { $0.json() }))
        case 16:
            .fundBudget(FundBudgetRequest(
                scope: string(), unit: enumeration(Unit.self), operation: enumeration(FundingOperation.self),
                amount: amount(), spent: optional { $0.amount() }, reason: optional { $0.string() },
                idempotencyKey: optional { $0.string() }))
        case 17:
            .updateBudget(UpdateBudgetRequest(
                scope: string(), unit: enumeration(Unit.self), overdraftLimit: optional { $0.amount() },
                commitOveragePolicy: optional { $0.enumeration(OveragePolicy.self) }, caps: optional { $0.caps() },
                metadata: optional { $0.json() }))
        case 18: .freezeBudget(BudgetStatusRequest(scope: string(), unit: enumeration(Unit.self), reason: optional { $0.string() }))
        case 19: .unfreezeBudget(BudgetStatusRequest(scope: string(), unit: enumeration(Unit.self), reason: optional { $0.string() }))
        case 20: .listApiKeys(tenantID: optional { $0.tenantID() })
        case 21: .subscribe(fromSequence: random.next(), credit: UInt32(truncatingIfNeeded: random.next()))
        case 22: .grantCredit(UInt32(truncatingIfNeeded: random.next()))
        default: preconditionFailure("there are \(WireGenerator.requestCaseCount) request cases")
        }
    }

    static let requestCaseCount = 23
    static let responseCaseCount = 11
    static let replyCaseCount = 11

    mutating func reply(_ index: Int) -> Reply {
        switch index {
        case 0:
            .reserved(ReserveReply(
                decision: enumeration(DecisionKind.self), reservationID: reservationID(), reserved: quantity(),
                expiresAtMilliseconds: int64(), scopePath: scopePath(), affectedScopes: scopePaths(),
                caps: optional { $0.caps() }, balances: balances()), remainingTTLMilliseconds: int64())
        case 1:
            .evaluated(EvaluationReply(
                kind: enumeration(EvaluationKind.self), decision: enumeration(DecisionKind.self),
                reasonCode: optional { $0.enumeration(DenyReason.self) }, caps: optional { $0.caps() },
                scopePath: scopePath(), affectedScopes: scopePaths(), reserved: optional { $0.quantity() },
                balances: balances()))
        case 2: .committed(CommitReply(charged: quantity(), released: optional { $0.quantity() }, balances: balances()))
        case 3: .released(ReleaseReply(released: quantity(), balances: balances()))
        case 4:
            .extended(ExtendReply(reservationID: reservationID(), expiresAtMilliseconds: int64(), balances: balances()),
                      remainingTTLMilliseconds: int64())
        case 5: .debitRecorded(DebitReply(eventID: ident(), charged: optional { $0.quantity() }, balances: balances()))
        case 6: .tenant(tenant(), created: random.oneIn(2))
        case 7: .apiKey(apiKey())
        case 8: .budget(budget())
        case 9:
            .funded(FundingReply(
                key: BudgetKey(scopePath(), enumeration(Unit.self)), operation: enumeration(FundingOperation.self),
                previous: figures(), new: figures(), atMilliseconds: int64()))
        default: .expired((0..<random.below(4)).map { _ in reservationID() })
        }
    }

    mutating func response(_ index: Int) -> Response {
        switch index {
        case 0:
            .welcome(Welcome(
                protocolVersion: random.byte(),
                principal: random.oneIn(2) ? .admin : .tenant(id: tenantID(), keyID: ident(), permissions: permissions()),
                limits: ServerLimits(
                    frameBytesMax: UInt32(truncatingIfNeeded: random.next()),
                    inFlightRequestsMax: UInt32(truncatingIfNeeded: random.next()),
                    listLimitMax: UInt32(truncatingIfNeeded: random.next())),
                serverName: string()))
        case 1: .reply(reply(random.below(WireGenerator.replyCaseCount)))
        case 2: .apiKeyCreated(apiKey(), secret: string())
        case 3: .reservation(reservation())
        case 4: .reservations((0..<random.below(3)).map { _ in reservation() }, hasMore: random.oneIn(2))
        case 5: .budgets((0..<random.below(3)).map { _ in budget() })
        case 6: .tenants((0..<random.below(3)).map { _ in tenant() })
        case 7: .apiKeys((0..<random.below(3)).map { _ in apiKey() })
        case 8: .subscribed(fromSequence: random.next())
        case 9:
            .event(record: (0..<random.below(40)).map { _ in random.byte() }, chain: (0..<32).map { _ in random.byte() })
        default: .error(wireError())
        }
    }

    mutating func wireError() -> WireError {
        let code = enumeration(ErrorCode.self)
        let details = optional {
            UnitMismatchDetails(scope: $0.scopePath(), requestedUnit: $0.enumeration(Unit.self),
                                expectedUnits: (0..<$0.random.below(4)).map { _ in .tokens })
        }
        return WireError(code: code, message: string(maxScalars: 40), unitMismatch: details)
    }
}
