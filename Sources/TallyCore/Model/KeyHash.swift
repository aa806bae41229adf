/// Bucket hashes for the writer's hottest dictionary keys, from a word the key already holds.
///
/// A `Dictionary` or `Set` asks its key for `_rawHashValue(seed:)`, whose default runs a whole `Hasher`
/// (seeding, a SipHash compression and finalization) over what `hash(into:)` feeds, on every lookup,
/// insertion and removal: the writer does about thirty per operation and the `Hasher` alone was 4% of its
/// CPU at 16 x 64 (BENCHMARKS.md). Scope paths and idempotency keys already hold a SipHash of their text,
/// taken once with the process's random seed, and a reservation id made by `tallyd` is 122 random bits:
/// for them the table's per-instance seed needs only to be mixed in, which SplitMix64's finalizer (an
/// avalanche of multiplies and shifts, every input bit moving about half the output bits) does in a few
/// instructions. Different tables still order the same keys differently, and no key text an outsider
/// chooses reaches a table unhashed (text ids keep `String`'s own SipHash).
enum KeyHash {
    static func mix(_ word: UInt64, seed: Int) -> Int {
        var z = word ^ UInt64(bitPattern: Int64(seed))
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: z ^ (z >> 31))
    }
}
