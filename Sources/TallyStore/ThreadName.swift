import Foundation

/// Names the calling thread in the kernel (`top -H`, `perf`, `/proc/<pid>/task/*/comm`). Foundation's
/// `Thread.name` on Linux names only the Foundation object, so without this every long-lived thread of
/// `tallyd` showed as the dispatch pool's name in a profile.
public enum ThreadName {
    /// At most 15 bytes are kept (the kernel's limit); the store's names fit.
    public static func setCurrent(_ name: String) {
        #if os(Linux)
        // A failed write only leaves the default name: nothing to report.
        if let comm = fopen("/proc/thread-self/comm", "w") {
            fputs(name, comm)
            fclose(comm)
        }
        #endif
    }
}
