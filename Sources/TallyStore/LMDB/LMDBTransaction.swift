import CLMDB

/// A read transaction, only usable inside the closure that received it. Values are copied out.
public struct LMDBReadTransaction: ~Copyable {
    let txn: OpaquePointer

    public func get(_ database: LMDBDatabase, _ key: [UInt8]) throws(LMDBError) -> [UInt8]? {
        try lmdbGet(txn, database, key)
    }

    /// Visits entries in key order starting at the first key >= `start` (or the first key), until
    /// `visit` returns false. Keys and values are copies.
    public func scan(_ database: LMDBDatabase, from start: [UInt8]? = nil, _ visit: ([UInt8], [UInt8]) throws -> Bool) throws {
        try lmdbScan(txn, database, from: start, reverse: false, visit)
    }

    /// `scan` without copies: `visit` gets the key and value in LMDB's own memory, valid only until it returns.
    public func scanInPlace(
        _ database: LMDBDatabase, from start: [UInt8]? = nil, _ visit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try lmdbScanInPlace(txn, database, from: start, reverse: false, visit)
    }

    /// The last entry of a table, if any.
    public func last(_ database: LMDBDatabase) throws -> (key: [UInt8], value: [UInt8])? {
        var result: ([UInt8], [UInt8])?
        try lmdbScan(txn, database, from: nil, reverse: true) { key, value in
            result = (key, value)
            return false
        }
        return result.map { (key: $0.0, value: $0.1) }
    }

    public func count(_ database: LMDBDatabase) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(txn, database.handle, &stat), "reading the size of \(database.name)")
        return stat.ms_entries
    }
}

/// A write transaction, only usable inside the writer's closure.
public struct LMDBWriteTransaction: ~Copyable {
    let txn: OpaquePointer

    public func get(_ database: LMDBDatabase, _ key: [UInt8]) throws(LMDBError) -> [UInt8]? {
        try lmdbGet(txn, database, key)
    }

    public func put(_ database: LMDBDatabase, _ key: [UInt8], _ value: [UInt8], append: Bool = false) throws(LMDBError) {
        let code = key.withUnsafeBytes { keyBytes in
            value.withUnsafeBytes { valueBytes in lmdbPut(txn, database, keyBytes, valueBytes, append: append) }
        }
        try check(code, "writing to \(database.name)")
    }

    /// The same from bytes the caller keeps alive for the call (the flusher's batch buffer).
    func put(_ database: LMDBDatabase, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, append: Bool) throws(LMDBError) {
        try check(lmdbPut(txn, database, key, value, append: append), "writing to \(database.name)")
    }

    /// Deletes a key; deleting an absent key is not an error.
    public func delete(_ database: LMDBDatabase, _ key: [UInt8]) throws(LMDBError) {
        let code = key.withUnsafeBytes { bytes in lmdbDelete(txn, database, bytes) }
        if code == MDB_NOTFOUND { return }
        try check(code, "deleting from \(database.name)")
    }

    /// A put by table handle, returning LMDB's code (the flusher's write set, which names the table only in an
    /// error).
    func put(_ handle: MDB_dbi, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, append: Bool) -> Int32 {
        var keyValue = mdbValue(key)
        var dataValue = mdbValue(value)
        return mdb_put(txn, handle, &keyValue, &dataValue, append ? UInt32(MDB_APPEND) : 0)
    }

    /// A delete by table handle, returning LMDB's code; deleting an absent key is a success.
    func delete(_ handle: MDB_dbi, _ key: UnsafeRawBufferPointer) -> Int32 {
        var keyValue = mdbValue(key)
        let code = mdb_del(txn, handle, &keyValue, nil)
        return code == MDB_NOTFOUND ? MDB_SUCCESS : code
    }

    func delete(_ database: LMDBDatabase, _ key: UnsafeRawBufferPointer) throws(LMDBError) {
        let code = lmdbDelete(txn, database, key)
        if code == MDB_NOTFOUND { return }
        try check(code, "deleting from \(database.name)")
    }

    /// Removes every entry of a table (used by `tally rebuild`).
    public func clear(_ database: LMDBDatabase) throws(LMDBError) {
        try check(mdb_drop(txn, database.handle, 0), "emptying \(database.name)")
    }

    public func scan(_ database: LMDBDatabase, from start: [UInt8]? = nil, _ visit: ([UInt8], [UInt8]) throws -> Bool) throws {
        try lmdbScan(txn, database, from: start, reverse: false, visit)
    }

    public func last(_ database: LMDBDatabase) throws -> (key: [UInt8], value: [UInt8])? {
        var result: ([UInt8], [UInt8])?
        try lmdbScan(txn, database, from: nil, reverse: true) { key, value in
            result = (key, value)
            return false
        }
        return result.map { (key: $0.0, value: $0.1) }
    }
}

private func lmdbPut(
    _ txn: OpaquePointer, _ database: LMDBDatabase, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, append: Bool
) -> Int32 {
    var keyValue = mdbValue(key)
    var dataValue = mdbValue(value)
    return mdb_put(txn, database.handle, &keyValue, &dataValue, append ? UInt32(MDB_APPEND) : 0)
}

private func lmdbDelete(_ txn: OpaquePointer, _ database: LMDBDatabase, _ key: UnsafeRawBufferPointer) -> Int32 {
    var keyValue = mdbValue(key)
    return mdb_del(txn, database.handle, &keyValue, nil)
}

/// An `MDB_val` over bytes the caller keeps alive. `mv_data` is a mutable pointer in C, but LMDB only reads
/// keys and values passed to get, put (without `MDB_RESERVE`) and del, so the bytes need no private copy.
private func mdbValue(_ bytes: UnsafeRawBufferPointer) -> MDB_val {
    MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: bytes.baseAddress))
}

private func inPlace(_ value: MDB_val) -> UnsafeRawBufferPointer {
    guard value.mv_size > 0, let data = value.mv_data else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: data, count: value.mv_size)
}

private func copy(_ value: MDB_val) -> [UInt8] { Array(inPlace(value)) }

private func lmdbGet(_ txn: OpaquePointer, _ database: LMDBDatabase, _ key: [UInt8]) throws(LMDBError) -> [UInt8]? {
    var found = MDB_val()
    let code = key.withUnsafeBytes { bytes in
        var keyValue = mdbValue(bytes)
        return mdb_get(txn, database.handle, &keyValue, &found)
    }
    if code == MDB_NOTFOUND { return nil }
    try check(code, "reading from \(database.name)")
    return copy(found)
}

private func lmdbScan(
    _ txn: OpaquePointer, _ database: LMDBDatabase, from start: [UInt8]?, reverse: Bool,
    _ visit: ([UInt8], [UInt8]) throws -> Bool
) throws {
    try lmdbScanInPlace(txn, database, from: start, reverse: reverse) { key, value in try visit(Array(key), Array(value)) }
}

private func lmdbScanInPlace(
    _ txn: OpaquePointer, _ database: LMDBDatabase, from start: [UInt8]?, reverse: Bool,
    _ visit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
) throws {
    var cursor: OpaquePointer?
    try check(mdb_cursor_open(txn, database.handle, &cursor), "opening a cursor on \(database.name)")
    defer { mdb_cursor_close(cursor) }
    var key = MDB_val()
    var value = MDB_val()
    var startCopy = start ?? []
    var code: Int32 = startCopy.withUnsafeMutableBytes { bytes in
        if start != nil {
            key = MDB_val(mv_size: bytes.count, mv_data: bytes.baseAddress)
            return mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE)
        }
        return mdb_cursor_get(cursor, &key, &value, reverse ? MDB_LAST : MDB_FIRST)
    }
    while code == MDB_SUCCESS {
        guard try visit(inPlace(key), inPlace(value)) else { return }
        code = mdb_cursor_get(cursor, &key, &value, reverse ? MDB_PREV : MDB_NEXT)
    }
    if code != MDB_NOTFOUND { try check(code, "walking \(database.name)") }
}
