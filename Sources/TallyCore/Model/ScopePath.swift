/// A canonical scope path such as `tenant:acme/workspace:prod/agent:planner`.
///
/// Invariants: at least one segment; the first segment is always `tenant:<id>` (decision 8: budgets can
/// never be shared across tenants); levels strictly increase in canonical order; values are lower-cased
/// (decision 9) and non-empty. The only ways to build one check all of this.
public struct ScopePath: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String
    /// `rawValue`'s hash, taken once: the writer looks budgets up by scope many times per reservation (check,
    /// hold, balances, the touched set), and hashing this word is cheaper than hashing the path each time.
    let hashCode: Int

    private init(unchecked rawValue: String) {
        self.rawValue = rawValue
        hashCode = rawValue.hashValue
    }

    public var description: String { rawValue }

    public static func == (lhs: ScopePath, rhs: ScopePath) -> Bool {
        lhs.hashCode == rhs.hashCode && lhs.rawValue == rhs.rawValue
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashCode) }

    public func _rawHashValue(seed: Int) -> Int { KeyHash.mix(UInt64(bitPattern: Int64(hashCode)), seed: seed) }

    /// The segments as (level, value) pairs, in canonical order.
    public var segments: [(level: ScopeLevel, value: String)] {
        rawValue.split(separator: "/").map { (segment: Substring) -> (level: ScopeLevel, value: String) in
            let colon: Substring.Index = segment.firstIndex(of: ":")!
            let value: Substring = segment[segment.index(after: colon)...]
            return (ScopeLevel(name: String(segment[..<colon]))!, String(value))
        }
    }

    /// The leaf segment, e.g. `agent:planner`; the Cycles `Balance.scope` field (decision 18).
    public var leaf: String {
        guard let slash = rawValue.utf8.lastIndex(of: UInt8(ascii: "/")) else { return rawValue }
        return String(rawValue[rawValue.utf8.index(after: slash)...])
    }

    public var tenant: String { segments[0].value }

    public var depth: Int { rawValue.utf8.reduce(1) { $1 == UInt8(ascii: "/") ? $0 + 1 : $0 } }

    /// Whether the path has the exact `level:value` segment (value compared lower-cased), as the Cycles
    /// subject filters of balance and reservation listings match.
    public func contains(level: ScopeLevel, value: String) -> Bool {
        let wanted = "\(level.name):\(value.lowercased())"
        return rawValue.split(separator: "/").contains { $0 == wanted }
    }

    /// Whether `self` equals `prefix` or lies below it.
    public func hasPrefix(_ prefix: ScopePath) -> Bool {
        rawValue == prefix.rawValue || rawValue.hasPrefix(prefix.rawValue + "/")
    }

    public static func < (lhs: ScopePath, rhs: ScopePath) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Every cumulative prefix of this path, tenant first, the path itself last: the affected scopes of a
    /// reservation on it (`derive`). Ids hold no "/", so each "/" ends a prefix.
    var prefixes: [ScopePath] {
        var result: [ScopePath] = []
        for index in rawValue.utf8.indices where rawValue.utf8[index] == UInt8(ascii: "/") {
            result.append(ScopePath(unchecked: String(rawValue[..<index])))
        }
        result.append(self)
        return result
    }

    /// Every cumulative prefix of the subject's path, in canonical order, with the effective tenant first.
    ///
    /// Missing levels are skipped, never filled in; `subject.tenant` is not consulted (the caller has
    /// already checked it against the effective tenant), so the first segment is always the key's tenant.
    /// Stored reservation records of `ProjectionCodec.derivedReservationVersion` leave the path out and call this
    /// to get it back: a change to what it makes of a subject needs a new record format (or a `tally rebuild`).
    public static func derive(subject: Subject, tenant: String) -> [ScopePath] {
        // One string per level (each path keeps its own), appended in pieces rather than interpolated, and
        // ids lower-cased only when they hold an upper-case letter: this runs for every reservation.
        var path = "tenant:"
        path.append(lowercasedASCII(tenant))
        var result: [ScopePath] = []
        result.reserveCapacity(ScopeLevel.allCases.count)
        result.append(ScopePath(unchecked: path))
        for level in ScopeLevel.allCases.dropFirst() {
            guard let value = subject.presentValue(at: level) else { continue }
            path.append("/")
            path.append(level.name)
            path.append(":")
            path.append(lowercasedASCII(value))
            result.append(ScopePath(unchecked: path))
        }
        return result
    }

    /// `value.lowercased()`, without making a new string when it has neither an upper-case ASCII letter nor
    /// anything outside ASCII (ids are validated ASCII; the second test keeps this exact regardless).
    private static func lowercasedASCII(_ value: String) -> String {
        value.utf8.contains(where: { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 >= 0x80 }) ? value.lowercased() : value
    }

    /// Parses an operator-written budget scope (admin grammar): `tenant:<id>` first, then known levels in
    /// canonical order, each id `[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?` of at most 128 characters.
    /// The result is lower-cased so that it lines up with derived scopes.
    public init(parsing text: String) throws(Refusal) {
        if text.isEmpty || text.utf8.count > Limits.scopePathLengthMax {
            throw Refusal(.invalidRequest, "scope must be 1-\(Limits.scopePathLengthMax) bytes")
        }
        var previous: ScopeLevel?
        var parts: [String] = []
        for segment in text.split(separator: "/", omittingEmptySubsequences: false) {
            guard let colon = segment.firstIndex(of: ":"),
                  let level = ScopeLevel(name: segment[..<colon].lowercased())
            else {
                throw Refusal(.invalidRequest, "scope segment '\(segment)' is not <level>:<id> with a known level")
            }
            let value = String(segment[segment.index(after: colon)...])
            if previous == nil && level != .tenant {
                throw Refusal(.invalidRequest, "scope must start with tenant:<id>")
            }
            if let previous, level <= previous {
                throw Refusal(.invalidRequest, "scope levels must follow tenant/workspace/app/workflow/agent/toolset order")
            }
            if !ScopePath.isValidID(value) {
                throw Refusal(.invalidRequest, "scope id '\(value)' must match [A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])? and be at most \(Limits.subjectValueLengthMax) characters")
            }
            previous = level
            parts.append("\(level.name):\(value.lowercased())")
        }
        self.init(unchecked: parts.joined(separator: "/"))
    }

    static func isValidID(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= Limits.subjectValueLengthMax else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
        }
        guard alphanumeric(bytes.first!), alphanumeric(bytes.last!) else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
    }

    /// Rebuilds a path read back from the log, checking the invariants again byte by byte (hostile or
    /// damaged input): known levels in canonical order, tenant first, values of `[a-z0-9._-]` only (what
    /// both derivation and the admin grammar can produce).
    ///
    /// Every reply and every event carries several paths, so the check is one pass over the UTF-8 bytes
    /// in place, without splitting them into arrays or strings.
    public init(decoding text: String) throws(Refusal) {
        let count = text.utf8.count
        if count == 0 || count > Limits.scopePathLengthMax {
            throw Refusal(.invalidRequest, "stored scope has an invalid length")
        }
        let defect = text.utf8.withContiguousStorageIfAvailable(ScopePath.canonicalDefect)
            ?? Array(text.utf8).withUnsafeBufferPointer(ScopePath.canonicalDefect)
        switch defect {
        case nil: self.init(unchecked: text)
        case .unknownLevel?: throw Refusal(.invalidRequest, "stored scope '\(text)' has an unknown level")
        case .notCanonical?: throw Refusal(.invalidRequest, "stored scope '\(text)' is not canonical")
        }
    }

    private enum Defect {
        case unknownLevel
        case notCanonical
    }

    /// What is wrong with a stored path, segment by segment, or `nil` when it is canonical.
    private static func canonicalDefect(_ bytes: UnsafeBufferPointer<UInt8>) -> Defect? {
        var previous: ScopeLevel?
        var start = 0
        var done = false
        while !done {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "/") { end += 1 }
            done = end == bytes.count
            var colon = start
            while colon < end && bytes[colon] != UInt8(ascii: ":") { colon += 1 }
            guard colon < end, let level = ScopeLevel(name: UnsafeBufferPointer(rebasing: bytes[start..<colon])) else {
                return .unknownLevel
            }
            guard colon + 1 < end, isCanonicalValue(UnsafeBufferPointer(rebasing: bytes[(colon + 1)..<end])),
                  previous.map({ level > $0 }) ?? (level == .tenant) else {
                return .notCanonical
            }
            previous = level
            start = end + 1
        }
        return nil
    }

    private static func isCanonicalValue(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in value {
            let allowed = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x2e || byte == 0x5f
                || byte == 0x2d
            if !allowed { return false }
        }
        return true
    }
}
