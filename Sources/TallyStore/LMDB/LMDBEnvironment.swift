import CLMDB
import Glibc

/// A named LMDB database (table) inside the environment.
public struct LMDBDatabase: Sendable, Hashable {
    let handle: MDB_dbi
    public let name: String
}

/// One LMDB environment (one data directory), opened with `MDB_NOTLS` so read transactions can run on
/// any thread. Write transactions are started only by the thread doing the store's writer work at the time
/// (the writer or flusher thread, or a thread running a lone command, `Writer.submit`), each begun and
/// committed on one thread.
// Safe: MDB_NOTLS readers on any thread, one writer at a time (the writer's `busy`), resizes under `mapLock`.
public final class LMDBEnvironment: @unchecked Sendable {  // Safe: see the comment above
    let env: OpaquePointer
    let mapLock = ReadWriteLock()
    public private(set) var mapSizeBytes: Int
    public let isReadOnly: Bool
    private var databases: [String: LMDBDatabase] = [:]
    /// Set once by `close()`, under the exclusive map lock; every transaction checks it under the shared lock.
    private var isClosed = false

    /// Opens (creating when allowed) the environment in `directory` and its named databases, and clears
    /// reader slots left behind by dead processes. `extraDatabases` raises the table limit for tables
    /// opened later with `openDatabases` (the upgrade of an old layout).
    public init(directory: String, mapSizeBytes: Int, databaseNames: [String], readOnly: Bool = false, extraDatabases: Int = 0) throws(LMDBError) {
        var pointer: OpaquePointer?
        try check(mdb_env_create(&pointer), "creating an LMDB environment")
        guard let pointer else { throw LMDBError(code: ENOMEM, context: "creating an LMDB environment") }
        env = pointer
        isReadOnly = readOnly
        self.mapSizeBytes = mapSizeBytes
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(databaseNames.count + extraDatabases + 1)), "setting the number of databases")
            try check(mdb_env_set_mapsize(env, mapSizeBytes), "setting the map size to \(mapSizeBytes) bytes")
            try check(mdb_env_set_maxreaders(env, 512), "setting the reader table size")
            let flags = UInt32(MDB_NOTLS) | (readOnly ? UInt32(MDB_RDONLY) : 0)
            try check(mdb_env_open(env, directory, flags, 0o640), "opening the LMDB environment in \(directory)")
            var dead: Int32 = 0
            try check(mdb_reader_check(env, &dead), "clearing stale LMDB readers")
            var info = MDB_envinfo()
            try check(mdb_env_info(env, &info), "reading the environment info")
            self.mapSizeBytes = info.me_mapsize
            try openDatabases(databaseNames)
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    deinit {
        if !isClosed { mdb_env_close(env) }
    }

    /// Closes the environment once every running transaction has ended; later transactions throw.
    /// LMDB must not have one environment open twice in a process, so a store closes it before reopening.
    public func close() {
        mapLock.withExclusive {
            if !isClosed { mdb_env_close(env) }
            isClosed = true
        }
    }

    private func requireOpen() throws(LMDBError) {
        if isClosed { throw LMDBError(code: EBADF, context: "the store is closed") }
    }

    /// Whether a commit waits for the disk (the default). A store's projections turn it off while the
    /// server runs: the log alone is made durable per batch, the projections are rebuilt from it after a
    /// crash (see `StoreFiles`). Only between transactions, on the thread that writes.
    public func setDurable(_ durable: Bool) throws(LMDBError) {
        try check(mdb_env_set_flags(env, UInt32(MDB_NOSYNC), durable ? 0 : 1), "setting MDB_NOSYNC")
    }

    /// Flushes every committed transaction to the disk (after commits made without waiting for it).
    public func sync() throws(LMDBError) {
        try mapLock.withShared { () throws(LMDBError) in
            try requireOpen()
            try check(mdb_env_sync(env, 1), "flushing the environment to disk")
        }
    }

    /// Opens more named tables after the environment is open (before any other thread uses it).
    func openDatabases(_ names: [String]) throws(LMDBError) {
        var txn: OpaquePointer?
        try check(mdb_txn_begin(env, nil, isReadOnly ? UInt32(MDB_RDONLY) : 0, &txn), "starting the transaction that opens tables")
        for name in names {
            var dbi: MDB_dbi = 0
            let code = mdb_dbi_open(txn, name, isReadOnly ? 0 : UInt32(MDB_CREATE), &dbi)
            if code != MDB_SUCCESS {
                mdb_txn_abort(txn)
                throw LMDBError(code: code, context: "opening table \(name)")
            }
            databases[name] = LMDBDatabase(handle: dbi, name: name)
        }
        try check(mdb_txn_commit(txn), "committing the table definitions")
    }

    public func database(_ name: String) -> LMDBDatabase {
        guard let database = databases[name] else { preconditionFailure("table \(name) was not opened") }
        return database
    }

    /// Runs `body` in a read transaction. Nothing read may escape except copies, which is all the
    /// transaction hands out. Never waits for the writer (LMDB readers are lock-free), only for a resize.
    public func read<T, E: Error>(_ body: (borrowing LMDBReadTransaction) throws(E) -> T) throws -> T {
        try mapLock.withShared { () throws -> T in
            try requireOpen()
            var txn: OpaquePointer?
            try check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "starting a read transaction")
            let transaction = LMDBReadTransaction(txn: txn!)
            defer { mdb_txn_abort(txn) }
            return try body(transaction)
        }
    }

    /// Runs `body` in a write transaction and flushes it durably (fsync) when the body returns normally;
    /// any thrown error aborts it and leaves the file untouched. Only the writer thread calls this.
    @available(*, noasync, message: "write transactions run on the writer thread, never in async code")
    public func write<T>(_ body: (borrowing LMDBWriteTransaction) throws -> T) throws -> T {
        try mapLock.withShared { () throws -> T in
            try requireOpen()
            var txn: OpaquePointer?
            try check(mdb_txn_begin(env, nil, 0, &txn), "starting a write transaction")
            let transaction = LMDBWriteTransaction(txn: txn!)
            let result: T
            do {
                result = try body(transaction)
            } catch {
                mdb_txn_abort(txn)
                throw error
            }
            try check(mdb_txn_commit(txn), "flushing a write transaction")
            return result
        }
    }

    /// Doubles the map (up to `limitBytes`) after `MDB_MAP_FULL`; waits until no transaction is active.
    /// Returns false when the map is already at the limit.
    @available(*, noasync)
    public func growMap(limitBytes: Int) throws(LMDBError) -> Bool {
        guard mapSizeBytes < limitBytes else { return false }
        let target = min(limitBytes, mapSizeBytes * 2)
        try mapLock.withExclusive { () throws(LMDBError) in
            try requireOpen()
            try check(mdb_env_set_mapsize(env, target), "growing the map to \(target) bytes")
        }
        mapSizeBytes = target
        return true
    }

    /// The data file's size in bytes, allocated ahead or not (nil if it cannot be read).
    public func fileBytes() -> Int? {
        mapLock.withShared { () -> Int? in
            guard !isClosed, let descriptor = dataFileDescriptor() else { return nil }
            var status = stat()
            return fstat(descriptor, &status) == 0 ? Int(status.st_size) : nil
        }
    }

    /// Allocates the data file's blocks in `offset ..< offset + length`, extending the file, without writing
    /// anything: pages already there keep their bytes, and a commit that later writes pages into the range
    /// flushes them without growing the file. Returns the `errno` of a refusal (the file system may not
    /// support it), 0 on success; elsewhere than Linux it does nothing and answers `ENOTSUP`.
    public func allocateFile(from offset: Int, length: Int) -> Int32 {
        mapLock.withShared { () -> Int32 in
            guard !isClosed, let descriptor = dataFileDescriptor() else { return EBADF }
            #if os(Linux)
            return tally_allocate_file(descriptor, off_t(offset), off_t(length))
            #else
            return ENOTSUP
            #endif
        }
    }

    private func dataFileDescriptor() -> Int32? {
        var descriptor: mdb_filehandle_t = -1
        return mdb_env_get_fd(env, &descriptor) == MDB_SUCCESS && descriptor >= 0 ? descriptor : nil
    }

    /// Bytes used by the environment's pages (for operators and tests).
    public func usedBytes() throws(LMDBError) -> Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        try check(mdb_env_info(env, &info), "reading the environment info")
        try check(mdb_env_stat(env, &stat), "reading the environment stats")
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }
}
