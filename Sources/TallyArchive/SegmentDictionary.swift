import TallyCore

/// Counts the strings a segment's events repeat (scope paths, tenant ids, subject values, action kinds
/// and names, caller key ids) to build its string table (format 2: `table()`), or the preset deflate
/// dictionary of format 1 (`bytes()`).
///
/// For a dictionary, each string is written as the log encodes it (u32 length, then UTF-8), so an entry
/// matches the length prefix as well. zlib finds matches best near the end of the dictionary, so the most
/// frequent strings go last; the dictionary is cut to `ArchiveLimits.dictionaryBytesMax` by dropping the
/// rarest. Any table or dictionary decodes correctly: both are stored in the segment, so choosing them is
/// only a matter of size.
public struct SegmentDictionary {
    /// Each counted string's id (its place in `strings` and `counts`), found by its UTF-8 bytes: a lookup
    /// hashes a few words (`ByteKeyTable`) where a `String` key would run SipHash over every byte, and two
    /// spellings of one text (Unicode equivalents) are two entries, as lifting needs (it matches bytes).
    private var ids = InternedStrings()
    private var strings: [String] = []
    private var counts: [Int] = []

    public init() {}

    public mutating func add(_ body: EventBody) {
        Self.forEachString(in: body) { note($0) }
    }

    /// The strings worth a table entry, most frequent first (so the commonest get one-byte indexes), ties
    /// in byte order so that one segment has one table.
    public func table() -> [String] {
        tableIDs().map { strings[Int($0)] }
    }

    /// The ids of `table()`'s strings, in its order.
    func tableIDs() -> [Int32] {
        counts.indices.filter { counts[$0] > 1 }
            .sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : strings[$0].utf8.lexicographicallyPrecedes(strings[$1].utf8) }
            .prefix(ArchiveLimits.stringTableCountMax)
            .map { Int32($0) }
    }

    /// The string counted under `id`.
    func string(_ id: Int32) -> String { strings[Int(id)] }

    /// How many distinct strings were counted (ids are `0..<count`).
    var count: Int { strings.count }

    /// Calls `visit` with every string of `body` that segments count (each occurrence), in order.
    static func forEachString(in body: EventBody, _ visit: (String) -> Void) {
        func subject(_ subject: Subject) {
            if let value = subject.tenant { visit(value) }
            if let value = subject.workspace { visit(value) }
            if let value = subject.app { visit(value) }
            if let value = subject.workflow { visit(value) }
            if let value = subject.agent { visit(value) }
            if let value = subject.toolset { visit(value) }
        }
        func path(_ path: ScopePath) { visit(path.rawValue) }
        func caller(_ caller: Caller) {
            if case .tenant(let id, let keyID) = caller {
                visit(id)
                visit(keyID)
            }
        }
        switch body {
        case .reserved(let reserved):
            visit(reserved.tenant)
            subject(reserved.subject)
            visit(reserved.action.kind)
            visit(reserved.action.name)
            path(reserved.scopePath)
            for scope in reserved.affectedScopes { path(scope) }
            caller(reserved.caller)
        case .committed(let committed):
            for delta in committed.deltas { path(delta.scope) }
            caller(committed.caller)
        case .debitRecorded(let debit):
            visit(debit.tenant)
            subject(debit.subject)
            visit(debit.action.kind)
            visit(debit.action.name)
            path(debit.scopePath)
            for delta in debit.deltas { path(delta.scope) }
            caller(debit.caller)
        case .released(let released): caller(released.caller)
        case .extended(let extended):
            visit(extended.tenant)
            caller(extended.caller)
        case .budgetCreated(let budget): path(budget.scope)
        default: break
        }
    }

    /// The dictionary bytes: at most `ArchiveLimits.dictionaryBytesMax`, most frequent strings last.
    public func bytes() -> [UInt8] {
        let ranked = counts.indices.filter { counts[$0] > 1 }.sorted { (counts[$0], strings[$0]) > (counts[$1], strings[$1]) }
        var chosen: [String] = []
        var total = 0
        for string in ranked.map({ strings[$0] }) {
            let size = 4 + string.utf8.count
            guard total + size <= ArchiveLimits.dictionaryBytesMax else { continue }
            chosen.append(string)
            total += size
        }
        var writer = ByteWriter(capacity: total)
        for string in chosen.reversed() {
            writer.writeU32(UInt32(string.utf8.count))
            writer.writeBytes(string.utf8)
        }
        return writer.bytes
    }

    /// Counts one occurrence of `string` and returns its id, or nil for strings no table holds (empty, or
    /// longer than 1,024 bytes).
    @discardableResult
    private mutating func note(_ string: String) -> Int32? {
        var utf8 = string
        return utf8.withUTF8 { note(UnsafeRawBufferPointer($0)) }
    }

    /// The same for a string's UTF-8 as a record holds it: a `String` is made only for the first occurrence.
    mutating func note(_ utf8: UnsafeRawBufferPointer) -> Int32? {
        guard !utf8.isEmpty && utf8.count <= 1024 else { return nil }
        let id = ids.intern(utf8)
        if Int(id) == strings.count {
            strings.append(String(decoding: utf8, as: UTF8.self))
            counts.append(1)
        } else {
            counts[Int(id)] += 1
        }
        return id
    }
}
