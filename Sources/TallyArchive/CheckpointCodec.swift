import TallyCore

/// Encodes checkpoints with `ProjectionCodec` entries in two zlib streams: the working set (tenants, keys,
/// budgets, ACTIVE reservations) and the history (terminal reservations, idempotency records). Balances as
/// of an instant need only the first, which stays as small as the ledger's working set while the history
/// grows forever. Entries are sorted by key, so one state always gives the same bytes.
public enum CheckpointCodec {
    /// What a reader needs from a checkpoint.
    public enum Scope: Sendable {
        /// The whole state.
        case full
        /// Tenants, keys, budgets and ACTIVE reservations: all that applying later events and reading
        /// balances needs.
        case workingSet
    }

    /// A checkpoint's header fields and its decompressed, unparsed payloads.
    public struct RawCheckpoint: Sendable {
        public var sequence: UInt64
        public var timestamp: Int64
        public var chain: [UInt8]
        public var baseSequence: UInt64
        public var working: [UInt8]
        /// Nil when only the working set was asked for.
        public var history: [UInt8]?
    }

    public static func encode(_ checkpoint: Checkpoint) throws(ArchiveError) -> [UInt8] {
        let (working, history) = payloadBytes(checkpoint.state)
        guard working.count + history.count <= ArchiveLimits.checkpointPayloadBytesMax else {
            throw ArchiveError(.limitExceeded, file: "", sequence: checkpoint.sequence, "the checkpoint is over the size limit")
        }
        let compressedWorking: [UInt8]
        let compressedHistory: [UInt8]
        do {
            // Level 1: a checkpoint is written at every segment and can be large, so sealing time matters
            // more than the last fifth of its size.
            compressedWorking = try Zlib.deflate(working, dictionary: [], level: 1)
            compressedHistory = try Zlib.deflate(history, dictionary: [], level: 1)
        } catch {
            throw ArchiveError(.io, file: "", sequence: checkpoint.sequence, "\(error)")
        }
        let version = zlibRuntimeVersion
        var writer = ByteWriter(capacity: compressedWorking.count + compressedHistory.count + 128)
        writer.writeBytes(Checkpoint.magic)
        writer.writeU16(Checkpoint.formatVersion)
        writer.writeU64(checkpoint.sequence)
        writer.writeI64(checkpoint.timestampMilliseconds)
        writer.writeBytes(checkpoint.chain)
        writer.writeU64(checkpoint.baseSequence)
        for (plain, compressed) in [(working, compressedWorking), (history, compressedHistory)] {
            writer.writeU64(UInt64(plain.count))
            writer.writeU64(UInt64(compressed.count))
        }
        writer.writeU8(UInt8(version.utf8.count))
        writer.writeBytes(version.utf8)
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        writer.writeBytes(compressedWorking)
        writer.writeBytes(compressedHistory)
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8], file: String, scope: Scope = .full) throws(ArchiveError) -> Checkpoint {
        let raw = try decodePayload(bytes, file: file, scope: scope)
        do {
            let (state, closed) = try state(working: raw.working, history: raw.history)
            var checkpoint = Checkpoint(
                sequence: raw.sequence, timestampMilliseconds: raw.timestamp, chain: raw.chain, baseSequence: raw.baseSequence, state: state)
            checkpoint.closedReservationIDs = raw.history == nil ? closed : []
            return checkpoint
        } catch {
            throw ArchiveError(.corrupt, file: file, offset: error.offset, sequence: raw.sequence, "payload: \(error.reason) (payload offset)")
        }
    }

    /// Checks a checkpoint file (lengths, both CRCs) and returns its header fields and decompressed payloads,
    /// unparsed; the history stream is only inflated for `.full`.
    public static func decodePayload(_ bytes: [UInt8], file: String, scope: Scope = .full) throws(ArchiveError) -> RawCheckpoint {
        func corrupt(_ offset: Int, _ message: String) -> ArchiveError { ArchiveError(.corrupt, file: file, offset: offset, message) }
        guard bytes.count >= Checkpoint.fixedLength + 8 else { throw corrupt(bytes.count, "too short for a checkpoint") }
        guard Array(bytes[0..<8]) == Checkpoint.magic else { throw corrupt(0, "not a Tally checkpoint (bad magic)") }
        var reader = BigEndianReader(bytes, offset: 8)
        let version = reader.u16()
        guard version == Checkpoint.formatVersion else {
            throw ArchiveError(.unsupportedVersion, file: file, offset: 8, "checkpoint format \(version); this reader knows \(Checkpoint.formatVersion)")
        }
        let sequence = reader.u64()
        let timestamp = Int64(bitPattern: reader.u64())
        let chain = reader.bytes(32)
        let baseSequence = reader.u64()
        guard baseSequence < sequence || baseSequence == 0 else {
            throw ArchiveError(.corrupt, file: file, offset: 58, sequence: sequence, "delta base \(baseSequence) is not before the checkpoint")
        }
        let lengths = (0..<4).map { _ in reader.u64() }
        let versionLength = Int(reader.u8())
        let headerEnd = Checkpoint.fixedLength + versionLength
        let limit = UInt64(ArchiveLimits.checkpointPayloadBytesMax)
        guard lengths[0] <= limit, lengths[2] <= limit - lengths[0], lengths[1] <= UInt64(bytes.count), lengths[3] <= UInt64(bytes.count) else {
            throw ArchiveError(.limitExceeded, file: file, offset: 66, sequence: sequence, "declared sizes exceed the checkpoint limits")
        }
        let workingStart = headerEnd + 4
        let historyStart = workingStart + Int(lengths[1])
        guard bytes.count == historyStart + Int(lengths[3]) + 4 else {
            throw corrupt(min(bytes.count, headerEnd), "the file length does not match its header")
        }
        guard Zlib.crc32(bytes[0..<headerEnd]) == BigEndianReader.u32(bytes, at: headerEnd) else {
            throw corrupt(headerEnd, "header CRC mismatch")
        }
        let crcOffset = bytes.count - 4
        guard Zlib.crc32(bytes[0..<crcOffset]) == BigEndianReader.u32(bytes, at: crcOffset) else {
            throw ArchiveError(.corrupt, file: file, offset: crcOffset, sequence: sequence, "file CRC mismatch: the checkpoint is damaged")
        }
        var raw = RawCheckpoint(sequence: sequence, timestamp: timestamp, chain: chain, baseSequence: baseSequence, working: [], history: nil)
        do {
            raw.working = try Zlib.inflate(bytes[workingStart..<historyStart], dictionary: [], expectedLength: Int(lengths[0]))
        } catch {
            throw ArchiveError(.corrupt, file: file, offset: workingStart, sequence: sequence, "working set: \(error)")
        }
        if case .full = scope {
            do {
                raw.history = try Zlib.inflate(bytes[historyStart..<crcOffset], dictionary: [], expectedLength: Int(lengths[2]))
            } catch {
                throw ArchiveError(.corrupt, file: file, offset: historyStart, sequence: sequence, "history: \(error)")
            }
        }
        return raw
    }

    /// The two payloads of `state`. The working set is five sections (tenants, API keys, budgets, ACTIVE
    /// reservations, ids of terminal reservations), the history two (terminal reservations, idempotency
    /// records); a section is a u64 count and then entries, an entry a u32 length and its bytes.
    static func payloadBytes(_ state: LedgerState) -> (working: [UInt8], history: [UInt8]) {
        var working = ByteWriter(capacity: 1 << 16)
        var history = ByteWriter(capacity: 1 << 16)
        func section<Value>(_ writer: inout ByteWriter, _ values: [Value], _ encode: (Value) -> [UInt8]) {
            writer.writeU64(UInt64(values.count))
            for value in values {
                let bytes = encode(value)
                writer.writeU32(UInt32(bytes.count))
                writer.writeBytes(bytes)
            }
        }
        let reservationIDs = state.reservations.keys.sorted()
        let active = reservationIDs.filter { state.reservations[$0]!.status == .active }
        let terminal = reservationIDs.filter { state.reservations[$0]!.status != .active }
        section(&working, state.tenants.keys.sorted()) { ProjectionCodec.encode(state.tenants[$0]!) }
        section(&working, state.apiKeys.keys.sorted()) { ProjectionCodec.encode(state.apiKeys[$0]!) }
        section(&working, state.budgets.keys.sorted()) { ProjectionCodec.encode(state.budgets[$0]!) }
        section(&working, active) { ProjectionCodec.encode(state.reservations[$0]!) }
        section(&working, terminal) { Array($0.utf8) }
        section(&history, terminal) { ProjectionCodec.encode(state.reservations[$0]!) }
        let idempotency = state.idempotency.map { (keyBytes($0.key), $0.value) }.sorted { $0.0.lexicographicallyPrecedes($1.0) }
        section(&history, idempotency) { $0.0 + ProjectionCodec.encode($0.1) }
        return (working.bytes, history.bytes)
    }

    private static func keyBytes(_ key: IdempotencyKey) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeString(key.tenant, bytesMax: Int(UInt32.max), field: "tenant")
        writer.writeU8(key.endpoint.rawValue)
        writer.writeString(key.qualifier, bytesMax: Int(UInt32.max), field: "qualifier")
        writer.writeString(key.key, bytesMax: Int(UInt32.max), field: "key")
        return writer.bytes
    }

    /// The state the payloads hold, and the ids of the terminal reservations (all a working-set load
    /// knows of them: overlaying a delta drops these from its base).
    static func state(working: [UInt8], history: [UInt8]?) throws(EventCodecError) -> (LedgerState, closed: [String]) {
        var reader = ByteReader(working)
        var state = LedgerState()
        try section(&reader, "tenant") { (bytes: [UInt8]) throws(EventCodecError) in
            let tenant = try ProjectionCodec.decodeTenant(bytes)
            state.tenants[tenant.id] = tenant
        }
        try section(&reader, "API key") { (bytes: [UInt8]) throws(EventCodecError) in
            let key = try ProjectionCodec.decodeApiKey(bytes)
            state.apiKeys[key.id] = key
            state.apiKeyIDsByHash[key.secretHash] = key.id
        }
        try section(&reader, "budget") { (bytes: [UInt8]) throws(EventCodecError) in
            let budget = try ProjectionCodec.decodeBudget(bytes)
            state.budgets[budget.key] = budget
        }
        try section(&reader, "active reservation") { (bytes: [UInt8]) throws(EventCodecError) in
            let reservation = try ProjectionCodec.decodeReservation(bytes)
            state.reservations[reservation.id] = reservation
        }
        var closed: [String] = []
        try section(&reader, "terminal reservation id") { (bytes: [UInt8]) throws(EventCodecError) in
            closed.append(String(decoding: bytes, as: UTF8.self))
        }
        try reader.expectEnd("the working set")
        guard let history else { return (state, closed) }
        var historyReader = ByteReader(history)
        try section(&historyReader, "terminal reservation") { (bytes: [UInt8]) throws(EventCodecError) in
            let reservation = try ProjectionCodec.decodeReservation(bytes)
            state.reservations[reservation.id] = reservation
        }
        try section(&historyReader, "idempotency record") { (bytes: [UInt8]) throws(EventCodecError) in
            var entry = ByteReader(bytes)
            let tenant = try entry.readString("tenant", bytesMax: bytes.count)
            let endpoint = try entry.readEnum(IdempotencyEndpoint.self, "endpoint")
            let qualifier = try entry.readString("qualifier", bytesMax: bytes.count)
            let key = try entry.readString("key", bytesMax: bytes.count)
            let record = try ProjectionCodec.decodeIdempotencyRecord(Array(try entry.readRawBytes(entry.remainingCount, "record")))
            state.idempotency[IdempotencyKey(tenant: tenant, endpoint: endpoint, qualifier: qualifier, key: key)] = record
        }
        try historyReader.expectEnd("the history")
        return (state, closed)
    }

    private static func section(
        _ reader: inout ByteReader, _ what: String, _ body: ([UInt8]) throws(EventCodecError) -> Void
    ) throws(EventCodecError) {
        let start = reader.offset
        let count = try reader.readU64("\(what) count")
        // Every entry takes at least its 4-byte length, which bounds the count before any loop runs.
        guard count <= UInt64(reader.remainingCount / 4) else {
            throw EventCodecError(.countTooLarge, offset: start, reason: "\(what) count \(count) cannot fit in the payload")
        }
        for _ in 0..<count {
            let length = Int(try reader.readU32("\(what) length"))
            try body(Array(try reader.readRawBytes(length, what)))
        }
    }
}
