/// Walks the body of an event record in place, for folds that need a few of its fields and skip the rest
/// (`WorkingSetFold`): nothing is copied, no `String` is built, every read is bounds-checked.
///
/// Unlike `ByteReader` it checks the structure only (lengths, counts, presence flags, the end of the body),
/// not the content of the fields it skips (UTF-8, per-field limits). Fields it returns are either checked
/// here (enumerations, flags) or only ever compared with values that a full decode checked (scope paths
/// match budgets created by decoded events). `EventCodec.decode` stays the reference for a record's
/// validity; a record this cursor walks is one the full decoder reads with the same field boundaries.
struct RecordCursor: ~Copyable {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, at offset: Int) {
        self.bytes = bytes
        self.offset = offset
    }

    @inline(__always)
    private func need(_ count: Int) throws(EventCodecError) {
        guard count <= bytes.count &- offset else { throw truncated(needing: count) }
    }

    /// Failures are built out of line, so that the checks inlined into every read stay a compare and a branch.
    @inline(never)
    private func truncated(needing count: Int) -> EventCodecError {
        EventCodecError(.truncated, offset: offset, reason: "truncated at offset \(offset) (needs \(count) bytes, \(bytes.count - offset) left)")
    }

    @inline(never)
    private static func invalid(_ code: EventCodecError.Kind, _ what: String, at offset: Int, value: UInt8) -> EventCodecError {
        EventCodecError(code, offset: offset, reason: "\(what) at offset \(offset) has unknown value \(value)")
    }

    @inline(__always)
    mutating func u8() throws(EventCodecError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always)
    mutating func u16() throws(EventCodecError) -> Int {
        try need(2)
        defer { offset += 2 }
        return Int(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always)
    mutating func u32() throws(EventCodecError) -> Int {
        try need(4)
        defer { offset += 4 }
        return Int(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    @inline(__always)
    mutating func i64() throws(EventCodecError) -> Int64 {
        try need(8)
        defer { offset += 8 }
        return Int64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int64.self))
    }

    @inline(__always)
    mutating func bool() throws(EventCodecError) -> Bool {
        let start = offset
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw Self.flag(other, at: start)
        }
    }

    @inline(never)
    private static func flag(_ value: UInt8, at offset: Int) -> EventCodecError {
        EventCodecError(.invalidFlag, offset: offset, reason: "flag at offset \(offset) is \(value), not 0 or 1")
    }

    @inline(__always)
    mutating func unit() throws(EventCodecError) -> Unit {
        let start = offset
        let raw = try u8()
        guard let unit = Unit(rawValue: raw) else { throw Self.invalid(.unknownEnumValue, "unit", at: start, value: raw) }
        return unit
    }

    @inline(__always)
    mutating func skip(_ count: Int) throws(EventCodecError) {
        try need(count)
        offset += count
    }

    /// A length-prefixed string's bytes, as a range of `bytes`.
    @inline(__always)
    mutating func string() throws(EventCodecError) -> Range<Int> {
        let length = try u32()
        try need(length)
        defer { offset += length }
        return offset..<(offset + length)
    }

    @inline(__always)
    mutating func skipString() throws(EventCodecError) { _ = try string() }

    /// `string()`, handing the string to `sink` as well.
    @inline(__always)
    mutating func string<Sink: FoldSink>(reporting sink: inout Sink) throws(EventCodecError) -> Range<Int> {
        let range = try string()
        sink.string(UnsafeRawBufferPointer(rebasing: bytes[range]))
        return range
    }

    /// A list of strings (u16 count), each handed to `sink`.
    @inline(__always)
    mutating func strings<Sink: FoldSink>(reporting sink: inout Sink) throws(EventCodecError) {
        for _ in 0..<(try u16()) { _ = try string(reporting: &sink) }
    }

    @inline(__always)
    mutating func skipOptionalString() throws(EventCodecError) {
        if try bool() { try skipString() }
    }

    @inline(__always)
    mutating func skipOptionalI64() throws(EventCodecError) {
        if try bool() { try skip(8) }
    }

    @inline(__always)
    mutating func skipStrings() throws(EventCodecError) {
        for _ in 0..<(try u16()) { try skipString() }
    }

    /// Walks a subject and returns where its agent value is (nil when it has none), handing `sink` its
    /// values (not its dimensions).
    @inline(__always)
    mutating func subjectAgent<Sink: FoldSink>(reporting sink: inout Sink) throws(EventCodecError) -> Range<Int>? {
        var agent: Range<Int>?
        for level in ScopeLevel.allCases {
            if try bool() {
                let value = try string(reporting: &sink)
                if level == .agent { agent = value }
            }
        }
        for _ in 0..<(try u16()) {
            try skipString()
            try skipString()
        }
        return agent
    }

    @inline(__always)
    mutating func skipOptionalCaps() throws(EventCodecError) {
        guard try bool() else { return }
        try skipOptionalI64()
        try skipOptionalI64()
        if try bool() { try skipStrings() }
        if try bool() { try skipStrings() }
        try skipOptionalI64()
    }

    @inline(__always)
    mutating func skipOptionalMetrics() throws(EventCodecError) {
        guard try bool() else { return }
        try skipOptionalI64()
        try skipOptionalI64()
        try skipOptionalI64()
        try skipOptionalString()
        try skipOptionalString()
    }

    /// An idempotency stamp: key and payload hash (handed to `sink`).
    @inline(__always)
    mutating func stamp<Sink: FoldSink>(reporting sink: inout Sink) throws(EventCodecError) {
        try skipString()
        try need(32)
        sink.digest(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + 32)]))
        offset += 32
    }

    /// Walks who acted, handing `sink` a tenant caller's tenant and key id.
    @inline(__always)
    mutating func caller<Sink: FoldSink>(reporting sink: inout Sink) throws(EventCodecError) {
        let start = offset
        switch try u8() {
        case 1:
            _ = try string(reporting: &sink)
            _ = try string(reporting: &sink)
        case 2, 3: return
        case let tag: throw Self.invalid(.unknownEnumValue, "caller tag", at: start, value: tag)
        }
    }

    /// Throws unless the whole body has been walked.
    func expectEnd() throws(EventCodecError) {
        guard offset == bytes.count else {
            throw EventCodecError(.trailingBytes, offset: offset, reason: "\(bytes.count - offset) trailing bytes at offset \(offset) after the last field")
        }
    }
}
