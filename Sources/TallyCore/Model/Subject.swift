/// Who is spending: the Cycles subject. Scope paths are derived from it (see `ScopePath.derive`).
///
/// Values are kept as the client sent them (they are returned on reads); derivation lower-cases them.
/// Dimensions are carried and returned but never part of a scope path.
public struct Subject: Sendable, Hashable {
    public var tenant: String?
    public var workspace: String?
    public var app: String?
    public var workflow: String?
    public var agent: String?
    public var toolset: String?
    public var dimensions: [String: String]

    public init(
        tenant: String? = nil, workspace: String? = nil, app: String? = nil, workflow: String? = nil,
        agent: String? = nil, toolset: String? = nil, dimensions: [String: String] = [:]
    ) {
        self.tenant = tenant
        self.workspace = workspace
        self.app = app
        self.workflow = workflow
        self.agent = agent
        self.toolset = toolset
        self.dimensions = dimensions
    }

    public func value(at level: ScopeLevel) -> String? {
        switch level {
        case .tenant: tenant
        case .workspace: workspace
        case .app: app
        case .workflow: workflow
        case .agent: agent
        case .toolset: toolset
        }
    }

    /// The value at a level if it is present and not blank (Cycles treats blank values as absent).
    /// Blankness is read from the UTF-8 bytes: a string whose bytes are all spaces and tabs is exactly one
    /// whose characters are, and bytes need no grapheme breaking (the writer asks for every level of every
    /// subject it validates).
    public func presentValue(at level: ScopeLevel) -> String? {
        guard let value = value(at: level), !value.utf8.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else { return nil }
        return value
    }

    /// Refuses a subject that the Cycles schema refuses: no standard field, bad characters, too long, or
    /// too many or too long dimensions.
    public func validate(field: String = "subject") throws(Refusal) {
        var anyPresent = false
        for level in ScopeLevel.allCases {
            // Length first, on every value sent: a blank value is treated as absent, but it is still stored.
            if let raw = value(at: level), raw.hasMoreScalars(than: Limits.subjectValueLengthMax) {
                throw Refusal(.invalidRequest, "\(field).\(level.name) is longer than \(Limits.subjectValueLengthMax) characters")
            }
            guard let value = presentValue(at: level) else { continue }
            anyPresent = true
            if !Subject.isValidValue(value) {
                throw Refusal(.invalidRequest, "\(field).\(level.name) may only contain letters, digits, '_', '.' and '-'")
            }
        }
        if !anyPresent {
            throw Refusal(.invalidRequest, "\(field) needs at least one of tenant, workspace, app, workflow, agent, toolset")
        }
        if dimensions.count > Limits.dimensionsCountMax {
            throw Refusal(.invalidRequest, "\(field).dimensions has more than \(Limits.dimensionsCountMax) entries")
        }
        for (key, value) in dimensions {
            if key.isEmpty || key.hasMoreScalars(than: Limits.dimensionKeyLengthMax) {
                throw Refusal(.invalidRequest, "\(field).dimensions keys must be 1-\(Limits.dimensionKeyLengthMax) characters")
            }
            if value.hasMoreScalars(than: Limits.dimensionValueLengthMax) {
                throw Refusal(.invalidRequest, "\(field).dimensions.\(key) is longer than \(Limits.dimensionValueLengthMax) characters")
            }
        }
    }

    /// `^[a-zA-Z0-9_.-]+$`, the Cycles charset for standard subject fields.
    static func isValidValue(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == 0x5f || byte == 0x2e || byte == 0x2d
        }
    }
}
