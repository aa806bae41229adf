/// Random (version 4) UUIDs as lower-case text, straight from the system's CSPRNG.
///
/// Every reserve needs one. Foundation's `UUID()` on Linux opens, reads and closes `/dev/urandom` for each
/// id, and `uuidString` formats it with `snprintf` before `lowercased()` copies it again: three system calls
/// and three strings per reserve on the event loop. `SystemRandomNumberGenerator` is the same kind of
/// source (`getrandom`), and the text is written once.
enum RandomUUID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        // RFC 9562: the version (4) is the high nibble of byte 6, the variant (0b10) the top bits of byte 8.
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
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
