import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TallyArchive
import TallyCore
import TallyStore
import TallyWire

/// `tallyd`: the binary protocol listener over one durable ledger, as a `Service`.
///
/// Graceful shutdown (SIGTERM or SIGINT through the `ServiceGroup`): stop accepting connections, refuse
/// new commands, wait until every request in flight is answered (its events are durable by then), close
/// the connections, and close the store last.
public final class TallyServer: Service, Sendable {
    public let configuration: ServerConfiguration
    public let adminKey: AdminKey
    private let store: LedgerStore
    private let logger: Logger
    private let registry = ConnectionRegistry()
    private let bound = Mutex<SocketAddress?>(nil)
    private let boundHTTP = Mutex<[HTTPGateway.Plane: Int]>([:])
    private let archiver: Archiver?

    /// Sizes the process's event-loop group (NIO's singleton, which every plane's listener and connections run
    /// on). Call once, before a server starts: the group is made at its first use and keeps its size.
    public static func useEventLoops(_ count: Int) {
        precondition(count >= 1, "at least one event loop")
        NIOSingletons.groupLoopCountSuggestion = count
    }

    public init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        var options = configuration.store
        if options.openProgress == nil { options.openProgress = { [logger] line in logger.notice("\(line)") } }
        store = try LedgerStore(directory: configuration.dataDirectory, options: options)
        if let archive = configuration.archive {
            archiver = Archiver(store: store, configuration: archive, clock: configuration.store.clock) { [logger] notice in
                switch notice {
                case .sealed(let outcome):
                    for segment in outcome.sealed {
                        logger.info("archiver sealed events \(segment.firstSequence)-\(segment.lastSequence) (\(segment.eventCount) events, \(segment.compressedLength) compressed bytes)")
                    }
                    if let trimmed = outcome.trimmedThrough { logger.info("archiver trimmed the live log through event \(trimmed)") }
                case .failed(let error):
                    logger.error("archiver failed; it retries on its next pass", metadata: ["error": "\(error)"])
                }
            }
        } else {
            archiver = nil
        }
        do {
            adminKey = try AdminKey.resolve(configured: configuration.adminKey, dataDirectory: configuration.dataDirectory)
        } catch {
            store.close()
            throw error
        }
    }

    /// The address the listener is bound to, once `run()` has bound it (port 0 picks a free port).
    public var boundAddress: SocketAddress? { bound.withLock { $0 } }

    /// The port of the HTTP runtime plane once it listens (nil while starting or when it is off).
    public var boundHTTPPort: Int? { boundHTTP.withLock { $0[.runtime] } }
    /// The port of the HTTP admin plane once it listens.
    public var boundAdminHTTPPort: Int? { boundHTTP.withLock { $0[.admin] } }

    /// Whether every configured listener is bound.
    public var isListening: Bool {
        boundAddress != nil && (configuration.httpPort == nil || boundHTTPPort != nil)
            && (configuration.adminHTTPPort == nil || boundAdminHTTPPort != nil)
    }

    public func run() async throws {
        let limits = ServerLimits(
            frameBytesMax: UInt32(configuration.frameBytesMax), inFlightRequestsMax: UInt32(configuration.inFlightRequestsMax),
            listLimitMax: UInt32(configuration.listLimitMax))
        let context = ServerContext(
            store: store, router: RequestRouter(store: store, listLimitMax: configuration.listLimitMax),
            authenticator: Authenticator(store: store, adminKey: adminKey), limits: limits, registry: registry,
            logger: logger, clock: configuration.store.clock, subscriptionPollMilliseconds: configuration.subscriptionPollMilliseconds)
        let gateway = GatewayShared(
            store: store, router: context.router, adminKey: adminKey, clock: configuration.store.clock,
            bodyBytesMax: configuration.httpBodyBytesMax, listLimitMax: configuration.listLimitMax, logger: logger)
        if let cpus = configuration.loopCPUs {
            // Before anything is bound: every connection's work then runs on these CPUs from the first.
            for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
                if let failure = try await loop.submit({ cpus.pinCurrentThread() }).get() { logger.warning("\(failure)") }
            }
        }
        var planes: [(HTTPGateway.Plane, Int)] = []
        if let port = configuration.httpPort { planes.append((.runtime, port)) }
        if let port = configuration.adminHTTPPort { planes.append((.admin, port)) }
        let channel = try await bindBinary(context)
        // Every listener is bound before anything is served: a plane that cannot start (its port is taken)
        // ends the whole server, since running on with half the listeners would hide the failure.
        var listeners: [GatewayListener] = []
        let tasks = EventLoopTasks.Registry()
        do {
            for (plane, port) in planes {
                let listener = try await GatewayListener(
                    gateway: HTTPGateway(plane: plane, shared: gateway), host: configuration.host, port: port, tasks: tasks,
                    connectionsMax: configuration.connectionsMax, idleTimeout: .seconds(configuration.httpIdleTimeoutSeconds))
                listeners.append(listener)
                let boundPort = listener.channel.localAddress?.port ?? 0
                boundHTTP.withLock { $0[plane] = boundPort }
                logger.info("tallyd HTTP \(plane.rawValue) plane listening", metadata: ["port": "\(boundPort)"])
            }
        } catch {
            for listener in listeners { listener.channel.close(promise: nil) }
            channel.close(promise: nil)
            await drain(listeners: [], gateway: gateway)
            throw error
        }
        archiver?.start()
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            gateway.startDraining()
            channel.close(promise: nil)
        }
        gateway.startDraining()
        await drain(listeners: listeners, gateway: gateway)
    }

    private func bindBinary(_ context: ServerContext) async throws -> Channel {
        let frameBytesMax = configuration.frameBytesMax
        let connectionsMax = configuration.connectionsMax
        let registry = registry
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard registry.admit(channel, max: connectionsMax) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(context: context, frameBytesMax: frameBytesMax))
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        bound.withLock { $0 = channel.localAddress }
        logger.info("tallyd listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "data-directory": "\(configuration.dataDirectory)"])
        return channel
    }

    /// Waits (bounded) for in-flight requests to be answered, then closes connections and the store.
    private func drain(listeners: [GatewayListener], gateway: GatewayShared) async {
        registry.startDraining()
        logger.info("tallyd shutting down: answering requests in flight")
        // The HTTP listeners stop accepting; each connection closes once its current response is written.
        let quiesced = Task { for listener in listeners { await listener.shutdown() } }
        let deadline = ContinuousClock.now + .seconds(30)
        while await registry.inFlight() > 0 || gateway.inFlight > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        quiesced.cancel()
        for listener in listeners { listener.channel.close(promise: nil) }
        await registry.closeAll()
        if let archiver {
            // The archiver finishes the pass it is in (it only reads the log and writes its own files).
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    archiver.stop()
                    done.resume()
                }
            }
        }
        store.close()
        logger.info("tallyd stopped; the store is flushed and closed")
    }
}
