import Foundation
import Testing
import TallyClient
import TallyCore
import TallyWire
import TallyTestSupport

/// `tallyd` (archiving by default): the background archiver seals what the server writes, and the offline tools read it.
@Suite struct ServerArchiverTests {
    /// Runs `tally` with `arguments`; answers the exit status and standard output.
    static func tally(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = try BuiltExecutable.url("tally")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Runs `tallyd` with `arguments` until it exits (it must refuse them before serving); answers the exit
    /// status and standard error.
    static func tallydRefusing(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = try BuiltExecutable.url("tallyd")
        let directory = NSTemporaryDirectory() + "tallyd-flags-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        process.arguments = ["--data-directory", directory, "--port", "0", "--no-http", "--admin-key", ServerProcess.adminKey] + arguments
        let pipe = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = pipe
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func archiveOptionsWithNoArchiveAreRefusedNotIgnored() throws {
        for option in [["--archive-every-events", "5"], ["--archive-every-seconds", "1"], ["--archive-busy-backlog-events", "10"],
                       ["--archive-directory", "/tmp/elsewhere"], ["--retain-live-events", "100"]] {
            let (status, output) = try Self.tallydRefusing(["--no-archive"] + option)
            #expect(status != 0, "\(option)")
            #expect(output.contains("\(option[0]) has no effect with --no-archive"), "\(option): \(output)")
        }
        let (status, output) = try Self.tallydRefusing(["--no-archive", "--archive-every-events", "5", "--retain-live-events", "1"])
        #expect(status != 0)
        #expect(output.contains("--archive-every-events, --retain-live-events have no effect with --no-archive"), "\(output)")
        let (zeroStatus, zeroOutput) = try Self.tallydRefusing(["--archive-every-events", "0"])
        #expect(zeroStatus != 0)
        #expect(zeroOutput.contains("--archive-every-events must be at least 1"), "\(zeroOutput)")
    }

    @Test func theServerSealsInTheBackgroundAndTheArchiveAuditsAndReplays() throws {
        // The archiver is on by default: no flag turns it on.
        let server = try ServerProcess(arguments: ["--archive-every-events", "25", "--archive-every-seconds", "1"])
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

    @Test func tailEndsWhenItsReaderGoesAwayEvenOnAQuietLedger() throws {
        let server = try ServerProcess(arguments: ["--no-archive"])
        defer {
            server.stop()
            server.removeData()
        }
        #expect(try HTTPTestClient(port: server.adminHTTPPort).admin("POST", "/v1/admin/tenants", #"{"tenant_id": "acme-corp", "name": "Acme"}"#).status == 201)
        let process = Process()
        process.executableURL = try BuiltExecutable.url("tally")
        process.arguments = ["tail", "--address", "127.0.0.1:\(server.port)", "--admin-key", ServerProcess.adminKey]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The one event there is arrives; then the reader leaves (as `head -1` does) and nothing more is written.
        let first = pipe.fileHandleForReading.availableData
        #expect(String(decoding: first, as: UTF8.self).contains("TenantCreated  tenant=acme-corp"), "\(String(decoding: first, as: UTF8.self))")
        try pipe.fileHandleForReading.close()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }  // bounded: 10 s
        let ended = !process.isRunning
        if !ended { process.terminate() }
        #expect(ended, "tally tail still runs with nobody reading it")
        if ended { #expect(process.terminationStatus == 0) }
    }

    @Test func aSubscriptionBelowTheTrimPointIsRefusedNotSkipped() async throws {
        let server = try ServerProcess(arguments: [
            "--archive", "--archive-every-events", "10", "--archive-every-seconds", "1", "--retain-live-events", "5",
        ])
        defer { server.stop(); server.removeData() }
        let admin = HTTPTestClient(port: server.adminHTTPPort)
        for index in 0..<30 {
            #expect(try admin.admin("POST", "/v1/admin/tenants", #"{"tenant_id": "tenant-\#(index)", "name": "t"}"#).status == 201)
        }
        let connection = try await TallyConnection.connect(host: "127.0.0.1", port: server.port, credential: .adminKey(ServerProcess.adminKey))
        defer { Task { await connection.close() } }
        // Wait (bounded) until the archiver has trimmed event 1 away: a subscription from 1 then fails.
        var refusal: WireError?
        let deadline = Date().addingTimeInterval(20)
        while refusal == nil && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            do {
                for try await event in connection.subscribe(from: 1, credit: 1) {
                    // Event 1 is still live: not trimmed yet.
                    #expect(try EventCodec.decode(event.record).sequence == 1)
                    break
                }
            } catch let error as WireError {
                refusal = error
            }
        }
        let error = try #require(refusal, "no refusal within 20 s")
        #expect(error.message.contains("trimmed"), "\(error)")
        // From the first live event on, the subscription works.
        let first = try #require(error.message.split(separator: " ").last.flatMap { UInt64($0) })
        for try await event in connection.subscribe(from: first, credit: 1) {
            #expect(try EventCodec.decode(event.record).sequence == first)
            break
        }
    }
}
