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
    private var counts: [String: Int] = [:]

    public init() {}

    public mutating func add(_ body: EventBody) {
        Self.forEachString(in: body) { note($0) }
    }

    /// The strings worth a table entry, most frequent first (so the commonest get one-byte indexes), ties
    /// in byte order so that one segment has one table.
    public func table() -> [String] {
        counts.filter { $0.value > 1 }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            .prefix(ArchiveLimits.stringTableCountMax)
            .map(\.key)
    }

    /// Calls `visit` with every string of `body` that segments count (each occurrence).
    static func forEachString(in body: EventBody, _ visit: (String) -> Void) {
        func subject(_ subject: Subject) {
            for value in [subject.tenant, subject.workspace, subject.app, subject.workflow, subject.agent, subject.toolset] {
                if let value { visit(value) }
            }
        }
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
            visit(reserved.scopePath.rawValue)
            for scope in reserved.affectedScopes { visit(scope.rawValue) }
            caller(reserved.caller)
        case .committed(let committed):
            for delta in committed.deltas { visit(delta.scope.rawValue) }
            caller(committed.caller)
        case .debitRecorded(let debit):
            visit(debit.tenant)
            subject(debit.subject)
            visit(debit.action.kind)
            visit(debit.action.name)
            visit(debit.scopePath.rawValue)
            for delta in debit.deltas { visit(delta.scope.rawValue) }
            caller(debit.caller)
        case .released(let released): caller(released.caller)
        case .extended(let extended):
            visit(extended.tenant)
            caller(extended.caller)
        case .budgetCreated(let budget): visit(budget.scope.rawValue)
        default: break
        }
    }

    /// The dictionary bytes: at most `ArchiveLimits.dictionaryBytesMax`, most frequent strings last.
    public func bytes() -> [UInt8] {
        let ranked = counts.filter { $0.value > 1 }.sorted { ($0.value, $0.key) > ($1.value, $1.key) }
        var chosen: [String] = []
        var total = 0
        for (string, _) in ranked {
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

    private mutating func note(_ string: String) {
        guard !string.isEmpty, string.utf8.count <= 1024 else { return }
        counts[string, default: 0] += 1
    }
}
