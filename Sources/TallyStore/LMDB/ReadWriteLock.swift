import Glibc

/// A reader-writer lock around the map: read transactions hold it shared for their whole life, and the
/// writer takes it exclusively to grow the map, because LMDB allows `mdb_env_set_mapsize` only while no
/// transaction of this process is active.
// Safe: the pthread lock is heap-allocated once, never moved, and only used through pthread calls.
final class ReadWriteLock: @unchecked Sendable {  // Safe: see the comment above
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        lock = .allocate(capacity: 1)
        let status = pthread_rwlock_init(lock, nil)
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    func withShared<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    func withExclusive<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
