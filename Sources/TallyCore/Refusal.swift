/// A domain refusal: the ledger said no, nothing changed, and the caller gets a stable code.
///
/// Refusals are values (STYLE principle 5). They conform to `Error` only so that the rule code inside
/// `decide` can use typed throws for early exits; the public API returns them in a `Result`.
public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    /// A sentence for a person: names the field, scope or reservation involved.
    public var message: String
    /// Structured details where the semantics define them (only `UNIT_MISMATCH` on reserve paths today).
    public var unitMismatch: UnitMismatchDetails?

    public init(_ code: ErrorCode, _ message: String, unitMismatch: UnitMismatchDetails? = nil) {
        self.code = code
        self.message = message
        self.unitMismatch = unitMismatch
    }

    public var description: String { "\(code.cyclesName): \(message)" }
}

/// Cycles `UNIT_MISMATCH` details: the scope that has budgets, the unit asked for and the units it has.
public struct UnitMismatchDetails: Sendable, Hashable {
    public var scope: ScopePath
    public var requestedUnit: Unit
    public var expectedUnits: [Unit]

    public init(scope: ScopePath, requestedUnit: Unit, expectedUnits: [Unit]) {
        self.scope = scope
        self.requestedUnit = requestedUnit
        self.expectedUnits = expectedUnits
    }
}
