import Glibc
import TallyCore

/// How a store is opened. Defaults suit a server; tests shrink the map and the sweep interval.
public struct StoreOptions: Sendable {
    /// The map size at open. LMDB reserves address space, not disk: the file grows only as data does.
    public var mapSizeBytes: Int = 1 << 30
    /// How far the writer may grow the map after `MDB_MAP_FULL` before it refuses writes.
    public var mapSizeBytesMax: Int = 1 << 40
    /// At most this many commands are decided and made durable by one write transaction: large enough that
    /// one fsync serves many callers, small enough that one batch never holds callers for long.
    public var batchCommandsMax: Int = 512
    /// How often the writer looks for reservations past `expires_at + grace`.
    public var expirySweepIntervalMilliseconds: Int64 = 1_000
    /// Told how far opening has got when it has long work to do before serving (rebuilding or catching up
    /// the projections, upgrading a format 1 directory): a line when it starts, about every two seconds,
    /// and when it is done. `tallyd` logs them.
    public var openProgress: (@Sendable (String) -> Void)?
    /// The digest of idempotency keys in `IdempotencyIndex` (nil: `IdempotencyKey.fieldsDigest`).
    /// Tests give a poor one to make keys collide.
    var idempotencyDigestForTests: (@Sendable (IdempotencyKey) -> UInt64)?
    /// At most this many aged-out idempotency rows are deleted with one batch (`IdempotencySweep`). Tests lower it.
    var idempotencySweepRowsPerBatch = IdempotencySweep.defaultRowsPerBatch
    /// Whether the writer deletes aged-out idempotency rows while no command waits. Tests that count what each
    /// batch deletes turn it off.
    var idempotencySweepWhileIdle = true
    /// The CPUs the writer thread runs on (nil: wherever the system schedules it). `tallyd --writer-cpus`; the
    /// caller checks them against the process's own (`CPUSet.currentThread`) first. Should pinning fail all the
    /// same, `openProgress` is told and the thread runs unpinned.
    public var writerCPUs: CPUSet?
    /// The writer's clock in epoch milliseconds (injected by tests).
    public var clock: @Sendable () -> Int64 = StoreOptions.wallClockMilliseconds

    public init() {}

    public static func wallClockMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }
}
