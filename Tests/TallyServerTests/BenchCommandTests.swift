import Foundation
import Testing

/// `tally bench` against a real `tallyd`: every shape over the binary protocol and over HTTP runs, reports
/// the documented JSON fields, and its ledger check (acknowledged commits equal `spent`) passes.
@Suite struct BenchCommandTests {
    private static func bench(_ server: ServerProcess, _ arguments: [String]) throws -> [String: Any] {
        let (status, output) = try ServerArchiverTests.tally(
            ["bench", "--address", "127.0.0.1:\(server.port)", "--admin-key", ServerProcess.adminKey,
             "--http-address", "127.0.0.1:\(server.httpPort)", "--admin-http-address", "127.0.0.1:\(server.adminHTTPPort)",
             "--duration", "0.5", "--format", "json"] + arguments)
        #expect(status == 0, "tally bench \(arguments) exited \(status): \(output)")
        let line = try #require(output.split(separator: "\n").last.map(String.init), "no output")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
    }

    @Test func everyShapeRunsOverBothProtocolsAndTheLedgerChecksOut() throws {
        let server = try ServerProcess(arguments: ["--no-archive"])
        defer {
            server.stop()
            server.removeData()
        }
        for shape in ["lifecycle", "shared", "independent", "mix"] {
            for transport in [["--connections", "2", "--in-flight", "4"], ["--http", "--connections", "3"]] {
                let result = try Self.bench(server, ["--shape", shape] + transport)
                let what = "\(shape) \(transport)"
                #expect((result["operations"] as? Int ?? 0) > 0, "\(what): \(result)")
                #expect(result["errors"] as? Int == 0, "\(what): \(result)")
                #expect((result["ledger_check"] as? String)?.hasPrefix("ok") == true, "\(what): \(result)")
                for field in ["ops_per_second", "p50_us", "p99_us", "p999_us"] {
                    #expect(result[field] is Int, "\(what): \(field) missing in \(result)")
                }
            }
        }
    }

    @Test func oneRequestAtATimeAlsoMeasuresTheRawDurableWrite() throws {
        let server = try ServerProcess(arguments: ["--no-archive"])
        defer {
            server.stop()
            server.removeData()
        }
        // 2.5 s: three slices, each followed by its share of the raw writes, one ledger over all of them.
        let result = try Self.bench(server, ["--connections", "1", "--in-flight", "1", "--duration", "2.5"])
        #expect((result["raw_write_p50_us"] as? Int ?? 0) > 0, "\(result)")
        #expect((result["operations"] as? Int ?? 0) > 0, "\(result)")
        #expect(result["errors"] as? Int == 0, "\(result)")
        #expect((result["ledger_check"] as? String)?.hasPrefix("ok") == true, "every slice's commits are counted once: \(result)")
    }
}
