import Testing
@testable import TallyCore

/// Reservations are stored in the derived layout (`ProjectionCodec.derivedReservationVersion`: the scope path
/// derived from the subject, the affected scopes from the path, the budgeted ones a bit mask, a UUID id as its
/// bits, the creating key's tenant left out when it is the reservation's) whenever their fields have the shape the
/// ledger gives them, in the compact layout (format 2: only the lists left out) when only the lists do, and in
/// format 1 otherwise; records of every layout decode to the same reservation, so a store written before reads on.
@Suite struct CompactReservationRecordTests {
    /// Format 1's record of `reservation`: the layout stores kept before the compact one (and still write for
    /// lists of another shape), the format byte and the public field-by-field encoding.
    static func formatOne(_ reservation: Reservation) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeU8(ProjectionCodec.formatVersion)
        writer.write(reservation)
        return writer.bytes
    }

    /// The bytes `writeZigZag` takes for `value`.
    static func zigZagCount(_ value: Int64) -> Int {
        var writer = ByteWriter()
        writer.writeZigZag(value)
        return writer.bytes.count
    }

    /// What the derived layout saves on the four figures it writes in zig-zag LEB128 instead of eight bytes each.
    static func figureSaving(_ reservation: Reservation) -> Int {
        [reservation.estimate.value, reservation.createdAtMilliseconds, reservation.graceMilliseconds, Int64(reservation.maxExtensions)]
            .reduce(0) { $0 + 8 - zigZagCount($1) }
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
                    let derived = ProjectionCodec.encode(reservation)
                    let compact = ProjectionCodec.encode(reservation, newest: .masked)
                    let old = Self.formatOne(reservation)
                    let what = "\(reservation.scopePath) budgeted \(reservation.budgetedScopes)"
                    #expect(derived[0] == ProjectionCodec.derivedReservationVersion, "\(what)")
                    #expect(compact[0] == ProjectionCodec.compactReservationVersion, "\(what)")
                    #expect(try ProjectionCodec.decodeReservation(derived) == reservation, "\(what)")
                    #expect(try ProjectionCodec.decodeReservation(compact) == reservation, "\(what): format 2 still reads")
                    #expect(try ProjectionCodec.decodeReservation(old) == reservation, "\(what): format 1 still reads")
                    // The two lists' bytes are gone (a u16 count each, each path a u32 length and its text), a byte of mask in their place.
                    let listed = (reservation.affectedScopes + reservation.budgetedScopes).reduce(2 + 2) { $0 + 4 + $1.rawValue.utf8.count }
                    #expect(compact.count == old.count - listed + 1, "\(what)")
                    // Then the path and the key's tenant (a u32 length and the text each) and the fixed figures' unused
                    // bytes; the id's form and the key id's take a byte each.
                    let pathAndTenant = 4 + reservation.scopePath.rawValue.utf8.count + 4 + reservation.tenant.utf8.count
                    #expect(derived.count == compact.count - pathAndTenant - Self.figureSaving(reservation) + 2, "\(what)")
                }
            }
        }
    }

    @Test func aUUIDIdIsStoredAsItsBitsAndAnotherTenantsKeyByName() throws {
        var reservation = Self.reservation(Subject(workspace: "prod", agent: "planner"))
        let textual = ProjectionCodec.encode(reservation)
        reservation.id = ReservationID("01a2374b-1db9-7001-a94c-b64f66733471")
        #expect(reservation.id.uuid != nil)
        let bits = ProjectionCodec.encode(reservation)
        #expect(bits[0] == ProjectionCodec.derivedReservationVersion)
        // "r-1" took its form byte, a u32 length and 3 bytes; the UUID takes the form byte and 16 (its text, 40).
        #expect(bits.count == textual.count - (4 + 3) + 16)
        #expect(try ProjectionCodec.decodeReservation(bits) == reservation)
        // A key id that is a UUID's text is its 16 bytes too ("key-1" took a u32 length and 5 bytes).
        reservation.createdBy = .tenant(id: "acme", keyID: "01a2374b-1db6-7090-9878-d26bfe4ad60e")
        let keyBits = ProjectionCodec.encode(reservation)
        #expect(keyBits.count == bits.count - (4 + 5) + 16)
        #expect(try ProjectionCodec.decodeReservation(keyBits) == reservation)
        for caller in [Caller.tenant(id: "globex", keyID: "key-9"), .admin, .system] {
            reservation.createdBy = caller
            let bytes = ProjectionCodec.encode(reservation)
            #expect(bytes[0] == ProjectionCodec.derivedReservationVersion)
            #expect(try ProjectionCodec.decodeReservation(bytes) == reservation, "\(caller)")
        }
    }

    @Test func aPathThatIsNotTheSubjectsIsStoredInFormatTwo() throws {
        let base = Self.reservation(Subject(workspace: "prod", agent: "planner"))
        let changes: [(String, (inout Reservation) -> Void)] = [
            ("another agent in the subject", { $0.subject.agent = "executor" }),
            ("a level more in the subject", { $0.subject.toolset = "search" }),
            ("a level fewer in the subject", { $0.subject.agent = nil }),
            ("another tenant", { $0.tenant = "globex" }),
            ("a tenant that is a prefix", { $0.tenant = "acm" }),
            ("an id outside ASCII", { $0.subject.workspace = "prödx" }),
        ]
        for (what, change) in changes {
            var reservation = base
            change(&reservation)
            let bytes = ProjectionCodec.encode(reservation)
            #expect(bytes[0] == ProjectionCodec.compactReservationVersion, "\(what)")
            #expect(try ProjectionCodec.decodeReservation(bytes) == reservation, "\(what)")
        }
        // Upper case in the subject's ids and the tenant is what the path lower-cases: still derived.
        var upper = base
        upper.subject.workspace = "PROD"
        upper.subject.agent = "Planner"
        upper.tenant = "ACME"
        let bytes = ProjectionCodec.encode(upper)
        #expect(bytes[0] == ProjectionCodec.derivedReservationVersion)
        #expect(try ProjectionCodec.decodeReservation(bytes) == upper)
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
        var bytes = ProjectionCodec.encode(reservation, newest: .masked)
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
        bytes[0] = 4
        #expect {
            try ProjectionCodec.decodeReservation(bytes)
        } throws: { error in
            (error as? EventCodecError)?.kind == .unsupportedVersion && "\(error)".contains("expected 1, 2 or 3")
        }
        // The derived layout: the id's form byte follows the format byte.
        var derived = ProjectionCodec.encode(reservation)
        #expect(derived[1] == 0)
        derived[1] = 7
        #expect {
            try ProjectionCodec.decodeReservation(derived)
        } throws: { error in
            (error as? EventCodecError)?.kind == .unknownEnumValue && "\(error)".contains("reservation.id form")
        }
    }
}
