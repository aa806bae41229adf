import CLMDB

/// A failed LMDB call: the return code, what Tally was doing, and LMDB's own explanation.
public struct LMDBError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var context: String

    public var description: String {
        "\(context): \(String(cString: mdb_strerror(code))) (LMDB \(code))"
    }

    /// The map is full: the batch failed cleanly and nothing was written.
    public var isMapFull: Bool { code == MDB_MAP_FULL }
    public var isNotFound: Bool { code == MDB_NOTFOUND }
}

/// Every `mdb_*` return code goes through here; none is ever ignored (STYLE: errors).
@inline(__always)
func check(_ code: Int32, _ context: @autoclosure () -> String) throws(LMDBError) {
    if code != MDB_SUCCESS { throw LMDBError(code: code, context: context()) }
}
