import Foundation
import Testing
import TallyWire

/// `tallyd --archive`: the background archiver seals what the server writes, and the offline tools read it.
@Suite struct ServerArchiverTests {
    /// Runs `tally` with `arguments`; answers the exit status and standard output.
    static func tally(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = try ServerProcess.executable("tally")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func theServerSealsInTheBackgroundAndTheArchiveAuditsAndReplays() throws {
        let server = try ServerProcess(arguments: ["--archive", "--archive-every-events", "25", "--archive-every-seconds", "1"])
        defer { server.removeData() }
        let admin = HTTPTestClient(port: server.adminHTTPPort)
        let runtime = HTTPTestClient(port: server.httpPort)
        #expect(try admin.admin("POST", "/v1/admin/tenants", #"{"tenant_id": "acme-corp", "name": "Acme"}"#).status == 201)
        let key = try #require(try admin.admin("POST", "/v1/admin/api-keys", #"{"tenant_id": "acme-corp", "name": "a"}"#).json["key_secret"]?.str)
        #expect(try admin.admin("POST", "/v1/admin/budgets", #"{"scope": "tenant:acme-corp/workspace:w", "unit": "TOKENS", "allocated": {"unit": "TOKENS", "amount": 1000000}}"#).status == 201)
        for index in 0..<30 {
            let reserved = try runtime.tenant(key, "POST", "/v1/reservations", """
                {"idempotency_key": "k\(index)", "subject": {"workspace": "w", "agent": "a\(index % 3)"},
                 "action": {"kind": "llm.completion", "name": "m"}, "estimate": {"unit": "TOKENS", "amount": 100}}
                """)
            let id = try #require(reserved.json["reservation_id"]?.str)
            #expect(try runtime.tenant(key, "POST", "/v1/reservations/\(id)/commit", #"{"idempotency_key": "c", "actual": {"unit": "TOKENS", "amount": 90}}"#).status == 200)
        }
        // 64 events in all: two segments by count, the rest by age within about a second.
        let archive = server.dataDirectory + "/archive"
        let deadline = Date().addingTimeInterval(20)
        var segments: [String] = []
        repeat {
            Thread.sleep(forTimeInterval: 0.2)
            segments = ((try? FileManager.default.contentsOfDirectory(atPath: archive)) ?? []).filter { $0.hasSuffix(".tseg") }
        } while segments.count < 3 && Date() < deadline
        #expect(segments.count >= 3, "segments: \(segments)")
        #expect(server.stop() == 0)

        let (auditStatus, auditOutput) = try Self.tally(["audit", "--data-directory", server.dataDirectory])
        #expect(auditStatus == 0, "\(auditOutput)")
        let (replayStatus, replayOutput) = try Self.tally(["replay", "--data-directory", server.dataDirectory, "--at", "40", "--format", "csv"])
        #expect(replayStatus == 0, "\(replayOutput)")
        #expect(replayOutput.contains("tenant:acme-corp/workspace:w"))
    }
}
