import Foundation
import Testing
import TallyArchive
import TallyCore
import TallyStore
import TallyTestSupport

/// What a crash in the middle of sealing leaves behind is never taken for a complete segment.
@Suite struct SealingCrashTests {
    @Test func aSegmentWrittenButNotRenamedIsIgnoredThenCleanedAndResealed() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 31)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 300)
        let sealer = fixture.sealer(store, everyEvents: 100)
        _ = try sealer.sealPending(nowMilliseconds: fixture.now)
        let segments = try fixture.archive.list().segments
        let victim = try #require(segments.last)
        let complete = try fixture.archive.read(victim.name)
        // The crash: the new segment is fully written and synced under its temporary name, not renamed.
        try fixture.archive.remove(victim.name)
        try fixture.archive.remove(ArchiveDirectory.checkpointName(sequence: victim.lastSequence))
        try Data(complete).write(to: URL(fileURLWithPath: fixture.archive.filePath(".tmp-" + victim.name)))
        try Data(complete.prefix(complete.count / 3)).write(to: URL(fileURLWithPath: fixture.archive.filePath(".tmp-torn")))

        #expect(try fixture.archive.list().segments.count == segments.count - 1)
        let replay = try Replayer(archive: fixture.archive, log: nil).replay(to: .sequence(victim.firstSequence - 1))
        #expect(replay.lastSequence == victim.firstSequence - 1)

        _ = try fixture.sealer(store, everyEvents: 100).sealPending(nowMilliseconds: fixture.now)
        let names = try FileManager.default.contentsOfDirectory(atPath: fixture.archivePath)
        #expect(!names.contains { $0.hasPrefix(".tmp-") }, "\(names)")
        #expect(try fixture.archive.read(victim.name) == complete, "resealing the same range gives the same bytes")
        store.close()
        #expect(try Auditor(archive: fixture.archive, log: nil, stored: nil).run().isClean)
    }

    @Test func aSegmentWhoseCheckpointWasNotWrittenGetsItOnTheNextPass() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 32)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 250)
        _ = try fixture.sealer(store, everyEvents: 100).sealPending(nowMilliseconds: fixture.now)
        let last = try #require(try fixture.archive.list().segments.last)
        let name = ArchiveDirectory.checkpointName(sequence: last.lastSequence)
        let entry = ArchiveDirectory.CheckpointEntry(sequence: last.lastSequence)
        let original = try ArchiveReader(directory: fixture.archive).checkpoint(entry)
        try fixture.archive.remove(name)
        _ = try fixture.sealer(store, everyEvents: 100).sealPending(nowMilliseconds: fixture.now)
        // The repair replays the segment from the checkpoint before it and writes the same checkpoint.
        let repaired = try ArchiveReader(directory: fixture.archive).checkpoint(entry)
        #expect(repaired == original)
        #expect(try Auditor(archive: fixture.archive, log: nil, stored: nil).run().isClean)
        store.close()
    }

    @Test func aTruncatedSegmentUnderItsFinalNameIsReportedWithItsName() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 33)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 250)
        _ = try fixture.sealer(store, everyEvents: 100).sealPending(nowMilliseconds: fixture.now)
        store.close()
        let entry = try #require(try fixture.archive.list().segments.first)
        let bytes = try fixture.archive.read(entry.name)
        try Data(bytes.prefix(bytes.count - 10)).write(to: URL(fileURLWithPath: fixture.archive.filePath(entry.name)))
        do {
            _ = try Replayer(archive: fixture.archive, log: nil).replay(to: .sequence(entry.lastSequence - 1))
            Issue.record("a truncated segment was replayed")
        } catch {
            #expect(error.file == fixture.archive.filePath(entry.name) && error.kind == .corrupt, "\(error)")
        }
    }
}

/// A real `tally archive seal` process killed with SIGKILL at random moments, again and again: whatever
/// it left, every file under a final name is whole, and the next pass completes the archive.
@Suite struct SealingKillTests {
    @Test func killedSealsNeverLeaveAHalfSegment() throws {
        let seed = UInt64.random(in: 1...UInt64.max)
        var random = SystemRandomNumberGenerator()
        let fixture = ArchiveFixture()
        var store = try fixture.open()
        var workload = Workload(seed: seed)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 1_500)
        store.close()
        let executable = try BuiltExecutable.url("tally")
        for _ in 0..<8 {
            let child = Process()
            child.executableURL = executable
            child.arguments = ["archive", "seal", "--data-directory", fixture.dataDirectory, "--archive-directory", fixture.archivePath,
                               "--every-events", "40"]
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            usleep(useconds_t.random(in: 2_000...120_000, using: &random))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            let report = try Auditor(archive: fixture.archive, log: nil, stored: nil).run()
            #expect(report.isClean, "seed \(seed): \(report.findings)")
        }
        store = try fixture.open()
        _ = try fixture.sealer(store, everyEvents: 40).sealPending(nowMilliseconds: fixture.now, force: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: fixture.archivePath)
        #expect(!names.contains { $0.hasPrefix(".tmp-") }, "seed \(seed)")
        let last = try store.lastSequence()
        let expected = try store.storedState()
        store.close()
        let replay = try Replayer(archive: fixture.archive, log: nil).replay(to: .sequence(last))
        #expect(replay.state == expected, "seed \(seed)")
        #expect(try Auditor(archive: fixture.archive, log: nil, stored: nil).run().isClean, "seed \(seed)")
    }
}

/// The documented exit codes of the real `tally` commands: 0 clean, 1 discrepancies, 2 could not run.
@Suite struct CommandExitCodeTests {
    static func run(_ arguments: [String]) throws -> Int32 {
        let child = Process()
        child.executableURL = try BuiltExecutable.url("tally")
        child.arguments = arguments
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try child.run()
        child.waitUntilExit()
        return child.terminationStatus
    }

    @Test func auditAndReplayExitWithTheirDocumentedCodes() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 61)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 120)
        store.close()
        let location = ["--data-directory", fixture.dataDirectory, "--archive-directory", fixture.archivePath]
        #expect(try Self.run(["archive", "seal", "--every-events", "50"] + location) == 0)
        #expect(try Self.run(["audit", "--by", "agent", "--bucket", "1m"] + location) == 0)
        #expect(try Self.run(["replay", "--at", "40", "--format", "csv"] + location) == 0)
        #expect(try Self.run(["replay", "--at", "not-a-time"] + location) == 2)
        #expect(try Self.run(["replay", "--at", "999999"] + location) == 2, "a sequence the history does not reach")
        #expect(try Self.run(["audit", "--data-directory", fixture.root + "/nothing-here"]) == 2)
        let entry = try #require(try fixture.archive.list().segments.first)
        var bytes = try fixture.archive.read(entry.name)
        bytes[bytes.count / 2] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: fixture.archive.filePath(entry.name)))
        #expect(try Self.run(["audit"] + location) == 1)
    }
}
