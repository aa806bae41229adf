/// An exact signed quantity of one unit.
///
/// Money never wraps: every operation that could leave the `Int64` range reports `amountOverflow`
/// instead. Non-negativity is a property of the field (estimates, actuals, allocations), checked where the
/// value enters the ledger; `remaining` is the one balance field that may legitimately be negative.
public struct Amount: Sendable, Hashable, Comparable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    public var value: Int64

    public static let zero = Amount(0)

    public init(_ value: Int64) { self.value = value }
    public init(integerLiteral value: Int64) { self.value = value }

    public var description: String { String(value) }
    public var isNegative: Bool { value < 0 }

    public func adding(_ other: Amount) throws(Refusal) -> Amount {
        let (sum, overflow) = value.addingReportingOverflow(other.value)
        if overflow { throw Refusal(.amountOverflow, "\(value) + \(other.value) leaves the Int64 range") }
        return Amount(sum)
    }

    public func subtracting(_ other: Amount) throws(Refusal) -> Amount {
        let (difference, overflow) = value.subtractingReportingOverflow(other.value)
        if overflow { throw Refusal(.amountOverflow, "\(value) - \(other.value) leaves the Int64 range") }
        return Amount(difference)
    }

    public func negated() throws(Refusal) -> Amount { try Amount.zero.subtracting(self) }

    /// `max(self, 0)`: the funded part of a possibly negative remaining.
    public var flooredAtZero: Amount { value < 0 ? .zero : self }

    public static func < (lhs: Amount, rhs: Amount) -> Bool { lhs.value < rhs.value }
}

/// A Cycles `Amount` object: an amount together with its unit.
public struct Quantity: Sendable, Hashable, CustomStringConvertible {
    public var unit: Unit
    public var amount: Amount

    public init(_ unit: Unit, _ amount: Amount) {
        self.unit = unit
        self.amount = amount
    }

    public var description: String { "\(amount) \(unit.cyclesName)" }
}
