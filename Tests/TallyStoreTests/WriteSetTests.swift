import Foundation
import Testing
@testable import TallyCore
@testable import TallyStore

/// The writer builds keys in its write set's buffer rather than as arrays of their own: the bytes must be
/// the layout's keys exactly (reads and scans look them up by `StoreLayout`'s functions), over LMDB's key
/// limit included.
@Suite struct WriteSetTests {
    static let long = String(repeating: "x", count: 600)
    static let longID = ReservationID(long)
    static let budget = BudgetKey(try! ScopePath(parsing: "tenant:acme/workspace:w"), .usdMicrocents)
    static let shortKey = IdempotencyKey(tenant: "acme", endpoint: .extend, qualifier: "r1", key: "k-1")
    static let longKey = IdempotencyKey(tenant: "acme", endpoint: .reserve, key: long)

    private static func built(_ appendKey: (inout [UInt8]) -> Void) -> [UInt8] {
        var writes = WriteSet()
        let range = writes.put(LMDBDatabase(handle: 1, name: "t"), key: appendKey) { $0.writeU8(7) }
        return writes.withKey(range) { Array($0) }
    }

    @Test func keysBuiltInTheBufferAreTheLayoutsKeys() {
        for id: ReservationID in ["r1", "01a231a8-a0c7-7935-b469-926f4085a0f3", Self.longID] {
            #expect(Self.built { StoreLayout.appendReservationKey(id, to: &$0) } == StoreLayout.reservationKey(id))
            for deadline: Int64 in [-5, 0, 1_796_129_524_519] {
                #expect(Self.built { StoreLayout.appendExpiryKey(deadline: deadline, id: id, to: &$0) } == StoreLayout.expiryKey(deadline: deadline, id: id))
            }
        }
        for key in [Self.shortKey, Self.longKey] {
            #expect(Self.built { StoreLayout.appendIdempotencyKey(key, to: &$0) } == StoreLayout.idempotencyKey(key))
        }
        #expect(Self.built { StoreLayout.appendBudgetKey(Self.budget, to: &$0) } == StoreLayout.budgetKey(Self.budget))
        // The stored layout, byte for byte (data directories on disk hold these keys).
        #expect(Self.built { StoreLayout.appendExpiryKey(deadline: 0, id: "a", to: &$0) } == [0x80, 0, 0, 0, 0, 0, 0, 0, 0x61])
        #expect(Self.built { StoreLayout.appendExpiryKey(deadline: -1, id: "a", to: &$0) } == [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x61])
        #expect(Self.built { StoreLayout.appendBudgetKey(Self.budget, to: &$0) } == Array("tenant:acme/workspace:w".utf8) + [0, Unit.usdMicrocents.rawValue])
        #expect(Self.built { StoreLayout.appendIdempotencyKey(Self.shortKey, to: &$0) } == Array("acme".utf8) + [0, 4] + Array("r1".utf8) + [0] + Array("k-1".utf8))
        // Over the limit: the first 478 bytes, 0xff, the SHA-256 of the whole key.
        let bounded = Self.built { StoreLayout.appendReservationKey(Self.longID, to: &$0) }
        #expect(bounded.count == StoreLayout.keyBytesMax && bounded[478] == 0xff && bounded.prefix(478).allSatisfy { $0 == UInt8(ascii: "x") })
        // Keys one after the other in one buffer keep their own bytes.
        var writes = WriteSet()
        let table = LMDBDatabase(handle: 1, name: "t")
        let first = writes.put(table, key: { StoreLayout.appendReservationKey(Self.longID, to: &$0) }) { $0.writeBytes([1, 2, 3]) }
        let second = writes.put(table, key: { StoreLayout.appendIdempotencyKey(Self.shortKey, to: &$0) }) { $0.writeU8(4) }
        #expect(writes.withKey(first) { Array($0) } == StoreLayout.reservationKey(Self.longID))
        #expect(writes.withKey(second) { Array($0) } == StoreLayout.idempotencyKey(Self.shortKey))
    }

    /// A fresh LMDB environment with these tables in a temporary directory, removed afterwards.
    private static func withEnvironment(tables: [String], _ body: (LMDBEnvironment) throws -> Void) throws {
        let directory = NSTemporaryDirectory() + "tally-writeset-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = try LMDBEnvironment(directory: directory, mapSizeBytes: 1 << 24, databaseNames: tables)
        defer { environment.close() }
        try body(environment)
    }

    /// Puts, deletes and appended events replayed into a transaction land under the layout's keys.
    @Test func aReplayedSetWritesAndDeletesUnderTheLayoutsKeys() throws {
        try Self.withEnvironment(tables: ["t", "events"]) { environment in try Self.replayWritesUnderTheLayoutsKeys(environment) }
    }

    private static func replayWritesUnderTheLayoutsKeys(_ environment: LMDBEnvironment) throws {
        let table = environment.database("t")
        let events = environment.database("events")
        var writes = WriteSet()
        for id: ReservationID in ["a", Self.longID, "b"] {
            writes.put(table, key: { StoreLayout.appendExpiryKey(deadline: 42, id: id, to: &$0) }) { $0.writeBytes(Array(id.description.utf8)) }
        }
        writes.delete(table, key: { StoreLayout.appendExpiryKey(deadline: 42, id: "b", to: &$0) })
        let body = EventBody.tenantCreated(Tenant(id: "acme", name: "Acme", createdAtMilliseconds: 5, updatedAtMilliseconds: 5))
        let chain = writes.appendEvent(events, sequence: 9, timestampMilliseconds: 5, body: body, chainingFrom: EventChain.genesis)
        try environment.write { txn in try writes.apply(txn) }
        try environment.read { txn in
            #expect(try txn.get(table, StoreLayout.expiryKey(deadline: 42, id: "a")) == Array("a".utf8))
            #expect(try txn.get(table, StoreLayout.expiryKey(deadline: 42, id: Self.longID)) == Array(Self.long.utf8))
            #expect(try txn.get(table, StoreLayout.expiryKey(deadline: 42, id: "b")) == nil)
            let stored = try #require(try txn.get(events, StoreLayout.sequenceKey(9)))
            #expect(Array(stored.prefix(32)) == chain)
        }
    }

    /// An entry LMDB refuses fails the set with the name of its table (entries carry only the table's handle),
    /// and in a transaction that is then not committed nothing of the set is stored.
    @Test func aRefusedEntryNamesItsTableAndNothingIsStored() throws {
        try Self.withEnvironment(tables: ["first", "second"]) { environment in try Self.refuseAnEntry(environment) }
    }

    private static func refuseAnEntry(_ environment: LMDBEnvironment) throws {
        let first = environment.database("first")
        let second = environment.database("second")
        for (refused, name) in [(first, "first"), (second, "second")] {
            var writes = WriteSet()
            writes.put(first, Array("a".utf8), [1])
            writes.put(second, Array("b".utf8), [2])
            writes.put(refused, [], [3])  // LMDB refuses an empty key
            writes.put(second, Array("c".utf8), [4])
            do {
                try environment.write { txn in try writes.apply(txn) }
                Issue.record("an empty key was accepted")
            } catch let error as LMDBError {
                #expect(error.context == "writing to \(name)")
            } catch {
                Issue.record("not an LMDB error: \(error)")
            }
            let stored = try environment.read { txn in
                [try txn.get(first, Array("a".utf8)), try txn.get(second, Array("b".utf8))]
            }
            #expect(stored == [nil, nil])
        }
    }
}
