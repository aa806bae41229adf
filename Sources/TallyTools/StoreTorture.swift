import Foundation
import TallyCore
import TallyStore

/// Drives random commands through a real store from several threads and prints one line per
/// acknowledgement, only after the store said the command is durable. The crash test kills this process
/// at a random moment and checks that everything it printed survived.
///
/// Lines: `ACK reserve <id>`, `ACK commit <id>`, `ACK release <id>`, `ACK debit <key>`.
public enum StoreTorture {
    static let workspace = "tenant:acme/workspace:w"

    public static func run(directory: String, seed: UInt64, threads: Int, commandsPerThread: Int) throws {
        let store = try LedgerStore(directory: directory)
        _ = try store.executeBlocking(.createTenant(CreateTenantCommand(tenantID: "acme", name: "acme")))
        for (scope, amount) in [("tenant:acme", Int64.max / 4), (workspace, Int64.max / 8)] {
            _ = try store.executeBlocking(.createBudget(CreateBudgetCommand(
                caller: .admin, tenantID: "acme", scope: scope, unit: .usdMicrocents, allocated: Amount(amount))))
        }
        @Sendable func acknowledge(_ line: String) {
            // One write(2) per line: a line is either printed whole or not at all when the process dies.
            let bytes = Array((line + "\n").utf8)
            _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        }
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var random = seed &+ UInt64(thread) &* 0x9E37_79B9_7F4A_7C15
            func next() -> UInt64 {
                random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return random >> 17
            }
            var open: [ReservationID] = []
            for step in 0..<commandsPerThread {
                let caller = Caller.tenant(id: "acme", keyID: "torture")
                let stamp = IdempotencyStamp(key: "s\(seed)-t\(thread)-\(step)", payloadHash: Digest256(words: (seed, UInt64(thread), UInt64(step), 0)))
                let subject = Subject(workspace: "w", agent: "agent\(thread % 4)")
                let command: Command
                let line: String
                switch (next() % 4, open.isEmpty) {
                case (0, false):
                    let id = open.removeFirst()
                    command = .commit(CommitCommand(caller: caller, reservationID: id, idempotency: stamp, actual: Quantity(.usdMicrocents, Amount(Int64(next() % 2_000)))))
                    line = "ACK commit \(id)"
                case (1, false):
                    let id = open.removeLast()
                    command = .release(ReleaseCommand(caller: caller, reservationID: id, idempotency: stamp))
                    line = "ACK release \(id)"
                case (2, _):
                    command = .recordDebit(DebitCommand(
                        tenant: "acme", caller: caller, eventID: "e-\(stamp.key)", idempotency: stamp, subject: subject,
                        action: Action(kind: "tool.search", name: "web"), actual: Quantity(.usdMicrocents, Amount(Int64(next() % 500)))))
                    line = "ACK debit \(stamp.key)"
                default:
                    let id = ReservationID("r-\(stamp.key)")
                    command = .reserve(ReserveCommand(
                        tenant: "acme", caller: caller, reservationID: id, idempotency: stamp, subject: subject,
                        action: Action(kind: "llm.completion", name: "m"), estimate: Quantity(.usdMicrocents, Amount(Int64(next() % 1_000))),
                        ttlMilliseconds: 3_600_000))
                    open.append(id)
                    line = "ACK reserve \(id)"
                }
                guard let result = try? store.executeBlocking(command), case .success = result else { continue }
                acknowledge(line)
            }
        }
        store.close()
    }
}
