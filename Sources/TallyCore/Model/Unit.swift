/// The unit a budget and everything charged against it is counted in. A (scope, unit) pair is one ledger.
public enum Unit: UInt8, CaseIterable, Sendable, Hashable, Comparable {
    /// 1 USD = 10^8 microcents; `Int64.max` is about $92.2 billion.
    case usdMicrocents = 1
    case tokens = 2
    case credits = 3
    case riskPoints = 4

    public var cyclesName: String {
        switch self {
        case .usdMicrocents: "USD_MICROCENTS"
        case .tokens: "TOKENS"
        case .credits: "CREDITS"
        case .riskPoints: "RISK_POINTS"
        }
    }

    public init?(cyclesName: String) {
        guard let unit = Unit.allCases.first(where: { $0.cyclesName == cyclesName }) else { return nil }
        self = unit
    }

    public static func < (lhs: Unit, rhs: Unit) -> Bool { lhs.rawValue < rhs.rawValue }
}
