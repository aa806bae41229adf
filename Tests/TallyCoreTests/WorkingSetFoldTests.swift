import Testing
@testable import TallyCore

/// `WorkingSetFold` on records that are damaged or do not fit the state: each is a typed failure that
/// names what is wrong, never a crash or a silently wrong balance. (Its agreement with `Ledger.apply` on
/// valid histories is checked by the model runs, `ModelRun.checkRecordFold`.)
@Suite struct WorkingSetFoldTests {
    /// The records of a short random run, and the index of its first `Reserved` and `Committed`.
    static func history() -> (records: [[UInt8]], reserved: Int, committed: Int) {
        var run = ModelRun(seed: 11, steps: 300, allowOverdraft: true)
        _ = run.run()
        let records = run.events.enumerated().map { index, body in
            EventCodec.encode(Event(sequence: UInt64(index + 1), timestampMilliseconds: 1_750_000_000_000, body: body))
        }
        let reserved = run.events.firstIndex { if case .reserved = $0 { true } else { false } }!
        let committed = run.events.firstIndex { if case .committed = $0 { true } else { false } }!
        return (records, reserved, committed)
    }

    static func fold(_ records: some Sequence<[UInt8]>) throws(WorkingSetFold.Failure) -> WorkingSetFold {
        var fold = WorkingSetFold()
        for record in records {
            var failure: WorkingSetFold.Failure?
            record.withUnsafeBytes { bytes in
                do throws(WorkingSetFold.Failure) { try fold.apply(bytes) } catch { failure = error }
            }
            if let failure { throw failure }
        }
        return fold
    }

    @Test func damagedRecordsAreUndecodable() throws {
        let (records, reserved, _) = Self.history()
        var before = try Self.fold(records[..<reserved])
        for damage in 0..<4 {
            var record = records[reserved]
            switch damage {
            case 0: record.removeLast()  // shorter than its header says
            case 1: record[0] = 9  // an unknown record format
            case 2: record.append(0)  // longer than its header says
            default:
                // The body one byte short, the header agreeing: a field runs past the end.
                record.removeLast()
                let length = UInt32(record.count - EventCodec.headerLength)
                for index in 0..<4 { record[18 + index] = UInt8(truncatingIfNeeded: length >> UInt32(24 - 8 * index)) }
            }
            #expect {
                try record.withUnsafeBytes { bytes throws in try before.apply(bytes) }
            } throws: { error in
                guard case .undecodable = error as? WorkingSetFold.Failure else { return false }
                return true
            }
        }
    }

    @Test func eventsThatDoNotFitTheStateAreInconsistent() throws {
        let (records, reserved, committed) = Self.history()
        // The same reservation twice.
        #expect {
            _ = try Self.fold(Array(records[...reserved]) + [records[reserved]])
        } throws: { error in
            guard case .inconsistent(let event) = error as? WorkingSetFold.Failure else { return false }
            return event.message.contains("reuses reservation id")
        }
        // A commit whose delta would take a budget's remaining out of the Int64 range: refused, naming the
        // figure, never wrapped.
        var event = try EventCodec.decode(records[committed])
        guard case .committed(var value) = event.body else { Issue.record("not a commit"); return }
        value.deltas[0].remaining = Amount(Int64.max)
        event.body = .committed(value)
        #expect {
            _ = try Self.fold(Array(records[..<committed]) + [EventCodec.encode(event)])
        } throws: { error in
            guard case .inconsistent(let event) = error as? WorkingSetFold.Failure else { return false }
            return event.message.contains("leaves the Int64 range (remaining)")
        }
        // A commit of a reservation that was never made (the history without its Reserved).
        var withoutReserve = Array(records[...committed])
        let id = try #require(try EventCodec.decode(records[committed]).body.reservationID)
        withoutReserve.removeAll { (try? EventCodec.decode($0).body.reservationID) == id && $0 != records[committed] }
        #expect {
            _ = try Self.fold(withoutReserve)
        } throws: { error in
            guard case .inconsistent(let event) = error as? WorkingSetFold.Failure else { return false }
            return event.message.contains("Committed for unknown reservation \(id)")
        }
    }
}
