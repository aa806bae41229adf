import Foundation
import TallyCore

/// Turns command-line words into ledger values, with messages that name the flag.
public enum RequestParsing {
    public static func unit(_ text: String) throws(UsageError) -> TallyCore.Unit {
        try pick(text, flag: "--unit", TallyCore.Unit.allCases, \.cyclesName)
    }

    public static func overagePolicy(_ text: String) throws(UsageError) -> OveragePolicy {
        try pick(text, flag: "--overage-policy", OveragePolicy.allCases, \.cyclesName)
    }

    public static func fundingOperation(_ text: String) throws(UsageError) -> FundingOperation {
        try pick(text, flag: "--operation", FundingOperation.allCases, \.cyclesName)
    }

    public static func tenantStatus(_ text: String) throws(UsageError) -> TenantStatus {
        try pick(text, flag: "--status", TenantStatus.allCases, \.cyclesName)
    }

    public static func budgetStatus(_ text: String) throws(UsageError) -> BudgetStatus {
        try pick(text, flag: "--status", BudgetStatus.allCases, \.cyclesName)
    }

    public static func reservationStatus(_ text: String) throws(UsageError) -> ReservationStatus {
        try pick(text, flag: "--status", ReservationStatus.allCases, \.cyclesName)
    }

    /// The case whose Cycles name is `text` (in any letter case), or a message listing the names.
    static func pick<Value>(
        _ text: String, flag: String, _ cases: [Value], _ name: (Value) -> String
    ) throws(UsageError) -> Value {
        if let value = cases.first(where: { name($0) == text.uppercased() }) { return value }
        let names = cases.map(name).joined(separator: ", ")
        throw UsageError("\(flag) must be one of \(names), not '\(text)'")
    }

    public static func permission(_ text: String) throws(UsageError) -> Permission {
        guard let permission = Permission(rawValue: text) else {
            throw UsageError(
                "--permission '\(text)' is not a Cycles permission (e.g. reservations:create, balances:read, admin:read)"
            )
        }
        return permission
    }

    /// A non-negative amount, as estimates, actuals and allocations must be.
    public static func amount(_ value: Int64, flag: String) throws(UsageError) -> Amount {
        guard value >= 0 else { throw UsageError("\(flag) must be 0 or more, not \(value)") }
        return Amount(value)
    }

    /// The subject's segments for listing filters: each given level with its value.
    public static func segments(_ subject: Subject) -> [ScopeLevel: String] {
        var segments: [ScopeLevel: String] = [:]
        for level in ScopeLevel.allCases.dropFirst() { segments[level] = subject.value(at: level) }
        return segments
    }

    /// A fresh idempotency key, so that a command typed once is applied once even if the CLI retries.
    public static func freshIdempotencyKey() -> String {
        UUID().uuidString.lowercased()
    }
}
