import Foundation
import Glibc
import TallyCore

/// The two LMDB environments of a data directory (format 2).
///
/// The log (`data.mdb` in the data directory: `events`, and `meta` with the log's position and base) is
/// all a batch makes durable: one fsync of the pages it appended. The projections (`projections/data.mdb`)
/// are written right after, in a transaction of their own that a running server does not wait for the disk
/// for (readers see it at once), and record the log position they cover. What they miss after a crash is
/// replayed from the log at the next open (`catchUp`).
///
/// A crash of the process leaves the projections consistent: the kernel holds every page written, and
/// LMDB never overwrites the pages of its last commit. A crash of the machine may leave them damaged
/// (pages of later commits reach the disk in any order). While a server writes them without waiting for
/// the disk, `projections.unsynced` holds the boot id; finding it at open with another boot id means the
/// machine went down meanwhile, and the projections are rebuilt from the log.
struct StoreFiles {
    let log: LMDBEnvironment
    let projections: Projections

    var logMeta: LMDBDatabase { log.database(StoreLayout.meta) }

    /// Where the log ends now (`LogPosition.current`).
    func logEnd() throws -> LogPosition {
        try log.read { txn in try LogPosition.current(events: log.database(StoreLayout.events), meta: logMeta, txn) }
    }

    /// Refuses a directory that holds no store (before anything is opened or created in it).
    static func requireStore(_ directory: String) throws(StoreError) {
        guard FileManager.default.fileExists(atPath: directory + "/data.mdb") else {
            throw StoreError(.io, "\(directory) holds no Tally data (no data.mdb)")
        }
    }

    static func projectionsPath(_ directory: String) -> String { directory + "/" + StoreLayout.projectionsDirectory }

    /// Opens the log's environment (read-only for tools beside a server).
    static func openLog(_ directory: String, mapSizeBytes: Int = 1 << 30, readOnly: Bool) throws(StoreError) -> LMDBEnvironment {
        do {
            return try LMDBEnvironment(
                directory: directory, mapSizeBytes: mapSizeBytes, databaseNames: StoreLayout.logTables, readOnly: readOnly,
                extraDatabases: StoreLayout.projections.count)
        } catch {
            throw StoreError(error, doing: "opening \(directory)")
        }
    }

    /// Opens the projections' environment, creating it when writable.
    static func openProjections(
        _ directory: String, mapSizeBytes: Int = 1 << 30, readOnly: Bool, recordDigest: (@Sendable (IdempotencyKey) -> UInt64)? = nil
    ) throws(StoreError) -> Projections {
        let path = projectionsPath(directory)
        if readOnly {
            guard FileManager.default.fileExists(atPath: path + "/data.mdb") else {
                throw StoreError(.formatMismatch, """
                    \(directory) keeps its projections in the log's environment (format 1): open it once with tallyd \
                    (or tally rebuild) to upgrade it to format 2
                    """)
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw StoreError(.io, "cannot create \(path): \(error)")
            }
        }
        do {
            return Projections(
                try LMDBEnvironment(directory: path, mapSizeBytes: mapSizeBytes, databaseNames: StoreLayout.projectionTables, readOnly: readOnly),
                recordDigest: recordDigest)
        } catch {
            throw StoreError(error, doing: "opening \(path)")
        }
    }

    /// Opens both environments (creating them when writable), closing the log's again if the projections'
    /// cannot be opened.
    static func openBoth(
        _ directory: String, mapSizeBytes: Int = 1 << 30, readOnly: Bool, recordDigest: (@Sendable (IdempotencyKey) -> UInt64)? = nil
    ) throws(StoreError) -> StoreFiles {
        let log = try openLog(directory, mapSizeBytes: mapSizeBytes, readOnly: readOnly)
        do {
            return StoreFiles(
                log: log, projections: try openProjections(directory, mapSizeBytes: mapSizeBytes, readOnly: readOnly, recordDigest: recordDigest))
        } catch {
            log.close()
            throw error
        }
    }

    /// Opens both environments of an existing data directory; a writable open upgrades format 1 first.
    static func open(_ directory: String, mapSizeBytes: Int = 1 << 30, readOnly: Bool) throws(StoreError) -> StoreFiles {
        try requireStore(directory)
        let files = try openBoth(directory, mapSizeBytes: mapSizeBytes, readOnly: readOnly)
        if !readOnly {
            do { try files.upgradeFromOneEnvironment(directory) } catch {
                files.close()
                throw error
            }
        }
        return files
    }

    func close() {
        projections.environment.close()
        log.close()
    }

    // MARK: Format 1

    /// A format 1 directory kept its projections beside the log: they are copied into the projections'
    /// environment, which then covers the log's position, and only then removed from the log's, whose format
    /// becomes 2. An upgrade that stopped halfway finds format 1 again and starts over.
    @available(*, noasync, message: "an upgrade runs write transactions")
    func upgradeFromOneEnvironment(_ directory: String, progress report: (@Sendable (String) -> Void)? = nil) throws(StoreError) {
        let doing = "upgrading \(directory) to format \(StoreLayout.formatVersion)"
        var progress = OpenProgress(report)
        do {
            let format = try log.read { txn in try txn.get(logMeta, StoreLayout.metaFormat).flatMap(StoreLayout.uint64) }
            guard format == UInt64(StoreLayout.formatVersionWithOneEnvironment) else { return }
            progress.say("upgrading \(directory) from format 1: copying the projections into \(StoreLayout.projectionsDirectory)/")
            var copied = 0
            try log.openDatabases(StoreLayout.projections)
            let target = projections.environment
            try target.writeGrowing(doing: doing, limitBytes: Maintenance.toolMapSizeBytesMax) { txn in
                for name in StoreLayout.projectionTables { try txn.clear(target.database(name)) }
            }
            let position = try logEnd()
            try log.read { txn in
                for name in StoreLayout.projections {
                    var chunk: [([UInt8], [UInt8])] = []
                    func flush() throws {
                        try target.writeGrowing(doing: doing, limitBytes: Maintenance.toolMapSizeBytesMax) { write in
                            for (key, value) in chunk { try write.put(target.database(name), key, value) }
                        }
                        chunk.removeAll(keepingCapacity: true)
                    }
                    try txn.scan(log.database(name)) { key, value in
                        chunk.append((key, value))
                        if chunk.count == 8_192 {
                            try flush()
                            copied += 8_192
                            progress.tick("upgrading from format 1: \(copied) projection entries copied")
                        }
                        return true
                    }
                    try flush()
                }
            }
            try target.writeGrowing(doing: doing, limitBytes: Maintenance.toolMapSizeBytesMax) { txn in
                // The tables as they were (idempotency records under their keys): converted by `prepareProjections`.
                try txn.put(
                    projections.meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.projectionsFormatWithKeyOrderedRecords)))
                try position.write(to: projections.meta, txn)
            }
            try log.writeGrowing(doing: doing, limitBytes: Maintenance.toolMapSizeBytesMax) { txn in
                for name in StoreLayout.projections { try txn.clear(log.database(name)) }
                try txn.put(logMeta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.formatVersion)))
            }
            progress.say("upgraded \(directory) to format \(StoreLayout.formatVersion) in \(progress.elapsed)")
        } catch {
            throw StoreError(error, doing: doing)
        }
    }

    // MARK: Bringing the projections to the log's end

    /// Lines about a long step of opening: at the start, about every two seconds, and at the end.
    struct OpenProgress {
        private let report: (@Sendable (String) -> Void)?
        private let started = ContinuousClock.now
        private var lastReport = ContinuousClock.now

        init(_ report: (@Sendable (String) -> Void)?) { self.report = report }

        func say(_ line: @autoclosure () -> String) { report?(line()) }

        /// `line` when two seconds have passed since the last one.
        mutating func tick(_ line: @autoclosure () -> String) {
            guard let report, ContinuousClock.now - lastReport >= .seconds(2) else { return }
            lastReport = .now
            report(line())
        }

        var elapsed: String {
            let duration = ContinuousClock.now - started
            return String(format: "%.1f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        }
    }

    /// Makes the projections usable for a writer: projections that may be damaged (the machine stopped
    /// while they were written without waiting for the disk) or that a rebuild left unfinished are rebuilt
    /// from the log when it is whole (untrimmed); then whatever the log holds past them is replayed.
    @available(*, noasync, message: "runs write transactions")
    func prepareProjections(_ directory: String, limitBytes: Int, progress: (@Sendable (String) -> Void)? = nil) throws(StoreError) {
        let doing = "bringing the projections of \(directory) up to the log"
        do {
            var format = try projections.environment.read { txn in
                try txn.get(projections.meta, StoreLayout.metaFormat).flatMap(StoreLayout.uint64)
            }
            let damaged = !Self.projectionsSurvivedLastRun(directory)
            if format == UInt64(StoreLayout.projectionsFormatWithKeyOrderedRecords) {
                // Projections that may be damaged are rebuilt below, in format 3, without being read.
                if !damaged {
                    var converting = OpenProgress(progress)
                    try projections.convertKeyOrderedRecords(doing: doing, limitBytes: limitBytes, progress: &converting)
                }
                format = UInt64(StoreLayout.projectionsFormatVersion)
            }
            if let format, format != UInt64(StoreLayout.projectionsFormatVersion) {
                throw StoreError(.formatMismatch, """
                    the projections have format \(format); this Tally reads formats \(StoreLayout.projectionsFormatWithKeyOrderedRecords) \
                    and \(StoreLayout.projectionsFormatVersion)
                    """)
            }
            let end = try logEnd()
            let covered = try projections.environment.read { txn in try LogPosition.read(from: projections.meta, txn) }
            // Why they must be rebuilt from scratch, if they must.
            let rebuild: String? = damaged
                ? "the machine stopped while they were being written" : format == nil ? "a rebuild that did not finish" : nil
            guard rebuild != nil || covered.lastSequence != end.lastSequence else { return }
            if let rebuild {
                // Refused before the marker is touched: the next open must find the same reason.
                let base = try log.read { txn in try LogBase.read(from: logMeta, txn) }
                guard base.sequence == 0 else {
                    throw StoreError(.corrupt, """
                        the projections must be rebuilt (\(rebuild)), and the live log is trimmed through \(base.sequence): \
                        run tally rebuild with the archive directory
                        """)
                }
            }
            // Rebuilding or catching up writes without waiting for the disk and syncs once at the end. From
            // here the marker holds this boot: should the machine stop meanwhile, the next open rebuilds;
            // should only the process stop, the projections are consistent at the last chunk they cover and
            // the next open goes on from there.
            try Self.markUnsynced(directory)
            try projections.environment.setDurable(false)
            if rebuild != nil {
                let target = projections.environment
                try target.writeGrowing(doing: doing, limitBytes: limitBytes) { txn in
                    for name in StoreLayout.projectionTables { try txn.clear(target.database(name)) }
                    try txn.put(projections.meta, StoreLayout.metaFormat, StoreLayout.bigEndian(UInt64(StoreLayout.projectionsFormatVersion)))
                    try LogPosition().write(to: projections.meta, txn)
                }
            }
            try catchUp(limitBytes: limitBytes, progress: OpenProgress(progress), rebuilding: rebuild)
            try projections.environment.sync()
            try projections.environment.setDurable(true)
        } catch {
            throw StoreError(error, doing: doing, otherwise: .corrupt)
        }
    }

    /// Replays the events past the position the projections cover into them, in chunks (memory stays
    /// bounded by the working set); returns how many. Only where nothing else writes the projections
    /// (at open, or by the writer between batches, on whichever thread does its work).
    @available(*, noasync, message: "runs write transactions")
    @discardableResult
    func catchUp(limitBytes: Int, progress: OpenProgress = OpenProgress(nil), rebuilding why: String? = nil) throws -> UInt64 {
        var progress = progress
        let end = try logEnd()
        let base = try log.read { txn in try LogBase.read(from: logMeta, txn) }
        var covered = try projections.environment.read { txn in try LogPosition.read(from: projections.meta, txn) }
        guard covered.lastSequence <= end.lastSequence else {
            throw StoreError(.corrupt, "the projections cover sequence \(covered.lastSequence) but the log ends at \(end.lastSequence); run tally rebuild")
        }
        guard covered.lastSequence < end.lastSequence else { return 0 }
        guard covered.lastSequence >= base.sequence else {
            throw StoreError(.corrupt, """
                the projections cover sequence \(covered.lastSequence) but the live log starts after \(base.sequence) (trimmed): \
                run tally rebuild with the archive directory
                """)
        }
        let start = covered.lastSequence
        let total = end.lastSequence - start
        // A catch-up after a process crash is at most a batch or two: worth a line only when it is long.
        let telling = why != nil || total >= 65_536
        let what = why.map { "rebuilding the projections from the log (\($0))" } ?? "replaying into the projections what they miss of the log"
        if telling { progress.say("\(what): \(total) events") }
        var state = try projections.environment.read { txn in
            // Rows handed out for batches that failed are forgotten: the index is the table's.
            try projections.indexRecords(txn)
            return try projections.loadWorkingSet(txn)
        }
        while covered.lastSequence < end.lastSequence {
            if telling {
                let done = covered.lastSequence - start
                progress.tick("\(what): \(done) of \(total) events (\(done * 100 / total)%)")
            }
            let next = covered.lastSequence + 1
            let chunk = try log.readEvents(from: next, limit: 4_096)
            guard chunk.first?.event.sequence == next else { throw StoreError(.corrupt, "event \(next) is missing from the log") }
            var touched = TouchedKeys()
            var loaded = TouchedKeys()
            var oldDeadlines: [ReservationID: Int64] = [:]
            var seen = Set<ReservationID>()
            try projections.environment.read { txn in
                for stored in chunk where stored.event.sequence <= end.lastSequence {
                    let body = stored.event.body
                    if let id = body.reservationID {
                        var needed = TouchedKeys()
                        needed.reservations.insert(id)
                        try projections.hydrate(needed, into: &state, adding: &loaded, from: txn)
                        // The expiry index holds the deadline the projections last stored for it.
                        if seen.insert(id).inserted, let reservation = state.reservations[id], reservation.status == .active {
                            oldDeadlines[id] = reservation.settleDeadlineMilliseconds
                        }
                    }
                    var keys = TouchedKeys()
                    body.touch(&keys, in: state)
                    try projections.hydrate(keys, into: &state, adding: &loaded, from: txn)
                    try Ledger.apply(body, to: &state)
                    touched.formUnion(keys)
                    covered = LogPosition(
                        lastSequence: stored.event.sequence, chainHead: stored.chain, lastTimestamp: stored.event.timestampMilliseconds)
                }
            }
            var writes = WriteSet()
            projections.write(touched, from: state, oldDeadlines: oldDeadlines, into: &writes)
            covered.write(to: projections.meta, &writes)
            try projections.environment.writeGrowing(doing: "replaying the log into the projections", limitBytes: limitBytes) { txn in
                try writes.apply(txn)
            }
            state.dropHistory()
        }
        if telling { progress.say("projections up to the log's end: \(total) events in \(progress.elapsed)") }
        return covered.lastSequence - start
    }

    // MARK: The unsynced marker

    /// The kernel's id of this boot (changes at every start of the machine); nil where there is none.
    static func bootID() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else { return nil }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }

    /// False when the last server to write the projections without waiting for the disk did not sync them
    /// before the machine restarted (or the boot cannot be told apart).
    static func projectionsSurvivedLastRun(_ directory: String) -> Bool {
        let path = directory + "/" + StoreLayout.unsyncedMarker
        guard FileManager.default.fileExists(atPath: path) else { return true }
        guard let recorded = try? String(contentsOfFile: path, encoding: .utf8), let now = bootID() else { return false }
        return recorded.trimmingCharacters(in: .whitespacesAndNewlines) == now
    }

    /// Records, durably, that projections are about to be written without waiting for the disk.
    static func markUnsynced(_ directory: String) throws(StoreError) {
        let path = directory + "/" + StoreLayout.unsyncedMarker
        let text = Array(((bootID() ?? "unknown") + "\n").utf8)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw StoreError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        let written = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == text.count, fsync(fd) == 0 else {
            throw StoreError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        syncDirectory(directory)
    }

    /// After the projections were flushed to disk: removes the marker.
    static func markSynced(_ directory: String) {
        unlink(directory + "/" + StoreLayout.unsyncedMarker)
        syncDirectory(directory)
    }

    private static func syncDirectory(_ directory: String) {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        Glibc.close(fd)
    }
}
