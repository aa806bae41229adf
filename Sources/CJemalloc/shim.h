// jemalloc from Debian's libjemalloc-dev, linked into tallyd (Linux) as the process's malloc: Debian builds it
// without a symbol prefix, so once linked it serves every allocation, the Swift runtime's included. tallyd
// calls only `mallctl`, to report that it does.
#include <jemalloc/jemalloc.h>
