import TallyCore

/// Encodes checkpoints: the working set's `ProjectionCodec` entries in one zlib stream. Entries are sorted
/// by key, so one working set always gives the same bytes.
public enum CheckpointCodec {
    /// A checkpoint's header fields and its decompressed, unparsed payload.
    public struct RawCheckpoint: Sendable {
        public var sequence: UInt64
        public var timestamp: Int64
        public var chain: [UInt8]
        public var working: [UInt8]
    }

    public static func encode(_ checkpoint: Checkpoint) throws(ArchiveError) -> [UInt8] {
        let working = payloadBytes(checkpoint.state)
        guard working.count <= ArchiveLimits.checkpointPayloadBytesMax else {
            throw ArchiveError(.limitExceeded, file: "", sequence: checkpoint.sequence, "the checkpoint is over the size limit")
        }
        let compressed: [UInt8]
        do {
            // Level 1: a checkpoint is written at every segment, and its entries compress well even so.
            compressed = try Zlib.deflate(working, dictionary: [], level: 1)
        } catch {
            throw ArchiveError(.io, file: "", sequence: checkpoint.sequence, "\(error)")
        }
        let version = zlibRuntimeVersion
        var writer = ByteWriter(capacity: compressed.count + 128)
        writer.writeBytes(Checkpoint.magic)
        writer.writeU16(Checkpoint.formatVersion)
        writer.writeU64(checkpoint.sequence)
        writer.writeI64(checkpoint.timestampMilliseconds)
        writer.writeBytes(checkpoint.chain)
        writer.writeU64(UInt64(working.count))
        writer.writeU64(UInt64(compressed.count))
        writer.writeU8(UInt8(version.utf8.count))
        writer.writeBytes(version.utf8)
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        writer.writeBytes(compressed)
        writer.writeU32(Zlib.crc32(writer.bytes[...]))
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8], file: String) throws(ArchiveError) -> Checkpoint {
        let raw = try decodePayload(bytes, file: file)
        do {
            return Checkpoint(sequence: raw.sequence, timestampMilliseconds: raw.timestamp, chain: raw.chain, state: try state(raw.working))
        } catch {
            throw ArchiveError(.corrupt, file: file, offset: error.offset, sequence: raw.sequence, "payload: \(error.reason) (payload offset)")
        }
    }

    /// Checks a checkpoint file (lengths, both CRCs) and returns its header fields and decompressed payload,
    /// unparsed.
    public static func decodePayload(_ bytes: [UInt8], file: String) throws(ArchiveError) -> RawCheckpoint {
        func corrupt(_ offset: Int, _ message: String) -> ArchiveError { ArchiveError(.corrupt, file: file, offset: offset, message) }
        guard bytes.count >= Checkpoint.fixedLength + 8 else { throw corrupt(bytes.count, "too short for a checkpoint") }
        guard Array(bytes[0..<8]) == Checkpoint.magic else { throw corrupt(0, "not a Tally checkpoint (bad magic)") }
        var reader = BigEndianReader(bytes, offset: 8)
        let version = reader.u16()
        guard version == Checkpoint.formatVersion else {
            throw ArchiveError(.unsupportedVersion, file: file, offset: 8,
                               "checkpoint format \(version); this reader knows \(Checkpoint.formatVersion) (reseal the archive with this version)")
        }
        let sequence = reader.u64()
        let timestamp = Int64(bitPattern: reader.u64())
        let chain = reader.bytes(32)
        let length = reader.u64()
        let compressedLength = reader.u64()
        let versionLength = Int(reader.u8())
        let headerEnd = Checkpoint.fixedLength + versionLength
        guard length <= UInt64(ArchiveLimits.checkpointPayloadBytesMax), compressedLength <= UInt64(bytes.count) else {
            throw ArchiveError(.limitExceeded, file: file, offset: 58, sequence: sequence, "declared sizes exceed the checkpoint limits")
        }
        let workingStart = headerEnd + 4
        guard bytes.count == workingStart + Int(compressedLength) + 4 else {
            throw corrupt(min(bytes.count, headerEnd), "the file length does not match its header")
        }
        guard Zlib.crc32(bytes[0..<headerEnd]) == BigEndianReader.u32(bytes, at: headerEnd) else {
            throw corrupt(headerEnd, "header CRC mismatch")
        }
        let crcOffset = bytes.count - 4
        guard Zlib.crc32(bytes[0..<crcOffset]) == BigEndianReader.u32(bytes, at: crcOffset) else {
            throw ArchiveError(.corrupt, file: file, offset: crcOffset, sequence: sequence, "file CRC mismatch: the checkpoint is damaged")
        }
        do {
            let working = try Zlib.inflate(bytes[workingStart..<crcOffset], dictionary: [], expectedLength: Int(length))
            return RawCheckpoint(sequence: sequence, timestamp: timestamp, chain: chain, working: working)
        } catch {
            throw ArchiveError(.corrupt, file: file, offset: workingStart, sequence: sequence, "working set: \(error)")
        }
    }

    /// The payload of `state`'s working set: four sections (tenants, API keys, budgets, ACTIVE
    /// reservations); a section is a u64 count and then entries, an entry a u32 length and its bytes.
    static func payloadBytes(_ state: LedgerState) -> [UInt8] {
        var writer = ByteWriter(capacity: 1 << 16)
        func section<Value>(_ values: [Value], _ encode: (Value) -> [UInt8]) {
            writer.writeU64(UInt64(values.count))
            for value in values {
                let bytes = encode(value)
                writer.writeU32(UInt32(bytes.count))
                writer.writeBytes(bytes)
            }
        }
        section(state.tenants.keys.sorted()) { ProjectionCodec.encode(state.tenants[$0]!) }
        section(state.apiKeys.keys.sorted()) { ProjectionCodec.encode(state.apiKeys[$0]!) }
        section(state.budgets.keys.sorted()) { ProjectionCodec.encode(state.budgets[$0]!) }
        let active = state.reservations.filter { Checkpoint.isWorking($0.value) }.keys.sorted()
        section(active) { ProjectionCodec.encode(state.reservations[$0]!) }
        return writer.bytes
    }

    /// The working set the payload holds.
    static func state(_ working: [UInt8]) throws(EventCodecError) -> LedgerState {
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
        try reader.expectEnd("the working set")
        if let settled = state.reservations.values.first(where: { !Checkpoint.isWorking($0) }) {
            throw EventCodecError(.valueOutOfRange, offset: 0, reason: "reservation \(settled.id) in the working set is not ACTIVE")
        }
        return state
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
