#if canImport(Glibc)
import Glibc
#endif
import CLMDB

/// CPUs a thread may run on, written as Linux lists them (`0`, `0-1`, `0,2-3`). `tallyd --writer-cpus` and
/// `--loop-cpus` pin the store's writer thread and the event loops with it (README, "The writer and the event
/// loop may share a core").
public struct CPUSet: Sendable, Equatable, CustomStringConvertible {
    /// The CPU numbers, ascending, each once.
    public let cpus: [Int]

    /// CPU numbers run below this (the kernel's `cpu_set_t` of 1,024 bits).
    public static let cpuLimit = 1_024
    private static let maskBytes = cpuLimit / 8

    public init?(cpus: [Int]) {
        let sorted = Array(Set(cpus)).sorted()
        guard let first = sorted.first, first >= 0, let last = sorted.last, last < Self.cpuLimit else { return nil }
        self.cpus = sorted
    }

    /// A list such as `0`, `0-1` or `0,2-3`; nil when it is not one (empty, a range backwards, a number of 1,024 or more).
    public init?(parsing text: String) {
        var cpus: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2,
                  let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
                  low >= 0, low <= high, high < Self.cpuLimit else { return nil }
            cpus.append(contentsOf: low...high)
        }
        self.init(cpus: cpus)
    }

    /// The list with runs folded into ranges: `0,2-3`.
    public var description: String {
        var parts: [String] = []
        var index = 0
        while index < cpus.count {
            var end = index
            while end + 1 < cpus.count && cpus[end + 1] == cpus[end] + 1 { end += 1 }
            parts.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    public func isSubset(of other: CPUSet) -> Bool { Set(cpus).isSubset(of: other.cpus) }

    /// The CPUs the calling thread may run on (for the main thread, the process's own set, which `taskset` or a
    /// container's cpuset gave it); nil where the system cannot tell.
    public static var currentThread: CPUSet? {
        #if os(Linux)
        var mask = [UInt8](repeating: 0, count: maskBytes)
        guard mask.withUnsafeMutableBytes({ tally_current_affinity($0.baseAddress, $0.count) }) == 0 else { return nil }
        return CPUSet(cpus: (0..<cpuLimit).filter { mask[$0 / 8] & (1 << ($0 % 8)) != 0 })
        #else
        return nil
        #endif
    }

    /// Lets the calling thread run only on these CPUs. Returns why not when the system refuses (nil: done).
    public func pinCurrentThread() -> String? {
        #if os(Linux)
        var mask = [UInt8](repeating: 0, count: Self.maskBytes)
        for cpu in cpus { mask[cpu / 8] |= 1 << (cpu % 8) }
        let code = mask.withUnsafeBytes { tally_pin_current_thread($0.baseAddress, $0.count) }
        return code == 0 ? nil : "pinning a thread to CPUs \(self) failed: \(String(cString: strerror(code)))"
        #else
        return "pinning threads to CPUs is supported on Linux only"
        #endif
    }
}
