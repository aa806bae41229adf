@testable import TallyCore

/// A tiny deterministic PRNG (SplitMix64, Steele, Lea and Flood 2014) so that a failing randomized run
/// can be reproduced exactly from its seed on any platform; the stdlib generator is not seedable.
struct ModelSplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `percent` / 100.
    mutating func chance(_ percent: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) * 100 < percent
    }

    mutating func int(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &self) }

    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }

    mutating func pickOptional<T>(_ items: [T]) -> T? { items.isEmpty ? nil : pick(items) }
}

/// A deterministic stand-in for the gateway's SHA-256 of a request payload: four FNV-1a passes with
/// different offsets over a canonical description. Collisions are irrelevant for a test world.
enum ModelPayloadFingerprint {
    static func digest(_ text: String) -> Digest256 {
        func fnv(_ offset: UInt64) -> UInt64 {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ offset
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            return hash
        }
        return Digest256(words: (fnv(1), fnv(2), fnv(3), fnv(4)))
    }
}
