import Foundation

#if canImport(Glibc)
import CEpoll
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain sockets for the bench's measuring clients (`HTTPBenchLoop`, `BinaryBenchLoop`): they share the
/// machine's cores with the server they measure, so they stay off NIO and out of its per-request costs.
enum BenchSocket {
    /// Runs a bench client's loop on a thread of its own: it blocks in `epoll_wait`, which a thread of
    /// Swift's shared pool must not.
    static func runOnThread<Value: Sendable>(named name: String, _ body: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = name
            thread.start()
        }
    }

    /// A connected, nonblocking TCP socket with Nagle's algorithm off.
    static func dial(_ host: String, _ port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let list else {
            throw BenchError("cannot resolve \(host): \(String(cString: gai_strerror(resolved)))")
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let address = entry?.pointee {
            entry = address.ai_next
            let socket = socket(address.ai_family, address.ai_socktype, address.ai_protocol)
            guard socket >= 0 else {
                reason = String(cString: strerror(errno))
                continue
            }
            #if canImport(Glibc)
            let connected = Glibc.connect(socket, address.ai_addr, address.ai_addrlen)
            #else
            let connected = Darwin.connect(socket, address.ai_addr, address.ai_addrlen)
            #endif
            guard connected == 0 else {
                reason = String(cString: strerror(errno))
                close(socket)
                continue
            }
            var on: Int32 = 1
            setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            setsockopt(socket, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
            #endif
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            return socket
        }
        throw BenchError("cannot connect to \(host):\(port): \(reason)")
    }

    /// `send` without SIGPIPE when the server has gone.
    static func send(_ socket: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.send(socket, bytes, count, Int32(MSG_NOSIGNAL))
        #else
        Darwin.send(socket, bytes, count, 0)
        #endif
    }
}

/// Which of the bench's sockets can be read or written: epoll on Linux (its cost does not grow with the
/// number of connections, as `poll`'s does), `poll(2)` elsewhere. Owns the sockets and closes them.
final class BenchReadiness {
    /// By connection index; -1 once removed.
    private(set) var sockets: [Int32] = []
    private var writable: [Bool] = []
    #if os(Linux)
    private let epoll: Int32
    private var events = [epoll_event](repeating: epoll_event(), count: 64)
    #else
    private var descriptors: [pollfd] = []
    #endif

    init() throws {
        #if os(Linux)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw BenchError("epoll_create1 failed: \(String(cString: strerror(errno)))") }
        #endif
    }

    deinit {
        for socket in sockets where socket >= 0 { close(socket) }
        #if os(Linux)
        close(epoll)
        #endif
    }

    /// Watches `socket` for reading; its index is the number of sockets added before it.
    func add(_ socket: Int32) throws {
        sockets.append(socket)
        writable.append(false)
        #if os(Linux)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = UInt64(sockets.count - 1)
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) == 0 else {
            throw BenchError("epoll_ctl failed: \(String(cString: strerror(errno)))")
        }
        #else
        descriptors.append(pollfd(fd: socket, events: Int16(POLLIN), revents: 0))
        #endif
    }

    /// Whether to report the socket as writable too (while a request waits for room to be sent).
    func want(_ index: Int, writable: Bool) {
        guard self.writable[index] != writable, sockets[index] >= 0 else { return }
        self.writable[index] = writable
        #if os(Linux)
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (writable ? EPOLLOUT.rawValue : 0)
        event.data.u64 = UInt64(index)
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, sockets[index], &event)
        #else
        descriptors[index].events = Int16(writable ? POLLIN | POLLOUT : POLLIN)
        #endif
    }

    /// Closes the socket and stops watching it.
    func remove(_ index: Int) {
        guard sockets[index] >= 0 else { return }
        close(sockets[index])  // leaves the epoll set with it
        sockets[index] = -1
        #if !os(Linux)
        descriptors[index].fd = -1  // poll skips it
        #endif
    }

    /// Waits up to `milliseconds` and fills `ready` with `index << 2 | 1 (readable, or closed) | 2 (writable)`.
    func wait(milliseconds: Int32, into ready: inout [Int]) throws {
        ready.removeAll(keepingCapacity: true)
        #if os(Linux)
        let count = epoll_wait(epoll, &events, Int32(events.count), milliseconds)
        if count < 0 {
            if errno == EINTR { return }
            throw BenchError("epoll_wait failed: \(String(cString: strerror(errno)))")
        }
        for event in events[0..<Int(count)] {
            let index = Int(event.data.u64)
            guard sockets[index] >= 0 else { continue }
            let readable = event.events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
            ready.append(index << 2 | (readable ? 1 : 0) | (event.events & EPOLLOUT.rawValue != 0 ? 2 : 0))
        }
        #else
        let count = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
        if count < 0 {
            if errno == EINTR { return }
            throw BenchError("poll failed: \(String(cString: strerror(errno)))")
        }
        for index in descriptors.indices where descriptors[index].revents != 0 {
            let events = Int32(descriptors[index].revents)
            descriptors[index].revents = 0
            let readable = events & Int32(POLLIN | POLLHUP | POLLERR) != 0
            ready.append(index << 2 | (readable ? 1 : 0) | (events & Int32(POLLOUT) != 0 ? 2 : 0))
        }
        #endif
    }
}

/// The bytes queued for one socket and how many of them have gone.
struct BenchOutput {
    var bytes: [UInt8] = []
    var written = 0

    var isEmpty: Bool { written == bytes.count }
}

extension BenchReadiness {
    /// Sends what `output` holds on socket `index`, watching for room when the socket is full. Answers why
    /// the connection broke, if it did.
    func flush(_ index: Int, _ output: inout BenchOutput) -> String? {
        let socket = sockets[index]
        guard socket >= 0 else { return nil }
        while output.written < output.bytes.count {
            let sent = output.bytes.withUnsafeBytes { bytes in
                BenchSocket.send(socket, bytes.baseAddress! + output.written, bytes.count - output.written)
            }
            if sent > 0 {
                output.written += sent
            } else if sent < 0 && errno == EINTR {
                continue
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                want(index, writable: true)
                return nil
            } else {
                return "sending failed: \(String(cString: strerror(errno)))"
            }
        }
        output.bytes.removeAll(keepingCapacity: true)
        output.written = 0
        want(index, writable: false)
        return nil
    }

    enum Received {
        /// This many bytes are at the start of the scratch buffer.
        case bytes(Int)
        /// Nothing to read after all.
        case none
        /// The connection is gone, and why.
        case broken(String)
    }

    /// One `recv` on socket `index` into `scratch`.
    func receive(_ index: Int, into scratch: inout [UInt8]) -> Received {
        let socket = sockets[index]
        guard socket >= 0 else { return .none }
        let count = scratch.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { return .none }
            return .broken("receiving failed: \(String(cString: strerror(errno)))")
        }
        return count == 0 ? .broken("the server closed the connection") : .bytes(count)
    }
}
