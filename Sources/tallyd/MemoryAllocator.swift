#if os(Linux)
import CJemalloc
#endif

/// Which allocator serves `tallyd`'s memory. On Linux `tallyd` links jemalloc, which then takes the place of the C
/// library's `malloc` for the whole process (README, "tallyd allocates with jemalloc"); this reads back that it does.
enum MemoryAllocator {
    /// "jemalloc <version>" when jemalloc serves this process's allocations, otherwise "the C library's malloc"
    /// with the reason.
    static var summary: String {
        #if os(Linux)
        guard let version = jemallocVersion else { return "the C library's malloc (jemalloc does not answer mallctl)" }
        guard let allocated = jemallocAllocatedBytes, allocated > 0 else {
            return "the C library's malloc (jemalloc \(version) is linked but has allocated nothing)"
        }
        return "jemalloc \(version)"
        #else
        return "the system's malloc"
        #endif
    }

    #if os(Linux)
    /// jemalloc's version text, or nil when `mallctl` fails.
    private static var jemallocVersion: String? {
        var text: UnsafePointer<CChar>? = nil
        var size = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &text, &size, nil, 0) == 0, let text else { return nil }
        return String(cString: text)
    }

    /// The bytes jemalloc has handed out and not taken back (its statistics, refreshed first): more than zero
    /// once the Swift runtime's allocations go through it, which is what tells it serves `malloc`.
    private static var jemallocAllocatedBytes: Int? {
        var epoch: UInt64 = 1  // writing any value refreshes the statistics
        guard mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size) == 0 else { return nil }
        var allocated = 0
        var size = MemoryLayout<Int>.size
        guard mallctl("stats.allocated", &allocated, &size, nil, 0) == 0 else { return nil }
        return allocated
    }
    #endif
}
