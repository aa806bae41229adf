import Foundation
import Testing
@testable import TallyArchive
import TallyTools

/// The HTML report opened in headless Chromium (Debian's `chromium`): the screenshot must show the bars.
/// It takes a few seconds, but needs Chromium installed, so it runs only with `TALLY_CHROMIUM_TEST=1`.
@Suite struct AuditHTMLChromiumTests {
    static let enabled = ProcessInfo.processInfo.environment["TALLY_CHROMIUM_TEST"] == "1"

    @Test(.enabled(if: enabled)) func theReportRendersItsChartsInChromium() throws {
        let root = NSTemporaryDirectory() + "tally-html-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let report = try ArchiveToolTests.auditedLedger(root: root)
        let page = root + "/report.html"
        let shot = root + "/report.png"
        try Data(AuditHTML.page(report).utf8).write(to: URL(fileURLWithPath: page))
        let chromium = Process()
        chromium.executableURL = URL(fileURLWithPath: "/usr/bin/chromium")
        chromium.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=900,700",
                              "--screenshot=\(shot)", "file://\(page)"]
        chromium.standardOutput = FileHandle.nullDevice
        chromium.standardError = FileHandle.nullDevice
        try chromium.run()
        chromium.waitUntilExit()
        #expect(chromium.terminationStatus == 0)
        let pixels = try PNGPixels(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: shot))))
        // The bars are #3b6fd4; a chart is hundreds of them.
        let bars = pixels.count { $0 == (0x3b, 0x6f, 0xd4) }
        #expect(bars > 2_000, "\(bars) bar pixels in a \(pixels.width)x\(pixels.height) screenshot")
    }
}

/// Just enough of PNG to count colours in a screenshot: 8-bit RGB or RGBA, not interlaced.
struct PNGPixels {
    let width: Int
    let height: Int
    let channels: Int
    let rows: [[UInt8]]

    init(bytes: [UInt8]) throws {
        var offset = 8
        var header: [UInt8] = []
        var data: [UInt8] = []
        while offset + 8 <= bytes.count {
            let length = bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let body = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            if type == "IHDR" { header = body }
            if type == "IDAT" { data += body }
            offset += 12 + length
        }
        width = header[0..<4].reduce(0) { $0 << 8 | Int($1) }
        height = header[4..<8].reduce(0) { $0 << 8 | Int($1) }
        guard header[8] == 8, header[9] == 2 || header[9] == 6, header[12] == 0 else {
            throw ArchiveError(.corrupt, file: "screenshot", "unsupported PNG layout \(header)")
        }
        channels = header[9] == 6 ? 4 : 3
        let stride = width * channels
        let raw = try Zlib.inflate(data[...], dictionary: [], expectedLength: height * (stride + 1))
        var rows: [[UInt8]] = []
        var previous = [UInt8](repeating: 0, count: stride)
        for row in 0..<height {
            let filter = raw[row * (stride + 1)]
            var line = Array(raw[(row * (stride + 1) + 1)..<((row + 1) * (stride + 1))])
            for index in 0..<stride {
                let left = index >= channels ? Int(line[index - channels]) : 0
                let up = Int(previous[index])
                let upLeft = index >= channels ? Int(previous[index - channels]) : 0
                let predictor: Int
                switch filter {
                case 1: predictor = left
                case 2: predictor = up
                case 3: predictor = (left + up) / 2
                case 4:
                    let estimate = left + up - upLeft
                    let (a, b, c) = (abs(estimate - left), abs(estimate - up), abs(estimate - upLeft))
                    predictor = a <= b && a <= c ? left : (b <= c ? up : upLeft)
                default: predictor = 0
                }
                line[index] = UInt8(truncatingIfNeeded: Int(line[index]) + predictor)
            }
            rows.append(line)
            previous = line
        }
        self.rows = rows
    }

    func count(where matches: ((UInt8, UInt8, UInt8)) -> Bool) -> Int {
        rows.reduce(0) { total, row in
            total + stride(from: 0, to: row.count, by: channels).filter { matches((row[$0], row[$0 + 1], row[$0 + 2])) }.count
        }
    }
}
