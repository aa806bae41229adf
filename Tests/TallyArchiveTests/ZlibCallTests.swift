import Foundation
import Testing

/// STYLE: every zlib return code is checked. A zlib call must go through `check(_:_:)`, or have its code
/// assigned and compared on the same statement's path (`code = ...`), or be one of the calls whose
/// result is not a status (sizes, checksums, the version) or only frees memory (`_ =` with a reason).
@Suite struct ZlibCallTests {
    @Test func everyZlibCallIsChecked() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("Sources/TallyArchive")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".swift") }
        #expect(names.contains("Zlib.swift"))
        let statusCalls = ["deflateInit2_", "deflateSetDictionary", "deflate", "inflateInit_", "inflateSetDictionary", "inflate",
                           "deflateEnd", "inflateEnd"]
        var unchecked: [String] = []
        for name in names {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() {
                let continuesCheck = number > 0 && lines[number - 1].hasSuffix("check(")
                for call in statusCalls where line.contains("CZlib.\(call)(") || line.range(of: "[^A-Za-z.]\(call)\\(&", options: .regularExpression) != nil {
                    let handled = line.contains("check(") || line.contains("code =") || line.contains("return CZlib.")
                        || line.contains("_ = \(call)(") || continuesCheck
                    if !handled { unchecked.append("\(name):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))") }
                }
            }
        }
        #expect(unchecked.isEmpty, "\(unchecked)")
    }
}
