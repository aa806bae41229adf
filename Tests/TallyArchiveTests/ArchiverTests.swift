import Foundation
import Synchronization
import Testing
import TallyArchive
import TallyCore
import TallyStore

/// The background archiver seals by count and by age on its own thread, trims when told to, and stops.
@Suite struct ArchiverTests {
    /// Waits up to ten seconds for `condition`, polling.
    static func eventually(_ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(10)
        var met = try condition()
        while !met && Date() < deadline {
            usleep(20_000)
            met = try condition()
        }
        return met
    }

    @Test func sealsByCountThenByAgeAndTrimsInTheBackground() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 41)
        try workload.setup(store)
        var configuration = fixture.configuration(everyEvents: 100, retain: 20)
        configuration.everySeconds = 60
        configuration.pollIntervalMilliseconds = 10
        let notices = Mutex<[String]>([])
        let archiver = Archiver(store: store, configuration: configuration, clock: { [clock = fixture.clock] in clock.now }) { notice in
            if case .failed(let error) = notice { notices.withLock { $0.append("\(error)") } }
        }
        archiver.start()
        try workload.run(store, fixture: fixture, count: 250)
        let last = try store.lastSequence()
        let byCount = (last / 100) * 100
        #expect(try Self.eventually { try fixture.archive.list().segments.last?.lastSequence == byCount })
        #expect(try Self.eventually { try store.bounds().base.sequence == byCount })
        fixture.clock.advance(61_000)
        #expect(try Self.eventually { try fixture.archive.list().segments.last?.lastSequence == last }, "the rest is sealed once it is a minute old")
        archiver.stop()
        archiver.stop()
        #expect(notices.withLock { $0 }.isEmpty, "\(notices.withLock { $0 })")
        store.close()
        #expect(try Auditor(archive: fixture.archive, log: nil, stored: nil).run().isClean)
    }

    @Test func sealNowSealsEverythingPending() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var workload = Workload(seed: 42)
        try workload.setup(store)
        try workload.run(store, fixture: fixture, count: 40)
        let archiver = Archiver(store: store, configuration: fixture.configuration(everyEvents: 1_000))
        let outcome = try archiver.sealNow()
        let last = try store.lastSequence()
        #expect(outcome.sealed.count == 1 && outcome.sealed.first?.lastSequence == last)
        #expect(try archiver.sealNow().sealed.isEmpty)
        archiver.stop()
        store.close()
    }

    @Test func runArchivesUntilItsTaskIsCancelled() async throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        var configuration = fixture.configuration(everyEvents: 10)
        configuration.pollIntervalMilliseconds = 10
        let archiver = Archiver(store: store, configuration: configuration)
        let task = Task { await archiver.run() }
        for index in 0..<25 {
            _ = try await store.execute(.createTenant(CreateTenantCommand(tenantID: "tenant-\(index)", name: "t")))
        }
        // Generous: in a full parallel test run the task may wait seconds for a thread of the shared pool.
        let deadline = Date().addingTimeInterval(60)
        var sealedThrough: UInt64 = 0
        while sealedThrough < 20 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
            sealedThrough = try fixture.archive.list().segments.last?.lastSequence ?? 0
        }
        #expect(sealedThrough == 20)
        task.cancel()
        await task.value
        store.close()
    }

    @Test func aFailingPassIsReportedAndTheArchiverKeepsRunning() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        try FileManager.default.createDirectory(atPath: fixture.root, withIntermediateDirectories: true)
        let blocker = fixture.root + "/not-a-directory"
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        var configuration = ArchiverConfiguration(directory: blocker)
        configuration.pollIntervalMilliseconds = 10
        let failures = Mutex<[ArchiveError]>([])
        let archiver = Archiver(store: store, configuration: configuration, notify: { notice in
            if case .failed(let error) = notice { failures.withLock { $0.append(error) } }
        })
        archiver.start()
        #expect(Self.eventually { failures.withLock { !$0.isEmpty } })
        archiver.stop()
        #expect(failures.withLock { $0.first?.kind } == .io)
        store.close()
    }

    /// The nice value of this process's thread named `name` (Linux `/proc`), nil when there is none.
    static func niceValue(ofThreadNamed name: String) -> Int? {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for task in tasks {
            guard let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "pid (comm)", field 3 is the state; the nice value is field 19.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 16 ? Int(fields[16]) : nil
        }
        return nil
    }

    #if os(Linux)
    @Test func theArchiverThreadYieldsTheCoresToRequests() throws {
        let fixture = ArchiveFixture()
        let store = try fixture.open()
        defer { store.close() }
        let archiver = Archiver(store: store, configuration: fixture.configuration(everyEvents: 100), clock: { [clock = fixture.clock] in clock.now }) { _ in }
        archiver.start()
        defer { archiver.stop() }
        let own = Int(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        var nice: Int?
        #expect(Self.eventually { nice = Self.niceValue(ofThreadNamed: "tally-archiver"); return nice != nil })
        #expect(nice == min(19, own + 10), "the archiver runs 10 nice levels below the server's threads")
        // The store's own threads are named in the kernel too, at the server's priority.
        for name in ["tally-writer", "tally-flusher"] {
            #expect(Self.eventually { Self.niceValue(ofThreadNamed: name) == own }, "\(name) is named and not niced")
        }
    }
    #endif
}
