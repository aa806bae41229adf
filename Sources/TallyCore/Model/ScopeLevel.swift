/// The six hierarchy levels of a scope path, in their canonical order.
public enum ScopeLevel: UInt8, CaseIterable, Sendable, Hashable, Comparable {
    case tenant = 1
    case workspace = 2
    case app = 3
    case workflow = 4
    case agent = 5
    case toolset = 6

    public var name: String {
        switch self {
        case .tenant: "tenant"
        case .workspace: "workspace"
        case .app: "app"
        case .workflow: "workflow"
        case .agent: "agent"
        case .toolset: "toolset"
        }
    }

    public init?(name: String) {
        guard let level = ScopeLevel.allCases.first(where: { $0.name == name }) else { return nil }
        self = level
    }

    /// The level whose name is exactly these UTF-8 bytes (for decoders that check paths in place).
    init?(name bytes: UnsafeBufferPointer<UInt8>) {
        for (level, name) in ScopeLevel.nameBytes where name.count == bytes.count {
            var equal = true
            for index in 0..<name.count where name[index] != bytes[index] { equal = false }
            if equal {
                self = level
                return
            }
        }
        return nil
    }

    /// The names as bytes, compared directly: a generic `elementsEqual` against `String.UTF8View` was the
    /// slowest step of checking a stored path.
    private static let nameBytes: [(ScopeLevel, [UInt8])] = allCases.map { ($0, Array($0.name.utf8)) }

    public static func < (lhs: ScopeLevel, rhs: ScopeLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
