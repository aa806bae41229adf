// This file is longer than the house median because the generator of random events must name every field
// of every payload; splitting it from the tests that use it would only make both harder to follow.

import Testing
@testable import TallyCore

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast and fully determined by its seed, so a failing run
/// is replayed exactly by its seed. Named apart from other suites' generators to keep the target's
/// namespace clean.
private struct CodecPRNG {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform enough for tests in `0..<bound` (the modulo bias is irrelevant here).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    mutating func inRange(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    mutating func oneIn(_ odds: Int) -> Bool { below(odds) == 0 }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

private typealias Limit = EventCodec.FieldLimit

/// Builds random but valid events: every optional both present and absent, numbers at their extremes,
/// strings from empty to their byte limit with multi-byte scalars, arrays from empty to their maximum.
private struct EventGenerator {
    var random: CodecPRNG
    /// Keeps every string short and every array small, for tests that work on each bit of a record.
    var isCompact: Bool

    init(seed: UInt64, isCompact: Bool = false) {
        random = CodecPRNG(state: seed)
        self.isCompact = isCompact
    }

    // MARK: Primitives

    mutating func int64() -> Int64 {
        switch random.below(6) {
        case 0: [Int64.min, Int64.max, 0, -1, 1, Int64.min + 1, Int64.max - 1][random.below(7)]
        case 1: Int64(random.inRange(-1000...1000))
        default: Int64(bitPattern: random.next())
        }
    }

    mutating func int() -> Int { Int(truncatingIfNeeded: int64()) }

    mutating func optional<Value>(_ make: (inout EventGenerator) -> Value) -> Value? {
        random.oneIn(2) ? nil : make(&self)
    }

    mutating func enumCase<Value: CaseIterable>(_ type: Value.Type) -> Value {
        let all = Array(Value.allCases)
        return all[random.below(all.count)]
    }

    /// Scalars of every UTF-8 width, plus the awkward ones: NUL, a combining mark, U+FFFD, U+10FFFF.
    static let scalarPool: [Unicode.Scalar] = [
        "a", "Z", "0", "-", " ", "\u{0}", "\u{7F}", "é", "ß", "Ω", "\u{301}", "漢", "\u{FFFD}", "😀",
        "\u{10FFFF}",
    ]

    mutating func scalar() -> Unicode.Scalar {
        if random.oneIn(4) {
            // Any scalar value: skip the surrogate range, which no String can hold.
            let value = UInt32(random.below(0x10_F800))
            return Unicode.Scalar(value < 0xD800 ? value : value + 0x800) ?? "x"
        }
        return EventGenerator.scalarPool[random.below(EventGenerator.scalarPool.count)]
    }

    /// A reservation id: half of them UUIDs (held as their bits), half any text up to the field's limit.
    mutating func reservationID() -> ReservationID {
        random.oneIn(2)
            ? ReservationID(high: random.next(), low: random.next())
            : ReservationID(string(bytesMax: Limit.reservationIDBytesMax))
    }

    /// A string of at most `bytesMax` UTF-8 bytes: sometimes empty, sometimes exactly at the limit.
    mutating func string(bytesMax: Int) -> String {
        let target: Int
        switch random.below(16) {
        case 0: target = 0
        case 1 where !isCompact: target = bytesMax
        default: target = random.inRange(0...min(bytesMax, 24))
        }
        var scalars = String.UnicodeScalarView()
        var used = 0
        while used < target {
            var next = scalar()
            if used + UTF8.width(next) > target { next = "y" }
            scalars.append(next)
            used += UTF8.width(next)
        }
        return String(scalars)
    }

    mutating func optionalString(bytesMax: Int) -> String? { optional { $0.string(bytesMax: bytesMax) } }

    mutating func array<Element>(countMax: Int, _ make: (inout EventGenerator) -> Element) -> [Element] {
        let count = random.oneIn(8) && !isCompact ? countMax : random.inRange(0...min(countMax, 3))
        return (0..<count).map { _ in make(&self) }
    }

    mutating func amount() -> Amount { Amount(int64()) }

    mutating func digest() -> Digest256 {
        Digest256(words: (random.next(), random.next(), random.next(), random.next()))
    }

    mutating func json() -> JSONText {
        if random.oneIn(4) || isCompact { return JSONText("{\"k\":\"\(string(bytesMax: 40))\"}") }
        return JSONText(string(bytesMax: Limit.jsonTextBytesMax))
    }

    // MARK: Values

    /// The characters a stored scope value may hold (`[a-z0-9._-]`, what derivation and the admin grammar
    /// produce), so that `ScopePath(decoding:)` accepts them; up to 128 bytes each keeps a six-level path
    /// inside `scopePathLengthMax`.
    static let idPool: [Unicode.Scalar] = ["a", "z", "0", "9", ".", "_", "-"]

    mutating func scopeValue() -> String {
        let target = random.oneIn(6) && !isCompact ? 128 : random.inRange(1...12)
        var scalars = String.UnicodeScalarView()
        var used = 0
        while used < target {
            var next = EventGenerator.idPool[random.below(EventGenerator.idPool.count)]
            if used + UTF8.width(next) > target { next = "a" }
            scalars.append(next)
            used += UTF8.width(next)
        }
        return String(scalars)
    }

    mutating func scopePath() -> ScopePath {
        var text = "tenant:" + scopeValue()
        for level in ScopeLevel.allCases.dropFirst() where random.oneIn(2) {
            text += "/\(level.name):" + scopeValue()
        }
        return try! ScopePath(decoding: text)
    }

    mutating func scopes() -> [ScopePath] { array(countMax: Limit.scopesCountMax) { $0.scopePath() } }

    mutating func tenantID() -> String { string(bytesMax: Limit.tenantIDBytesMax) }

    mutating func caller() -> Caller {
        switch random.below(3) {
        case 0: .tenant(id: tenantID(), keyID: string(bytesMax: Limit.keyIDBytesMax))
        case 1: .admin
        default: .system
        }
    }

    mutating func stamp() -> IdempotencyStamp {
        IdempotencyStamp(key: string(bytesMax: Limit.idempotencyKeyBytesMax), payloadHash: digest())
    }

    mutating func subject() -> Subject {
        var dimensions: [String: String] = [:]
        let count = random.oneIn(8) && !isCompact ? Limit.dimensionsCountMax : random.inRange(0...3)
        var attempts = 0
        while dimensions.count < count && attempts < 1000 {
            attempts += 1
            dimensions[string(bytesMax: Limit.dimensionKeyBytesMax)] = string(bytesMax: Limit.dimensionValueBytesMax)
        }
        return Subject(
            tenant: optionalString(bytesMax: Limit.subjectValueBytesMax),
            workspace: optionalString(bytesMax: Limit.subjectValueBytesMax),
            app: optionalString(bytesMax: Limit.subjectValueBytesMax),
            workflow: optionalString(bytesMax: Limit.subjectValueBytesMax),
            agent: optionalString(bytesMax: Limit.subjectValueBytesMax),
            toolset: optionalString(bytesMax: Limit.subjectValueBytesMax), dimensions: dimensions)
    }

    mutating func action() -> Action {
        Action(
            kind: string(bytesMax: Limit.actionKindBytesMax), name: string(bytesMax: Limit.actionNameBytesMax),
            tags: array(countMax: Limit.actionTagsCountMax) { $0.string(bytesMax: Limit.actionTagBytesMax) })
    }

    mutating func tools() -> [String] {
        array(countMax: Limit.capsToolsCountMax) { $0.string(bytesMax: Limit.capsToolBytesMax) }
    }

    mutating func caps() -> Caps {
        Caps(
            maxTokens: optional { $0.int64() }, maxStepsRemaining: optional { $0.int64() },
            toolAllowlist: optional { $0.tools() }, toolDenylist: optional { $0.tools() },
            cooldownMilliseconds: optional { $0.int64() })
    }

    mutating func metrics() -> StandardMetrics {
        StandardMetrics(
            tokensInput: optional { $0.int64() }, tokensOutput: optional { $0.int64() },
            latencyMilliseconds: optional { $0.int64() },
            modelVersion: optionalString(bytesMax: Limit.modelVersionBytesMax), custom: optional { $0.json() })
    }

    mutating func figures() -> LedgerFigures {
        LedgerFigures(allocated: amount(), remaining: amount(), reserved: amount(), spent: amount(), debt: amount())
    }

    mutating func delta() -> ScopeDelta {
        ScopeDelta(
            scope: scopePath(), remaining: amount(), reserved: amount(), spent: amount(), debt: amount(),
            marksOverLimit: random.oneIn(2))
    }

    mutating func deltas() -> [ScopeDelta] { array(countMax: Limit.scopesCountMax) { $0.delta() } }

    mutating func balance() -> Balance {
        Balance(
            scope: scopePath(), unit: enumCase(Unit.self), allocated: amount(), remaining: amount(),
            reserved: amount(), spent: amount(), debt: amount(), overdraftLimit: amount(), isOverLimit: random.oneIn(2),
            status: enumCase(BudgetStatus.self))
    }

    mutating func budgetKey() -> BudgetKey { BudgetKey(scopePath(), enumCase(Unit.self)) }

    // MARK: Payloads

    mutating func tenant() -> Tenant {
        Tenant(
            id: tenantID(), name: string(bytesMax: Limit.nameBytesMax), status: enumCase(TenantStatus.self),
            parentTenantID: optional { $0.tenantID() }, defaultOveragePolicy: enumCase(OveragePolicy.self),
            defaultTTLMilliseconds: int64(), maxTTLMilliseconds: int64(), maxExtensions: int(),
            expiryPolicy: enumCase(ExpiryPolicy.self), metadata: optional { $0.json() },
            createdAtMilliseconds: int64(), updatedAtMilliseconds: int64())
    }

    mutating func apiKey() -> ApiKey {
        ApiKey(
            id: string(bytesMax: Limit.keyIDBytesMax), tenant: tenantID(), name: string(bytesMax: Limit.nameBytesMax),
            description: optionalString(bytesMax: Limit.nameBytesMax), secretHash: digest(),
            prefix: string(bytesMax: Limit.keyPrefixBytesMax),
            permissions: array(countMax: Limit.permissionsCountMax) { $0.enumCase(Permission.self) },
            scopeFilter: array(countMax: Limit.scopeFilterCountMax) {
                $0.string(bytesMax: Limit.scopeFilterPatternBytesMax)
            },
            status: enumCase(ApiKeyStatus.self), expiresAtMilliseconds: optional { $0.int64() },
            metadata: optional { $0.json() }, createdAtMilliseconds: int64(),
            revokedAtMilliseconds: optional { $0.int64() },
            revokeReason: optionalString(bytesMax: Limit.adminReasonBytesMax))
    }

    mutating func budget() -> Budget {
        Budget(
            key: budgetKey(), tenant: tenantID(), allocated: amount(), remaining: amount(), reserved: amount(),
            spent: amount(), debt: amount(), overdraftLimit: amount(), isOverLimit: random.oneIn(2),
            status: enumCase(BudgetStatus.self), commitOveragePolicy: optional { $0.enumCase(OveragePolicy.self) },
            rolloverPolicy: enumCase(RolloverPolicy.self), caps: optional { $0.caps() },
            periodStartMilliseconds: optional { $0.int64() }, periodEndMilliseconds: optional { $0.int64() },
            metadata: optional { $0.json() }, createdAtMilliseconds: int64(), updatedAtMilliseconds: int64())
    }

    /// A body of the given type code (1-15); codes outside that range are a bug in the test.
    mutating func body(typeCode: UInt8) -> EventBody {
        switch typeCode {
        case 1: return .tenantCreated(tenant())
        case 2: return .tenantUpdated(tenant())
        case 3: return .apiKeyCreated(apiKey())
        case 4:
            return .apiKeyRevoked(ApiKeyRevoked(
                keyID: string(bytesMax: Limit.keyIDBytesMax), tenant: tenantID(), atMilliseconds: int64(),
                reason: optionalString(bytesMax: Limit.adminReasonBytesMax), cause: enumCase(ReleaseCause.self)))
        case 5: return .budgetCreated(budget())
        case 6:
            return .budgetFunded(BudgetFunded(
                key: budgetKey(), operation: enumCase(FundingOperation.self), amount: amount(),
                spentOverride: optional { $0.amount() }, before: figures(), after: figures(),
                isOverLimitAfter: random.oneIn(2), reason: optionalString(bytesMax: Limit.adminReasonBytesMax),
                idempotency: optional { $0.stamp() }, replayRetainUntilMilliseconds: int64(), caller: caller(),
                atMilliseconds: int64()))
        case 7:
            return .budgetUpdated(BudgetUpdated(
                key: budgetKey(), change: enumCase(BudgetChange.self), overdraftLimit: amount(),
                commitOveragePolicy: optional { $0.enumCase(OveragePolicy.self) }, caps: optional { $0.caps() },
                metadata: optional { $0.json() }, status: enumCase(BudgetStatus.self), isOverLimit: random.oneIn(2),
                reason: optionalString(bytesMax: Limit.adminReasonBytesMax), caller: caller(), atMilliseconds: int64()))
        case 8:
            return .reserved(Reserved(
                reservationID: reservationID(), tenant: tenantID(), subject: subject(),
                action: action(), unit: enumCase(Unit.self), amount: amount(), scopePath: scopePath(),
                affectedScopes: scopes(), budgetedScopes: scopes(), createdAtMilliseconds: int64(),
                expiresAtMilliseconds: int64(), graceMilliseconds: int64(), overagePolicy: enumCase(OveragePolicy.self),
                maxExtensions: int(), caps: optional { $0.caps() }, idempotency: stamp(),
                replayRetainUntilMilliseconds: int64(), metadata: optional { $0.json() }, caller: caller()))
        case 9:
            return .committed(Committed(
                reservationID: reservationID(), actual: amount(), charged: amount(),
                deltas: deltas(), idempotency: stamp(), metrics: optional { $0.metrics() },
                metadata: optional { $0.json() }, caller: caller(), atMilliseconds: int64()))
        case 10:
            return .released(Released(
                reservationID: reservationID(), amount: amount(),
                reason: optionalString(bytesMax: Limit.releaseReasonBytesMax), cause: enumCase(ReleaseCause.self),
                idempotency: optional { $0.stamp() }, caller: caller(), atMilliseconds: int64()))
        case 11:
            return .extended(Extended(
                reservationID: reservationID(), tenant: tenantID(),
                newExpiresAtMilliseconds: int64(), extensionCount: int(), idempotency: stamp(),
                replayRetainUntilMilliseconds: int64(), caller: caller(), atMilliseconds: int64()))
        case 12:
            return .expired(Expired(
                reservationID: reservationID(), amount: amount(),
                atMilliseconds: int64()))
        case 13:
            return .debitRecorded(DebitRecorded(
                eventID: string(bytesMax: Limit.eventIDBytesMax), tenant: tenantID(), subject: subject(),
                action: action(), unit: enumCase(Unit.self), actual: amount(), charged: amount(),
                overagePolicy: enumCase(OveragePolicy.self), scopePath: scopePath(), deltas: deltas(),
                idempotency: stamp(), replayRetainUntilMilliseconds: int64(), metrics: optional { $0.metrics() },
                clientTimeMilliseconds: optional { $0.int64() }, metadata: optional { $0.json() }, caller: caller(),
                atMilliseconds: int64()))
        case 14:
            return .evaluationRecorded(EvaluationRecorded(
                tenant: tenantID(), idempotency: stamp(), replayRetainUntilMilliseconds: int64(),
                reply: EvaluationReply(
                    kind: enumCase(EvaluationKind.self), decision: enumCase(DecisionKind.self),
                    reasonCode: optional { $0.enumCase(DenyReason.self) }, caps: optional { $0.caps() },
                    scopePath: scopePath(), affectedScopes: scopes(),
                    reserved: optional { Quantity($0.enumCase(Unit.self), $0.amount()) },
                    balances: array(countMax: Limit.scopesCountMax) { $0.balance() }),
                caller: caller(), atMilliseconds: int64()))
        case 15: return .apiKeyUpdated(apiKey())
        default:
            preconditionFailure("no event type \(typeCode)")
        }
    }

    mutating func event(typeCode: UInt8) -> Event {
        Event(sequence: random.next(), timestampMilliseconds: int64(), body: body(typeCode: typeCode))
    }
}

/// Event type codes known to format version 1.
private let typeCodes: ClosedRange<UInt8> = 1...15

private func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] }, as: UTF8.self)
}

/// Decodes without letting a thrown error escape: the outcome is either an event or the error.
private func outcome(_ bytes: [UInt8]) -> Result<Event, EventCodecError> {
    Result { () throws(EventCodecError) -> Event in try EventCodec.decode(bytes) }
}

/// The accepted-or-refused property every fuzzed input must satisfy: a record that decodes is canonical.
///
/// Records an issue only on failure: this runs hundreds of thousands of times, and an unconditional
/// `#expect` per input would dominate the run time.
/// Returns whether the input was accepted, so that callers can check they exercised both outcomes.
@discardableResult
private func expectCanonicalOrRefused(
    _ bytes: [UInt8], _ context: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
) -> Bool {
    switch outcome(bytes) {
    case .success(let event):
        if EventCodec.encode(event) != bytes {
            Issue.record("accepted input does not re-encode to itself: \(context())", sourceLocation: sourceLocation)
        }
        return true
    case .failure(let error):
        if error.offset < 0 || error.offset > bytes.count {
            Issue.record("offset \(error.offset) outside input: \(context())", sourceLocation: sourceLocation)
        }
        return false
    }
}

@Suite struct EventCodecTests {
    static let seeds: [UInt64] = [1, 2, 0x5EED, 0xDEAD_BEEF, 0x0123_4567_89AB_CDEF]

    // MARK: Round trips

    @Test(arguments: seeds)
    func randomEventsOfEveryTypeRoundTrip(seed: UInt64) throws {
        var generator = EventGenerator(seed: seed)
        for index in 0..<1_400 {
            let typeCode = typeCodes.lowerBound + UInt8(index % typeCodes.count)
            let event = generator.event(typeCode: typeCode)
            let bytes = EventCodec.encode(event)
            #expect(bytes[1] == event.body.typeCode && event.body.typeCode == typeCode, "seed \(seed) event \(index)")
            let decoded = try EventCodec.decode(bytes)
            #expect(decoded == event, "seed \(seed) event \(index) (\(event.body.typeName)) did not round-trip")
            #expect(EventCodec.encode(decoded) == bytes, "seed \(seed) event \(index) re-encoded differently")
        }
    }

    /// A decoder that keeps scope paths (`ScopePathCache`, one for the whole run, so slots are shared by
    /// thousands of different paths) decodes and refuses exactly what one without does: valid records,
    /// records with a few bytes overwritten, and records read out of the middle of a larger buffer.
    @Test(arguments: seeds)
    func aScopePathCacheChangesNothingDecoded(seed: UInt64) {
        var generator = EventGenerator(seed: seed)
        var random = CodecPRNG(state: seed ^ 0xCAC4E)
        let cache = ScopePathCache()
        var decoded = 0
        var refused = 0
        for index in 0..<2_000 {
            var bytes = EventCodec.encode(generator.event(typeCode: typeCodes.lowerBound + UInt8(index % typeCodes.count)))
            if index % 3 == 2 {
                for _ in 0..<random.inRange(1...3) { bytes[random.below(bytes.count)] = random.byte() }
            }
            let padded = [0x5a, 0x5a] + bytes + [0x5a]
            let plain = outcome(bytes)
            let cached = Result { () throws(EventCodecError) -> Event in try EventCodec.decode(padded[2..<(padded.count - 1)], scopePaths: cache) }
            switch (plain, cached) {
            case (.success(let left), .success(let right)):
                if left != right { Issue.record("seed \(seed) record \(index): decoded differently with the cache") }
                decoded += 1
            case (.failure(let left), .failure(let right)):
                if left.kind != right.kind || left.offset != right.offset {
                    Issue.record("seed \(seed) record \(index): refused as \(left) without the cache, \(right) with it")
                }
                refused += 1
            default:
                Issue.record("seed \(seed) record \(index): \(plain) without the cache, \(cached) with it")
            }
        }
        #expect(decoded > 1_000 && refused > 50, "decoded \(decoded), refused \(refused)")
    }

    /// A cached path is handed out only for its own bytes: a path that shares its slot (the same length and
    /// last bytes) but is not canonical is still refused, and a different valid one is read as itself.
    @Test func aScopePathCacheHandsOutAPathOnlyForItsOwnBytes() throws {
        let cache = ScopePathCache()
        func read(_ text: String) throws(EventCodecError) -> ScopePath {
            var writer = ByteWriter()
            writer.writeString(text, bytesMax: 1_024, field: "path")
            var reader = ByteReader(writer.bytes)
            reader.scopePaths = cache
            return try reader.readScopePath("path")
        }
        let path = "tenant:acme/workspace:production"
        #expect(try read(path).rawValue == path)
        #expect(try read(path).rawValue == path)  // from the cache
        #expect(throws: EventCodecError.self) { try read("tenant:aCme/workspace:production") }
        #expect(throws: EventCodecError.self) { try read("tenant:a/me/workspace:production") }
        #expect(try read("tenant:acmf/workspace:production").rawValue == "tenant:acmf/workspace:production")
        #expect(try read(path).rawValue == path)
    }

    @Test func typeCodesAreDistinctAndMatchTheHeaderByte() {
        var generator = EventGenerator(seed: 7)
        var names: Set<String> = []
        for typeCode in typeCodes {
            let event = generator.event(typeCode: typeCode)
            names.insert(event.body.typeName)
            #expect(EventCodec.encode(event)[1] == typeCode)
        }
        #expect(names.count == typeCodes.count)
    }

    /// The numbering section 3 of protocol/events.md publishes; the stored bytes depend on it.
    @Test func enumerationCodesMatchTheProtocolDocument() {
        #expect(Unit.allCases.map(\.rawValue) == [1, 2, 3, 4])
        #expect(Unit.allCases.map(\.cyclesName) == ["USD_MICROCENTS", "TOKENS", "CREDITS", "RISK_POINTS"])
        #expect(TenantStatus.allCases.map(\.cyclesName) == ["ACTIVE", "SUSPENDED", "CLOSED"])
        #expect(BudgetStatus.allCases.map(\.cyclesName) == ["ACTIVE", "FROZEN", "CLOSED"])
        #expect(OveragePolicy.allCases.map(\.cyclesName) == ["REJECT", "ALLOW_IF_AVAILABLE", "ALLOW_WITH_OVERDRAFT"])
        #expect(
            FundingOperation.allCases.map(\.cyclesName) == ["CREDIT", "DEBIT", "RESET", "RESET_SPENT", "REPAY_DEBT"])
        #expect(DenyReason.allCases.map(\.rawValue) == Array(1...7))
        #expect(DenyReason.allCases.last == .tenantClosed)
        #expect(BudgetChange.allCases.map(\.rawValue) == [1, 2, 3, 4])
        #expect(ReleaseCause.allCases.map(\.rawValue) == [1, 2])
        for enumeration: [UInt8] in [
            TenantStatus.allCases.map(\.rawValue), BudgetStatus.allCases.map(\.rawValue),
            ApiKeyStatus.allCases.map(\.rawValue), OveragePolicy.allCases.map(\.rawValue),
            ExpiryPolicy.allCases.map(\.rawValue), RolloverPolicy.allCases.map(\.rawValue),
            FundingOperation.allCases.map(\.rawValue), EvaluationKind.allCases.map(\.rawValue),
            DecisionKind.allCases.map(\.rawValue),
        ] {
            #expect(enumeration == Array(1...UInt8(enumeration.count)))
        }
        #expect(Permission.allCases.map(\.code) == Array(1...27))
        #expect(Permission(code: 1) == .reservationsCreate && Permission(code: 27) == .adminAuditRead)
        #expect(Permission(code: 15) == .adminWrite && Permission(code: 22) == .adminApiKeysRead)
    }

    @Test func extremeValuesRoundTrip() throws {
        let body = EventBody.extended(Extended(
            reservationID: "", tenant: "", newExpiresAtMilliseconds: .min, extensionCount: .max,
            idempotency: IdempotencyStamp(key: String(repeating: "😀", count: Limits.idempotencyKeyLengthMax),
                                          payloadHash: Digest256(words: (.max, 0, .max, 1))),
            replayRetainUntilMilliseconds: .max, caller: .tenant(id: "", keyID: "\u{0}"), atMilliseconds: .min))
        for event in [Event(sequence: .max, timestampMilliseconds: .min, body: body),
                      Event(sequence: 0, timestampMilliseconds: .max, body: body)] {
            let bytes = EventCodec.encode(event)
            #expect(try EventCodec.decode(bytes) == event)
        }
    }

    @Test func dimensionsAreWrittenInByteOrderWhateverTheInsertionOrder() throws {
        let keys = ["zeta", "alpha", "é", "e\u{301}x", "Z", ""]
        var forward: [String: String] = [:]
        var backward: [String: String] = [:]
        for key in keys { forward[key] = "v-\(key)" }
        for key in keys.reversed() { backward[key] = "v-\(key)" }
        var generator = EventGenerator(seed: 11)
        guard case .reserved(var reserved) = generator.body(typeCode: 8) else { Issue.record("not Reserved"); return }
        reserved.subject.dimensions = forward
        let first = EventCodec.encode(Event(sequence: 1, timestampMilliseconds: 0, body: .reserved(reserved)))
        reserved.subject.dimensions = backward
        let second = EventCodec.encode(Event(sequence: 1, timestampMilliseconds: 0, body: .reserved(reserved)))
        #expect(first == second)
        #expect(try EventCodec.decode(first).body == .reserved(reserved))
    }

    // MARK: The golden vector of protocol/events.md

    /// The worked example of `protocol/events.md`; both must change together.
    static let goldenEvent = Event(
        sequence: 7, timestampMilliseconds: 1_700_000_000_123,
        body: .released(Released(
            reservationID: "res-1", amount: 2_500, reason: "done", cause: .request, idempotency: nil,
            caller: .tenant(id: "acme", keyID: "k1"), atMilliseconds: 1_700_000_000_123)))

    static let goldenHex = """
        010a00000000000000070000018bcfe5687b00000033000000057265732d3100000000000009c40100000004646f6e65\
        0100010000000461636d65000000026b310000018bcfe5687b
        """

    @Test func goldenVectorMatchesTheProtocolDocument() throws {
        let bytes = EventCodec.encode(EventCodecTests.goldenEvent)
        #expect(hex(bytes) == EventCodecTests.goldenHex, "encoded: \(hex(bytes))")
        #expect(try EventCodec.decode(bytes) == EventCodecTests.goldenEvent)
    }

    // MARK: Hostile input

    @Test(arguments: seeds)
    func everyStrictPrefixIsTruncated(seed: UInt64) {
        var generator = EventGenerator(seed: seed)
        for typeCode in typeCodes {
            let bytes = EventCodec.encode(generator.event(typeCode: typeCode))
            for length in 0..<bytes.count {
                let prefix = Array(bytes[..<length])
                switch outcome(prefix) {
                case .success:
                    Issue.record("seed \(seed) type \(typeCode): a \(length)-byte prefix of \(bytes.count) decoded")
                case .failure(let error):
                    #expect(error.kind == .truncated, "seed \(seed) type \(typeCode) prefix \(length): \(error)")
                    #expect(error.offset <= length, "seed \(seed) type \(typeCode) prefix \(length): \(error)")
                }
            }
        }
    }

    @Test(arguments: seeds)
    func randomGarbageIsRefusedOrCanonical(seed: UInt64) {
        var random = CodecPRNG(state: seed)
        var generator = EventGenerator(seed: seed ^ 0xFFFF)
        var accepted = 0
        for index in 0..<3_000 {
            var bytes: [UInt8]
            switch index % 3 {
            case 0:
                // Pure noise.
                bytes = (0..<random.below(200)).map { _ in random.byte() }
            case 1:
                // A plausible header with a consistent length, so that the body readers see the noise.
                let body = (0..<random.below(300)).map { _ in random.byte() }
                var writer = ByteWriter()
                writer.writeU8(EventCodec.formatVersion)
                writer.writeU8(UInt8(random.inRange(0...15)))
                writer.writeU64(random.next())
                writer.writeI64(Int64(bitPattern: random.next()))
                writer.writeU32(UInt32(body.count))
                writer.writeBytes(body)
                bytes = writer.bytes
            default:
                // A valid record with a few bytes overwritten.
                bytes = EventCodec.encode(generator.event(typeCode: UInt8(random.inRange(1...15))))
                for _ in 0..<random.inRange(1...4) { bytes[random.below(bytes.count)] = random.byte() }
            }
            if expectCanonicalOrRefused(bytes, "seed \(seed) input \(index): \(hex(Array(bytes.prefix(64))))") {
                accepted += 1
            }
        }
        // Overwritten valid records are sometimes still valid: the accepting path is exercised too.
        #expect(accepted > 0, "seed \(seed): no input was accepted")
    }

    /// Three seeds rather than five: each one flips every bit of fourteen records, the slowest test here.
    @Test(arguments: seeds.prefix(3))
    func singleBitFlipsAreRefusedOrCanonical(seed: UInt64) {
        var generator = EventGenerator(seed: seed, isCompact: true)
        var random = CodecPRNG(state: ~seed)
        var (accepted, refused) = (0, 0)
        for typeCode in typeCodes {
            let bytes = EventCodec.encode(generator.event(typeCode: typeCode))
            let bitCount = bytes.count * 8
            // Every bit of a typical record; a bounded sample of an unusually long one keeps the test fast.
            let positions = bitCount <= 1_600 ? Array(0..<bitCount) : (0..<1_600).map { _ in random.below(bitCount) }
            for bit in positions {
                var flipped = bytes
                flipped[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
                if expectCanonicalOrRefused(flipped, "seed \(seed) type \(typeCode) bit \(bit)") {
                    accepted += 1
                } else {
                    refused += 1
                }
            }
        }
        // A flip inside a string or a number is a different valid event; one in a length or tag is damage.
        #expect(accepted > 0 && refused > 0, "seed \(seed): \(accepted) accepted, \(refused) refused")
    }
}

// MARK: - Specific defects give specific errors at the right offset

extension EventCodecTests {
    /// The golden record, whose layout protocol/events.md spells out byte by byte: reservation id length at
    /// 22, its bytes at 26-30, amount at 31, reason presence at 39, its length at 40, cause at 48,
    /// idempotency presence at 49, caller tag at 50, timestamp at 65; 73 bytes in all.
    static var golden: [UInt8] { EventCodec.encode(goldenEvent) }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
    }

    func expectError(
        _ bytes: [UInt8], _ kind: EventCodecError.Kind, at offset: Int, reasonContains fragment: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        switch outcome(bytes) {
        case .success(let event):
            Issue.record(
                "expected \(kind) at \(offset), decoded \(event.body.typeName)", sourceLocation: sourceLocation)
        case .failure(let error):
            #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
            #expect(error.offset == offset, "\(error)", sourceLocation: sourceLocation)
            if let fragment {
                #expect(error.reason.contains(fragment), "\(error)", sourceLocation: sourceLocation)
            }
        }
    }

    /// The index of the first byte where two encodings differ, to find a field's offset without hard-coding it.
    /// The search starts after the header, whose body length differs whenever the bodies' lengths do.
    func firstDifference(_ left: [UInt8], _ right: [UInt8]) -> Int {
        let end = min(left.count, right.count)
        return (EventCodec.headerLength..<end).first { left[$0] != right[$0] } ?? end
    }

    func record(_ body: EventBody) -> [UInt8] {
        EventCodec.encode(Event(sequence: 1, timestampMilliseconds: 2, body: body))
    }

    @Test func goldenLayoutHasTheDocumentedLength() {
        #expect(EventCodecTests.golden.count == 73)
        #expect(Array(EventCodecTests.golden[18..<22]) == EventCodecTests.bigEndian(51))
    }

    @Test(arguments: [UInt8(0), 2, 255])
    func anotherFormatVersionIsRefused(version: UInt8) {
        var bytes = EventCodecTests.golden
        bytes[0] = version
        expectError(bytes, .unsupportedVersion, at: 0, reasonContains: "format version \(version)")
    }

    @Test(arguments: [UInt8(0), 16, 99, 255])
    func unknownEventTypeIsRefused(typeCode: UInt8) {
        var bytes = EventCodecTests.golden
        bytes[1] = typeCode
        expectError(bytes, .unknownEventType, at: 1, reasonContains: "unknown event type \(typeCode)")
    }

    @Test func bytesAfterTheDeclaredBodyAreRefused() {
        expectError(EventCodecTests.golden + [0], .trailingBytes, at: 73, reasonContains: "trailing")
    }

    @Test func bodyLongerThanItsFieldsIsRefused() {
        var bytes = EventCodecTests.golden + [0, 0]
        bytes.replaceSubrange(18..<22, with: EventCodecTests.bigEndian(53))
        expectError(bytes, .trailingBytes, at: 73, reasonContains: "Released")
    }

    @Test func bodyLengthBeyondTheInputIsTruncation() {
        var bytes = EventCodecTests.golden
        bytes.replaceSubrange(18..<22, with: EventCodecTests.bigEndian(.max))
        expectError(bytes, .truncated, at: 73)
    }

    @Test func malformedUTF8IsRefusedAtTheBadByte() {
        let cases: [(replace: Range<Int>, with: [UInt8], offset: Int)] = [
            (27..<28, [0xFF], 27),               // never valid in UTF-8
            (26..<28, [0xC0, 0xAF], 26),         // overlong encoding of "/"
            (26..<29, [0xED, 0xA0, 0x80], 26),   // a UTF-16 surrogate
            (30..<31, [0xE2], 30),               // a lead byte with no continuation
            (26..<27, [0x80], 26),               // a lone continuation byte
        ]
        for item in cases {
            var bytes = EventCodecTests.golden
            bytes.replaceSubrange(item.replace, with: item.with)
            expectError(bytes, .invalidUTF8, at: item.offset, reasonContains: "reservation_id")
        }
    }

    @Test func presenceByteOtherThanZeroOrOneIsRefused() {
        for (offset, value) in [(39, UInt8(2)), (49, 7), (49, 255)] {
            var bytes = EventCodecTests.golden
            bytes[offset] = value
            expectError(bytes, .invalidFlag, at: offset)
        }
    }

    @Test func boolByteOtherThanZeroOrOneIsRefused() {
        var generator = EventGenerator(seed: 3)
        var budget = generator.budget()
        budget.isOverLimit = false
        let clear = record(.budgetCreated(budget))
        budget.isOverLimit = true
        let offset = firstDifference(clear, record(.budgetCreated(budget)))
        var bytes = clear
        bytes[offset] = 2
        expectError(bytes, .invalidFlag, at: offset, reasonContains: "budget.is_over_limit")
    }

    @Test func stringLengthOverItsLimitIsRefusedBeforeReading() {
        for length in [UInt32(Limit.reservationIDBytesMax + 1), .max] {
            var bytes = EventCodecTests.golden
            bytes.replaceSubrange(22..<26, with: EventCodecTests.bigEndian(length))
            expectError(
                bytes, .stringTooLong, at: 22, reasonContains: "over its limit of \(Limit.reservationIDBytesMax)")
        }
        var bytes = EventCodecTests.golden
        bytes.replaceSubrange(40..<44, with: EventCodecTests.bigEndian(UInt32(Limit.releaseReasonBytesMax + 1)))
        expectError(bytes, .stringTooLong, at: 40, reasonContains: "released.reason")
    }

    @Test func stringLengthWithinLimitButPastTheEndIsTruncation() {
        var bytes = EventCodecTests.golden
        bytes.replaceSubrange(22..<26, with: EventCodecTests.bigEndian(100))
        expectError(bytes, .truncated, at: 26, reasonContains: "reservation_id")
    }

    @Test func unknownEnumerationValuesAreRefused() {
        for (offset, value) in [(48, UInt8(0)), (48, 3), (50, 0), (50, 4)] {
            var bytes = EventCodecTests.golden
            bytes[offset] = value
            expectError(bytes, .unknownEnumValue, at: offset, reasonContains: "unknown value \(value)")
        }
    }

    @Test func permissionCodeOutsideTheTableIsRefused() {
        var generator = EventGenerator(seed: 5)
        var key = generator.apiKey()
        key.permissions = [.reservationsCreate]
        let bytes = record(.apiKeyCreated(key))
        key.permissions = [.reservationsCommit]
        let offset = firstDifference(bytes, record(.apiKeyCreated(key)))
        var damaged = bytes
        damaged[offset] = UInt8(Permission.allCases.count + 1)
        expectError(damaged, .unknownEnumValue, at: offset, reasonContains: "permission")
    }

    @Test func arrayCountOverItsLimitIsRefused() {
        var generator = EventGenerator(seed: 5)
        var key = generator.apiKey()
        key.permissions = []
        let empty = record(.apiKeyCreated(key))
        key.permissions = [.balancesRead]
        // The counts differ in their low byte, one past the count's offset.
        let offset = firstDifference(empty, record(.apiKeyCreated(key))) - 1
        var bytes = empty
        bytes[offset + 1] = UInt8(Limit.permissionsCountMax + 1)
        expectError(bytes, .countTooLarge, at: offset, reasonContains: "api_key.permissions")
    }

    @Test func scopePathThatBreaksItsInvariantsIsRefused() throws {
        let budget = Budget(
            key: BudgetKey(try ScopePath(parsing: "tenant:acme/agent:bot"), .tokens), tenant: "acme", allocated: 10,
            remaining: 10, createdAtMilliseconds: 0, updatedAtMilliseconds: 0)
        let bytes = record(.budgetCreated(budget))
        let text = Array("tenant:acme/agent:bot".utf8)
        let start = try #require(
            (0...(bytes.count - text.count)).first { Array(bytes[$0..<($0 + text.count)]) == text })
        // Upper case, an unknown level, a broken level name, and a character no scope value may hold.
        for (position, replacement) in [(7, UInt8(ascii: "A")), (0, UInt8(ascii: "x")), (13, UInt8(ascii: "x")), (8, UInt8(ascii: "|"))] {
            var damaged = bytes
            damaged[start + position] = replacement
            expectError(damaged, .invalidScopePath, at: start - 4, reasonContains: "scope")
        }
    }

    @Test func dimensionKeysOutOfOrderDuplicatedOrEquivalentAreRefused() throws {
        var generator = EventGenerator(seed: 9)
        guard case .reserved(var reserved) = generator.body(typeCode: 8) else { Issue.record("not Reserved"); return }
        reserved.subject.dimensions = ["e\u{301}": "1", "zz": "2"]
        let bytes = record(.reserved(reserved))
        let second = Array("zz".utf8)
        let keyStart = try #require((0...(bytes.count - 6)).first {
            Array(bytes[$0..<($0 + 6)]) == EventCodecTests.bigEndian(2) + second
        })
        // "é" precomposed sorts after "e" + U+0301 by bytes but is the same Swift string.
        for replacement in [[0xC3, 0xA9], Array("aa".utf8)] as [[UInt8]] {
            var damaged = bytes
            damaged.replaceSubrange((keyStart + 4)..<(keyStart + 6), with: replacement)
            expectError(damaged, .nonCanonicalKeys, at: keyStart, reasonContains: "dimension key")
        }
    }

    @Test func encodingAStringOverItsLimitStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            let tooLong = String(repeating: "x", count: EventCodec.FieldLimit.reservationIDBytesMax + 1)
            _ = EventCodec.encode(Event(
                sequence: 1, timestampMilliseconds: 0,
                body: .expired(Expired(reservationID: ReservationID(tooLong), amount: 1, atMilliseconds: 0))))
        }
    }
}
