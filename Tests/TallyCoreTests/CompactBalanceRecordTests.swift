import Testing
@testable import TallyCore

/// Projection records name their balances' scopes by place among the affected scopes instead of spelling them
/// (a reserve's idempotency record also leaves the affected scopes out), whenever every scope is there, as it is
/// for everything the ledger makes; records in the layout stores wrote before still read, and the wire
/// protocol's reservations keep spelling their scopes.
@Suite struct CompactBalanceRecordTests {
    static let planner = Subject(workspace: "prod", agent: "planner")

    /// A ledger with budgets on the workspace and the agent, a reservation committed, one released and one
    /// still held: their reservations and the reserves' idempotency records, as the ledger made them.
    static func scenario() -> LedgerScenario {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme/workspace:prod", 1_000_000)
        ledger.budget("tenant:acme/workspace:prod/agent:planner", 500_000)
        let committed = ledger.hold(planner, 40_000)
        let released = ledger.hold(planner, 30_000)
        _ = ledger.hold(planner, 20_000)
        #expect(ledger.commit(committed, 35_000).errorCode == nil)
        #expect(ledger.release(released, reason: "done early").errorCode == nil)
        return ledger
    }

    /// The bytes the layout before this one gave a reserve's idempotency record (reply kind 1, scopes spelled).
    static func spelledRecord(_ record: IdempotencyRecord, _ reply: ReserveReply) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeU8(ProjectionCodec.formatVersion)
        writer.write(record.payloadHash)
        writer.writeI64(record.retainUntilMilliseconds)
        writer.writeU8(1)
        writer.writeU8(reply.decision.rawValue)
        writer.writeReservationID(reply.reservationID, bytesMax: EventCodec.FieldLimit.reservationIDBytesMax, field: "id")
        writer.write(reply.reserved)
        writer.writeI64(reply.expiresAtMilliseconds)
        writer.write(reply.scopePath)
        writer.write(scopes: reply.affectedScopes, field: "affected")
        writer.writeOptional(reply.caps)
        writer.writeBalances(reply.balances)
        return writer.bytes
    }

    /// What spelling a list of scopes costs: a u16 count, each path a u32 length and its text.
    static func spelled(_ scopes: [ScopePath]) -> Int { scopes.reduce(2) { $0 + 4 + $1.rawValue.utf8.count } }

    /// A balance's bytes after its place in a projection record: its unit, six amounts in zig-zag LEB128, a flag, a status.
    static func figuresCount(_ balance: Balance) -> Int {
        var writer = ByteWriter()
        for amount in [balance.allocated, balance.remaining, balance.reserved, balance.spent, balance.debt, balance.overdraftLimit] {
            writer.writeZigZag(amount.value)
        }
        return 1 + writer.bytes.count + 1 + 1
    }

    /// What a balance saves in a projection record: spelled, its scope (a u32 length and the text), a unit byte, six
    /// eight-byte amounts, a flag and a status; by place, one byte and its figures.
    static func saving(_ balance: Balance) -> Int {
        (4 + balance.scope.rawValue.utf8.count + 1 + 48 + 2) - (1 + figuresCount(balance))
    }

    @Test func aReservesRecordLeavesItsScopesOutAndReadsBackInBothLayouts() throws {
        let ledger = Self.scenario()
        var seen = 0
        for record in ledger.state.idempotency.values {
            guard case .reserve(let reply) = record.reply else { continue }
            seen += 1
            #expect(reply.affectedScopes.count == 3 && reply.balances.count == 2)
            let compact = ProjectionCodec.encode(record)
            let spelled = Self.spelledRecord(record, reply)
            // The format byte, the payload hash and the retention come first; then the reply's kind.
            #expect(compact[0] == ProjectionCodec.formatVersion)
            #expect(compact[1 + 32 + 8] == ProjectionCodec.compactReserveReplyKind)
            #expect(try ProjectionCodec.decodeIdempotencyRecord(compact) == record)
            #expect(try ProjectionCodec.decodeIdempotencyRecord(spelled) == record, "the older layout still reads")
            // Gone: the affected scopes' list, and each balance's scope but for the byte of its place, its amounts
            // shorter; the id's form takes a byte (the scenario's ids are not UUIDs).
            let figures = [reply.reserved.amount.value, reply.expiresAtMilliseconds].reduce(0) {
                $0 + 8 - CompactReservationRecordTests.zigZagCount($1)
            }
            let saved = Self.spelled(reply.affectedScopes) + reply.balances.reduce(0) { $0 + Self.saving($1) } + figures - 1
            #expect(compact.count == spelled.count - saved)
            #expect(saved * 10 >= spelled.count * 3, "\(saved) of \(spelled.count) bytes")
        }
        #expect(seen == 3)
    }

    @Test func aSettledReservationsBalancesNameTheirScopesByPlaceInTheStoreOnly() throws {
        let ledger = Self.scenario()
        var kinds: Set<String> = []
        for reservation in ledger.state.reservations.values {
            let balances: [Balance]
            switch reservation.settlement {
            case .committed(let commit): balances = commit.reply.balances; kinds.insert("committed")
            case .released(let release): balances = release.reply.balances; kinds.insert("released")
            case .expired, nil: continue
            }
            #expect(balances.count == 2)
            let stored = ProjectionCodec.encode(reservation)
            #expect(try ProjectionCodec.decodeReservation(stored) == reservation)
            // The wire's layout spells every scope, and the store still reads a record in it.
            let wire = CompactReservationRecordTests.formatOne(reservation)
            #expect(try ProjectionCodec.decodeReservation(wire) == reservation)
            let saved = balances.reduce(0) { $0 + Self.saving($1) }
            let listed = Self.spelled(reservation.affectedScopes) + Self.spelled(reservation.budgetedScopes)
            #expect(ProjectionCodec.encode(reservation, newest: .masked).count == wire.count - listed + 1, "settlements spelled before")
            // The derived layout leaves the path and the key's tenant out too, and gives the id and the key id a
            // byte of form each (neither is a UUID here).
            let pathAndTenant = 4 + reservation.scopePath.rawValue.utf8.count + 4 + reservation.tenant.utf8.count
            let figures = CompactReservationRecordTests.figureSaving(reservation)
            #expect(stored.count == wire.count - listed + 1 - saved - pathAndTenant - figures + 2, "\(reservation.status)")
            // A reader of the wire's layout does not take a settlement that names scopes by place.
            var wireReader = ByteReader(Array(wire.dropFirst()))
            #expect(try wireReader.readReservation() == reservation)
        }
        #expect(kinds == ["committed", "released"])
    }

    @Test func theWireReaderRefusesASettlementKindOnlyTheStoreWrites() throws {
        let ledger = Self.scenario()
        let reservation = try #require(ledger.state.reservations.values.first { $0.status == .committed })
        // The settlement's presence byte follows the head; its kind byte comes next.
        let stored = ProjectionCodec.encode(reservation)
        let storedSettlement = Self.headCount(reservation)
        #expect(stored[storedSettlement] == 1)
        #expect(stored[storedSettlement + 1] == ProjectionCodec.compactCommitSettlementKind)
        var wire = CompactReservationRecordTests.formatOne(reservation)
        let wireSettlement = Self.headCount(reservation, spelled: true)
        #expect(wire[wireSettlement] == 1)
        #expect(wire[wireSettlement + 1] == 1)
        wire[wireSettlement + 1] = ProjectionCodec.compactCommitSettlementKind
        var wireReader = ByteReader(Array(wire.dropFirst()))
        #expect {
            _ = try wireReader.readReservation()
        } throws: { error in
            (error as? EventCodecError)?.kind == .unknownEnumValue && "\(error)".contains("settlement kind 4")
        }
    }

    /// Where a record's settlement starts: after the head the writer keeps (`writeRecord` of the reservation while ACTIVE).
    static func headCount(_ reservation: Reservation, spelled: Bool = false) -> Int {
        var active = reservation
        active.status = .active
        active.settlement = nil
        let head = spelled ? CompactReservationRecordTests.formatOne(active) : ProjectionCodec.encode(active)
        return head.count - 1  // less the absent settlement's presence byte
    }

    @Test func scopesOutsideTheAffectedOnesAreSpelled() throws {
        let ledger = Self.scenario()
        let id = try #require(ledger.state.idempotency.first { if case .reserve = $0.value.reply { true } else { false } }?.key)
        var record = try #require(ledger.state.idempotency[id])
        guard case .reserve(var reply) = record.reply else { Issue.record("not a reserve"); return }
        reply.balances[1].scope = try ScopePath(parsing: "tenant:acme/workspace:dev")
        record.reply = .reserve(reply)
        var bytes = ProjectionCodec.encode(record)
        #expect(bytes == Self.spelledRecord(record, reply))
        #expect(try ProjectionCodec.decodeIdempotencyRecord(bytes) == record)

        var reservation = try #require(ledger.state.reservations.values.first { $0.status == .committed })
        guard case .committed(var commit) = reservation.settlement else { Issue.record("not committed"); return }
        commit.reply.balances[0].scope = try ScopePath(parsing: "tenant:acme/workspace:dev")
        reservation.settlement = .committed(commit)
        bytes = ProjectionCodec.encode(reservation)
        #expect(bytes[Self.headCount(reservation) + 1] == 1, "spelled: settlement kind 1")
        #expect(try ProjectionCodec.decodeReservation(bytes) == reservation)
    }

    @Test func amountsRoundTripAsZigZagVarintsAndAnOverlongOneIsRefused() throws {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, 1_000_000_000_000, -1_000_000_000_000, .max, .min]
        var writer = ByteWriter()
        for value in values { writer.writeZigZag(value) }
        #expect(writer.bytes.count == 1 + 1 + 1 + 1 + 1 + 2 + 6 + 6 + 10 + 10)
        var reader = ByteReader(writer.bytes)
        for value in values { #expect(try reader.readZigZag("amount") == value) }
        try reader.expectEnd("amounts")
        // Eleven bytes, or a tenth byte carrying more than the 64th bit: damage, not a wrapped amount.
        for damaged in [[UInt8](repeating: 0xff, count: 10) + [0x01], [UInt8](repeating: 0xff, count: 9) + [0x02]] {
            var reader = ByteReader(damaged)
            #expect {
                try reader.readZigZag("balance.spent")
            } throws: { error in
                (error as? EventCodecError)?.kind == .valueOutOfRange && "\(error)".contains("over 64 bits")
            }
        }
        var truncated = ByteReader([0x80, 0x80])
        #expect(throws: EventCodecError.self) { try truncated.readZigZag("balance.spent") }
    }

    @Test func aPlaceBeyondTheScopesIsRefusedWithItsReason() throws {
        let ledger = Self.scenario()
        let record = try #require(ledger.state.idempotency.values.first { if case .reserve = $0.reply { true } else { false } })
        guard case .reserve(let reply) = record.reply, let last = reply.balances.last else { Issue.record("not a reserve"); return }
        var bytes = ProjectionCodec.encode(record)
        let place = bytes.count - Self.figuresCount(last) - 1
        #expect(Int(bytes[place]) == reply.affectedScopes.firstIndex(of: last.scope))
        bytes[place] = 3  // a fourth scope on a path of three
        #expect {
            try ProjectionCodec.decodeIdempotencyRecord(bytes)
        } throws: { error in
            (error as? EventCodecError)?.kind == .valueOutOfRange && "\(error)".contains("scope_place")
        }
    }
}
