/// Scope paths a decoder has already read and checked, found again by their bytes.
///
/// Every `Reserved` record carries nine or so scope paths and every commit a few more, and in a run of
/// records they are the same few paths over and over. Reading one means checking its UTF-8 and its
/// canonical form, building a string and hashing it (`ScopePath` keeps its hash): about a third of
/// decoding a lifecycle record. A reader given a cache compares the bytes with the path last seen in their
/// slot and, when they are equal, hands out that path (one retain). A miss decodes as without a cache and
/// takes the slot. Slots are direct-mapped by a cheap hash of the length and a few bytes; the full
/// comparison makes a collision a miss, never a wrong path.
///
/// One decoding thread at a time: the cache is not `Sendable`.
public final class ScopePathCache {
    private var slots: [ScopePath?]
    private static let slotCount = 256

    public init() {
        slots = Array(repeating: nil, count: Self.slotCount)
    }

    /// The path whose UTF-8 is exactly `utf8`, if it is cached.
    func path(_ utf8: UnsafeRawBufferPointer) -> ScopePath? {
        guard let cached = slots[Self.slot(utf8)] else { return nil }
        // Scope paths are native strings (decoded or built here), so their UTF-8 is contiguous.
        let equal = cached.rawValue.utf8.withContiguousStorageIfAvailable { ByteKeyTable.equal(UnsafeRawBufferPointer($0), utf8) }
        return equal == true ? cached : nil
    }

    /// Caches `path`, read from `utf8`, in its slot.
    func insert(_ path: ScopePath, readFrom utf8: UnsafeRawBufferPointer) {
        slots[Self.slot(utf8)] = path
    }

    /// The length and up to the last 16 bytes (paths of one tenant share their start, and differ most at
    /// their leaf), mixed by a multiply.
    private static func slot(_ utf8: UnsafeRawBufferPointer) -> Int {
        var mix = UInt64(utf8.count) &* 0x9E37_79B9_7F4A_7C15
        if utf8.count >= 16 {
            mix ^= utf8.loadUnaligned(fromByteOffset: utf8.count - 8, as: UInt64.self)
            mix = (mix ^ utf8.loadUnaligned(fromByteOffset: utf8.count - 16, as: UInt64.self) >> 7) &* 0xFF51_AFD7_ED55_8CCD
        } else {
            for byte in utf8 { mix = (mix ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        return Int(truncatingIfNeeded: (mix ^ mix >> 29) & UInt64(slotCount - 1))
    }
}
