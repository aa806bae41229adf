import TallyCore

/// Builds a segment's preset deflate dictionary from the strings its events repeat most: scope paths,
/// tenant ids, subject values, action kinds and names, caller key ids.
///
/// Each string is written as the log encodes it (u32 length, then UTF-8), so a dictionary entry matches
/// the length prefix as well. zlib finds matches best near the end of the dictionary, so the most frequent
/// strings go last; the dictionary is cut to `ArchiveLimits.dictionaryBytesMax` by dropping the rarest.
/// Any dictionary decodes correctly: it is stored in the segment, so choosing it is only a matter of size.
public struct SegmentDictionary {
    private var counts: [String: Int] = [:]

    public init() {}

    public mutating func add(_ body: EventBody) {
        switch body {
        case .reserved(let reserved):
            note(reserved.tenant)
            note(reserved.subject)
            note(reserved.action)
            note(reserved.scopePath.rawValue)
            for scope in reserved.affectedScopes { note(scope.rawValue) }
            note(reserved.caller)
        case .committed(let committed):
            for delta in committed.deltas { note(delta.scope.rawValue) }
            note(committed.caller)
        case .debitRecorded(let debit):
            note(debit.tenant)
            note(debit.subject)
            note(debit.action)
            note(debit.scopePath.rawValue)
            for delta in debit.deltas { note(delta.scope.rawValue) }
            note(debit.caller)
        case .released(let released): note(released.caller)
        case .extended(let extended): note(extended.caller)
        case .budgetCreated(let budget): note(budget.scope.rawValue)
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

    private mutating func note(_ subject: Subject) {
        for value in [subject.tenant, subject.workspace, subject.app, subject.workflow, subject.agent, subject.toolset] {
            if let value { note(value) }
        }
    }

    private mutating func note(_ action: Action) {
        note(action.kind)
        note(action.name)
    }

    private mutating func note(_ caller: Caller) {
        if case .tenant(let id, let keyID) = caller {
            note(id)
            note(keyID)
        }
    }
}
