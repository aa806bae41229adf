import TallyCore

/// The bounds of the wire protocol's own fields, each with its reason.
///
/// Fields that carry ledger values (ids, subjects, amounts, metadata) use the event codec's bounds in
/// `EventCodec.FieldLimit`, so a value has the same limit on the wire, in the log and in a projection.
/// Only what exists on the wire alone is bounded here; TallyCore's `Limits` stays about the ledger.
/// Every value is listed in `protocol/wire.md`, and changing one is a protocol change.
public enum WireLimits {
    /// A server's default bound on a frame's length field: a full page of reservations with metadata fits,
    /// and one connection can never make the server buffer more than this for a single message.
    public static let frameBytesMaxDefault = 4 * 1024 * 1024
    /// Tenant API keys and the admin key are generated secrets of well under 100 bytes; 512 leaves room.
    public static let secretBytesMax = 512
    /// A client or server name is a short label for logs (`tally-cli/1.0`).
    public static let peerNameBytesMax = 256
    /// Error messages are sentences naming a field or an id; longer text is cut at a scalar boundary.
    public static let errorMessageBytesMax = 4096
    /// A listing cursor is an opaque token the server made; 1 KiB holds any sort key plus an id.
    public static let cursorBytesMax = 1024
    /// The u16 count of a listing; the frame length is the effective bound on how many items fit.
    public static let listItemsCountMax = Int(UInt16.max)
    /// Listing filters name each scope level at most once.
    public static let segmentsCountMax = ScopeLevel.allCases.count
    /// The ids one expiry sweep settles: the sweep's own batch bound.
    public static let expiredIDsCountMax = Limits.expirySweepCountMax
    /// An event record is a few tens of KiB at most (three 16 KiB JSON fields plus a subject); 1 MiB bounds
    /// what a subscriber allocates for one event.
    public static let eventRecordBytesMax = 1024 * 1024
    /// A chain value is one SHA-256 digest.
    public static let chainBytes = 32
    /// Every unit in the `Unit` enumeration, at most once each.
    public static let unitsCountMax = Unit.allCases.count
}
