import Foundation
import Testing
@testable import TallyStore

/// The CPU lists of `tallyd --writer-cpus` and `--loop-cpus`.
struct CPUSetTests {
    @Test func listsReadAsLinuxWritesThem() throws {
        for (text, cpus, written) in [
            ("0", [0], "0"), ("0-1", [0, 1], "0-1"), ("0,2-3", [0, 2, 3], "0,2-3"), ("3,1,2", [1, 2, 3], "1-3"),
            ("5,5,0-1", [0, 1, 5], "0-1,5"), ("1023", [1023], "1023"), ("4-4", [4], "4"),
        ] {
            let set = try #require(CPUSet(parsing: text), "\(text)")
            #expect(set.cpus == cpus && set.description == written, "\(text): \(set.cpus) \(set)")
        }
    }

    @Test func anythingElseIsNoList() {
        for text in ["", "a", "1-", "-1", "2-1", "1024", "0-1024", "0,,1", "0,", " 1", "1-2-3", "0x1"] {
            #expect(CPUSet(parsing: text) == nil, "\(text)")
        }
    }

    @Test func subsetsAndTheProcesssOwnCPUs() throws {
        let two = try #require(CPUSet(parsing: "0-1"))
        #expect(try #require(CPUSet(parsing: "1")).isSubset(of: two))
        #expect(!(try #require(CPUSet(parsing: "1-2")).isSubset(of: two)))
        #if os(Linux)
        let own = try #require(CPUSet.currentThread)
        #expect(!own.cpus.isEmpty)
        #endif
    }

    /// A thread pinned reads back only its CPU, and the other threads keep theirs.
    @Test func aPinnedThreadRunsOnlyThere() async throws {
        #if os(Linux)
        let own = try #require(CPUSet.currentThread)
        let last = try #require(CPUSet(cpus: [own.cpus[own.cpus.count - 1]]))
        let seen: (String?, CPUSet?) = await withCheckedContinuation { continuation in
            Thread {
                let failure = last.pinCurrentThread()
                continuation.resume(returning: (failure, CPUSet.currentThread))
            }.start()
        }
        #expect(seen.0 == nil && seen.1 == last, "\(seen)")
        #expect(CPUSet.currentThread == own)
        #endif
    }
}
