/// A table for terminals: a header row and aligned columns, numbers right-aligned.
///
/// A column is numeric when every one of its cells is an integer (or empty), so amounts line up on their
/// last digit; everything else is left-aligned. Columns are separated by two spaces and trailing spaces
/// are trimmed, so output diffs and greps cleanly.
public struct TextTable: Sendable, Hashable {
    public var headers: [String]
    public var rows: [[String]]

    public init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    public mutating func append(_ row: [String]) {
        precondition(row.count == headers.count, "a row has \(row.count) cells for \(headers.count) columns")
        rows.append(row)
    }

    public func render() -> String {
        let widths = headers.indices.map { column in
            rows.reduce(headers[column].count) { max($0, $1[column].count) }
        }
        let numeric = headers.indices.map { column in
            !rows.isEmpty && rows.allSatisfy { $0[column].isEmpty || Int64($0[column]) != nil }
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.indices.map { column -> String in
                let gap = String(repeating: " ", count: widths[column] - cells[column].count)
                return numeric[column] ? gap + cells[column] : cells[column] + gap
            }
            let text = padded.joined(separator: "  ")
            return String(text.reversed().drop(while: { $0 == " " }).reversed())
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }

    /// A two-column FIELD/VALUE table for one object; pairs with an empty value are left out.
    public static func fields(_ pairs: [(String, String)]) -> TextTable {
        TextTable(headers: ["FIELD", "VALUE"], rows: pairs.filter { !$0.1.isEmpty }.map { [$0.0, $0.1] })
    }
}
