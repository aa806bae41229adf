import TallyCore

/// The projection state as of one sequence, compressed (`protocol/archive.md`, section 3).
///
/// A full checkpoint (`baseSequence == 0`) holds the whole state. A delta checkpoint holds only the
/// entries that changed since the checkpoint at `baseSequence` (the ledger never deletes an entry, so
/// changed entries are all a delta needs); the state it stands for is its base's state with these entries
/// written over it. `ArchiveReader.checkpoint` resolves a delta to the full state.
public struct Checkpoint: Sendable, Hashable {
    public static let magic: [UInt8] = Array("TALLYCKP".utf8)
    public static let formatVersion: UInt16 = 1
    /// Bytes before the zlib version text.
    static let fixedLength = 99

    /// The last event folded into `state`.
    public var sequence: UInt64
    /// That event's writer timestamp.
    public var timestampMilliseconds: Int64
    /// The chain value after that event.
    public var chain: [UInt8]
    /// 0 for a full checkpoint; otherwise the sequence of the checkpoint this one is a delta over.
    public var baseSequence: UInt64
    /// The whole state (full checkpoint) or the changed entries (delta); after a working-set load, without
    /// terminal reservations and idempotency records.
    public var state: LedgerState
    /// After a working-set load only: the reservations that are terminal here (a delta's overlay removes
    /// them from its base's working set).
    public var closedReservationIDs: [String] = []

    public init(sequence: UInt64, timestampMilliseconds: Int64, chain: [UInt8], baseSequence: UInt64 = 0, state: LedgerState) {
        precondition(baseSequence < sequence || baseSequence == 0, "a delta's base comes before it")
        self.sequence = sequence
        self.timestampMilliseconds = timestampMilliseconds
        self.chain = chain
        self.baseSequence = baseSequence
        self.state = state
    }

    public var isDelta: Bool { baseSequence != 0 }

    /// The entries of `state` named in `keys` (the delta of a checkpoint).
    public static func entries(_ keys: TouchedKeys, of state: LedgerState) -> LedgerState {
        var delta = LedgerState()
        for id in keys.tenants { delta.tenants[id] = state.tenants[id] }
        for id in keys.apiKeys {
            delta.apiKeys[id] = state.apiKeys[id]
            if let key = state.apiKeys[id] { delta.apiKeyIDsByHash[key.secretHash] = id }
        }
        for key in keys.budgets { delta.budgets[key] = state.budgets[key] }
        for id in keys.reservations { delta.reservations[id] = state.reservations[id] }
        for key in keys.idempotency { delta.idempotency[key] = state.idempotency[key] }
        return delta
    }

    /// Writes the entries of `delta` over `state`, after removing the reservations it closed (those are
    /// only listed after a working-set load; a full load has them in `delta.reservations`).
    static func overlay(_ delta: LedgerState, closing closed: [String] = [], on state: inout LedgerState) {
        for id in closed { state.reservations.removeValue(forKey: id) }
        for (id, tenant) in delta.tenants { state.tenants[id] = tenant }
        for (id, key) in delta.apiKeys {
            state.apiKeys[id] = key
            state.apiKeyIDsByHash[key.secretHash] = id
        }
        for (key, budget) in delta.budgets { state.budgets[key] = budget }
        for (id, reservation) in delta.reservations { state.reservations[id] = reservation }
        for (key, record) in delta.idempotency { state.idempotency[key] = record }
    }
}
