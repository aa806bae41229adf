#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TallyCore

/// Version 7 UUIDs (RFC 9562): the creation millisecond, then 74 bits from the system's CSPRNG.
///
/// Every reserve needs one, and the id is the key of the reservation in the store. Random (version 4)
/// ids put each new reservation on a random leaf of that B-tree, so a durable batch of N reserves wrote
/// about N leaf pages; time-ordered ids append, and a batch fills a few pages at the tree's end (1.6-2x
/// the throughput at 16 connections x 64 in flight, BENCHMARKS.md). They stay UUIDs in the wire format
/// Cycles clients expect, unique and unguessable (74 random bits); the creation time they reveal is
/// in the reservation's `created_at_ms` anyway. The random bits come from the system's CSPRNG
/// (`/dev/urandom`) through `RandomPool`, 4 KiB per read rather than a `getrandom` call per draw
/// (Foundation's `UUID()` on Linux opened, read and closed `/dev/urandom` for each id). The id is kept as
/// its bits (`ReservationID`); its text is written only where it leaves the process.
enum TimeOrderedUUID {
    static let randomness = RandomPool()

    static func make() -> ReservationID {
        // RFC 9562 version 7: the Unix time in milliseconds in the top 48 bits, the version (7) in the high
        // nibble of byte 6, the variant (0b10) in the top bits of byte 8, and 74 random bits.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = UInt64(now.tv_sec) &* 1_000 &+ UInt64(now.tv_nsec / 1_000_000)
        let (first, second) = randomness.next()
        let high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | (first & 0x0FFF)
        let low = second & ~(0b11 << 62) | (0b10 << 62)
        return ReservationID(high: high, low: low)
    }
}

/// Bits from the system's CSPRNG (`/dev/urandom`), read 4 KiB at a time and handed out once each: the same
/// source as `SystemRandomNumberGenerator`, without a system call per draw (every reserve draws 128 bits,
/// and `getrandom` was a system call per request on the event loops).
final class RandomPool: Sendable {
    private static let words = 512
    private let state = Mutex(Pool())

    private struct Pool {
        var words: [UInt64] = []
        var next = 0
    }

    /// Two words never handed out before.
    func next() -> (UInt64, UInt64) {
        state.withLock { pool in
            if pool.next + 2 > pool.words.count {
                pool.words = Self.fill()
                pool.next = 0
            }
            defer { pool.next += 2 }
            return (pool.words[pool.next], pool.words[pool.next + 1])
        }
    }

    private static func fill() -> [UInt64] {
        var words = [UInt64](repeating: 0, count: Self.words)
        words.withUnsafeMutableBytes { buffer in
            var filled = 0
            let device = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            while device >= 0 && filled < buffer.count {
                let count = read(device, buffer.baseAddress! + filled, buffer.count - filled)
                if count > 0 {
                    filled += count
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            if device >= 0 { close(device) }
            if filled < buffer.count {
                // No /dev/urandom (a bare container): the standard library's generator, the same source,
                // one system call per word.
                var generator = SystemRandomNumberGenerator()
                for index in 0..<Self.words { buffer.storeBytes(of: generator.next() as UInt64, toByteOffset: index * 8, as: UInt64.self) }
            }
        }
        return words
    }
}
