// The encodings of the value types that several events share. Each type's writer and reader sit next to
// each other so that a reviewer can check that they visit the same fields in the same order.

private typealias Limit = EventCodec.FieldLimit

extension ByteWriter {
    public mutating func write(_ amount: Amount) { writeI64(amount.value) }

    /// Its 32 big-endian bytes, word by word (no array in between: every reservation and idempotency record
    /// holds one).
    public mutating func write(_ digest: Digest256) {
        writeU64(digest.words.0)
        writeU64(digest.words.1)
        writeU64(digest.words.2)
        writeU64(digest.words.3)
    }

    public mutating func write(_ json: JSONText, field: @autoclosure () -> String) {
        writeString(json.text, bytesMax: Limit.jsonTextBytesMax, field: field())
    }

    public mutating func writeOptional(_ json: JSONText?, field: @autoclosure () -> String) {
        writeOptional(json) { $0.write($1, field: field()) }
    }

    public mutating func write(_ scope: ScopePath) {
        writeString(scope.rawValue, bytesMax: Limit.scopePathBytesMax, field: "scope path")
    }

    public mutating func write(scopes: [ScopePath], field: @autoclosure () -> String) {
        writeArray(scopes, countMax: Limit.scopesCountMax, field: field()) { $0.write($1) }
    }

    public mutating func write(_ key: BudgetKey) {
        write(key.scope)
        writeU8(key.unit.rawValue)
    }

    public mutating func write(_ quantity: Quantity) {
        writeU8(quantity.unit.rawValue)
        write(quantity.amount)
    }

    mutating func write(_ caller: Caller) {
        switch caller {
        case .tenant(let id, let keyID):
            writeU8(1)
            writeString(id, bytesMax: Limit.tenantIDBytesMax, field: "caller.tenant")
            writeString(keyID, bytesMax: Limit.keyIDBytesMax, field: "caller.key_id")
        case .admin: writeU8(2)
        case .system: writeU8(3)
        }
    }

    mutating func write(_ stamp: IdempotencyStamp) {
        writeString(stamp.key, bytesMax: Limit.idempotencyKeyBytesMax, field: "idempotency.key")
        write(stamp.payloadHash)
    }
}

extension ByteReader {
    public mutating func readAmount(_ field: @autoclosure () -> String) throws(EventCodecError) -> Amount {
        Amount(try readI64(field()))
    }

    public mutating func readOptionalAmount(_ field: @autoclosure () -> String) throws(EventCodecError) -> Amount? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readAmount(field())
        }
    }

    public mutating func readDigest(_ field: @autoclosure () -> String) throws(EventCodecError) -> Digest256 {
        let raw = try readRawBytes(32, field())
        guard let digest = Digest256(bytes: raw) else { preconditionFailure("readRawBytes returned a short slice") }
        return digest
    }

    public mutating func readOptionalJSON(_ field: @autoclosure () -> String) throws(EventCodecError) -> JSONText? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in
            JSONText(try reader.readString(field(), bytesMax: Limit.jsonTextBytesMax))
        }
    }

    /// Revalidates through `ScopePath(decoding:)`: a path that `decide` could not have built is damage. With a
    /// `ScopePathCache` (`scopePaths`), bytes equal to a path validated before give that path again.
    public mutating func readScopePath(_ field: @autoclosure () -> String) throws(EventCodecError) -> ScopePath {
        let start = offset
        if let scopePaths, let cached = cachedScopePath(scopePaths) { return cached }
        let text = try readString(field(), bytesMax: Limit.scopePathBytesMax)
        do {
            let path = try ScopePath(decoding: text)
            if let scopePaths { rawBytes(from: start + 4, to: offset) { scopePaths.insert(path, readFrom: $0) } }
            return path
        } catch {
            throw EventCodecError(
                .invalidScopePath, offset: start, reason: "\(field()) at offset \(start) is not a valid scope path")
        }
    }

    public mutating func readScopePaths(_ field: @autoclosure () -> String) throws(EventCodecError) -> [ScopePath] {
        try readArray(field(), countMax: Limit.scopesCountMax) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readScopePath(field())
        }
    }

    public mutating func readBudgetKey() throws(EventCodecError) -> BudgetKey {
        BudgetKey(try readScopePath("scope"), try readEnum(Unit.self, "unit"))
    }

    public mutating func readQuantity(_ field: @autoclosure () -> String) throws(EventCodecError) -> Quantity {
        Quantity(try readEnum(Unit.self, "\(field()).unit"), try readAmount("\(field()).amount"))
    }

    mutating func readCaller() throws(EventCodecError) -> Caller {
        let start = offset
        switch try readU8("caller tag") {
        case 1:
            let id = try readString("caller.tenant", bytesMax: Limit.tenantIDBytesMax)
            return .tenant(id: id, keyID: try readString("caller.key_id", bytesMax: Limit.keyIDBytesMax))
        case 2: return .admin
        case 3: return .system
        case let tag:
            throw EventCodecError(
                .unknownEnumValue, offset: start, reason: "caller tag at offset \(start) has unknown value \(tag)")
        }
    }

    mutating func readIdempotencyStamp() throws(EventCodecError) -> IdempotencyStamp {
        let key = try readString("idempotency.key", bytesMax: Limit.idempotencyKeyBytesMax)
        return IdempotencyStamp(key: key, payloadHash: try readDigest("idempotency.payload_hash"))
    }

    mutating func readOptionalIdempotencyStamp() throws(EventCodecError) -> IdempotencyStamp? {
        try readOptional("idempotency") { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readIdempotencyStamp()
        }
    }
}
