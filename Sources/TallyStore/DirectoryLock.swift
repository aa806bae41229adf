import Glibc
import Synchronization

/// An exclusive advisory lock on `<data-directory>/tally.lock`, held for as long as a process writes the
/// directory. LMDB itself allows several writing processes; Tally does not, because the writer keeps the
/// working state in memory and another writer would make it stale.
final class DirectoryLock: Sendable {
    private let descriptor: Mutex<Int32>

    /// Takes the lock without waiting; throws `.locked` when another holder has it.
    init(directory: String) throws(StoreError) {
        let path = directory + "/tally.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw StoreError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError(.locked, "\(directory) is in use by another Tally process (tallyd running?)")
        }
        descriptor = Mutex(fd)
    }

    /// Gives the lock up (closing its file releases it); idempotent.
    func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// Whether some process holds the lock right now (checked by taking and dropping it).
    static func isHeld(directory: String) -> Bool {
        let fd = open(directory + "/tally.lock", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return true
    }

    deinit { release() }
}
