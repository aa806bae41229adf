// Only TallyStore imports this module: every mdb_* call goes through its check() helper.
#include <lmdb.h>
