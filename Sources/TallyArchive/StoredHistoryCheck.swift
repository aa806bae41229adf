import TallyCore
import TallyStore

/// The live store's projections as an audit reads them: the working set whole, history entries by key,
/// so that the history (which grows with the ledger) is never held in memory.
public protocol StoredProjections {
    func storedWorkingSet() throws -> StoredWorkingSet
    func storedReservations(_ ids: [ReservationID]) throws -> [[UInt8]?]
    func storedIdempotencyRecords(_ keys: [IdempotencyKey]) throws -> [IdempotencyRecord?]
}

extension LogReader: StoredProjections {}

/// `HistoryComparison` against a `StoredProjections`, with read failures as archive errors.
struct StoredHistoryCheck {
    let stored: any StoredProjections
    private var comparison: HistoryComparison

    /// `now`: idempotency records that aged out before it may be missing (a server deletes them).
    init(_ stored: any StoredProjections, now: Int64) {
        self.stored = stored
        comparison = HistoryComparison(recordsAgedOutBefore: now)
    }

    /// Compares the history entries of `state` with the store.
    mutating func check(_ state: LedgerState) throws(ArchiveError) {
        do {
            try comparison.compare(state, reservations: stored.storedReservations, records: stored.storedIdempotencyRecords)
        } catch {
            throw ArchiveError(.io, file: "projections", "reading stored history: \(error)")
        }
    }

    /// The differences left once the whole history was checked, against the stored history's size.
    func differences(storedTerminalReservations: Int, storedIdempotencyRecords: Int) throws(ArchiveError) -> [String] {
        do {
            return try comparison.differences(
                storedSettledReservations: storedTerminalReservations, storedRecords: storedIdempotencyRecords,
                reservations: stored.storedReservations, records: stored.storedIdempotencyRecords)
        } catch {
            throw ArchiveError(.io, file: "projections", "reading stored history: \(error)")
        }
    }
}
