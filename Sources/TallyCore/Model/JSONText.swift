/// A free JSON object (metadata, `metrics.custom`) carried through the ledger verbatim.
///
/// The gateway parses and re-serializes it canonically; TallyCore only stores, bounds and returns it,
/// so the core stays free of a JSON dependency and replays return exactly what was recorded.
public struct JSONText: Sendable, Hashable, CustomStringConvertible {
    public var text: String

    public init(_ text: String) { self.text = text }

    public var description: String { text }
}
