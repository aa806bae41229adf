import TallyCore

/// The working set as of one sequence, compressed (`protocol/archive.md`, section 3): tenants, API keys,
/// budgets and ACTIVE reservations, all that balances as of that instant and applying later events need.
///
/// History (settled reservations, idempotency records) is not in checkpoints: it only grows, so carrying
/// it would make every checkpoint as large as the ledger's past and writing one would need all of it in
/// memory. The events in the segments hold it; the whole state is rebuilt by replaying them.
public struct Checkpoint: Sendable, Hashable {
    public static let magic: [UInt8] = Array("TALLYCKP".utf8)
    public static let formatVersion: UInt16 = 2
    /// Bytes before the zlib version text.
    static let fixedLength = 75

    /// The last event folded into `state`.
    public var sequence: UInt64
    /// That event's writer timestamp.
    public var timestampMilliseconds: Int64
    /// The chain value after that event.
    public var chain: [UInt8]
    /// The working set as of `sequence`.
    public var state: LedgerState

    /// `state` may hold history too; only its working set is kept.
    public init(sequence: UInt64, timestampMilliseconds: Int64, chain: [UInt8], state: LedgerState) {
        self.sequence = sequence
        self.timestampMilliseconds = timestampMilliseconds
        self.chain = chain
        self.state = state
        self.state.dropHistory()
    }

    /// Whether a reservation belongs to the working set rather than the history.
    static func isWorking(_ reservation: Reservation) -> Bool { !reservation.status.isTerminal }
}
