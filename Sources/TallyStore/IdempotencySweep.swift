import TallyCore

/// Deletes the rows of idempotency records that aged out, a few at a time with the writer's batches, and takes
/// them out of the index (`IdempotencyIndex`), so that neither the table nor the index grows with every request
/// a server ever answered.
///
/// A record has aged out when no lookup answers from it any more (`LedgerState.idempotencyRecord`: `now` past
/// its `retainUntilMilliseconds`); a key used again after that is decided afresh. The rows are in the order they
/// were written, so the sweep walks the table from its front: a row whose record aged out is deleted, and the
/// walk stops at the first row still kept, which with the usual retention (a day for reserves, decisions and
/// funding) is the oldest row of the last day. A row kept much longer than any row of the usual retention
/// written since (an event's record: a week) is passed over and remembered (`held`, at most `heldMax` rows of
/// 24 bytes), so that it does not hold back everything written after it; with that many remembered the walk
/// waits for them as for any other row. A row kept for less than the rows before it (an extension's record) is
/// deleted when the walk reaches it: late, but within a day.
///
/// Records are deleted `marginMilliseconds` after they aged out: the writer's clock is the system's, and a
/// clock set back across a restart would otherwise find deleted a record it still considers kept.
///
/// The deletes ride in a batch's projections (`Writer.decide`): at most two for each of its commands (each makes at
/// most one row, so the sweep keeps up with any load), at least `minimumRowsPerBatch` (a lone request carries a
/// few dozen, not a thousand) and at most `rowsPerBatch`, so a sweep never holds the writer or the flusher for long.
/// While more are due every batch takes some; otherwise the sweep looks
/// again when the row it stopped at (or the first remembered one) is due, or `idleRecheckMilliseconds` later when
/// it reached the table's end. It belongs to the writer, which starts it afresh (`reset`) with the index after a
/// failed batch, whose deletes may not have happened.
struct IdempotencySweep {
    static let defaultRowsPerBatch = 1_024
    static let minimumRowsPerBatch = 64
    static let heldMax = 65_536
    static let marginMilliseconds: Int64 = 5 * 60_000
    /// A row the walk reaches that is kept for longer than this from now is passed over and remembered: no row of
    /// the usual retention (a day) written since can be kept that long, so it is one kept unusually long (an event's
    /// record, or a reservation's whose lease is longer than a day) rather than the front of the day's rows.
    static let usualRetentionMilliseconds: Int64 = Limits.reserveReplayRetentionMilliseconds + 60 * 60_000
    static let idleRecheckMilliseconds: Int64 = 60_000

    /// At most this many rows deleted with one batch.
    private var rowsPerBatch: Int

    init(rowsPerBatch: Int = defaultRowsPerBatch) {
        self.rowsPerBatch = max(1, rowsPerBatch)
    }

    private struct Held {
        var ordinal: UInt64
        var digest: UInt64
        var retainUntil: Int64
    }

    /// The ordinal the walk goes on from: every row before it was deleted or is in `held`.
    private var frontier: UInt64 = 0
    private var held: [Held] = []
    /// The earliest `retainUntil` in `held` (`Int64.max` when empty).
    private var heldEarliest = Int64.max
    /// When a step may find rows to delete (epoch milliseconds, the writer's clock).
    private(set) var nextDue: Int64 = 0

    /// Starts over from the table's front, remembering nothing.
    mutating func reset() {
        self = IdempotencySweep(rowsPerBatch: rowsPerBatch)
    }

    /// After a step that failed, or whose deletes may not have happened: starts over from the table's front, no
    /// sooner than `idleRecheckMilliseconds` after `now` (rows out of the index but still stored aged out: lookups
    /// treat them as absent until the walk meets them again).
    mutating func failed(at now: Int64) {
        reset()
        nextDue = Self.later(now, Self.idleRecheckMilliseconds)
    }

    /// Adds to `writes` the deletes of up to twice `commands` rows (within `minimumRowsPerBatch...rowsPerBatch`)
    /// whose records aged out before `now - marginMilliseconds` and takes them out of `projections.records`,
    /// reading the table in `txn` (which may not yet show the deletes of batches in flight: the walk never goes
    /// back). Does nothing before `nextDue`. Returns the number of rows deleted.
    @discardableResult
    mutating func step(
        now: Int64, commands: Int, projections: Projections, txn: borrowing LMDBReadTransaction, into writes: inout WriteSet
    ) throws -> Int {
        guard now >= nextDue else { return 0 }
        let cutoff = now - Self.marginMilliseconds
        let limit = min(rowsPerBatch, max(Self.minimumRowsPerBatch, 2 * commands))
        var count = 0
        func delete(_ ordinal: UInt64, _ digest: UInt64, _ writes: inout WriteSet) {
            writes.delete(projections.idempotency, key: { StoreLayout.appendRowKey(ordinal, to: &$0) })
            projections.records.remove(digest: digest, ordinal: ordinal)
            count += 1
        }
        if heldEarliest < cutoff {
            var earliest = Int64.max
            var kept: [Held] = []
            kept.reserveCapacity(held.count)
            for row in held {
                if row.retainUntil < cutoff && count < limit {
                    delete(row.ordinal, row.digest, &writes)
                } else {
                    kept.append(row)
                    earliest = min(earliest, row.retainUntil)
                }
            }
            held = kept
            heldEarliest = earliest
        }
        // When the row the walk stopped at is due; nil when the walk reached the table's end.
        var waiting: Int64?
        var full = count >= limit
        if !full {
            try txn.scanInPlace(projections.idempotency, from: frontier > 0 ? StoreLayout.idempotencyRowKey(frontier) : nil) { key, value in
                guard count < limit else {
                    full = true
                    return false
                }
                guard let ordinal = StoreLayout.ordinal(fromRowKey: key) else {
                    throw StoreError(.corrupt, "the idempotency table holds an entry whose key is not a row ordinal")
                }
                let retainUntil = try Projections.storedRetainUntil(in: value)
                if retainUntil < cutoff {
                    delete(ordinal, projections.records.digest(try Projections.storedKey(in: value)), &writes)
                } else if retainUntil > Self.later(now, Self.usualRetentionMilliseconds) && held.count < Self.heldMax {
                    held.append(Held(ordinal: ordinal, digest: projections.records.digest(try Projections.storedKey(in: value)), retainUntil: retainUntil))
                    heldEarliest = min(heldEarliest, retainUntil)
                } else {
                    waiting = retainUntil
                    return false
                }
                frontier = ordinal + 1
                return true
            }
        }
        if full {
            nextDue = now  // more are due: the next batch takes some
        } else {
            let rowDue = waiting.map(Self.due) ?? Self.later(now, Self.idleRecheckMilliseconds)
            nextDue = min(rowDue, Self.due(heldEarliest))
        }
        return count
    }

    /// `keys` without the idempotency records of `state` that the sweep would delete at `now`: what rebuilds and
    /// restores write, so that a store's whole history of records is not written only to be deleted again.
    static func droppingAgedOutRecords(_ keys: TouchedKeys, of state: LedgerState, now: Int64) -> TouchedKeys {
        let cutoff = now - marginMilliseconds
        guard keys.idempotency.contains(where: { (state.idempotency[$0]?.retainUntilMilliseconds ?? .max) < cutoff }) else { return keys }
        var kept = keys
        kept.idempotency = keys.idempotency.filter { (state.idempotency[$0]?.retainUntilMilliseconds ?? .max) >= cutoff }
        return kept
    }

    /// When a record kept until `retainUntil` may be deleted: once `now - margin` has passed it.
    private static func due(_ retainUntil: Int64) -> Int64 { later(retainUntil, marginMilliseconds + 1) }

    private static func later(_ instant: Int64, _ milliseconds: Int64) -> Int64 {
        let (sum, overflow) = instant.addingReportingOverflow(milliseconds)
        return overflow ? .max : sum
    }
}
