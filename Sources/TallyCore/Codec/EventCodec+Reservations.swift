// Bodies of the runtime-plane events: the reservation lifecycle, direct debits and remembered
// evaluations (type codes 8-14).

private typealias Limit = EventCodec.FieldLimit

extension ByteWriter {
    mutating func write(_ reserved: Reserved) {
        writeReservationID(reserved.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "reserved.reservation_id")
        writeString(reserved.tenant, bytesMax: Limit.tenantIDBytesMax, field: "reserved.tenant")
        write(reserved.subject)
        write(reserved.action)
        writeU8(reserved.unit.rawValue)
        write(reserved.amount)
        write(reserved.scopePath)
        write(scopes: reserved.affectedScopes, field: "reserved.affected_scopes")
        write(scopes: reserved.budgetedScopes, field: "reserved.budgeted_scopes")
        writeI64(reserved.createdAtMilliseconds)
        writeI64(reserved.expiresAtMilliseconds)
        writeI64(reserved.graceMilliseconds)
        writeU8(reserved.overagePolicy.rawValue)
        writeI64(Int64(reserved.maxExtensions))
        writeOptional(reserved.caps)
        write(reserved.idempotency)
        writeI64(reserved.replayRetainUntilMilliseconds)
        writeOptional(reserved.metadata, field: "reserved.metadata")
        write(reserved.caller)
    }

    mutating func write(_ committed: Committed) {
        writeReservationID(committed.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "committed.reservation_id")
        write(committed.actual)
        write(committed.charged)
        writeArray(committed.deltas, countMax: Limit.scopesCountMax, field: "committed.deltas") { $0.write($1) }
        write(committed.idempotency)
        writeOptional(committed.metrics) { $0.write($1) }
        writeOptional(committed.metadata, field: "committed.metadata")
        write(committed.caller)
        writeI64(committed.atMilliseconds)
    }

    mutating func write(_ released: Released) {
        writeReservationID(released.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "released.reservation_id")
        write(released.amount)
        writeOptionalString(released.reason, bytesMax: Limit.releaseReasonBytesMax, field: "released.reason")
        writeU8(released.cause.rawValue)
        writeOptional(released.idempotency) { $0.write($1) }
        write(released.caller)
        writeI64(released.atMilliseconds)
    }

    mutating func write(_ extended: Extended) {
        writeReservationID(extended.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "extended.reservation_id")
        writeString(extended.tenant, bytesMax: Limit.tenantIDBytesMax, field: "extended.tenant")
        writeI64(extended.newExpiresAtMilliseconds)
        writeI64(Int64(extended.extensionCount))
        write(extended.idempotency)
        writeI64(extended.replayRetainUntilMilliseconds)
        write(extended.caller)
        writeI64(extended.atMilliseconds)
    }

    mutating func write(_ expired: Expired) {
        writeReservationID(expired.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "expired.reservation_id")
        write(expired.amount)
        writeI64(expired.atMilliseconds)
    }

    mutating func write(_ debit: DebitRecorded) {
        writeString(debit.eventID, bytesMax: Limit.eventIDBytesMax, field: "debit_recorded.event_id")
        writeString(debit.tenant, bytesMax: Limit.tenantIDBytesMax, field: "debit_recorded.tenant")
        write(debit.subject)
        write(debit.action)
        writeU8(debit.unit.rawValue)
        write(debit.actual)
        write(debit.charged)
        writeU8(debit.overagePolicy.rawValue)
        write(debit.scopePath)
        writeArray(debit.deltas, countMax: Limit.scopesCountMax, field: "debit_recorded.deltas") { $0.write($1) }
        write(debit.idempotency)
        writeI64(debit.replayRetainUntilMilliseconds)
        writeOptional(debit.metrics) { $0.write($1) }
        writeOptionalI64(debit.clientTimeMilliseconds)
        writeOptional(debit.metadata, field: "debit_recorded.metadata")
        write(debit.caller)
        writeI64(debit.atMilliseconds)
    }

    mutating func write(_ evaluation: EvaluationRecorded) {
        writeString(evaluation.tenant, bytesMax: Limit.tenantIDBytesMax, field: "evaluation_recorded.tenant")
        write(evaluation.idempotency)
        writeI64(evaluation.replayRetainUntilMilliseconds)
        write(evaluation.reply)
        write(evaluation.caller)
        writeI64(evaluation.atMilliseconds)
    }

    public mutating func write(_ reply: EvaluationReply) {
        writeU8(reply.kind.rawValue)
        writeU8(reply.decision.rawValue)
        writeOptional(reply.reasonCode) { $0.writeU8($1.rawValue) }
        writeOptional(reply.caps)
        write(reply.scopePath)
        write(scopes: reply.affectedScopes, field: "evaluation.affected_scopes")
        writeOptional(reply.reserved) { $0.write($1) }
        writeArray(reply.balances, countMax: Limit.scopesCountMax, field: "evaluation.balances") { $0.write($1) }
    }
}

extension ByteReader {
    mutating func readReserved() throws(EventCodecError) -> Reserved {
        Reserved(
            reservationID: try readReservationID("reserved.reservation_id", bytesMax: Limit.reservationIDBytesMax),
            tenant: try readString("reserved.tenant", bytesMax: Limit.tenantIDBytesMax),
            subject: try readSubject(),
            action: try readAction(),
            unit: try readEnum(Unit.self, "reserved.unit"),
            amount: try readAmount("reserved.amount"),
            scopePath: try readScopePath("reserved.scope_path"),
            affectedScopes: try readScopePaths("reserved.affected_scopes"),
            budgetedScopes: try readScopePaths("reserved.budgeted_scopes"),
            createdAtMilliseconds: try readI64("reserved.created_at_ms"),
            expiresAtMilliseconds: try readI64("reserved.expires_at_ms"),
            graceMilliseconds: try readI64("reserved.grace_ms"),
            overagePolicy: try readEnum(OveragePolicy.self, "reserved.overage_policy"),
            maxExtensions: try readInt("reserved.max_extensions"),
            caps: try readOptionalCaps(),
            idempotency: try readIdempotencyStamp(),
            replayRetainUntilMilliseconds: try readI64("reserved.replay_retain_until_ms"),
            metadata: try readOptionalJSON("reserved.metadata"),
            caller: try readCaller())
    }

    mutating func readCommitted() throws(EventCodecError) -> Committed {
        Committed(
            reservationID: try readReservationID("committed.reservation_id", bytesMax: Limit.reservationIDBytesMax),
            actual: try readAmount("committed.actual"),
            charged: try readAmount("committed.charged"),
            deltas: try readScopeDeltas(),
            idempotency: try readIdempotencyStamp(),
            metrics: try readOptionalMetrics(),
            metadata: try readOptionalJSON("committed.metadata"),
            caller: try readCaller(),
            atMilliseconds: try readI64("committed.at_ms"))
    }

    mutating func readReleased() throws(EventCodecError) -> Released {
        Released(
            reservationID: try readReservationID("released.reservation_id", bytesMax: Limit.reservationIDBytesMax),
            amount: try readAmount("released.amount"),
            reason: try readOptionalString("released.reason", bytesMax: Limit.releaseReasonBytesMax),
            cause: try readEnum(ReleaseCause.self, "released.cause"),
            idempotency: try readOptionalIdempotencyStamp(),
            caller: try readCaller(),
            atMilliseconds: try readI64("released.at_ms"))
    }

    mutating func readExtended() throws(EventCodecError) -> Extended {
        Extended(
            reservationID: try readReservationID("extended.reservation_id", bytesMax: Limit.reservationIDBytesMax),
            tenant: try readString("extended.tenant", bytesMax: Limit.tenantIDBytesMax),
            newExpiresAtMilliseconds: try readI64("extended.new_expires_at_ms"),
            extensionCount: try readInt("extended.extension_count"),
            idempotency: try readIdempotencyStamp(),
            replayRetainUntilMilliseconds: try readI64("extended.replay_retain_until_ms"),
            caller: try readCaller(),
            atMilliseconds: try readI64("extended.at_ms"))
    }

    mutating func readExpired() throws(EventCodecError) -> Expired {
        Expired(
            reservationID: try readReservationID("expired.reservation_id", bytesMax: Limit.reservationIDBytesMax),
            amount: try readAmount("expired.amount"),
            atMilliseconds: try readI64("expired.at_ms"))
    }

    mutating func readDebitRecorded() throws(EventCodecError) -> DebitRecorded {
        DebitRecorded(
            eventID: try readString("debit_recorded.event_id", bytesMax: Limit.eventIDBytesMax),
            tenant: try readString("debit_recorded.tenant", bytesMax: Limit.tenantIDBytesMax),
            subject: try readSubject(),
            action: try readAction(),
            unit: try readEnum(Unit.self, "debit_recorded.unit"),
            actual: try readAmount("debit_recorded.actual"),
            charged: try readAmount("debit_recorded.charged"),
            overagePolicy: try readEnum(OveragePolicy.self, "debit_recorded.overage_policy"),
            scopePath: try readScopePath("debit_recorded.scope_path"),
            deltas: try readScopeDeltas(),
            idempotency: try readIdempotencyStamp(),
            replayRetainUntilMilliseconds: try readI64("debit_recorded.replay_retain_until_ms"),
            metrics: try readOptionalMetrics(),
            clientTimeMilliseconds: try readOptionalI64("debit_recorded.client_time_ms"),
            metadata: try readOptionalJSON("debit_recorded.metadata"),
            caller: try readCaller(),
            atMilliseconds: try readI64("debit_recorded.at_ms"))
    }

    mutating func readEvaluationRecorded() throws(EventCodecError) -> EvaluationRecorded {
        EvaluationRecorded(
            tenant: try readString("evaluation_recorded.tenant", bytesMax: Limit.tenantIDBytesMax),
            idempotency: try readIdempotencyStamp(),
            replayRetainUntilMilliseconds: try readI64("evaluation_recorded.replay_retain_until_ms"),
            reply: try readEvaluationReply(),
            caller: try readCaller(),
            atMilliseconds: try readI64("evaluation_recorded.at_ms"))
    }

    public mutating func readEvaluationReply() throws(EventCodecError) -> EvaluationReply {
        EvaluationReply(
            kind: try readEnum(EvaluationKind.self, "evaluation.kind"),
            decision: try readEnum(DecisionKind.self, "evaluation.decision"),
            reasonCode: try readOptional("evaluation.reason_code") {
                (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readEnum(DenyReason.self, "evaluation.reason_code")
            },
            caps: try readOptionalCaps(),
            scopePath: try readScopePath("evaluation.scope_path"),
            affectedScopes: try readScopePaths("evaluation.affected_scopes"),
            reserved: try readOptional("evaluation.reserved") { (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readQuantity("evaluation.reserved")
            },
            balances: try readArray("evaluation.balances", countMax: Limit.scopesCountMax) {
                (reader: inout ByteReader) throws(EventCodecError) in try reader.readBalance()
            })
    }
}
