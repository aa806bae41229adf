/// Byte strings numbered in the order first seen, looked up without building a `String`: folds that count
/// by tenant, agent or action name once per event key their tallies by these small numbers instead.
public struct InternedStrings: Sendable {
    private var index = ByteKeyTable()
    private var strings: [[UInt8]] = []

    public init() {}

    public var count: Int { strings.count }

    /// The number of `bytes`, given it if new.
    public mutating func intern(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let hash = ByteKeyTable.hash(bytes)
        if let found = index.find(hash, { id in strings[Int(id)].withUnsafeBytes { ByteKeyTable.equal($0, bytes) } }) { return found }
        let id = Int32(strings.count)
        strings.append(Array(bytes))
        index.insert(hash, id)
        return id
    }

    /// The string numbered `id`.
    public func string(_ id: Int32) -> String { String(decoding: strings[Int(id)], as: UTF8.self) }
}
