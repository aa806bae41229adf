import NIOCore
import Synchronization

/// The open connections, so that shutdown can stop new work, wait for what is in flight, then close them.
final class ConnectionRegistry: Sendable {
    private let connections = Mutex<[ObjectIdentifier: (Channel, NIOLoopBound<ConnectionHandler>)]>([:])
    private let draining = Atomic<Bool>(false)
    /// Connections accepted and not yet closed (counted at accept, before they are active).
    private let admitted = Atomic<Int>(0)

    /// Set when shutdown begins: new commands are refused, answers to those in flight still go out.
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    func startDraining() { draining.store(true, ordering: .relaxed) }

    var count: Int { connections.withLock { $0.count } }

    /// Counts a connection at accept; false, counting nothing, when `max` are open. The channel's close
    /// gives the place back.
    func admit(_ channel: Channel, max: Int) -> Bool {
        var current = admitted.load(ordering: .relaxed)
        while current < max {
            let (exchanged, actual) = admitted.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged {
                channel.closeFuture.whenComplete { _ in self.admitted.subtract(1, ordering: .relaxed) }
                return true
            }
            current = actual
        }
        return false
    }

    func add(_ channel: Channel, handler: NIOLoopBound<ConnectionHandler>) {
        connections.withLock { $0[ObjectIdentifier(channel)] = (channel, handler) }
    }

    func remove(_ channel: Channel) {
        connections.withLock { $0[ObjectIdentifier(channel)] = nil }
    }

    /// Requests in flight over all connections (each read on its own event loop).
    func inFlight() async -> Int {
        let entries = connections.withLock { Array($0.values) }
        var total = 0
        for (channel, handler) in entries {
            total += (try? await channel.eventLoop.submit { handler.value.inFlight }.get()) ?? 0
        }
        return total
    }

    /// Closes every connection (after the caller waited for in-flight requests).
    func closeAll() async {
        let channels = connections.withLock { $0.values.map(\.0) }
        for channel in channels { try? await channel.close() }
    }
}
