import Glibc

/// An exclusive `flock` on `<archive-directory>/archive.lock`, held while a segment is sealed, so that the
/// archiver inside `tallyd` and `tally archive seal` never write the same range at once.
final class ArchiveLock {
    private let descriptor: Int32

    /// Waits for the lock; the only holders seal for a few seconds at most.
    init(directory: ArchiveDirectory) throws(ArchiveError) {
        let path = directory.filePath("archive.lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ArchiveDirectory.posixError(path, "cannot open the archive lock") }
        var result: Int32 = -1
        var done = false
        while !done {
            result = flock(fd, LOCK_EX)
            done = result == 0 || errno != EINTR
        }
        guard result == 0 else {
            let error = ArchiveDirectory.posixError(path, "cannot lock")
            close(fd)
            throw error
        }
        descriptor = fd
    }

    deinit { close(descriptor) }
}
