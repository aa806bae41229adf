import Testing
@testable import TallyCore

/// Reservations are stored in the compact layout (`ProjectionCodec.compactReservationVersion`: the affected
/// scopes derived from the scope path, the budgeted ones a bit mask) whenever their lists have the shape the
/// ledger gives them, and in format 1 otherwise; records of both layouts decode to the same reservation, so a
/// store written before the compact layout reads on.
@Suite struct CompactReservationRecordTests {
    /// Format 1's record of `reservation`: the layout stores kept before the compact one (and still write for
    /// lists of another shape), the format byte and the public field-by-field encoding.
    static func formatOne(_ reservation: Reservation) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeU8(ProjectionCodec.formatVersion)
        writer.write(reservation)
        return writer.bytes
    }

    static func reservation(_ subject: Subject, budgeted: (([ScopePath]) -> [ScopePath])? = nil) -> Reservation {
        var reservation = ValueSemanticsTests.reservation()
        let scopes = ScopePath.derive(subject: subject, tenant: "acme")
        reservation.subject = subject
        reservation.scopePath = scopes[scopes.count - 1]
        reservation.affectedScopes = scopes
        reservation.budgetedScopes = budgeted?(scopes) ?? [scopes[0]]
        return reservation
    }

    @Test func derivedListsAreStoredCompactAndReadBackInBothLayouts() throws {
        let subjects = [
            Subject(), Subject(workspace: "prod"), Subject(workspace: "prod", agent: "planner"),
            Subject(workspace: "prod", app: "chat", workflow: "task-7", agent: "planner", toolset: "search"),
        ]
        for subject in subjects {
            for pick in [{ $0 }, { [$0[0]] }, { [$0[$0.count - 1]] }, { $0.enumerated().filter { $0.offset % 2 == 1 }.map(\.element) }, { _ in [] }]
                as [([ScopePath]) -> [ScopePath]] {
                var reservation = Self.reservation(subject, budgeted: pick)
                for settled in [false, true] {
                    if settled {
                        reservation.status = .released
                        reservation.settlement = .expired(atMilliseconds: 99_000)
                    }
                    let compact = ProjectionCodec.encode(reservation)
                    let old = Self.formatOne(reservation)
                    let what = "\(reservation.scopePath) budgeted \(reservation.budgetedScopes)"
                    #expect(compact[0] == ProjectionCodec.compactReservationVersion, "\(what)")
                    #expect(try ProjectionCodec.decodeReservation(compact) == reservation, "\(what)")
                    #expect(try ProjectionCodec.decodeReservation(old) == reservation, "\(what): format 1 still reads")
                    // The two lists' bytes are gone (a u16 count each, each path a u32 length and its text), a byte of mask in their place.
                    let listed = (reservation.affectedScopes + reservation.budgetedScopes).reduce(2 + 2) { $0 + 4 + $1.rawValue.utf8.count }
                    #expect(compact.count == old.count - listed + 1, "\(what)")
                }
            }
        }
    }

    @Test func listsOfAnotherShapeAreStoredInFormatOne() throws {
        let base = Self.reservation(Subject(workspace: "prod", agent: "planner"))
        let changes: [(String, (inout Reservation) -> Void)] = [
            ("an affected scope missing", { $0.affectedScopes.remove(at: 1) }),
            ("the path not last", { $0.affectedScopes.swapAt(1, 2) }),
            ("a scope outside the path", { $0.affectedScopes[1] = try! ScopePath(parsing: "tenant:acme/workspace:dev") }),
            ("budgeted out of order", { $0.budgetedScopes = [$0.affectedScopes[2], $0.affectedScopes[0]] }),
            ("budgeted twice", { $0.budgetedScopes = [$0.affectedScopes[0], $0.affectedScopes[0]] }),
            ("budgeted outside the affected", { $0.budgetedScopes = [try! ScopePath(parsing: "tenant:globex")] }),
            ("no affected scopes", { $0.affectedScopes = [] }),
        ]
        for (what, change) in changes {
            var reservation = base
            change(&reservation)
            let bytes = ProjectionCodec.encode(reservation)
            #expect(bytes == Self.formatOne(reservation), "\(what)")
            #expect(try ProjectionCodec.decodeReservation(bytes) == reservation, "\(what)")
        }
    }

    @Test func aDamagedCompactRecordIsRefusedWithItsReason() throws {
        let reservation = Self.reservation(Subject(workspace: "prod", agent: "planner"))
        var bytes = ProjectionCodec.encode(reservation)
        // The mask follows the scope path: find it as the byte after the path's text.
        let path = Array(reservation.scopePath.rawValue.utf8)
        let end = try #require((0...(bytes.count - path.count)).first { Array(bytes[$0..<($0 + path.count)]) == path }) + path.count
        #expect(bytes[end] == 0b001)
        bytes[end] = 0b1000  // a fourth scope on a path of three
        #expect {
            try ProjectionCodec.decodeReservation(bytes)
        } throws: { error in
            (error as? EventCodecError)?.kind == .valueOutOfRange && "\(error)".contains("budgeted_mask")
        }
        bytes[end] = 0b001
        bytes[0] = 3
        #expect {
            try ProjectionCodec.decodeReservation(bytes)
        } throws: { error in
            (error as? EventCodecError)?.kind == .unsupportedVersion && "\(error)".contains("expected 1 or 2")
        }
    }
}
