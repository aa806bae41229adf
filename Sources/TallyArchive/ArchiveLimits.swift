/// Every bound the archive readers put on what a file declares, checked before anything is allocated
/// (STYLE principle 4). They live here rather than in `TallyCore/Limits.swift` because only this module
/// reads archive files.
public enum ArchiveLimits {
    /// A segment's decompressed payload: large enough for a million ordinary events, small enough to hold
    /// in memory while it is sealed or replayed.
    public static let segmentPayloadBytesMax = 1 << 30
    /// A checkpoint's decompressed payload: the whole projection state of a large ledger.
    public static let checkpointPayloadBytesMax = 1 << 33
    /// Events in one segment; the archiver's default is far below it.
    public static let segmentEventsMax: UInt64 = 10_000_000
    /// The preset deflate dictionary; zlib uses at most its last 32 KiB anyway.
    public static let dictionaryBytesMax = 32 * 1024
    /// The records a segment rebuilds, all together: lifted strings make a payload expand (a one-byte index
    /// can stand for a kilobyte), so the total a file declares is checked before the buffer is allocated.
    public static let segmentRecordBytesMax = 1 << 31
    /// Entries of a segment's string table (format 2); the writer keeps the most frequent.
    public static let stringTableCountMax = 1 << 16
    /// The zlib version text recorded in headers (zlib's own are under 16 bytes).
    public static let zlibVersionBytesMax = 64
}
