/// A 256-bit digest (SHA-256 of a payload or of an API key secret), computed by the caller.
///
/// TallyCore never hashes: the gateway fingerprints each request with swift-crypto and the ledger only
/// compares fingerprints. Four words keep the value small, hashable and cheap to compare.
public struct Digest256: Sendable, Hashable, CustomStringConvertible {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public static let zero = Digest256(words: (0, 0, 0, 0))

    public init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// Builds a digest from exactly 32 big-endian bytes; any other length gives nil.
    @inlinable
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        // Contiguous storage is read in place; this runs once per request, so it must not allocate.
        let fromContiguous: (UInt64, UInt64, UInt64, UInt64)? = bytes.withContiguousStorageIfAvailable { buffer in
            func word(_ at: Int) -> UInt64 {
                var value: UInt64 = 0
                for index in at..<(at + 8) { value = value << 8 | UInt64(buffer[index]) }
                return value
            }
            return (word(0), word(8), word(16), word(24))
        }
        if let fromContiguous {
            words = fromContiguous
            return
        }
        var parts: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, byte) in bytes.enumerated() {
            switch index / 8 {
            case 0: parts.0 = parts.0 << 8 | UInt64(byte)
            case 1: parts.1 = parts.1 << 8 | UInt64(byte)
            case 2: parts.2 = parts.2 << 8 | UInt64(byte)
            default: parts.3 = parts.3 << 8 | UInt64(byte)
            }
        }
        words = parts
    }

    public var bytes: [UInt8] {
        var bigEndian = (words.0.bigEndian, words.1.bigEndian, words.2.bigEndian, words.3.bigEndian)
        return withUnsafeBytes(of: &bigEndian) { Array($0) }
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }

    public static func == (lhs: Digest256, rhs: Digest256) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
