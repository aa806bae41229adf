import Foundation

/// Where the test suites that start real processes find `tallyd` and `tally`.
public enum BuiltExecutable {
    public struct NotFound: Error, CustomStringConvertible {
        public let description: String
    }

    /// The executable `name` from the directory `TALLY_TEST_EXECUTABLES` names (tools/test points it at the
    /// release build in CI), or else the one built next to the test bundle (up to four directories up).
    public static func url(_ name: String) throws -> URL {
        if let other = ProcessInfo.processInfo.environment["TALLY_TEST_EXECUTABLES"] {
            let candidate = URL(fileURLWithPath: other).appendingPathComponent(name)
            guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
                throw NotFound(description: "TALLY_TEST_EXECUTABLES names \(other), which holds no executable \(name)")
            }
            return candidate
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw NotFound(description: "\(name) was not built next to \(CommandLine.arguments[0]); run `swift build --build-tests` first")
    }
}
