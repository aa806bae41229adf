/// The versioned binary form of one `Event`, as stored in the log and in archive segments.
///
/// `protocol/events.md` is the normative description; this code and that document change together.
/// The encoding is canonical: every event has exactly one byte form, so a record decodes and re-encodes to
/// the same bytes and the hash chain, computed over records, depends on the events alone. Decoding treats
/// its input as hostile and reports every defect as an `EventCodecError`; it never traps.
///
/// A record is a 22-byte header (format version, type code, sequence, timestamp, body length) and then the
/// body, whose fields are the payload's stored properties in declaration order. The type codes are
/// `EventBody.typeCode` and are append-only; any change to a layout needs a new `formatVersion`.
public enum EventCodec {
    /// Bumped for any change to the header or to an existing body layout. A reader refuses versions it
    /// does not know rather than guess, because a misread amount would corrupt balances silently.
    public static let formatVersion: UInt8 = 1

    /// Format version (1), type (1), sequence (8), timestamp (8), body length (4).
    public static let headerLength = 22

    /// The record bytes of `event`.
    ///
    /// Precondition: every field is within the bounds `decide` enforces (see `FieldLimit`); a value past
    /// them is a broken invariant and crashes here rather than producing a record nobody can read back.
    public static func encode(_ event: Event) -> [UInt8] {
        // Lifecycle events are a few hundred bytes: start big enough that the array never regrows.
        var writer = ByteWriter(capacity: 1_024)
        encode(event, into: &writer)
        return writer.bytes
    }

    /// Appends the record bytes of `event`, for callers that frame several records in one buffer.
    public static func encode(_ event: Event, into writer: inout ByteWriter) {
        encode(sequence: event.sequence, timestampMilliseconds: event.timestampMilliseconds, body: event.body, into: &writer)
    }

    /// The same from the event's parts, for a writer that has the body but no `Event` (building one copies it).
    public static func encode(sequence: UInt64, timestampMilliseconds: Int64, body: EventBody, into writer: inout ByteWriter) {
        writer.writeU8(formatVersion)
        writer.writeU8(body.typeCode)
        writer.writeU64(sequence)
        writer.writeI64(timestampMilliseconds)
        let lengthOffset = writer.count
        writer.writeU32(0)
        let bodyStart = writer.count
        writeBody(body, into: &writer)
        guard let bodyLength = UInt32(exactly: writer.count - bodyStart) else {
            preconditionFailure("an event body cannot exceed 4 GiB; the field limits keep it far smaller")
        }
        writer.overwriteU32(bodyLength, at: lengthOffset)
    }

    /// The event stored in `bytes`, which must be exactly one record.
    public static func decode(_ bytes: [UInt8]) throws(EventCodecError) -> Event {
        try decode(bytes[...])
    }

    /// Decodes a record held in part of a larger buffer, in place; offsets in errors count from the slice's
    /// start. A decoder that reads many records on one thread can keep their scope paths in `scopePaths`.
    public static func decode(_ bytes: ArraySlice<UInt8>, scopePaths: ScopePathCache? = nil) throws(EventCodecError) -> Event {
        var reader = ByteReader(bytes)
        reader.scopePaths = scopePaths
        let version = try reader.readU8("format version")
        guard version == formatVersion else {
            throw EventCodecError(
                .unsupportedVersion, offset: 0,
                reason: "format version \(version) at offset 0 is not supported (this reader knows \(formatVersion))")
        }
        let typeCode = try reader.readU8("event type")
        let sequence = try reader.readU64("sequence")
        let timestamp = try reader.readI64("timestamp")
        let bodyLength = UInt64(try reader.readU32("body length"))
        let following = UInt64(reader.remainingCount)
        if bodyLength > following {
            throw EventCodecError(
                .truncated, offset: bytes.count,
                reason: "truncated at offset \(bytes.count) reading body "
                    + "(declared \(bodyLength) bytes, \(following) present)")
        }
        if bodyLength < following {
            let end = headerLength + Int(bodyLength)
            throw EventCodecError(
                .trailingBytes, offset: end,
                reason: "\(following - bodyLength) trailing bytes at offset \(end) after the declared body")
        }
        let body = try readBody(typeCode: typeCode, from: &reader)
        try reader.expectEnd("the last field of \(body.typeName)")
        return Event(sequence: sequence, timestampMilliseconds: timestamp, body: body)
    }

    /// Decodes a record in memory the caller owns (an LMDB value, an mmapped archive), copying it first
    /// so that nothing decoded can point into memory whose lifetime the codec does not control.
    public static func decode(_ buffer: UnsafeRawBufferPointer) throws(EventCodecError) -> Event {
        try decode(Array(buffer))
    }

    static func writeBody(_ body: EventBody, into writer: inout ByteWriter) {
        switch body {
        case .tenantCreated(let tenant), .tenantUpdated(let tenant): writer.write(tenant)
        case .apiKeyCreated(let key), .apiKeyUpdated(let key): writer.write(key)
        case .apiKeyRevoked(let revoked): writer.write(revoked)
        case .budgetCreated(let budget): writer.write(budget)
        case .budgetFunded(let funded): writer.write(funded)
        case .budgetUpdated(let updated): writer.write(updated)
        case .reserved(let reserved): writer.write(reserved)
        case .committed(let committed): writer.write(committed)
        case .released(let released): writer.write(released)
        case .extended(let extended): writer.write(extended)
        case .expired(let expired): writer.write(expired)
        case .debitRecorded(let debit): writer.write(debit)
        case .evaluationRecorded(let evaluation): writer.write(evaluation)
        }
    }

    /// Dispatches on the type byte; the codes match `EventBody.typeCode`, which the tests pin.
    static func readBody(typeCode: UInt8, from reader: inout ByteReader) throws(EventCodecError) -> EventBody {
        switch typeCode {
        case 1: .tenantCreated(try reader.readTenant())
        case 2: .tenantUpdated(try reader.readTenant())
        case 3: .apiKeyCreated(try reader.readApiKey())
        case 4: .apiKeyRevoked(try reader.readApiKeyRevoked())
        case 5: .budgetCreated(try reader.readBudget())
        case 6: .budgetFunded(try reader.readBudgetFunded())
        case 7: .budgetUpdated(try reader.readBudgetUpdated())
        case 8: .reserved(try reader.readReserved())
        case 9: .committed(try reader.readCommitted())
        case 10: .released(try reader.readReleased())
        case 11: .extended(try reader.readExtended())
        case 12: .expired(try reader.readExpired())
        case 13: .debitRecorded(try reader.readDebitRecorded())
        case 14: .evaluationRecorded(try reader.readEvaluationRecorded())
        case 15: .apiKeyUpdated(try reader.readApiKey())
        default:
            throw EventCodecError(.unknownEventType, offset: 1, reason: "unknown event type \(typeCode) at offset 1")
        }
    }
}
