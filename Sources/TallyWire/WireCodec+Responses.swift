import TallyCore

// Response bodies (protocol/wire.md section 6). Ledger values (tenants, keys, budgets, reservations,
// balances) use exactly the encodings of protocol/events.md and the store's projections.

private typealias Limit = EventCodec.FieldLimit

extension ByteWriter {
    mutating func writeBody(of response: Response) {
        switch response {
        case .welcome(let welcome):
            writeU8(welcome.protocolVersion)
            write(welcome.principal)
            writeU32(welcome.limits.frameBytesMax)
            writeU32(welcome.limits.inFlightRequestsMax)
            writeU32(welcome.limits.listLimitMax)
            writeString(welcome.serverName, bytesMax: WireLimits.peerNameBytesMax, field: "welcome.server_name")
        case .reply(let reply): write(reply)
        case .apiKeyCreated(let key, let secret):
            write(key)
            writeString(secret, bytesMax: WireLimits.secretBytesMax, field: "api_key_created.secret")
        case .reservation(let reservation): write(reservation)
        case .reservations(let reservations, let hasMore):
            writeList(reservations, field: "reservations") { $0.write($1) }
            writeBool(hasMore)
        case .budgets(let budgets): writeList(budgets, field: "budgets") { $0.write($1) }
        case .tenants(let tenants): writeList(tenants, field: "tenants") { $0.write($1) }
        case .apiKeys(let keys): writeList(keys, field: "api_keys") { $0.write($1) }
        case .subscribed(let fromSequence): writeU64(fromSequence)
        case .event(let record, let chain):
            precondition(record.count <= WireLimits.eventRecordBytesMax, "an event record over the wire limit")
            precondition(chain.count == WireLimits.chainBytes, "a chain value is exactly 32 bytes")
            writeU32(UInt32(truncatingIfNeeded: record.count))
            writeBytes(record)
            writeBytes(chain)
        case .error(let error): write(error)
        }
    }

    private mutating func writeList<Element>(_ items: [Element], field: String, _ writeItem: (inout ByteWriter, Element) -> Void) {
        writeArray(items, countMax: WireLimits.listItemsCountMax, field: field, writeItem)
    }

    mutating func write(_ principal: Principal) {
        switch principal {
        case .tenant(let id, let keyID, let permissions):
            writeU8(1)
            writeString(id, bytesMax: Limit.tenantIDBytesMax, field: "principal.tenant")
            writeString(keyID, bytesMax: Limit.keyIDBytesMax, field: "principal.key_id")
            write(permissions: permissions)
        case .admin:
            writeU8(2)
        }
    }

    /// The message is cut at a scalar boundary rather than refused: an error must always be deliverable.
    mutating func write(_ error: WireError) {
        writeU16(error.code.rawValue)
        var message = Substring(error.message)
        while message.utf8.count > WireLimits.errorMessageBytesMax { message = message.dropLast() }
        writeString(String(message), bytesMax: WireLimits.errorMessageBytesMax, field: "error.message")
        writeOptional(error.unitMismatch) { writer, details in
            writer.write(details.scope)
            writer.writeU8(details.requestedUnit.rawValue)
            writer.writeArray(details.expectedUnits, countMax: WireLimits.unitsCountMax, field: "error.expected_units") {
                $0.writeU8($1.rawValue)
            }
        }
    }

    mutating func write(_ reply: Reply) {
        switch reply {
        case .reserved(let reserve, let remainingTTL):
            writeU8(1)
            writeU8(reserve.decision.rawValue)
            writeReservationID(reserve.reservationID)
            write(reserve.reserved)
            writeI64(reserve.expiresAtMilliseconds)
            write(reserve.scopePath)
            write(scopes: reserve.affectedScopes, field: "reserved.affected_scopes")
            writeOptional(reserve.caps)
            writeBalances(reserve.balances)
            writeI64(remainingTTL)
        case .evaluated(let evaluation):
            writeU8(2)
            write(evaluation)
        case .committed(let commit):
            writeU8(3)
            write(commit.charged)
            writeOptional(commit.released) { $0.write($1) }
            writeBalances(commit.balances)
        case .released(let release):
            writeU8(4)
            write(release.released)
            writeBalances(release.balances)
        case .extended(let extend, let remainingTTL):
            writeU8(5)
            writeReservationID(extend.reservationID)
            writeI64(extend.expiresAtMilliseconds)
            writeBalances(extend.balances)
            writeI64(remainingTTL)
        default: writeAdminReply(reply)
        }
    }

    private mutating func writeAdminReply(_ reply: Reply) {
        switch reply {
        case .debitRecorded(let debit):
            writeU8(6)
            writeString(debit.eventID, bytesMax: Limit.eventIDBytesMax, field: "debit_recorded.event_id")
            writeOptional(debit.charged) { $0.write($1) }
            writeBalances(debit.balances)
        case .tenant(let tenant, let created):
            writeU8(7)
            write(tenant)
            writeBool(created)
        case .apiKey(let key):
            writeU8(8)
            write(key)
        case .budget(let budget):
            writeU8(9)
            write(budget)
        case .funded(let funding):
            writeU8(10)
            write(funding.key)
            writeU8(funding.operation.rawValue)
            write(funding.previous)
            write(funding.new)
            writeI64(funding.atMilliseconds)
        case .expired(let ids):
            writeU8(11)
            writeArray(ids, countMax: WireLimits.expiredIDsCountMax, field: "expired.reservation_ids") {
                $0.writeReservationID($1)
            }
        case .reserved, .evaluated, .committed, .released, .extended:
            preconditionFailure("runtime replies are written by write(_ reply:)")
        }
    }
}

extension ByteReader {
    mutating func readResponseBody(_ kind: ResponseKind) throws(EventCodecError) -> Response {
        switch kind {
        case .welcome:
            return .welcome(Welcome(
                protocolVersion: try readU8("welcome.protocol_version"), principal: try readPrincipal(),
                limits: ServerLimits(
                    frameBytesMax: try readU32("welcome.frame_bytes_max"),
                    inFlightRequestsMax: try readU32("welcome.in_flight_requests_max"),
                    listLimitMax: try readU32("welcome.list_limit_max")),
                serverName: try readString("welcome.server_name", bytesMax: WireLimits.peerNameBytesMax)))
        case .reply: return .reply(try readReply())
        case .apiKeyCreated:
            let key = try readApiKey()
            return .apiKeyCreated(key, secret: try readString("api_key_created.secret", bytesMax: WireLimits.secretBytesMax))
        case .reservation: return .reservation(try readReservation())
        case .reservations:
            let reservations = try readList("reservations") { (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readReservation()
            }
            return .reservations(reservations, hasMore: try readBool("reservations.has_more"))
        case .budgets:
            return .budgets(try readList("budgets") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readBudget() })
        case .tenants:
            return .tenants(try readList("tenants") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readTenant() })
        case .apiKeys:
            return .apiKeys(try readList("api_keys") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readApiKey() })
        case .subscribed: return .subscribed(fromSequence: try readU64("subscribed.from_sequence"))
        case .event:
            let start = offset
            let length = try readU32("event.record length")
            guard UInt64(length) <= UInt64(WireLimits.eventRecordBytesMax) else {
                throw EventCodecError(
                    .stringTooLong, offset: start,
                    reason: "event.record at offset \(start) declares \(length) bytes, over its limit of \(WireLimits.eventRecordBytesMax)")
            }
            let record = Array(try readRawBytes(Int(length), "event.record"))
            return .event(record: record, chain: Array(try readRawBytes(WireLimits.chainBytes, "event.chain")))
        case .error: return .error(try readWireError())
        }
    }

    /// Like `readArray`, but without reserving capacity for the declared count: a list's u16 count is
    /// bounded only by the frame, so the elements actually present bound the allocation instead.
    private mutating func readList<Element>(
        _ field: @autoclosure () -> String, _ readElement: (inout ByteReader) throws(EventCodecError) -> Element
    ) throws(EventCodecError) -> [Element] {
        let count = try readCount(field(), countMax: WireLimits.listItemsCountMax)
        var elements: [Element] = []
        for _ in 0..<count { elements.append(try readElement(&self)) }
        return elements
    }

    mutating func readPrincipal() throws(EventCodecError) -> Principal {
        let start = offset
        switch try readU8("principal tag") {
        case 1:
            return .tenant(
                id: try readString("principal.tenant", bytesMax: Limit.tenantIDBytesMax),
                keyID: try readString("principal.key_id", bytesMax: Limit.keyIDBytesMax),
                permissions: try readPermissions())
        case 2: return .admin
        case let tag:
            throw EventCodecError(.unknownEnumValue, offset: start, reason: "principal tag at offset \(start) has unknown value \(tag)")
        }
    }

    /// An unknown code is kept as `internalError` with its message: codes are append-only, so a newer
    /// server may send one this reader does not know, and the client must still see a failure.
    mutating func readWireError() throws(EventCodecError) -> WireError {
        let raw = try readU16("error.code")
        let message = try readString("error.message", bytesMax: WireLimits.errorMessageBytesMax)
        let details = try readOptional("error.unit_mismatch") { (reader: inout ByteReader) throws(EventCodecError) in
            UnitMismatchDetails(
                scope: try reader.readScopePath("error.scope"),
                requestedUnit: try reader.readEnum(Unit.self, "error.requested_unit"),
                expectedUnits: try reader.readArray("error.expected_units", countMax: WireLimits.unitsCountMax) {
                    (reader: inout ByteReader) throws(EventCodecError) in try reader.readEnum(Unit.self, "error.expected_unit")
                })
        }
        return WireError(code: ErrorCode(rawValue: raw) ?? .internalError, message: message, unitMismatch: details)
    }

    mutating func readReply() throws(EventCodecError) -> Reply {
        let start = offset
        switch try readU8("reply tag") {
        case 1:
            let reserve = ReserveReply(
                decision: try readEnum(DecisionKind.self, "reserved.decision"), reservationID: try readReservationID(),
                reserved: try readQuantity("reserved.reserved"), expiresAtMilliseconds: try readI64("reserved.expires_at_ms"),
                scopePath: try readScopePath("reserved.scope_path"),
                affectedScopes: try readScopePaths("reserved.affected_scopes"), caps: try readOptionalCaps(),
                balances: try readBalances())
            return .reserved(reserve, remainingTTLMilliseconds: try readI64("reserved.remaining_ttl_ms"))
        case 2: return .evaluated(try readEvaluationReply())
        case 3:
            return .committed(CommitReply(
                charged: try readQuantity("committed.charged"), released: try readOptionalQuantity("committed.released"),
                balances: try readBalances()))
        case 4: return .released(ReleaseReply(released: try readQuantity("released.released"), balances: try readBalances()))
        case 5:
            let extend = ExtendReply(
                reservationID: try readReservationID(), expiresAtMilliseconds: try readI64("extended.expires_at_ms"),
                balances: try readBalances())
            return .extended(extend, remainingTTLMilliseconds: try readI64("extended.remaining_ttl_ms"))
        case 6:
            return .debitRecorded(DebitReply(
                eventID: try readString("debit_recorded.event_id", bytesMax: Limit.eventIDBytesMax),
                charged: try readOptionalQuantity("debit_recorded.charged"), balances: try readBalances()))
        case 7:
            let tenant = try readTenant()
            return .tenant(tenant, created: try readBool("tenant.created"))
        case 8: return .apiKey(try readApiKey())
        case 9: return .budget(try readBudget())
        case 10:
            return .funded(FundingReply(
                key: try readBudgetKey(), operation: try readEnum(FundingOperation.self, "funded.operation"),
                previous: try readFigures("funded.previous"), new: try readFigures("funded.new"),
                atMilliseconds: try readI64("funded.at_ms")))
        case 11:
            return .expired(try readArray("expired.reservation_ids", countMax: WireLimits.expiredIDsCountMax) {
                (reader: inout ByteReader) throws(EventCodecError) in try reader.readReservationID()
            })
        case let tag:
            throw EventCodecError(.unknownEnumValue, offset: start, reason: "reply tag at offset \(start) has unknown value \(tag)")
        }
    }

    private mutating func readOptionalQuantity(_ field: @autoclosure () -> String) throws(EventCodecError) -> Quantity? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in try reader.readQuantity(field()) }
    }
}
