import Foundation
import Synchronization
import Testing
@testable import TallyCore
@testable import TallyStore
import TallyTestSupport

/// A real process writes to a store and is killed with SIGKILL at a random moment; everything it had
/// acknowledged must be there after reopening, with an unbroken chain and projections equal to a replay.
@Suite struct CrashRecoveryTests {
    /// Runs the torture child for about `milliseconds`, kills it with SIGKILL, and returns its complete lines.
    static func runAndKill(directory: String, seed: UInt64, milliseconds: Int) throws -> [String] {
        let child = Process()
        child.executableURL = try BuiltExecutable.url("tally")
        child.arguments = ["torture-writer", "--data-directory", directory, "--seed", String(seed), "--threads", "4"]
        let pipe = Pipe()
        child.standardOutput = pipe
        child.standardError = FileHandle.nullDevice
        let collected = Mutex(Data())
        let reader = DispatchGroup()
        reader.enter()
        try child.run()
        DispatchQueue.global().async {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            collected.withLock { $0 = data }
            reader.leave()
        }
        usleep(useconds_t(milliseconds * 1_000))
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        reader.wait()
        let text = String(decoding: collected.withLock { $0 }, as: UTF8.self)
        // A line without its newline was cut by the kill and is not an acknowledgement.
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    @Test func everyAcknowledgedCommandSurvivesSIGKILL() throws {
        let fixture = StoreFixture()
        var random = StoreRandom(seed: 20_261_129)
        var acknowledged = 0
        for round in 1...4 {
            let lines = try Self.runAndKill(directory: fixture.directory, seed: UInt64(round), milliseconds: 400 + Int(random.next() % 1_200))
            acknowledged += lines.count
            // Reopening runs recovery's checks (format, projections at the log's end, chain head).
            let store = try LedgerStore(directory: fixture.directory)
            let state = try store.storedState()
            let replayed = try StoreFixture.replay(store)
            store.close()
            for line in lines {
                let parts = line.split(separator: " ").map(String.init)
                #expect(parts.count == 3 && parts[0] == "ACK", "unexpected output line: \(line)")
                guard parts.count == 3 else { continue }
                let status = state.reservations[ReservationID(parts[2])]?.status
                switch parts[1] {
                case "reserve": #expect(status != nil, "round \(round): acknowledged reservation \(parts[2]) is missing")
                case "commit": #expect(status == .committed, "round \(round): acknowledged commit of \(parts[2]) is missing")
                case "release": #expect(status == .released, "round \(round): acknowledged release of \(parts[2]) is missing")
                default:
                    let key = IdempotencyKey(tenant: "acme", endpoint: .event, key: parts[2])
                    #expect(state.idempotency[key] != nil, "round \(round): acknowledged debit \(parts[2]) is missing")
                }
            }
            #expect(state == replayed, "round \(round): projections differ from a replay of the log")
            let report = try Maintenance.verify(directory: fixture.directory)
            #expect(report.isClean, "round \(round): \(report.findings)")
        }
        #expect(acknowledged > 0, "the child must have acknowledged something before it was killed")
    }
}
