import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TallyArchive
import TallyServer
import TallyStore

/// The Tally server.
@main
struct Tallyd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tallyd",
        abstract: "Serve a Tally budget ledger over the binary protocol and the Cycles HTTP/JSON API.",
        discussion: """
            The admin key comes from --admin-key, else TALLY_ADMIN_KEY, else the hash stored in the data \
            directory; on the first start without one, a random key is generated, only its hash is stored, \
            and the key is printed once. SIGTERM or SIGINT shut down gracefully: requests in flight are \
            answered and the store is flushed and closed last.
            """)

    @Option(help: "The data directory (created when missing).")
    var dataDirectory = "./data"

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port of the binary protocol (0 picks a free port).")
    var port = 7070

    @Option(help: "The port of the Cycles HTTP/JSON runtime plane (0 picks a free port).")
    var httpPort = 7878

    @Option(help: "The port of the Cycles HTTP/JSON admin plane (0 picks a free port).")
    var adminHTTPPort = 7979

    @Flag(help: "Serve only the binary protocol: no HTTP runtime or admin plane.")
    var noHTTP = false

    @Option(help: "Seconds an HTTP connection may take to send its next whole request (after opening or after its last answer) before it is closed.")
    var httpIdleTimeout: Int64 = 60

    @Option(help: "Event loops serving the connections of every plane (default: the cores left after the store's writer and flusher threads, at least 1).")
    var eventLoops: Int?

    @Option(name: .customLong("writer-cpus"), help: "CPUs the store's writer thread runs on, as Linux lists them (0, 0-1, 0,2-3); default: wherever the system schedules it.")
    var writerCPUs: String?

    @Option(name: .customLong("loop-cpus"), help: "CPUs the event loops run on (the same form); with one loop, the writer's CPU keeps the two on one core's caches.")
    var loopCPUs: String?

    @Option(help: "Open connections allowed on the binary protocol, and separately on the HTTP planes together; more are closed at accept.")
    var connectionsMax = 4_096

    @Option(help: "Where sealed archive segments and checkpoints go (default <data-directory>/archive).")
    var archiveDirectory: String?

    // The archive's options are optional (`ArchiverConfiguration`'s defaults apply when one is not given), so
    // that one given together with --no-archive is refused instead of being ignored.
    @Option(help: "Seal a segment once this many events are not yet archived (default 25000).")
    var archiveEveryEvents: UInt64?

    @Option(help: "Seal pending events older than this many seconds even below --archive-every-events (0: by count only; default 3600).")
    var archiveEverySeconds: Int64?

    @Option(help: "While events arrive at 1,000 a second or faster, full segments wait until this many events are pending (sealing then keeps the backlog there), so that sealing does not take a core from a burst of requests; --archive-every-events or less seals at once (default 1000000).")
    var archiveBusyBacklogEvents: UInt64?

    @Option(help: "Trim the live log below the newest sealed segment and checkpoint, keeping at least this many newest events live (off when not given).")
    var retainLiveEvents: UInt64?

    @Flag(inversion: .prefixedNo, help: "Seal the log into compressed archive segments and checkpoints in the background (on by default; see README: archives).")
    var archive = true

    @Option(help: "The admin key (at least 16 characters); overrides TALLY_ADMIN_KEY.")
    var adminKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        let loops = eventLoops ?? ServerConfiguration.eventLoopsDefault
        guard (1...256).contains(loops) else { throw ValidationError("--event-loops must be 1-256") }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tallyd")
        var configuration = ServerConfiguration()
        configuration.dataDirectory = dataDirectory
        configuration.host = host
        configuration.port = port
        guard connectionsMax > 0 else { throw ValidationError("--connections-max must be at least 1") }
        configuration.connectionsMax = connectionsMax
        guard httpIdleTimeout > 0 else { throw ValidationError("--http-idle-timeout must be at least 1 second") }
        configuration.httpIdleTimeoutSeconds = httpIdleTimeout
        configuration.httpPort = noHTTP ? nil : httpPort
        configuration.adminHTTPPort = noHTTP ? nil : adminHTTPPort
        configuration.adminKey = adminKey ?? ProcessInfo.processInfo.environment["TALLY_ADMIN_KEY"]
        if archive {
            var settings = ArchiverConfiguration(directory: archiveDirectory ?? ArchiveDirectory.defaultPath(dataDirectory: dataDirectory))
            if let archiveEveryEvents {
                guard archiveEveryEvents >= 1 else { throw ValidationError("--archive-every-events must be at least 1") }
                settings.everyEvents = archiveEveryEvents
            }
            if let archiveEverySeconds {
                guard archiveEverySeconds >= 0 else { throw ValidationError("--archive-every-seconds must be at least 0") }
                settings.everySeconds = archiveEverySeconds == 0 ? nil : archiveEverySeconds
            }
            settings.retainLiveEvents = retainLiveEvents
            if let archiveBusyBacklogEvents { settings.busyBacklogEvents = archiveBusyBacklogEvents }
            configuration.archive = settings
        } else {
            let given = [
                ("--archive-directory", archiveDirectory != nil), ("--archive-every-events", archiveEveryEvents != nil),
                ("--archive-every-seconds", archiveEverySeconds != nil),
                ("--archive-busy-backlog-events", archiveBusyBacklogEvents != nil), ("--retain-live-events", retainLiveEvents != nil),
            ].filter(\.1).map(\.0)
            if !given.isEmpty {
                throw ValidationError("\(given.joined(separator: ", ")) \(given.count == 1 ? "has" : "have") no effect with --no-archive")
            }
        }
        configuration.store.writerCPUs = try Self.cpus(writerCPUs, flag: "--writer-cpus")
        configuration.loopCPUs = try Self.cpus(loopCPUs, flag: "--loop-cpus")
        TallyServer.useEventLoops(loops)
        let server = try TallyServer(configuration: configuration, logger: logger)
        if let secret = server.adminKey.generatedSecret {
            say("Generated an admin key for \(dataDirectory) (only its hash is stored; this is the only time it is shown):")
            say("  TALLY_ADMIN_KEY=\(secret)")
        }
        let group = ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        let announce = Task {
            while !server.isListening { try await Task.sleep(for: .milliseconds(5)) }
            say("tallyd memory allocator: \(MemoryAllocator.summary)")
            if let port = server.boundHTTPPort { say("tallyd HTTP runtime plane on http://\(host):\(port)") }
            if let port = server.boundAdminHTTPPort { say("tallyd HTTP admin plane on http://\(host):\(port)") }
            // Scripts and tests read this line to learn the port; it comes last, once every listener is up.
            say("tallyd listening on \(host):\(server.boundAddress?.port ?? port)")
        }
        try await group.run()
        announce.cancel()
    }
}

extension Tallyd {
    /// A `--writer-cpus` or `--loop-cpus` value: a CPU list this process may run on.
    static func cpus(_ text: String?, flag: String) throws -> CPUSet? {
        guard let text else { return nil }
        guard let cpus = CPUSet(parsing: text) else {
            throw ValidationError("\(flag) must list CPUs as 0, 0-1 or 0,2-3 (numbers under \(CPUSet.cpuLimit)), not \"\(text)\"")
        }
        #if os(Linux)
        guard let allowed = CPUSet.currentThread else { throw ValidationError("\(flag): cannot read the CPUs this process may run on") }
        guard cpus.isSubset(of: allowed) else {
            throw ValidationError("\(flag) \(cpus): this process may run only on CPUs \(allowed)")
        }
        return cpus
        #else
        throw ValidationError("\(flag) is supported on Linux only")
        #endif
    }
}

/// Writes a line to standard output at once (unbuffered), so scripts reading the pipe see it immediately.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
