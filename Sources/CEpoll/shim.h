// epoll(7) for `tally bench --http`'s client; empty off Linux (the client uses poll(2) there).
#if defined(__linux__)
#include <sys/epoll.h>
#endif
