import NIOCore
import TallyArchive
import TallyStore

/// Everything `tallyd` is started with. Defaults are the ones documented in `tallyd --help`.
public struct ServerConfiguration: Sendable {
    /// Event loops for the connections of every plane when `tallyd` is not told (`--event-loops`): the cores
    /// the store's writer and flusher threads leave, at least one and at most 256 (`--event-loops`' range). On two
    /// cores one loop serves the connections for 6-12% less of the server's CPU per operation than two
    /// (BENCHMARKS.md, "One event loop on two cores").
    public static var eventLoopsDefault: Int { min(256, max(1, System.coreCount - 2)) }

    public var dataDirectory = "./data"
    public var host = "127.0.0.1"
    /// 0 asks the kernel for a free port (tests); the bound port is reported by `TallyServer.boundPort`.
    public var port = 7070
    /// The Cycles HTTP/JSON runtime plane; nil turns it off, 0 picks a free port.
    public var httpPort: Int? = 7878
    /// The Cycles HTTP/JSON admin plane; nil turns it off, 0 picks a free port.
    public var adminHTTPPort: Int? = 7979
    /// An HTTP connection must send its next whole request within this many seconds of opening or of its
    /// last answer, or it is closed (408 when part of a request had arrived).
    public var httpIdleTimeoutSeconds: Int64 = 60
    /// Largest HTTP request body; larger ones get 413.
    public var httpBodyBytesMax = 256 * 1024
    /// The operator's admin key. When nil, the key whose hash is stored in the data directory is used, and
    /// on the very first start a random one is generated, its hash stored and the key printed once.
    public var adminKey: String?
    /// Largest frame a peer may send; checked from the length prefix before any byte of the body is buffered.
    public var frameBytesMax = 1 << 20
    /// Requests a connection may have in flight; more are refused with LIMIT_EXCEEDED, not queued.
    public var inFlightRequestsMax = 1_024
    /// Concurrent connections on the binary protocol, and separately on the HTTP planes together; more are
    /// closed at accept.
    public var connectionsMax = 4_096
    /// Rows a listing may return in one page.
    public var listLimitMax = 200
    /// How often a subscription looks for newly committed events.
    public var subscriptionPollMilliseconds: Int64 = 20
    public var store = StoreOptions()
    /// The CPUs the event loops run on (nil: wherever the system schedules them). `tallyd --loop-cpus`. The loops
    /// are NIO's singleton group, the whole process's: a server started with this pins them for every other user.
    public var loopCPUs: CPUSet?
    /// The background archiver (sealed segments and checkpoints); nil turns it off. `tallyd` sets it to
    /// `<data-directory>/archive` unless told otherwise.
    public var archive: ArchiverConfiguration?

    public init() {}
}
