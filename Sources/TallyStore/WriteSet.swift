import CLMDB
import TallyCore

/// The puts and deletes of one batch, as bytes, in the order they were decided.
///
/// The writer builds it while it decides (encoding events and projections on its own thread) and the
/// flusher replays it inside one write transaction: building and writing are separate steps so that the
/// writer can decide the next batch while this one is being made durable. Replaying a write set is
/// idempotent within a fresh transaction, which is what lets a batch be retried after the map has grown.
///
/// Keys and values are copied into one byte buffer as they are added. The encoders' arrays are then freed
/// on the writer thread that allocated them, and the flusher walks plain offsets: no reference counting
/// per operation, and no thousands of small arrays freed on another thread than the one that made them.
struct WriteSet: Sendable {
    /// Plain numbers only, so that walking the entries retains and releases nothing (an `LMDBDatabase` here,
    /// with its name, made two copies per entry in `apply`, a retain and a release each).
    private struct Entry: Sendable {
        var handle: MDB_dbi
        /// Where the table is in `databases` (for the name in an error).
        var table: UInt8
        var keyStart: Int
        var keyCount: Int
        /// Where the value starts; the value's length is `valueCount` (0 for a delete).
        var valueStart: Int
        var valueCount: Int
        var kind: Kind
    }

    private enum Kind: Sendable {
        case put
        case append
        case delete
    }

    private var bytes: [UInt8] = []
    private var entries: [Entry] = []
    /// The tables the entries write, each once (a handful).
    private var databases: [LMDBDatabase] = []

    /// The number of `database` in `databases`, added at its first entry.
    private mutating func table(_ database: LMDBDatabase) -> UInt8 {
        for index in databases.indices where databases[index].handle == database.handle { return UInt8(index) }
        precondition(databases.count < Int(UInt8.max), "a write set spans at most 255 tables")
        databases.append(database)
        return UInt8(databases.count - 1)
    }

    private mutating func add(
        _ database: LMDBDatabase, keyStart: Int, keyCount: Int, valueStart: Int, valueCount: Int, kind: Kind
    ) {
        entries.append(Entry(
            handle: database.handle, table: table(database), keyStart: keyStart, keyCount: keyCount,
            valueStart: valueStart, valueCount: valueCount, kind: kind))
    }

    /// Room for about `commands` lifecycle commands (a command's projections are a few kilobytes in five or
    /// six tables; its events a few hundred bytes), so the buffer of a large batch is not copied over and
    /// over while it grows.
    init(commands: Int = 0, bytesPerCommand: Int = 2_048, entriesPerCommand: Int = 6) {
        bytes.reserveCapacity(commands * bytesPerCommand)
        entries.reserveCapacity(commands * entriesPerCommand)
    }

    mutating func put(_ database: LMDBDatabase, _ key: [UInt8], _ value: [UInt8], append: Bool = false) {
        let keyStart = bytes.count
        bytes.append(contentsOf: key)
        let valueStart = bytes.count
        bytes.append(contentsOf: value)
        add(database, keyStart: keyStart, keyCount: key.count, valueStart: valueStart, valueCount: value.count,
            kind: append ? .append : .put)
    }

    /// A put whose value `encode` appends straight into the set's buffer (no array per value).
    mutating func put(_ database: LMDBDatabase, _ key: [UInt8], encoding encode: (inout ByteWriter) -> Void) {
        let keyStart = bytes.count
        bytes.append(contentsOf: key)
        let valueStart = bytes.count
        appendEncoded(encode)
        add(database, keyStart: keyStart, keyCount: key.count, valueStart: valueStart,
            valueCount: bytes.count - valueStart, kind: .put)
    }

    /// Appends an event to the log as it is stored: its chain value (`SHA-256(previous || record)`) then
    /// its record, both written in place. Returns the new chain value.
    mutating func appendEvent(
        _ database: LMDBDatabase, sequence: UInt64, timestampMilliseconds: Int64, body: EventBody,
        chainingFrom previous: [UInt8]
    ) -> [UInt8] {
        let keyStart = bytes.count
        withUnsafeBytes(of: sequence.bigEndian) { bytes.append(contentsOf: $0) }  // `StoreLayout.sequenceKey`
        let valueStart = bytes.count
        withUnsafeBytes(of: (UInt64(0), UInt64(0), UInt64(0), UInt64(0))) { bytes.append(contentsOf: $0) }  // overwritten below
        appendEncoded { EventCodec.encode(sequence: sequence, timestampMilliseconds: timestampMilliseconds, body: body, into: &$0) }
        let chain = bytes.withUnsafeBytes { buffer in
            EventChain.link(previous, UnsafeRawBufferPointer(rebasing: buffer[(valueStart + 32)...]))
        }
        bytes.withUnsafeMutableBytes { buffer in
            for index in 0..<32 { buffer[valueStart + index] = chain[index] }
        }
        add(database, keyStart: keyStart, keyCount: valueStart - keyStart, valueStart: valueStart,
            valueCount: bytes.count - valueStart, kind: .append)
        return chain
    }

    /// Lets `encode` append to the buffer through a `ByteWriter` that holds it meanwhile (moved, not copied).
    private mutating func appendEncoded(_ encode: (inout ByteWriter) -> Void) {
        var taken: [UInt8] = []
        swap(&taken, &bytes)
        var writer = ByteWriter(appendingTo: consume taken)
        encode(&writer)
        bytes = writer.takeBytes()
    }

    /// A put whose key `appendKey` appends straight into the set's buffer (then bounded, `StoreLayout.bound`)
    /// and whose value `encode` appends after it: no array per key or value. Returns where the key is
    /// (`withKey`).
    @discardableResult
    mutating func put(
        _ database: LMDBDatabase, key appendKey: (inout [UInt8]) -> Void, encoding encode: (inout ByteWriter) -> Void
    ) -> Range<Int> {
        let keyStart = bytes.count
        appendKey(&bytes)
        StoreLayout.bound(&bytes, keyFrom: keyStart)
        let valueStart = bytes.count
        appendEncoded(encode)
        add(database, keyStart: keyStart, keyCount: valueStart - keyStart, valueStart: valueStart,
            valueCount: bytes.count - valueStart, kind: .put)
        return keyStart..<valueStart
    }

    /// A delete whose key `appendKey` appends straight into the set's buffer (then bounded).
    mutating func delete(_ database: LMDBDatabase, key appendKey: (inout [UInt8]) -> Void) {
        let keyStart = bytes.count
        appendKey(&bytes)
        StoreLayout.bound(&bytes, keyFrom: keyStart)
        add(database, keyStart: keyStart, keyCount: bytes.count - keyStart, valueStart: bytes.count, valueCount: 0, kind: .delete)
    }

    /// Runs `body` on the bytes of a key the set holds (`range` from `put`).
    func withKey<T>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    mutating func delete(_ database: LMDBDatabase, _ key: [UInt8]) {
        let keyStart = bytes.count
        bytes.append(contentsOf: key)
        add(database, keyStart: keyStart, keyCount: key.count, valueStart: bytes.count, valueCount: 0, kind: .delete)
    }

    func apply(_ txn: borrowing LMDBWriteTransaction) throws(LMDBError) {
        let failure: (code: Int32, entry: Entry)? = bytes.withUnsafeBytes { buffer in
            for entry in entries {
                let key = UnsafeRawBufferPointer(rebasing: buffer[entry.keyStart..<(entry.keyStart + entry.keyCount)])
                let code: Int32
                switch entry.kind {
                case .delete:
                    code = txn.delete(entry.handle, key)
                case .put, .append:
                    let value = UnsafeRawBufferPointer(rebasing: buffer[entry.valueStart..<(entry.valueStart + entry.valueCount)])
                    code = txn.put(entry.handle, key, value, append: entry.kind == .append)
                }
                if code != MDB_SUCCESS { return (code, entry) }
            }
            return nil
        }
        if let failure {
            let name = databases[Int(failure.entry.table)].name
            try check(failure.code, failure.entry.kind == .delete ? "deleting from \(name)" : "writing to \(name)")
        }
    }
}
