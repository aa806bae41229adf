/// When and where the archiver seals segments, and how much of the live log it keeps.
public struct ArchiverConfiguration: Sendable {
    /// The archive directory (`<data-directory>/archive` by default).
    public var directory: String
    /// A segment is sealed as soon as this many events are not yet archived. 25,000 ordinary events compress
    /// to about 1.4 MB and replay in about 20 ms on one core; the sealer's buffers for them (about 10 MB of
    /// records, a 4.4 MB payload) stay in the caches, where a segment of 100,000 streamed four times as much
    /// through memory and cost a burst of requests 5-8% more (README, "Segments of 25,000 events").
    public static let defaultEveryEvents: UInt64 = 25_000
    public var everyEvents: UInt64 = ArchiverConfiguration.defaultEveryEvents
    /// Besides the one at each segment's end, a checkpoint every this many events inside a segment, so a
    /// point-in-time query replays at most this many events. A checkpoint is the working set only (a few
    /// kilobytes to a few megabytes), so they are cheap.
    public var checkpointEveryEvents: UInt64 = 25_000
    /// Events older than this are sealed even if fewer than `everyEvents` are pending, so a quiet ledger
    /// is still archived; nil seals by count only.
    public var everySeconds: Int64? = 3_600
    /// While the ledger is busy (events arrived at `busyEventsPerSecond` or faster since the previous pass),
    /// full segments wait until this many events are pending, and each pass then seals what brings the backlog
    /// back under it; once the ledger is quieter everything due is sealed. Sealing takes a core for 0.3-0.45 s
    /// per 100,000 events (a second before 2026-12-02): done in a burst it takes that from the requests (the
    /// 8 x 16 benchmark's p99 rose from about 7 to 11-12 ms, BENCHMARKS.md), done after it, nothing. A value
    /// of `everyEvents` or less seals every full segment at once, busy or not. Events older than
    /// `everySeconds` are sealed either way.
    public var busyBacklogEvents: UInt64 = 1_000_000
    /// The arrival rate above which the ledger counts as busy (see `busyBacklogEvents`).
    public static let busyEventsPerSecond: UInt64 = 1_000
    /// When set, the live log is trimmed below the newest sealed segment (and its checkpoint), keeping at
    /// least this many of the newest events live; nil never trims.
    public var retainLiveEvents: UInt64?
    /// How often the background archiver looks at the log.
    public var pollIntervalMilliseconds: Int64 = 1_000

    public init(directory: String) {
        self.directory = directory
    }
}
