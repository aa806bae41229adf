import Glibc

/// Keeps the log's data file allocated ahead of its last page (`LMDBEnvironment.allocateFile`), so that a
/// commit's `fdatasync` only writes the pages it changed. When the pages are appended past the end of the
/// file, the flush also writes the file's new size and block allocation: on this project's ext4 disk an
/// `fdatasync` after appending two pages took a median of 108-116 us, after overwriting allocated ones 45-54 us
/// (BENCHMARKS.md, "The log's file allocated ahead"). LMDB ignores the zeros past its last page; the file
/// stays at most `aheadBytes` larger than the log.
struct LogAllocation {
    /// How far past the last page the file is allocated after a refill.
    static let aheadBytes = 16 << 20
    /// A refill happens once less than this is left.
    static let refillBelowBytes = 4 << 20

    /// Where the allocated file ends (read from the file the first time).
    private var allocatedEnd: Int?
    /// The file system refused for good (no `fallocate`): commits grow the file as LMDB writes it.
    private var unsupported = false

    /// Allocates the next stretch when the log has come close to the end of what is allocated. Run after a
    /// commit, off the answer's path; a failure only means commits keep growing the file themselves.
    mutating func keepAhead(of log: LMDBEnvironment) {
        guard !unsupported, let used = try? log.usedBytes() else { return }
        let end = max(allocatedEnd ?? log.fileBytes() ?? used, used)
        allocatedEnd = end
        guard end - used < Self.refillBelowBytes else { return }
        let target = used + Self.aheadBytes
        switch log.allocateFile(from: end, length: target - end) {
        case 0:
            allocatedEnd = target
        case ENOSPC, EINTR, EIO:
            break  // try again after a later commit
        default:
            unsupported = true  // EOPNOTSUPP and the like: this file system cannot
        }
    }
}
