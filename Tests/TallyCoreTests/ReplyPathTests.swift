import Testing
@testable import TallyCore

/// `decide` reads the reply of a fresh success from a scratch copy of just the entries its events touch;
/// `execute` and the store's writer use `draft` and read it from the whole state right after `apply`. Both
/// paths must give the same decision for every command of long random workloads.
@Suite struct ReplyPathTests {
    static let seeds: [UInt64] = [21, 22, 23]
    static let steps = 2_000

    @Test(arguments: seeds)
    func decideAndExecuteGiveTheSameDecision(seed: UInt64) {
        var generator = WorkloadGenerator(seed: seed, allowOverdraft: true)
        let model = ReferenceLedger()
        var state = LedgerState()
        var script = generator.setupCommands()
        var index = 0
        while index < Self.steps {
            if index >= script.count {
                generator.advanceTime(model: model)
                script.append(index == Self.steps / 2
                    ? generator.closeSomeTenant(model: model) : generator.nextCommand(model: model))
            }
            let command = script[index]
            let now = generator.now
            _ = model.execute(command, now: now)
            let decided = Ledger.decide(state, command, now: now)
            let executed = Ledger.execute(command, on: &state, now: now)
            guard decided == executed else {
                Issue.record("seed \(seed) step \(index): \(command)\ndecide:  \(decided)\nexecute: \(executed)")
                return
            }
            index += 1
        }
    }

    /// The writer notes deadlines by `EventBody.reservationID`, so it must name exactly the reservation that
    /// `touch` records for every kind of event.
    @Test(arguments: seeds)
    func reservationIDIsTheReservationTouchRecords(seed: UInt64) {
        var generator = WorkloadGenerator(seed: seed, allowOverdraft: true)
        let model = ReferenceLedger()
        var state = LedgerState()
        var script = generator.setupCommands()
        var kinds = Set<String>()
        for index in 0..<Self.steps {
            if index >= script.count {
                generator.advanceTime(model: model)
                script.append(index == Self.steps / 2
                    ? generator.closeSomeTenant(model: model) : generator.nextCommand(model: model))
            }
            let now = generator.now
            _ = model.execute(script[index], now: now)
            guard case .success(let decision) = Ledger.execute(script[index], on: &state, now: now) else { continue }
            for event in decision.events {
                var keys = TouchedKeys()
                event.touch(&keys, in: state)
                #expect(keys.reservations == Set([event.reservationID].compactMap { $0 }), "\(event.typeName)")
                kinds.insert(event.typeName)
            }
        }
        #expect(kinds.isSuperset(of: ["Reserved", "Committed", "Released", "Extended", "Expired", "BudgetFunded"]))
    }
}
