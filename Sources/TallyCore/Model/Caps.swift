/// Soft-landing hints returned with `ALLOW_WITH_CAPS` (decision 7: set on a budget by the admin plane).
///
/// Advisory: the ledger never enforces them at commit. A non-empty allowlist means only those tools;
/// otherwise a non-empty denylist excludes tools (Cycles precedence; tool names are case-sensitive).
public struct Caps: Sendable, Hashable {
    public var maxTokens: Int64?
    public var maxStepsRemaining: Int64?
    public var toolAllowlist: [String]?
    public var toolDenylist: [String]?
    public var cooldownMilliseconds: Int64?

    public init(
        maxTokens: Int64? = nil, maxStepsRemaining: Int64? = nil, toolAllowlist: [String]? = nil,
        toolDenylist: [String]? = nil, cooldownMilliseconds: Int64? = nil
    ) {
        self.maxTokens = maxTokens
        self.maxStepsRemaining = maxStepsRemaining
        self.toolAllowlist = toolAllowlist
        self.toolDenylist = toolDenylist
        self.cooldownMilliseconds = cooldownMilliseconds
    }

    public func validate(field: String = "caps") throws(Refusal) {
        for (name, value) in [("max_tokens", maxTokens), ("max_steps_remaining", maxStepsRemaining),
                              ("cooldown_ms", cooldownMilliseconds)] {
            if let value, value < 0 { throw Refusal(.invalidRequest, "\(field).\(name) must be >= 0") }
        }
        for (name, list) in [("tool_allowlist", toolAllowlist), ("tool_denylist", toolDenylist)] {
            guard let list else { continue }
            if list.count > Limits.capsToolsCountMax {
                throw Refusal(.invalidRequest, "\(field).\(name) has more than \(Limits.capsToolsCountMax) items")
            }
            if list.contains(where: { $0.isEmpty || $0.hasMoreScalars(than: Limits.capsToolLengthMax) }) {
                throw Refusal(.invalidRequest, "\(field).\(name) items must be 1-\(Limits.capsToolLengthMax) characters")
            }
        }
    }

    /// Whether the caps allow a tool, by the Cycles allowlist-then-denylist precedence.
    public func allowsTool(_ name: String) -> Bool {
        if let allow = toolAllowlist, !allow.isEmpty { return allow.contains(name) }
        if let deny = toolDenylist, !deny.isEmpty { return !deny.contains(name) }
        return true
    }
}
