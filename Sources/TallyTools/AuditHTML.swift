import Foundation
import TallyArchive
import TallyCore

/// The self-contained page `tally audit --html` writes: the audit's outcome and, per scope and unit, a
/// bar chart of spend per time bucket as inline SVG. No script, no external resource, so it opens from a
/// file in any browser and can be mailed or archived as it is.
public enum AuditHTML {
    static let chartWidth = 720.0
    static let chartHeight = 200.0
    static let margin = 48.0

    public static func page(_ report: AuditReport, title: String = "Tally audit") -> String {
        let series = Dictionary(grouping: report.spend.rows(.scope)) { "\($0.key.group) [\($0.key.unit.cyclesName)]" }
        var body = "<h1>\(escape(title))</h1>\n"
        body += "<p class=\"\(report.isClean ? "clean" : "dirty")\">\(report.segmentsChecked) segments, "
            + "\(report.checkpointsChecked) checkpoints and \(report.eventsChecked) events checked through sequence "
            + "\(report.lastSequence): \(report.isClean ? "no discrepancies" : "\(report.findings.count) discrepancies")</p>\n"
        if !report.isClean {
            body += "<ul class=\"findings\">\n" + report.findings.map { "<li>\(escape($0.description))</li>" }.joined(separator: "\n") + "\n</ul>\n"
        }
        body += "<h2>Spend over time per scope (bucket \(report.spend.bucketMilliseconds / 1000) s)</h2>\n"
        if series.isEmpty { body += "<p>No spend recorded.</p>\n" }
        for name in series.keys.sorted() {
            let points = series[name]!.map { (bucket: $0.key.bucketStart, charged: $0.total.charged) }.sorted { $0.bucket < $1.bucket }
            body += "<section><h3>\(escape(name))</h3>\n\(chart(points, bucketMilliseconds: report.spend.bucketMilliseconds))</section>\n"
        }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
            .clean { color: #1a7f37; } .dirty { color: #b42318; font-weight: bold; }
            svg { background: #fafafa; border: 1px solid #ddd; } rect.bar { fill: #3b6fd4; }
            text { font-size: 11px; fill: #444; } section { margin-bottom: 1.5em; }
            </style></head>
            <body>
            \(body)</body></html>

            """
    }

    /// Bars from the first to the last bucket with spend (empty buckets in between stay empty), the y axis
    /// scaled to the largest bucket, with the first and last bucket times and the maximum labelled.
    static func chart(_ points: [(bucket: Int64, charged: Int64)], bucketMilliseconds: Int64) -> String {
        guard let first = points.first?.bucket, let last = points.last?.bucket else { return "" }
        let buckets = Double((last - first) / bucketMilliseconds + 1)
        let peak = Double(max(1, points.map(\.charged).max() ?? 1))
        let plotWidth = chartWidth - 2 * margin
        let plotHeight = chartHeight - 2 * margin / 2
        let barWidth = max(1, plotWidth / buckets * 0.8)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(chartWidth))\" height=\"\(Int(chartHeight))\" role=\"img\">\n"
        svg += "<line x1=\"\(margin)\" y1=\"\(margin / 2 + plotHeight)\" x2=\"\(margin + plotWidth)\" y2=\"\(margin / 2 + plotHeight)\" stroke=\"#888\"/>\n"
        for point in points {
            let index = Double((point.bucket - first) / bucketMilliseconds)
            let height = max(1, plotHeight * Double(point.charged) / peak)
            let x = margin + index * plotWidth / buckets
            let y = margin / 2 + plotHeight - height
            svg += "<rect class=\"bar\" x=\"\(format(x))\" y=\"\(format(y))\" width=\"\(format(barWidth))\" height=\"\(format(height))\">"
                + "<title>\(TimeText.format(milliseconds: point.bucket)): \(point.charged)</title></rect>\n"
        }
        svg += "<text x=\"\(margin)\" y=\"\(chartHeight - 4)\">\(TimeText.format(milliseconds: first))</text>\n"
        svg += "<text x=\"\(margin + plotWidth)\" y=\"\(chartHeight - 4)\" text-anchor=\"end\">\(TimeText.format(milliseconds: last))</text>\n"
        svg += "<text x=\"4\" y=\"\(margin / 2 + 10)\">\(Int64(peak))</text>\n"
        return svg + "</svg>"
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            default: result.append(character)
            }
        }
        return result
    }
}
