import TallyCore

/// Rendering of balances and budgets: `tally balances`, `tally budget list` and the balances in replies.
public enum BalanceTool {
    public static let headers = [
        "SCOPE", "UNIT", "ALLOCATED", "REMAINING", "RESERVED", "SPENT", "DEBT", "OVER-LIMIT", "STATUS",
    ]

    public static func table(_ balances: [Balance]) -> TextTable {
        TextTable(
            headers: headers,
            rows: balances.map { balance in
                [
                    balance.scope.rawValue, balance.unit.cyclesName, "\(balance.allocated)", "\(balance.remaining)",
                    "\(balance.reserved)", "\(balance.spent)", "\(balance.debt)", balance.isOverLimit ? "yes" : "no",
                    balance.status.cyclesName,
                ]
            })
    }

    public static func render(_ budgets: [Budget]) -> Rendered {
        Rendered(tables: [table(budgets.map(\.balance))], json: budgets.map(CyclesJSON.budget))
    }

    public static func render(_ budget: Budget) -> Rendered {
        Rendered(tables: [table([budget.balance])], json: CyclesJSON.budget(budget))
    }

    public static func render(_ funding: FundingReply) -> Rendered {
        let rows = [
            ("allocated", \LedgerFigures.allocated), ("remaining", \.remaining), ("reserved", \.reserved),
            ("spent", \.spent), ("debt", \.debt),
        ].map { name, path in [name, "\(funding.previous[keyPath: path])", "\(funding.new[keyPath: path])"] }
        let summary = TextTable.fields([
            ("scope", funding.key.scope.rawValue), ("unit", funding.key.unit.cyclesName),
            ("operation", funding.operation.cyclesName), ("at", TimeText.format(milliseconds: funding.atMilliseconds)),
        ])
        return Rendered(
            tables: [summary, TextTable(headers: ["FIGURE", "BEFORE", "AFTER"], rows: rows)],
            json: CyclesJSON.funding(funding))
    }
}
