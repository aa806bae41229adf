/// What the agent is about to do: a Cycles `Action` (`llm.completion` on `openai:gpt-4o-mini`, ...).
public struct Action: Sendable, Hashable {
    public var kind: String
    public var name: String
    public var tags: [String]

    public init(kind: String, name: String, tags: [String] = []) {
        self.kind = kind
        self.name = name
        self.tags = tags
    }

    public func validate(field: String = "action") throws(Refusal) {
        if kind.isEmpty || kind.hasMoreScalars(than: Limits.actionKindLengthMax) {
            throw Refusal(.invalidRequest, "\(field).kind must be 1-\(Limits.actionKindLengthMax) characters")
        }
        if name.isEmpty || name.hasMoreScalars(than: Limits.actionNameLengthMax) {
            throw Refusal(.invalidRequest, "\(field).name must be 1-\(Limits.actionNameLengthMax) characters")
        }
        if tags.count > Limits.actionTagsCountMax {
            throw Refusal(.invalidRequest, "\(field).tags has more than \(Limits.actionTagsCountMax) items")
        }
        if tags.contains(where: { $0.hasMoreScalars(than: Limits.actionTagLengthMax) }) {
            throw Refusal(.invalidRequest, "\(field).tags items must be at most \(Limits.actionTagLengthMax) characters")
        }
    }
}
