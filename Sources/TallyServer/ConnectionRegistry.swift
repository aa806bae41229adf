import NIOCore
import Synchronization

/// The open connections, so that shutdown can stop new work, wait for what is in flight, then close them.
final class ConnectionRegistry: Sendable {
    private let connections = Mutex<[ObjectIdentifier: (Channel, NIOLoopBound<ConnectionHandler>)]>([:])
    private let draining = Atomic<Bool>(false)
    /// Connections accepted and not yet closed (counted at accept, before they are active).
    private let admitted = ConnectionCounter()

    /// Set when shutdown begins: new commands are refused, answers to those in flight still go out.
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    func startDraining() { draining.store(true, ordering: .relaxed) }

    var count: Int { connections.withLock { $0.count } }

    /// Counts a connection at accept; false when `max` are open.
    func admit(_ channel: Channel, max: Int) -> Bool { admitted.admit(channel, max: max) }

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

/// Open connections of a listener, counted at accept (before they are active, so a burst of connects
/// accepted on several event loops cannot pass the limit) and released when each closes.
final class ConnectionCounter: Sendable {
    private let open = Atomic<Int>(0)

    /// Counts `channel` unless `max` are open (then counts nothing and answers false).
    func admit(_ channel: Channel, max: Int) -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < max {
            let (exchanged, actual) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged {
                channel.closeFuture.whenComplete { _ in self.open.subtract(1, ordering: .relaxed) }
                return true
            }
            current = actual
        }
        return false
    }
}
