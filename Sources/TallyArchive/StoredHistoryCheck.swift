import TallyCore
import TallyStore

/// The live store's projections as an audit reads them: the working set whole, history entries by key,
/// so that the history (which grows with the ledger) is never held in memory.
public protocol StoredProjections {
    func storedWorkingSet() throws -> StoredWorkingSet
    func storedReservations(_ ids: [String]) throws -> [[UInt8]?]
    func storedIdempotencyRecords(_ keys: [IdempotencyKey]) throws -> [IdempotencyRecord?]
}

extension LogReader: StoredProjections {}

/// Compares the history the replay writes (terminal reservations, idempotency records) with the stored
/// projections batch by batch, as the audit drops it from memory. A terminal reservation never changes
/// again, so it is compared once; an idempotency record can be written again under the same key after it
/// aged out, so a record that differs is kept pending until a later write of its key matches the store.
/// What is still pending at the end, and any difference in counts, is a finding.
struct StoredHistoryCheck {
    let stored: any StoredProjections
    var matchedReservations = 0
    var matchedIdempotency = 0
    /// Expected encodings that the store did not match (yet).
    var pendingReservations: [String: [UInt8]] = [:]
    var pendingIdempotency: [IdempotencyKey: IdempotencyRecord] = [:]

    init(_ stored: any StoredProjections) {
        self.stored = stored
    }

    /// Checks the history entries of `state` against the store.
    mutating func check(_ state: LedgerState) throws(ArchiveError) {
        let reservations = state.reservations.values.filter { !Checkpoint.isWorking($0) }
        let keys = Array(state.idempotency.keys)
        let storedReservations: [[UInt8]?]
        let storedRecords: [IdempotencyRecord?]
        do {
            storedReservations = try stored.storedReservations(reservations.map(\.id))
            storedRecords = try stored.storedIdempotencyRecords(keys)
        } catch {
            throw ArchiveError(.io, file: "projections", "reading stored history: \(error)")
        }
        for (reservation, found) in zip(reservations, storedReservations) {
            let expected = ProjectionCodec.encode(reservation)
            if found == expected {
                matchedReservations += 1
                pendingReservations.removeValue(forKey: reservation.id)
            } else {
                pendingReservations[reservation.id] = expected
            }
        }
        for (key, found) in zip(keys, storedRecords) {
            let expected = state.idempotency[key]!
            if found == expected {
                matchedIdempotency += 1
                pendingIdempotency.removeValue(forKey: key)
            } else {
                pendingIdempotency[key] = expected
            }
        }
    }

    /// The differences left once the whole history was checked, against the stored history's size.
    func differences(storedTerminalReservations: Int, storedIdempotencyRecords: Int) throws(ArchiveError) -> [String] {
        var differences: [String] = []
        let ids = pendingReservations.keys.sorted()
        let keys = pendingIdempotency.keys.sorted { "\($0)" < "\($1)" }
        let found: [[UInt8]?]
        let records: [IdempotencyRecord?]
        do {
            found = try stored.storedReservations(ids)
            records = try stored.storedIdempotencyRecords(keys)
        } catch {
            throw ArchiveError(.io, file: "projections", "reading stored history: \(error)")
        }
        for (id, stored) in zip(ids, found) {
            differences.append("reservation \(id): " + (stored == nil ? "missing from the projection" : "differs from the replayed log"))
        }
        for (key, stored) in zip(keys, records) {
            differences.append("idempotency record \(key.tenant)/\(key.endpoint)/\(key.key): "
                               + (stored == nil ? "missing from the projection" : "differs from the replayed log"))
        }
        let expectedReservations = matchedReservations + pendingReservations.count
        if storedTerminalReservations > expectedReservations {
            differences.append("reservations: \(storedTerminalReservations - expectedReservations) settled ones in the projection were not produced by the log")
        }
        let expectedRecords = matchedIdempotency + pendingIdempotency.count
        if storedIdempotencyRecords > expectedRecords {
            differences.append("idempotency records: \(storedIdempotencyRecords - expectedRecords) in the projection were not produced by the log")
        }
        return differences
    }
}
