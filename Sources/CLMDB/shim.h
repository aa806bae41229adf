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
#endif
