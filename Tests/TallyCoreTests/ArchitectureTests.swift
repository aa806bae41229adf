import Foundation
import Testing

/// STYLE principle 10: the architecture rules are tested, not remembered.
@Suite struct ArchitectureTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func swiftFiles(under folders: [String]) -> [(path: String, text: String)] {
        folders.flatMap { folder -> [(String, String)] in
            let base = root.appendingPathComponent(folder)
            let paths = (FileManager.default.enumerator(atPath: base.path)?.allObjects as? [String]) ?? []
            return paths.filter { $0.hasSuffix(".swift") }.compactMap { relative in
                let url = base.appendingPathComponent(relative)
                return (try? String(contentsOf: url, encoding: .utf8)).map { ("\(folder)/\(relative)", $0) }
            }
        }
    }

    @Test(arguments: [("CLMDB", "Sources/TallyStore/"), ("CZlib", "Sources/TallyArchive/")])
    func aCModuleIsImportedByItsOwnModuleOnly(module: String, owner: String) {
        for file in Self.swiftFiles(under: ["Sources", "tools", "Tests"]) where !file.path.hasPrefix(owner) {
            let imports = file.text.split(separator: "\n").contains { line in
                line.trimmingCharacters(in: .whitespaces).hasSuffix("import \(module)")
            }
            #expect(!imports, "\(file.path) imports \(module); only \(owner) may")
        }
    }

    @Test func theCoreUsesTheStandardLibraryOnly() {
        for file in Self.swiftFiles(under: ["Sources/TallyCore"]) {
            for line in file.text.split(separator: "\n") where line.hasPrefix("import ") {
                #expect(line == "import Synchronization", "\(file.path): \(line) (TallyCore is stdlib only)")
            }
        }
    }

    @Test func everyUncheckedSendableSaysWhyItIsSafe() {
        for file in Self.swiftFiles(under: ["Sources", "tools"]) {
            let lines = file.text.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() where line.contains("@unchecked Sendable") || line.contains("nonisolated(unsafe)") {
                let above = index > 0 ? lines[index - 1] : ""
                #expect(above.contains("// Safe:") && line.contains("// Safe:"),
                        "\(file.path):\(index + 1) needs a `// Safe:` reason on the line above and a `// Safe:` mark on its own line")
            }
        }
    }

    @Test func everyLMDBCallGoesThroughCheck() {
        // An mdb_* call whose result is neither checked nor explicitly handled is an ignored return code.
        let allowed = ["mdb_txn_abort", "mdb_env_close", "mdb_cursor_close", "mdb_strerror", "mdb_txn_begin", "mdb_put",
                       "mdb_get", "mdb_del", "mdb_cursor_get", "mdb_dbi_open"]
        for file in Self.swiftFiles(under: ["Sources/TallyStore"]) {
            for (index, line) in file.text.split(separator: "\n").enumerated() {
                guard let range = line.range(of: "mdb_[a-z_]+\\(", options: .regularExpression) else { continue }
                let name = String(line[range].dropLast())
                let handled = line.contains("check(") || line.contains("return ") || line.contains("= ") || allowed.contains(name)
                #expect(handled, "\(file.path):\(index + 1) ignores the result of \(name)")
            }
        }
    }
}
