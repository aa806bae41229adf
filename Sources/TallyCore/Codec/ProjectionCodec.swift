// The encoding of projection values as the store keeps them in its tables: tenants, keys, budgets,
// reservations and idempotency records. It reuses the event encoding's primitives and composites, so a
// field is encoded the same way in the log and in a projection. Each value starts with a one-byte
// projection format version; `protocol/events.md` describes the shared primitives.

private typealias Limit = EventCodec.FieldLimit

public enum ProjectionCodec {
    /// The format byte of every projection value (a reservation's may instead be `compactReservationVersion`).
    /// Bumped whenever a layout changes in a way readers cannot tell apart; stores refuse other versions and ask
    /// for a rebuild.
    public static let formatVersion: UInt8 = 1
    /// The format byte of a reservation written in its compact layout: format 1's fields, except that the
    /// affected scopes (always the cumulative prefixes of the scope path, `ScopePath.derive`) are not stored and
    /// the budgeted ones are a bit mask over them. About a third of a settled record's bytes went to those two
    /// lists; a reservation is written when it is made and again when it settles, so they were most of what the
    /// projections' writes of a lifecycle copied. Readers take both layouts; a reservation whose lists are not of
    /// that shape (none `Ledger` makes) is written in format 1.
    public static let compactReservationVersion: UInt8 = 2
    /// The format byte of a reservation whose scope path is also what `ScopePath.derive` makes of its subject and
    /// tenant (always, for what `Ledger` makes): format 2's fields, except that the scope path is left out (the
    /// reader derives it), the id is its 16 bytes when it is a UUID (`writeCompactID`), and the caller
    /// that made it names no tenant when it is the reservation's own, its key id 16 bytes when a UUID
    /// (`writeCaller(_:ownedBy:)`): another 130 of a settled record's 435 bytes in the benchmark's, written twice
    /// a reservation.
    public static let derivedReservationVersion: UInt8 = 3

    /// The layouts of a reservation's fields before its settlement, oldest first: format 1's (and the wire's), every
    /// list spelled; `compactReservationVersion`'s, the lists a mask; `derivedReservationVersion`'s, the path derived too.
    enum ReservationLayout { case spelled, masked, derived }

    /// A reservation's record in the newest layout its fields allow, but none newer than `newest`: what a store
    /// written by an older build holds (tests of reading those).
    static func encode(_ reservation: Reservation, newest: ReservationLayout) -> [UInt8] {
        encoded { $0.writeRecord(reservation, reusingHead: false, newest: newest) }
    }

    /// Balances in a projection record name their scope by its place among the record's affected scopes (one
    /// byte) instead of spelling it, when every one of them is there (always, for what `Ledger` makes): a reserve's
    /// idempotency record (reply kind `compactReserveReplyKind`, which also leaves out the affected scopes, the
    /// scope path's prefixes) and a settled reservation (settlement kinds `compactCommitSettlementKind` and
    /// `compactReleaseSettlementKind`). The scope strings were about two fifths of a reserve's record and a
    /// tenth of a settled reservation's. Readers take both layouts; the wire protocol's values keep theirs.
    static let compactReserveReplyKind: UInt8 = 6
    static let compactCommitSettlementKind: UInt8 = 4
    static let compactReleaseSettlementKind: UInt8 = 5

    public static func encode(_ tenant: Tenant) -> [UInt8] { encoded { encode(tenant, into: &$0) } }
    public static func encode(_ key: ApiKey) -> [UInt8] { encoded { encode(key, into: &$0) } }
    public static func encode(_ budget: Budget) -> [UInt8] { encoded { encode(budget, into: &$0) } }
    public static func encode(_ reservation: Reservation) -> [UInt8] { encoded { encode(reservation, into: &$0) } }
    public static func encode(_ record: IdempotencyRecord) -> [UInt8] { encoded { encode(record, into: &$0) } }

    /// The same encodings appended to a writer the caller keeps (the store's write set): the projection
    /// format version, then the value.
    public static func encode(_ tenant: Tenant, into writer: inout ByteWriter) { versioned(&writer) { $0.write(tenant) } }
    public static func encode(_ key: ApiKey, into writer: inout ByteWriter) { versioned(&writer) { $0.write(key) } }
    public static func encode(_ budget: Budget, into writer: inout ByteWriter) { versioned(&writer) { $0.write(budget) } }
    public static func encode(_ reservation: Reservation, into writer: inout ByteWriter) { writer.writeRecord(reservation, reusingHead: false) }
    public static func encode(_ record: IdempotencyRecord, into writer: inout ByteWriter) { versioned(&writer) { $0.write(record) } }

    /// `encode(_:into:)` for the store's writer, which encodes a reservation when it is made and again each
    /// time it changes: the bytes before the settlement are kept with an ACTIVE reservation the first time
    /// (`Reservation.encodedHead`) and copied afterwards, with the three fields that may have changed since
    /// written over. The same bytes as `encode(_:into:)`, at the cost of a copy where strings, subject and
    /// scope lists were encoded field by field. Only on the thread that owns the state being written (it sets
    /// a cache in the box the reservation's copies share): the store's writer, or a catch-up, rebuild or restore.
    package static func encodeReusingHead(_ reservation: Reservation, into writer: inout ByteWriter) {
        writer.writeRecord(reservation, reusingHead: true)
    }

    private static func versioned(_ writer: inout ByteWriter, _ body: (inout ByteWriter) -> Void) {
        writer.writeU8(formatVersion)
        body(&writer)
    }

    public static func decodeTenant(_ bytes: [UInt8]) throws(EventCodecError) -> Tenant {
        try decode(bytes, "tenant") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readTenant() }
    }

    public static func decodeApiKey(_ bytes: [UInt8]) throws(EventCodecError) -> ApiKey {
        try decode(bytes, "API key") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readApiKey() }
    }

    public static func decodeBudget(_ bytes: [UInt8]) throws(EventCodecError) -> Budget {
        try decode(bytes, "budget") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readBudget() }
    }

    /// A reservation's record in any of its layouts (`compactReservationVersion`, `derivedReservationVersion`).
    public static func decodeReservation(_ bytes: [UInt8]) throws(EventCodecError) -> Reservation {
        var reader = ByteReader(bytes)
        let version = try reader.readU8("reservation format version")
        let layout: ProjectionCodec.ReservationLayout
        switch version {
        case formatVersion: layout = .spelled
        case compactReservationVersion: layout = .masked
        case derivedReservationVersion: layout = .derived
        default:
            throw EventCodecError(
                .unsupportedVersion, offset: 0,
                reason: "reservation has projection format \(version), expected \(formatVersion), \(compactReservationVersion) or \(derivedReservationVersion)")
        }
        let reservation = try reader.readReservation(layout, projection: true)
        try reader.expectEnd("reservation")
        return reservation
    }

    /// An encoded record's `retainUntilMilliseconds`, read from its first fields only (the store's sweep of aged-out
    /// records reads it for every row it passes).
    public static func retainUntil(ofEncodedRecord bytes: some Collection<UInt8>) throws(EventCodecError) -> Int64 {
        var reader = ByteReader(Array(bytes.prefix(1 + 32 + 8)))
        let version = try reader.readU8("idempotency record format version")
        guard version == formatVersion else {
            throw EventCodecError(.unsupportedVersion, offset: 0, reason: "idempotency record has projection format \(version), expected \(formatVersion)")
        }
        _ = try reader.readDigest("record.payload_hash")
        return try reader.readI64("record.retain_until_ms")
    }

    public static func decodeIdempotencyRecord(_ bytes: [UInt8]) throws(EventCodecError) -> IdempotencyRecord {
        try decode(bytes, "idempotency record") { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readIdempotencyRecord()
        }
    }

    private static func encoded(_ body: (inout ByteWriter) -> Void) -> [UInt8] {
        // A settled reservation is most of a kilobyte: start big enough that the array never regrows.
        var writer = ByteWriter(capacity: 1_024)
        body(&writer)
        return writer.bytes
    }

    private static func decode<Value>(
        _ bytes: [UInt8], _ what: String, _ body: (inout ByteReader) throws(EventCodecError) -> Value
    ) throws(EventCodecError) -> Value {
        var reader = ByteReader(bytes)
        let version = try reader.readU8("\(what) format version")
        guard version == formatVersion else {
            throw EventCodecError(.unsupportedVersion, offset: 0, reason: "\(what) has projection format \(version), expected \(formatVersion)")
        }
        let value = try body(&reader)
        try reader.expectEnd(what)
        return value
    }
}

extension ByteWriter {
    public mutating func write(_ reservation: Reservation) {
        _ = writeHead(reservation)
        writeSettlement(reservation.settlement, indexingIn: nil)
    }

    /// A reservation's projection record: its format byte (`ProjectionCodec.derivedReservationVersion` when the scope
    /// path is derived and the lists its prefixes, `compactReservationVersion` when only the lists are, else
    /// `formatVersion`), the fields, the settlement (its balances named by place when it can). `newest` below
    /// `.derived` writes what builds before these layouts wrote (tests). With `reusingHead`, the bytes before
    /// the settlement are copied from the head kept with the reservation when there is one, and kept with it
    /// when there is none and the reservation is ACTIVE (it will be encoded again when it changes).
    mutating func writeRecord(_ reservation: Reservation, reusingHead: Bool, newest: ProjectionCodec.ReservationLayout = .derived) {
        let start = count
        if reusingHead, let head = reservation.encodedHead {
            written.append(contentsOf: head.bytes)
            overwriteU64(UInt64(bitPattern: reservation.expiresAtMilliseconds), at: start + head.expiresAtOffset)
            overwriteU64(UInt64(bitPattern: Int64(reservation.extensionCount)), at: start + head.extensionCountOffset)
            written[start + head.statusOffset] = reservation.status.rawValue
        } else {
            let budgeted = newest == .spelled ? nil : Self.budgetedMask(reservation)
            let derived = budgeted != nil && newest == .derived && Self.isDerived(reservation.scopePath, subject: reservation.subject, tenant: reservation.tenant)
            writeU8(derived ? ProjectionCodec.derivedReservationVersion
                    : budgeted == nil ? ProjectionCodec.formatVersion : ProjectionCodec.compactReservationVersion)
            let head = writeHead(reservation, budgetedMask: budgeted, derived: derived)
            if reusingHead && reservation.status == .active {
                reservation.rememberEncodedHead(Reservation.EncodedHead(
                    bytes: Array(written[start...]), expiresAtOffset: head.expiresAt - start,
                    extensionCountOffset: head.extensionCount - start, statusOffset: head.status - start))
            }
        }
        writeSettlement(reservation.settlement, indexingIn: newest == .derived ? reservation.affectedScopes : nil)
    }

    /// The budgeted scopes as bits over the affected ones (bit i: the i-th affected scope), when the affected
    /// scopes are the cumulative prefixes of the scope path, tenant first, as `ScopePath.derive` makes them, and
    /// the budgeted ones a subset of them in the same order; nil otherwise (the record then lists both). Reads
    /// the paths' bytes in place: no string is made.
    static func budgetedMask(_ reservation: Reservation) -> UInt8? {
        let affected = reservation.affectedScopes
        guard affected.count <= 8, Self.arePrefixes(affected, of: reservation.scopePath) else { return nil }
        var mask: UInt8 = 0
        var next = 0
        for scope in reservation.budgetedScopes {
            while next < affected.count && affected[next] != scope { next += 1 }
            guard next < affected.count else { return nil }
            mask |= 1 << next
            next += 1
        }
        return mask
    }

    /// Whether `scopes` are the cumulative prefixes of `path`, tenant first, the path itself last (`ScopePath.prefixes`,
    /// as `ScopePath.derive` makes them). Compares the paths' bytes in place: no string is made. Runs for every
    /// reserve (its record and its idempotency record), so the bytes are walked through pointers.
    static func arePrefixes(_ scopes: [ScopePath], of path: ScopePath) -> Bool {
        var text = path.rawValue  // shares the storage; `withUTF8` needs a variable
        return text.withUTF8 { bytes in
            // Ids hold no "/": each "/" and the path's end close one prefix.
            var level = 0
            var end = 0
            while end <= bytes.count {
                if end == bytes.count || bytes[end] == UInt8(ascii: "/") {
                    guard level < scopes.count, Self.isPrefix(scopes[level], ofLength: end, of: bytes) else { return false }
                    level += 1
                }
                end += 1
            }
            return level == scopes.count
        }
    }

    /// Whether `scope` is the first `length` bytes of `bytes`.
    private static func isPrefix(_ scope: ScopePath, ofLength length: Int, of bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var text = scope.rawValue
        return text.withUTF8 { scopeBytes in
            guard scopeBytes.count == length else { return false }
            for index in 0..<length where scopeBytes[index] != bytes[index] { return false }
            return true
        }
    }

    /// Whether `path` is the path `ScopePath.derive` makes of `subject` and `tenant` (the last of its prefixes): "tenant:"
    /// and the tenant, then "/", the level's name, ":" and the value for each level the subject has, ids in lower
    /// case. Compares bytes in place; an id outside ASCII (lower-cased by Unicode's rules) answers no.
    static func isDerived(_ path: ScopePath, subject: Subject, tenant: String) -> Bool {
        var text = path.rawValue
        return text.withUTF8 { bytes in
            var at = 0
            /// Whether `piece` (lower-cased with `lowering`) comes next in the path; moves past it if so.
            func next(_ piece: String, lowering: Bool = false) -> Bool {
                var piece = piece
                return piece.withUTF8 { pieceBytes in
                    guard pieceBytes.count <= bytes.count - at else { return false }
                    for index in 0..<pieceBytes.count {
                        var byte = pieceBytes[index]
                        if lowering {
                            if byte >= 0x80 { return false }
                            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 0x20 }
                        }
                        if bytes[at + index] != byte { return false }
                    }
                    at += pieceBytes.count
                    return true
                }
            }
            guard next("tenant:"), next(tenant, lowering: true) else { return false }
            for level in ScopeLevel.allCases.dropFirst() {
                guard let value = subject.presentValue(at: level) else { continue }
                guard next("/"), next(level.name), next(":"), next(value, lowering: true) else { return false }
            }
            return at == bytes.count
        }
    }

    /// An id in the compact layouts (a reservation's, a key's): a UUID's canonical text as a form byte 1 and its 16
    /// bytes, any other text as a form byte 0 and the text as `writeReservationID` writes it.
    mutating func writeCompactID(_ id: ReservationID, bytesMax: Int, field: @autoclosure () -> String) {
        if let (high, low) = id.uuid {
            writeU8(1)
            writeU64(high)
            writeU64(low)
        } else {
            writeU8(0)
            writeReservationID(id, bytesMax: bytesMax, field: field())
        }
    }

    /// A caller in a derived reservation record: tag 4 and the key id alone (`writeCompactID`) for a key of the
    /// reservation's own tenant, else as `write(_ caller:)` writes it.
    mutating func writeCaller(_ caller: Caller, ownedBy tenant: String) {
        if case .tenant(let id, let keyID) = caller, id == tenant {
            writeU8(4)
            writeCompactID(ReservationID(keyID), bytesMax: Limit.keyIDBytesMax, field: "caller.key_id")
        } else {
            write(caller)
        }
    }

    /// `scopes` when every balance's scope is one of them (at most 256), so that `writeBalances(_:byPlaceIn:)` can name
    /// each by its place; nil when not (or when there are no scopes to name them by: the wire's layout).
    static func places(for balances: [Balance], in scopes: [ScopePath]?) -> [ScopePath]? {
        guard let scopes, scopes.count <= 256, balances.allSatisfy({ scopes.contains($0.scope) }) else { return nil }
        return scopes
    }

    /// Balances as the wire writes them, or with `places` (`places(for:in:)`) by place: the count, then each balance
    /// as the place of its scope (u8) and its figures, the six amounts as zig-zag LEB128 (a balance's zeros and small
    /// figures take a byte or two where the wire gives each eight).
    private mutating func writeBalances(_ balances: [Balance], byPlaceIn places: [ScopePath]?) {
        guard let scopes = places else { return writeBalances(balances) }
        writeCount(balances.count, countMax: Limit.scopesCountMax, field: "balances")
        for balance in balances {
            writeU8(UInt8(truncatingIfNeeded: scopes.firstIndex(of: balance.scope) ?? 0))
            writeU8(balance.unit.rawValue)
            writeZigZag(balance.allocated.value)
            writeZigZag(balance.remaining.value)
            writeZigZag(balance.reserved.value)
            writeZigZag(balance.spent.value)
            writeZigZag(balance.debt.value)
            writeZigZag(balance.overdraftLimit.value)
            writeBool(balance.isOverLimit)
            writeU8(balance.status.rawValue)
        }
    }

    /// Every field before the settlement; returns where the three fields that change while a reservation is
    /// ACTIVE were written. With `budgetedMask`, the compact layout: the mask instead of both scope lists; with
    /// `derived` too, the derived layout (`ProjectionCodec.derivedReservationVersion`).
    private mutating func writeHead(
        _ reservation: Reservation, budgetedMask: UInt8? = nil, derived: Bool = false
    ) -> (expiresAt: Int, extensionCount: Int, status: Int) {
        if derived {
            writeCompactID(reservation.id, bytesMax: Limit.reservationIDBytesMax, field: "reservation.id")
        } else {
            writeReservationID(reservation.id, bytesMax: Limit.reservationIDBytesMax, field: "reservation.id")
        }
        writeString(reservation.tenant, bytesMax: Limit.tenantIDBytesMax, field: "reservation.tenant")
        write(reservation.subject)
        write(reservation.action)
        writeU8(reservation.unit.rawValue)
        // The derived layout keeps the figures that never change in zig-zag LEB128 (the three that may change while
        // the reservation is ACTIVE stay eight bytes wide: a kept head is written over in place).
        if derived { writeZigZag(reservation.estimate.value) } else { write(reservation.estimate) }
        if !derived { write(reservation.scopePath) }
        if let budgetedMask {
            writeU8(budgetedMask)
        } else {
            write(scopes: reservation.affectedScopes, field: "reservation.affected_scopes")
            write(scopes: reservation.budgetedScopes, field: "reservation.budgeted_scopes")
        }
        if derived { writeZigZag(reservation.createdAtMilliseconds) } else { writeI64(reservation.createdAtMilliseconds) }
        let expiresAt = count
        writeI64(reservation.expiresAtMilliseconds)
        if derived { writeZigZag(reservation.graceMilliseconds) } else { writeI64(reservation.graceMilliseconds) }
        writeU8(reservation.overagePolicy.rawValue)
        if derived { writeZigZag(Int64(reservation.maxExtensions)) } else { writeI64(Int64(reservation.maxExtensions)) }
        let extensionCount = count
        writeI64(Int64(reservation.extensionCount))
        let status = count
        writeU8(reservation.status.rawValue)
        writeString(reservation.idempotencyKey, bytesMax: Limit.idempotencyKeyBytesMax, field: "reservation.idempotency_key")
        writeOptional(reservation.caps)
        writeOptional(reservation.metadata, field: "reservation.metadata")
        if derived {
            writeCaller(reservation.createdBy, ownedBy: reservation.tenant)
        } else {
            write(reservation.createdBy)
        }
        return (expiresAt, extensionCount, status)
    }

    /// With `indexingIn` (a projection record: the reservation's affected scopes), the reply's balances name their
    /// scopes by place when they can (`ProjectionCodec.compactCommitSettlementKind`); without, the wire's layout.
    private mutating func writeSettlement(_ settlement: Reservation.Settlement?, indexingIn scopes: [ScopePath]?) {
        writeOptional(settlement) { writer, settlement in
            switch settlement {
            case .committed(let commit):
                let places = Self.places(for: commit.reply.balances, in: scopes)
                writer.writeU8(places == nil ? 1 : ProjectionCodec.compactCommitSettlementKind)
                writer.writeI64(commit.atMilliseconds)
                writer.write(commit.actual)
                writer.writeString(commit.idempotencyKey, bytesMax: Limit.idempotencyKeyBytesMax, field: "commit.idempotency_key")
                writer.write(commit.payloadHash)
                writer.writeOptional(commit.metrics) { $0.write($1) }
                writer.writeOptional(commit.metadata, field: "commit.metadata")
                writer.write(commit.reply.charged)
                writer.writeOptional(commit.reply.released) { $0.write($1) }
                writer.writeBalances(commit.reply.balances, byPlaceIn: places)
            case .released(let release):
                let places = Self.places(for: release.reply.balances, in: scopes)
                writer.writeU8(places == nil ? 2 : ProjectionCodec.compactReleaseSettlementKind)
                writer.writeI64(release.atMilliseconds)
                writer.writeOptionalString(release.reason, bytesMax: Limit.releaseReasonBytesMax, field: "release.reason")
                writer.write(release.releasedBy)
                writer.writeU8(release.cause.rawValue)
                writer.writeOptionalString(release.idempotencyKey, bytesMax: Limit.idempotencyKeyBytesMax, field: "release.idempotency_key")
                writer.writeOptional(release.payloadHash) { $0.write($1) }
                writer.write(release.reply.released)
                writer.writeBalances(release.reply.balances, byPlaceIn: places)
            case .expired(let at):
                writer.writeU8(3)
                writer.writeI64(at)
            }
        }
    }

    public mutating func writeBalances(_ balances: [Balance]) {
        writeArray(balances, countMax: Limit.scopesCountMax, field: "balances") { $0.write($1) }
    }

    mutating func write(_ record: IdempotencyRecord) {
        write(record.payloadHash)
        writeI64(record.retainUntilMilliseconds)
        switch record.reply {
        case .reserve(let reply):
            if Self.arePrefixes(reply.affectedScopes, of: reply.scopePath),
               let places = Self.places(for: reply.balances, in: reply.affectedScopes) {
                writeU8(ProjectionCodec.compactReserveReplyKind)
                writeU8(reply.decision.rawValue)
                writeCompactID(reply.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "reply.reservation_id")
                writeU8(reply.reserved.unit.rawValue)
                writeZigZag(reply.reserved.amount.value)
                writeZigZag(reply.expiresAtMilliseconds)
                write(reply.scopePath)
                writeOptional(reply.caps)
                writeBalances(reply.balances, byPlaceIn: places)
            } else {
                writeU8(1)
                writeU8(reply.decision.rawValue)
                writeReservationID(reply.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "reply.reservation_id")
                write(reply.reserved)
                writeI64(reply.expiresAtMilliseconds)
                write(reply.scopePath)
                write(scopes: reply.affectedScopes, field: "reply.affected_scopes")
                writeOptional(reply.caps)
                writeBalances(reply.balances)
            }
        case .evaluation(let reply):
            writeU8(2)
            write(reply)
        case .extend(let reply):
            writeU8(3)
            writeReservationID(reply.reservationID, bytesMax: Limit.reservationIDBytesMax, field: "reply.reservation_id")
            writeI64(reply.expiresAtMilliseconds)
            writeBalances(reply.balances)
        case .debit(let reply):
            writeU8(4)
            writeString(reply.eventID, bytesMax: Limit.eventIDBytesMax, field: "reply.event_id")
            writeOptional(reply.charged) { $0.write($1) }
            writeBalances(reply.balances)
        case .funding(let reply):
            writeU8(5)
            write(reply.key)
            writeU8(reply.operation.rawValue)
            write(reply.previous)
            write(reply.new)
            writeI64(reply.atMilliseconds)
        }
    }
}

extension ByteReader {
    public mutating func readBalances() throws(EventCodecError) -> [Balance] {
        try readArray("balances", countMax: Limit.scopesCountMax) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readBalance()
        }
    }

    /// A reservation as the wire protocol and format-1 checkpoints carry it.
    public mutating func readReservation() throws(EventCodecError) -> Reservation { try readReservation(.spelled, projection: false) }

    /// A reservation in one of its layouts; with `projection`, a projection record's (whose settlement may name
    /// its balances' scopes by place).
    mutating func readReservation(_ layout: ProjectionCodec.ReservationLayout, projection: Bool) throws(EventCodecError) -> Reservation {
        let id = layout == .derived
            ? try readCompactID("reservation.id", bytesMax: Limit.reservationIDBytesMax) : try readReservationID("reservation.id", bytesMax: Limit.reservationIDBytesMax)
        let tenant = try readString("reservation.tenant", bytesMax: Limit.tenantIDBytesMax)
        let subject = try readSubject()
        let action = try readAction()
        let unit = try readEnum(Unit.self, "reservation.unit")
        let estimate = layout == .derived ? Amount(try readZigZag("reservation.estimate")) : try readAmount("reservation.estimate")
        let scopePath: ScopePath
        var derivedScopes: [ScopePath] = []
        if layout == .derived {
            derivedScopes = ScopePath.derive(subject: subject, tenant: tenant)
            scopePath = derivedScopes[derivedScopes.count - 1]
        } else {
            scopePath = try readScopePath("reservation.scope_path")
        }
        let affected: [ScopePath]
        let budgeted: [ScopePath]
        if layout != .spelled {
            let start = offset
            let mask = try readU8("reservation.budgeted_mask")
            affected = layout == .derived ? derivedScopes : scopePath.prefixes
            guard mask >> affected.count == 0 else {
                throw EventCodecError(
                    .valueOutOfRange, offset: start,
                    reason: "reservation.budgeted_mask at offset \(start) has bit \(7 - mask.leadingZeroBitCount) set, but the scope path has \(affected.count) scopes")
            }
            budgeted = affected.indices.filter { mask & (1 << $0) != 0 }.map { affected[$0] }
        } else {
            affected = try readScopePaths("reservation.affected_scopes")
            budgeted = try readScopePaths("reservation.budgeted_scopes")
        }
        var reservation = Reservation(
            id: id, tenant: tenant, subject: subject, action: action, unit: unit, estimate: estimate, scopePath: scopePath,
            affectedScopes: affected, budgetedScopes: budgeted,
            createdAtMilliseconds: layout == .derived ? try readZigZag("reservation.created_at_ms") : try readI64("reservation.created_at_ms"),
            expiresAtMilliseconds: try readI64("reservation.expires_at_ms"),
            graceMilliseconds: layout == .derived ? try readZigZag("reservation.grace_ms") : try readI64("reservation.grace_ms"),
            overagePolicy: try readEnum(OveragePolicy.self, "reservation.overage_policy"),
            maxExtensions: layout == .derived ? try readCount(zigZag: "reservation.max_extensions") : try readInt("reservation.max_extensions"),
            extensionCount: try readInt("reservation.extension_count"),
            status: try readEnum(ReservationStatus.self, "reservation.status"),
            idempotencyKey: try readString("reservation.idempotency_key", bytesMax: Limit.idempotencyKeyBytesMax),
            caps: try readOptionalCaps(), metadata: try readOptionalJSON("reservation.metadata"),
            createdBy: layout == .derived ? try readCaller(ownedBy: tenant) : try readCaller())
        reservation.settlement = try readOptional("reservation.settlement") { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readSettlement(indexingIn: projection ? affected : nil)
        }
        return reservation
    }

    /// With `indexingIn` (a projection record's affected scopes), also the settlement kinds whose balances name
    /// their scopes by place (`ProjectionCodec.compactCommitSettlementKind`, `compactReleaseSettlementKind`).
    private mutating func readSettlement(indexingIn scopes: [ScopePath]?) throws(EventCodecError) -> Reservation.Settlement {
        let start = offset
        let kind = try readU8("settlement kind")
        // Kinds 4 and 5 are 1 and 2 with their balances by place, in a projection record only.
        let byPlace = scopes != nil
            && (kind == ProjectionCodec.compactCommitSettlementKind || kind == ProjectionCodec.compactReleaseSettlementKind)
        let places = byPlace ? scopes : nil
        switch byPlace ? kind - 3 : kind {
        case 1:
            let at = try readI64("commit.at_ms")
            let actual = try readAmount("commit.actual")
            let key = try readString("commit.idempotency_key", bytesMax: Limit.idempotencyKeyBytesMax)
            let hash = try readDigest("commit.payload_hash")
            let metrics = try readOptionalMetrics()
            let metadata = try readOptionalJSON("commit.metadata")
            let reply = CommitReply(
                charged: try readQuantity("commit.charged"),
                released: try readOptional("commit.released") { (reader: inout ByteReader) throws(EventCodecError) in
                    try reader.readQuantity("commit.released")
                },
                balances: try readBalances(byPlaceIn: places))
            return .committed(Reservation.CommitSettlement(
                atMilliseconds: at, actual: actual, idempotencyKey: key, payloadHash: hash, metrics: metrics,
                metadata: metadata, reply: reply))
        case 2:
            let at = try readI64("release.at_ms")
            let reason = try readOptionalString("release.reason", bytesMax: Limit.releaseReasonBytesMax)
            let caller = try readCaller()
            let cause = try readEnum(ReleaseCause.self, "release.cause")
            let key = try readOptionalString("release.idempotency_key", bytesMax: Limit.idempotencyKeyBytesMax)
            let hash = try readOptional("release.payload_hash") { (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readDigest("release.payload_hash")
            }
            let reply = ReleaseReply(released: try readQuantity("release.released"), balances: try readBalances(byPlaceIn: places))
            return .released(Reservation.ReleaseSettlement(
                atMilliseconds: at, reason: reason, releasedBy: caller, cause: cause, idempotencyKey: key,
                payloadHash: hash, reply: reply))
        case 3:
            return .expired(atMilliseconds: try readI64("expired.at_ms"))
        case let kind:
            throw EventCodecError(.unknownEnumValue, offset: start, reason: "settlement kind \(kind) at offset \(start) is unknown")
        }
    }

    mutating func readIdempotencyRecord() throws(EventCodecError) -> IdempotencyRecord {
        let hash = try readDigest("record.payload_hash")
        let retain = try readI64("record.retain_until_ms")
        let start = offset
        let reply: StoredReply
        switch try readU8("record.reply kind") {
        case ProjectionCodec.compactReserveReplyKind:
            let decision = try readEnum(DecisionKind.self, "reply.decision")
            let id = try readCompactID("reply.reservation_id", bytesMax: Limit.reservationIDBytesMax)
            let reserved = Quantity(try readEnum(Unit.self, "reply.reserved.unit"), Amount(try readZigZag("reply.reserved.amount")))
            let expiresAt = try readZigZag("reply.expires_at_ms")
            let scopePath = try readScopePath("reply.scope_path")
            let affected = scopePath.prefixes
            reply = .reserve(ReserveReply(
                decision: decision, reservationID: id, reserved: reserved, expiresAtMilliseconds: expiresAt,
                scopePath: scopePath, affectedScopes: affected, caps: try readOptionalCaps(),
                balances: try readBalances(byPlaceIn: affected)))
        case 1:
            reply = .reserve(ReserveReply(
                decision: try readEnum(DecisionKind.self, "reply.decision"),
                reservationID: try readReservationID("reply.reservation_id", bytesMax: Limit.reservationIDBytesMax),
                reserved: try readQuantity("reply.reserved"), expiresAtMilliseconds: try readI64("reply.expires_at_ms"),
                scopePath: try readScopePath("reply.scope_path"), affectedScopes: try readScopePaths("reply.affected_scopes"),
                caps: try readOptionalCaps(), balances: try readBalances()))
        case 2:
            reply = .evaluation(try readEvaluationReply())
        case 3:
            reply = .extend(ExtendReply(
                reservationID: try readReservationID("reply.reservation_id", bytesMax: Limit.reservationIDBytesMax),
                expiresAtMilliseconds: try readI64("reply.expires_at_ms"), balances: try readBalances()))
        case 4:
            reply = .debit(DebitReply(
                eventID: try readString("reply.event_id", bytesMax: Limit.eventIDBytesMax),
                charged: try readOptional("reply.charged") { (reader: inout ByteReader) throws(EventCodecError) in
                    try reader.readQuantity("reply.charged")
                },
                balances: try readBalances()))
        case 5:
            reply = .funding(FundingReply(
                key: try readBudgetKey(), operation: try readEnum(FundingOperation.self, "reply.operation"),
                previous: try readFigures("reply.previous"), new: try readFigures("reply.new"),
                atMilliseconds: try readI64("reply.at_ms")))
        case let kind:
            throw EventCodecError(.unknownEnumValue, offset: start, reason: "reply kind \(kind) at offset \(start) is unknown")
        }
        return IdempotencyRecord(payloadHash: hash, retainUntilMilliseconds: retain, reply: reply)
    }

    /// An `Int` written with `writeZigZag`.
    private mutating func readCount(zigZag field: @autoclosure () -> String) throws(EventCodecError) -> Int {
        let start = offset
        return try Self.int(try readZigZag(field()), readAt: start, field())
    }

    /// An id as `writeCompactID` writes it.
    private mutating func readCompactID(_ field: @autoclosure () -> String, bytesMax: Int) throws(EventCodecError) -> ReservationID {
        let start = offset
        switch try readU8("\(field()) form") {
        case 1: return ReservationID(high: try readU64(field()), low: try readU64(field()))
        case 0: return try readReservationID(field(), bytesMax: bytesMax)
        case let form:
            throw EventCodecError(.unknownEnumValue, offset: start, reason: "\(field()) form at offset \(start) has unknown value \(form)")
        }
    }

    /// A caller as `writeCaller(_:ownedBy:)` writes it: tag 4 is a key of `tenant`, the reservation's own.
    private mutating func readCaller(ownedBy tenant: String) throws(EventCodecError) -> Caller {
        guard try peekU8("caller tag") == 4 else { return try readCaller() }
        _ = try readU8("caller tag")
        return .tenant(id: tenant, keyID: try readCompactID("caller.key_id", bytesMax: Limit.keyIDBytesMax).description)
    }

    /// Balances as `writeBalances(_:byPlaceIn:)` writes them: with `places`, each scope taken from them by its place.
    private mutating func readBalances(byPlaceIn places: [ScopePath]?) throws(EventCodecError) -> [Balance] {
        guard let scopes = places else { return try readBalances() }
        return try readArray("balances", countMax: Limit.scopesCountMax) { (reader: inout ByteReader) throws(EventCodecError) in
            let start = reader.offset
            let place = Int(try reader.readU8("balance.scope_place"))
            guard place < scopes.count else {
                throw EventCodecError(
                    .valueOutOfRange, offset: start,
                    reason: "balance.scope_place at offset \(start) is \(place), but the record has \(scopes.count) scopes")
            }
            return Balance(
                scope: scopes[place], unit: try reader.readEnum(Unit.self, "balance.unit"),
                allocated: Amount(try reader.readZigZag("balance.allocated")),
                remaining: Amount(try reader.readZigZag("balance.remaining")),
                reserved: Amount(try reader.readZigZag("balance.reserved")), spent: Amount(try reader.readZigZag("balance.spent")),
                debt: Amount(try reader.readZigZag("balance.debt")),
                overdraftLimit: Amount(try reader.readZigZag("balance.overdraft_limit")),
                isOverLimit: try reader.readBool("balance.is_over_limit"),
                status: try reader.readEnum(BudgetStatus.self, "balance.status"))
        }
    }
}
