/// An operating failure of the store (STYLE principle 5: thrown, with context), as opposed to a ledger
/// refusal. A command that fails this way was not applied and nothing of it is durable, with one exception:
/// when the log was made durable but the projections could not be written after it (a full map), the
/// command's events are in the log (and in the projections once they catch up): a retry with the same
/// idempotency key replays its outcome.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The map is full and cannot grow further: no write can be made durable.
        case storageFull
        /// LMDB or the file system failed.
        case io
        /// The data directory does not hold what a Tally store must (broken chain, undecodable record).
        case corrupt
        /// The data directory was written by another format version.
        case formatMismatch
        /// Another process holds the data directory for writing.
        case locked
        /// The store was closed before the command could be handled.
        case closed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    init(_ error: LMDBError, doing context: String) {
        self.init(error.isMapFull ? .storageFull : .io, "\(context): \(error)")
    }

    /// Any failure of a store operation as a `StoreError`: one already is kept as it is, an LMDB failure
    /// is mapped as above, anything else becomes `otherwise` with the context.
    init(_ error: any Error, doing context: String, otherwise kind: Kind = .io) {
        switch error {
        case let error as StoreError: self = error
        case let error as LMDBError: self.init(error, doing: context)
        default: self.init(kind, "\(context): \(error)")
        }
    }
}
