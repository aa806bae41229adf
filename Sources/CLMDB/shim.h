// Only TallyStore imports this module: every mdb_* call goes through its check() helper.
#include <lmdb.h>

#if defined(__linux__)
#include <errno.h>
#include <sys/types.h>

// glibc declares fallocate only under _GNU_SOURCE, which Swift's Glibc module does not define.
extern int fallocate(int fd, int mode, off_t offset, off_t len);

/// Allocates blocks of a file without writing them (mode 0: the file grows to cover the range). 0 or errno.
static inline int tally_allocate_file(int fd, off_t offset, off_t length) {
    return fallocate(fd, 0, offset, length) == 0 ? 0 : errno;
}

// Also only under _GNU_SOURCE. `mask` is a cpu_set_t's bytes (bit n of byte n / 8: CPU n).
extern int sched_setaffinity(pid_t pid, size_t size, const void *mask);
extern int sched_getaffinity(pid_t pid, size_t size, void *mask);

/// Lets the calling thread run only on the CPUs in `mask`. 0 or errno.
static inline int tally_pin_current_thread(const void *mask, size_t size) {
    return sched_setaffinity(0, size, mask) == 0 ? 0 : errno;
}

/// The CPUs the calling thread may run on, into `mask`. 0 or errno.
static inline int tally_current_affinity(void *mask, size_t size) {
    return sched_getaffinity(0, size, mask) == 0 ? 0 : errno;
}
#endif
