import Foundation
import Synchronization
import TallyTestSupport
import TallyWire

/// A real `tallyd` process on a loopback port chosen by the kernel, over a temporary data directory.
final class ServerProcess: @unchecked Sendable {  // Safe: set once in init; output behind a Mutex
    // Safe: `process` is set once in init; the output buffer is a Mutex.
    static let adminKey = "test-admin-key-0123456789"
    let dataDirectory: String
    let process = Process()
    let port: Int
    /// The HTTP runtime and admin planes (on free ports too).
    let httpPort: Int
    let adminHTTPPort: Int
    private let output = Locked(Data())

    /// Starts tallyd and waits (at most 20 s) until it prints its listening line.
    init(dataDirectory: String? = nil, arguments extra: [String] = []) throws {
        self.dataDirectory = dataDirectory ?? NSTemporaryDirectory() + "tallyd-test-" + UUID().uuidString
        process.executableURL = try BuiltExecutable.url("tallyd")
        process.arguments = ["--data-directory", self.dataDirectory, "--port", "0", "--http-port", "0", "--admin-http-port", "0", "--admin-key", Self.adminKey, "--log-level", "warning"] + extra
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let handle = pipe.fileHandleForReading
        let output = self.output
        let found = Locked<Int?>(nil)
        // A plain thread with blocking reads until end of file, not `readabilityHandler`: its dispatch read
        // source could outlive the pipe's descriptor when the server exits, and libdispatch then crashed the
        // whole test process (seen once in CI, in the manager thread's event loop).
        let reader = Thread {
            var open = true
            while open {
                let data = handle.availableData
                open = !data.isEmpty
                output.withLock { $0.append(data) }
                let text = String(decoding: output.withLock { $0 }, as: UTF8.self)
                if let range = text.range(of: "listening on 127.0.0.1:"), let line = text[range.upperBound...].split(separator: "\n").first {
                    found.withLock { $0 = Int(line) }
                }
            }
        }
        reader.start()
        let deadline = Date().addingTimeInterval(20)
        while found.withLock({ $0 }) == nil && Date() < deadline && process.isRunning { usleep(10_000) }
        guard let port = found.withLock({ $0 }) else {
            process.terminate()
            throw ServerProcessError("tallyd did not start: \(String(decoding: output.withLock { $0 }, as: UTF8.self))")
        }
        self.port = port
        let text = String(decoding: output.withLock { $0 }, as: UTF8.self)
        func portAfter(_ marker: String) -> Int {
            guard let range = text.range(of: marker), let line = text[range.upperBound...].split(separator: "\n").first else { return 0 }
            return Int(line) ?? 0
        }
        httpPort = portAfter("runtime plane on http://127.0.0.1:")
        adminHTTPPort = portAfter("admin plane on http://127.0.0.1:")
    }

    /// SIGTERM, then wait (bounded) for a graceful exit; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func removeData() { try? FileManager.default.removeItem(atPath: dataDirectory) }

    /// What the server has printed to standard output so far.
    var printed: String { String(decoding: output.withLock { $0 }, as: UTF8.self) }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

struct ServerProcessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A plain TCP connection for sending arbitrary bytes (malformed frames, no handshake).
final class RawConnection {
    let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw ServerProcessError("cannot connect to port \(port)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(socket) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// One read of what has arrived (waits at most 5 s for the first byte); empty when the server closed.
    func readOnce() -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        return count > 0 ? Array(buffer[0..<count]) : []
    }

    /// Reads until the server closes the connection (or 5 s pass); returns everything received, and whether
    /// the server closed it (rather than the wait running out).
    func readUntilClosedByPeer() -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<1_000 {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { return (received, true) }
            if count < 0 { return (received, false) }
            received += buffer[0..<count]
        }
        return (received, false)
    }

    /// Reads until the server closes the connection (or 5 s pass); returns everything received.
    func readUntilClosed() -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<1_000 {
            let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return received
    }
}

/// A value shared between tasks and threads, behind a lock.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) { self.value = Mutex(value) }

    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
