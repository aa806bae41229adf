#if canImport(Glibc)
import Glibc
#endif

/// Version 7 UUIDs (RFC 9562) as lower-case text: the creation millisecond, then 74 bits from the
/// system's CSPRNG.
///
/// Every reserve needs one, and the id is the key of the reservation in the store. Random (version 4)
/// ids put each new reservation on a random leaf of that B-tree, so a durable batch of N reserves wrote
/// about N leaf pages; time-ordered ids append, and a batch fills a few pages at the tree's end (1.6-2x
/// the throughput at 16 connections x 64 in flight, BENCHMARKS.md). They stay UUIDs in the wire format
/// Cycles clients expect, unique and unguessable (74 random bits); the creation time they reveal is
/// in the reservation's `created_at_ms` anyway. Foundation's `UUID()` on Linux also opened, read and
/// closed `/dev/urandom` for each id; `SystemRandomNumberGenerator` (`getrandom`) is the same kind of
/// source, and the text is written once.
enum TimeOrderedUUID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        // RFC 9562 version 7: the Unix time in milliseconds in the top 48 bits, the version (7) in the high
        // nibble of byte 6, the variant (0b10) in the top bits of byte 8, and 74 random bits.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let milliseconds = UInt64(now.tv_sec) &* 1_000 &+ UInt64(now.tv_nsec / 1_000_000)
        let high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | 0x7000 | ((generator.next() as UInt64) & 0x0FFF)
        let low = (generator.next() as UInt64) & ~(0b11 << 62) | (0b10 << 62)
        return String(unsafeUninitializedCapacity: 36) { text in
            var cursor = 0
            func hex(_ value: UInt64, nibbles: Int, from top: Int) {
                for index in 0..<nibbles {
                    let nibble = UInt8(truncatingIfNeeded: value >> UInt64(4 * (top - index))) & 0x0F
                    text[cursor] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                    cursor += 1
                }
            }
            func dash() {
                text[cursor] = UInt8(ascii: "-")
                cursor += 1
            }
            hex(high, nibbles: 8, from: 15)
            dash()
            hex(high, nibbles: 4, from: 7)
            dash()
            hex(high, nibbles: 4, from: 3)
            dash()
            hex(low, nibbles: 4, from: 15)
            dash()
            hex(low, nibbles: 12, from: 11)
            return cursor
        }
    }
}
