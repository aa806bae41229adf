/// An open-addressing hash index from byte strings to small integers, for folds that must look keys up
/// straight from record bytes without building a `String` or an `Array` per lookup.
///
/// The table stores only each entry's hash and value; the keys live with the caller (in a record or an
/// arena), and a lookup passes a closure that compares a candidate value's key with the bytes at hand. So
/// a match is always exact: the hash only chooses where to look. Linear probing, a load factor of at most
/// one half, and removal by shifting later entries back (no tombstones, so long runs of inserts and
/// removals never slow lookups down).
struct ByteKeyTable: Sendable {
    private var hashes: [UInt64]
    /// -1 marks an empty slot.
    private var values: [Int32]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 64) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        hashes = Array(repeating: 0, count: size)
        values = Array(repeating: -1, count: size)
        mask = size - 1
    }

    /// The value whose key `matches`, among the entries stored under `hash`.
    @inline(__always)
    func find(_ hash: UInt64, _ matches: (Int32) -> Bool) -> Int32? {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let value = values[slot]
            if value < 0 { return nil }
            if hashes[slot] == hash && matches(value) { return value }
            slot = (slot + 1) & mask
        }
    }

    /// Adds an entry; the caller has checked that no entry has the same key.
    mutating func insert(_ hash: UInt64, _ value: Int32) {
        precondition(value >= 0, "table values are not negative")
        if (count + 1) * 2 > values.count { grow() }
        var slot = Int(truncatingIfNeeded: hash) & mask
        while values[slot] >= 0 { slot = (slot + 1) & mask }
        hashes[slot] = hash
        values[slot] = value
        count += 1
    }

    /// Removes the entry with this hash and value, which must be present.
    mutating func remove(_ hash: UInt64, _ value: Int32) {
        var hole = Int(truncatingIfNeeded: hash) & mask
        while !(values[hole] == value && hashes[hole] == hash) {
            precondition(values[hole] >= 0, "removing an entry that is not in the table")
            hole = (hole + 1) & mask
        }
        // Shift back every later entry of the run whose home slot is not between the hole and itself, so
        // that each entry stays reachable from its home slot without passing an empty one.
        var next = (hole + 1) & mask
        while values[next] >= 0 {
            let home = Int(truncatingIfNeeded: hashes[next]) & mask
            let distanceToHome = (next - home) & mask
            let distanceToHole = (next - hole) & mask
            if distanceToHome >= distanceToHole {
                hashes[hole] = hashes[next]
                values[hole] = values[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        values[hole] = -1
        count -= 1
    }

    private mutating func grow() {
        let oldHashes = hashes
        let oldValues = values
        hashes = Array(repeating: 0, count: oldValues.count * 2)
        values = Array(repeating: -1, count: oldValues.count * 2)
        mask = values.count - 1
        count = 0
        for slot in oldValues.indices where oldValues[slot] >= 0 { insert(oldHashes[slot], oldValues[slot]) }
    }

    /// Byte equality eight bytes at a time (keys are a few dozen bytes; `elementsEqual` goes byte by byte).
    @inline(__always)
    static func equal(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        let count = left.count
        guard count >= 8 else { return left.elementsEqual(right) }
        var offset = 0
        while offset + 8 <= count {
            if left.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != right.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
                return false
            }
            offset += 8
        }
        // The last eight bytes (overlapping the words compared) instead of a byte loop.
        return offset == count
            || left.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == right.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
    }

    /// A 64-bit hash of `bytes` mixed with `seed`, sixteen bytes at a time in two independent lanes (a
    /// lane's multiply does not wait for the other's, so a key of a few dozen bytes costs a few multiplies
    /// of latency, not one per word). The keys it indexes come from the ledger's own log, and a collision
    /// costs one more comparison, never a wrong answer.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let first: UInt64 = 0x9E37_79B9_7F4A_7C15
        let second: UInt64 = 0xC2B2_AE3D_27D4_EB4F
        let count = bytes.count
        var left = (seed ^ UInt64(count)) &* first
        var right = (seed &+ second) &* first
        @inline(__always) func word(_ offset: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        if count >= 8 {
            var offset = 0
            while offset &+ 16 <= count {
                left = ((left ^ word(offset)) &* first).rotatedLeft(29)
                right = ((right ^ word(offset &+ 8)) &* second).rotatedLeft(31)
                offset &+= 16
            }
            // Up to fifteen bytes left: a word at `offset` if more than eight, and the last eight bytes
            // (overlapping bytes already mixed) instead of a byte loop.
            if count &- offset > 8 { left = ((left ^ word(offset)) &* first).rotatedLeft(29) }
            if offset < count { right = ((right ^ word(count &- 8)) &* second).rotatedLeft(31) }
        } else {
            var tail: UInt64 = 0
            for index in 0..<count { tail |= UInt64(bytes[index]) << UInt64(8 * index) }
            right = ((right ^ tail) &* second).rotatedLeft(31)
        }
        let hash = (left ^ right.rotatedLeft(17)) &* first
        return hash ^ (hash >> 32)
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
