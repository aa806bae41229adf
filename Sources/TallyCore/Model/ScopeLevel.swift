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
        for level in ScopeLevel.allCases where level.name.utf8.elementsEqual(bytes) {
            self = level
            return
        }
        return nil
    }

    public static func < (lhs: ScopeLevel, rhs: ScopeLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
