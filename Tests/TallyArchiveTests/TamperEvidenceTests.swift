import Foundation
import Testing
import TallyArchive
import TallyCore
import TallyStore

/// Damage to the archive is found by the audit and named: file, offset where it is known, sequence.
@Suite struct TamperEvidenceTests {
    /// A sealed history of about 1,000 events in segments of 200, and the chain value after every event.
    struct History {
        let fixture = ArchiveFixture()
        var chains: [UInt64: [UInt8]] = [:]
        var segments: [ArchiveDirectory.SegmentEntry] = []

        init(seed: UInt64, tenant: String = "acme") throws {
            let store = try fixture.open()
            var workload = Workload(seed: seed, tenant: tenant)
            try workload.setup(store)
            try workload.run(store, fixture: fixture, count: 900)
            _ = try fixture.sealer(store, everyEvents: 200).sealPending(nowMilliseconds: fixture.now)
            for stored in try store.events(from: 1, limit: Int.max) { chains[stored.event.sequence] = stored.chain }
            store.close()
            segments = try fixture.archive.list().segments
        }

        /// A copy of the archive directory to damage.
        func copy(_ name: String) throws -> ArchiveDirectory {
            let path = fixture.root + "/" + name
            try FileManager.default.copyItem(atPath: fixture.archivePath, toPath: path)
            return ArchiveDirectory(path: path)
        }
    }

    static func audit(_ archive: ArchiveDirectory) throws -> AuditReport {
        try Auditor(archive: archive, log: nil, stored: nil).run()
    }

    /// Re-encodes a segment from edited records (sequence and timestamp rewritten to their positions),
    /// keeping the chain tags an unaware editor would keep.
    static func rewrite(
        _ archive: ArchiveDirectory, _ entry: ArchiveDirectory.SegmentEntry, chains: [UInt64: [UInt8]],
        edit: (inout [[UInt8]]) -> Void
    ) throws -> String {
        let decoded = try ArchiveReader(directory: archive).segment(entry)
        var records = Array(decoded.records)
        edit(&records)
        let first = entry.firstSequence
        for index in records.indices {
            let original = decoded.records[min(index, decoded.records.count - 1)]
            var bytes = records[index]
            bytes.replaceSubrange(2..<18, with: original[2..<18])
            let sequence = first + UInt64(index)
            for byte in 0..<8 { bytes[2 + byte] = UInt8(truncatingIfNeeded: sequence >> UInt64(56 - 8 * byte)) }
            records[index] = bytes
        }
        let kept = (0..<records.count).map { chains[first + UInt64($0)]! }
        let bytes = try SegmentCodec.encode(records: records, chains: kept, entryChain: decoded.header.entryChain)
        try archive.remove(entry.name)
        let name = ArchiveDirectory.segmentName(first: first, last: first + UInt64(records.count) - 1)
        try archive.writeAtomically(name, bytes)
        return archive.filePath(name)
    }

    @Test func anUntouchedArchiveAuditsClean() throws {
        let history = try History(seed: 5)
        let report = try Self.audit(history.fixture.archive)
        #expect(report.findings.isEmpty, "\(report.findings)")
        #expect(report.segmentsChecked == history.segments.count && report.checkpointsChecked == history.segments.count)
        #expect(report.eventsChecked == history.segments.last?.lastSequence)
        #expect(!report.spend.rows(.agent).isEmpty)
    }

    @Test func aFlippedByteIsNamedWithItsSegment() throws {
        let history = try History(seed: 5)
        let archive = try history.copy("flipped")
        let entry = history.segments[2]
        let path = archive.filePath(entry.name)
        var bytes = try archive.read(entry.name)
        bytes[bytes.count / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let findings = try Self.audit(archive).findings
        #expect(findings.first?.file == path && findings.first?.offset == bytes.count - 4, "\(findings)")
        #expect(findings.first?.message.contains("CRC") == true)
        #expect(throws: ArchiveError.self) { _ = try Replayer(archive: archive, log: nil).replay(to: .sequence(entry.lastSequence - 1)) }
    }

    @Test func aRemovedEventIsNamedBySequence() throws {
        let history = try History(seed: 5)
        let archive = try history.copy("removed")
        let entry = history.segments[2]
        let path = try Self.rewrite(archive, entry, chains: history.chains) { $0.remove(at: 17) }
        let findings = try Self.audit(archive).findings
        #expect(findings.contains { $0.file == path && $0.sequence == entry.firstSequence + 17 && $0.message.contains("chain breaks") }, "\(findings)")
        #expect(findings.contains { $0.sequence == entry.lastSequence && $0.message.contains("in no segment") }, "\(findings)")
    }

    @Test func twoSwappedEventsAreNamedBySequence() throws {
        let history = try History(seed: 5)
        let archive = try history.copy("swapped")
        let entry = history.segments[1]
        let path = try Self.rewrite(archive, entry, chains: history.chains) { $0.swapAt(40, 41) }
        let findings = try Self.audit(archive).findings
        #expect(findings.first { $0.file == path }?.sequence == entry.firstSequence + 40, "\(findings)")
    }

    @Test func aDeletedSegmentIsNamedAsAGap() throws {
        let history = try History(seed: 5)
        let archive = try history.copy("deleted")
        let entry = history.segments[1]
        try archive.remove(entry.name)
        let findings = try Self.audit(archive).findings
        #expect(findings.contains { $0.sequence == entry.firstSequence && $0.message.contains("\(entry.firstSequence)...\(entry.lastSequence) are in no segment") }, "\(findings)")
        #expect(throws: ArchiveError.self) { _ = try Replayer(archive: archive, log: nil).replay(to: .sequence(entry.lastSequence - 1)) }
    }

    @Test func aSegmentFromAnotherRunIsNamed() throws {
        let history = try History(seed: 5)
        let other = try History(seed: 6, tenant: "zeta")
        let archive = try history.copy("replaced")
        let entry = history.segments[2]
        guard let foreign = other.segments.first(where: { $0.firstSequence == entry.firstSequence && $0.lastSequence == entry.lastSequence }) else {
            Issue.record("the other run has no segment \(entry.name)")
            return
        }
        try archive.remove(entry.name)
        try archive.writeAtomically(entry.name, try other.fixture.archive.read(foreign.name))
        let findings = try Self.audit(archive).findings
        let path = archive.filePath(entry.name)
        #expect(findings.contains { $0.file == path && $0.offset == 52 && $0.sequence == entry.firstSequence && $0.message.contains("entry chain") }, "\(findings)")
    }

    @Test func aCheckpointFromAnotherRunIsNamed() throws {
        let history = try History(seed: 5)
        let other = try History(seed: 6, tenant: "zeta")
        let archive = try history.copy("checkpoint")
        let sequence = history.segments[1].lastSequence
        let name = ArchiveDirectory.checkpointName(sequence: sequence)
        try archive.remove(name)
        try archive.writeAtomically(name, try other.fixture.archive.read(name))
        let findings = try Self.audit(archive).findings
        #expect(findings.contains { $0.file == archive.filePath(name) && $0.sequence == sequence && $0.message.contains("differs from the replay") }, "\(findings)")
    }
}
