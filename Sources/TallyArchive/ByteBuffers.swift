extension Array where Element == UInt8 {
    /// Sets the count to `size`, keeping the bytes already there and adding zeros past them: a buffer
    /// reused for a payload or a record block that its writer then overwrites (the capacity it had is kept,
    /// so reusing it costs no allocation).
    mutating func resize(to size: Int) {
        if count < size {
            append(contentsOf: repeatElement(0, count: size - count))
        } else {
            removeLast(count - size)
        }
    }
}
