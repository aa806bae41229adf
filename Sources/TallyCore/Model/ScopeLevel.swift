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

    /// The level whose name these UTF-8 bytes spell, without building a string. The six names have six
    /// different lengths, so the length picks the only candidate.
    init?(name bytes: UnsafeBufferPointer<UInt8>) {
        let candidate: ScopeLevel
        switch bytes.count {
        case 6: candidate = .tenant
        case 9: candidate = .workspace
        case 3: candidate = .app
        case 8: candidate = .workflow
        case 5: candidate = .agent
        case 7: candidate = .toolset
        default: return nil
        }
        var name = candidate.name
        guard name.withUTF8({ $0.elementsEqual(bytes) }) else { return nil }
        self = candidate
    }

    public static func < (lhs: ScopeLevel, rhs: ScopeLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}
