import TallyCore

/// Compares the history a replay writes (settled reservations, idempotency records) with the stored
/// projections batch by batch, so a replay can drop the history from memory as it goes (`verify`, the
/// archive audit). A settled reservation never changes again, so it is compared once; an idempotency
/// record can be written again under the same key after it aged out, so a record that differs is kept
/// pending until a later write of its key matches the store. A record that aged out before
/// `recordsAgedOutBefore` may be missing: a running server deletes such records (`IdempotencySweep`). What is
/// still pending at the end, and any difference in counts, is a difference.
public struct HistoryComparison: Sendable {
    /// Reads the stored encodings (`ProjectionCodec`) of reservations by id, nil where none is stored.
    public typealias ReservationLookup = ([ReservationID]) throws -> [[UInt8]?]
    /// Reads stored idempotency records by key, nil where none is stored.
    public typealias RecordLookup = ([IdempotencyKey]) throws -> [IdempotencyRecord?]

    private var matchedReservations = 0
    private var matchedRecords = 0
    /// Expected encodings the store did not match (yet).
    private var pendingReservations: [ReservationID: [UInt8]] = [:]
    private var pendingRecords: [IdempotencyKey: IdempotencyRecord] = [:]

    /// Records kept for replays only until before this instant (epoch milliseconds) may be missing from the store.
    private let recordsAgedOutBefore: Int64

    /// `recordsAgedOutBefore`: now, as the server that wrote the store tells time (its system clock).
    public init(recordsAgedOutBefore: Int64) {
        self.recordsAgedOutBefore = recordsAgedOutBefore
    }

    /// Compares the history entries of `state` with the store.
    public mutating func compare(_ state: LedgerState, reservations: ReservationLookup, records: RecordLookup) rethrows {
        let settled = state.reservations.values.filter { $0.status.isTerminal }
        let keys = Array(state.idempotency.keys)
        for (reservation, found) in zip(settled, try reservations(settled.map(\.id))) {
            let expected = ProjectionCodec.encode(reservation)
            // Or the same reservation in another layout (a store written before the newest one, ProjectionCodec).
            if found == expected || found.flatMap({ try? ProjectionCodec.decodeReservation($0) }) == reservation {
                matchedReservations += 1
                pendingReservations.removeValue(forKey: reservation.id)
            } else {
                pendingReservations[reservation.id] = expected
            }
        }
        for (key, found) in zip(keys, try records(keys)) {
            let expected = state.idempotency[key]!
            if found == expected {
                matchedRecords += 1
                pendingRecords.removeValue(forKey: key)
            } else if found == nil && expected.retainUntilMilliseconds < recordsAgedOutBefore {
                // Aged out and deleted; not kept pending either, or a long log's deleted records would all be in memory.
                pendingRecords.removeValue(forKey: key)
            } else {
                pendingRecords[key] = expected
            }
        }
    }

    /// The differences left once the whole history was compared, given the size of the stored history.
    public func differences(
        storedSettledReservations: Int, storedRecords: Int, reservations: ReservationLookup, records: RecordLookup
    ) rethrows -> [String] {
        var differences: [String] = []
        let ids = pendingReservations.keys.sorted()
        for (id, found) in zip(ids, try reservations(ids)) {
            differences.append("reservation \(id): " + (found == nil ? "missing from the projection" : "differs from the replayed log"))
        }
        let keys = pendingRecords.keys.sorted { ($0.tenant, $0.endpoint.rawValue, $0.key) < ($1.tenant, $1.endpoint.rawValue, $1.key) }
        for (key, found) in zip(keys, try records(keys)) {
            differences.append("idempotency record \(key.tenant)/\(key.endpoint)/\(key.key): "
                               + (found == nil ? "missing from the projection" : "differs from the replayed log"))
        }
        let expectedReservations = matchedReservations + pendingReservations.count
        if storedSettledReservations > expectedReservations {
            differences.append("reservations: \(storedSettledReservations - expectedReservations) settled ones in the projection were not produced by the log")
        }
        let expectedRecords = matchedRecords + pendingRecords.count
        if storedRecords > expectedRecords {
            differences.append("idempotency records: \(storedRecords - expectedRecords) in the projection were not produced by the log")
        }
        return differences
    }
}
