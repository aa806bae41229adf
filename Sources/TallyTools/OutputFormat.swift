import Foundation

/// How a CLI command prints its result.
public enum OutputFormat: String, CaseIterable, Sendable {
    /// Aligned columns with headers, for people.
    case table
    /// One JSON object or array per command, with the Cycles API's snake_case keys, for scripts.
    case json
}

/// A command's result in both forms; the chosen one is printed.
public struct Rendered: Sendable {
    public var table: String
    public var json: String

    public init(table: String, json: String) {
        self.table = table
        self.json = json
    }

    /// Builds both forms from tables (printed one after another, blank line between) and a JSON value.
    public init(tables: [TextTable], json: Any) {
        self.init(table: tables.map { $0.render() }.joined(separator: "\n\n"), json: CyclesJSON.text(json))
    }

    public func text(in format: OutputFormat) -> String {
        format == .table ? table : json
    }
}

/// Times as the CLI shows them in tables: ISO 8601 in UTC with milliseconds.
public enum TimeText {
    public static func format(milliseconds: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        return date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    public static func format(milliseconds: Int64?) -> String {
        milliseconds.map { format(milliseconds: $0) } ?? ""
    }
}
