import Foundation
import Histogram
import TallyCore
import TallyWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The measuring client of `tally bench` over the binary protocol: every connection on one thread, on plain
/// nonblocking sockets. Each connection has `inFlight` lanes, each with one request outstanding (request id
/// = lane + 1); the requests decided while reading a round of answers go out together, one `send` per
/// connection, and one `recv` takes whatever answers have arrived. The client shares the two cores with the
/// server it measures: on `TallyClient` (NIO, a promise and a closure per request) it spent about 9 us of CPU
/// per operation at 16 x 64.
struct BinaryBenchLoop {
    struct Plan: Sendable {
        var host: String
        var port: Int
        var key: String
        var shape: Bench.Shape
        var connections: Int
        var inFlight: Int
        var warmupEnd: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        /// Set apart the idempotency keys of runs against one tenant (each run's lanes count from step 0).
        var keyPrefix = ""
    }

    /// Runs the plan on a thread of its own.
    static func run(_ plan: Plan) async throws -> BenchTally {
        try await BenchSocket.runOnThread(named: "tally-bench") { try runHere(plan) }
    }

    static func runHere(_ plan: Plan) throws -> BenchTally {
        var loop = try BinaryBenchLoop(plan)
        return try loop.run()
    }

    private enum Waiting {
        case reserve(estimate: Int64)
        case commit(actual: Int64, scopes: [String])
        case balances
    }

    private struct Lane {
        var step = 0
        var waiting: Waiting?
        var key = ""
        var began = ContinuousClock.now
    }

    private struct Connection {
        let index: Int
        let subject: Subject
        /// Until the server's welcome: no lanes run.
        var welcomed = false
        var lanes: [Lane] = []
        var input: [UInt8] = []
        var consumed = 0
        var output = BenchOutput()
        var frameBytesMax = WireLimits.frameBytesMaxDefault
        /// The scopes a reserve of this connection's subject is held on (from its first reserved reply, decoded
        /// whole): the same for every reserve of the subject, so later replies are read for their id only.
        var reservedScopes: [String]?
    }

    private let plan: Plan
    private let readiness: BenchReadiness
    private let action = Action(kind: "llm.completion", name: "bench")
    private var connections: [Connection] = []
    /// Requests in flight (and handshakes not yet answered), over all connections.
    private var outstanding = 0
    /// Connections with bytes to send once this round of answers has been read.
    private var unsent: [Int] = []
    private var tally = BenchTally()
    private var failure: String?

    private init(_ plan: Plan) throws {
        self.plan = plan
        readiness = try BenchReadiness()
        for index in 0..<plan.connections {
            try readiness.add(try BenchSocket.dial(plan.host, plan.port))
            let subject = plan.shape == .independent
                ? Subject(workspace: "w\(index)", agent: "a")
                : Subject(workspace: "shared", agent: "agent\(index % 8)")
            connections.append(Connection(index: index, subject: subject))
        }
    }

    private mutating func run() throws -> BenchTally {
        for index in connections.indices {
            let hello = Hello(credential: .tenantKey(plan.key), clientName: "tally-bench")
            connections[index].output.bytes.append(contentsOf: WireCodec.encodeRequest(.hello(hello), requestID: 0).serialized)
            outstanding += 1
            flush(index)
        }
        let giveUp = plan.end + .seconds(30)
        var scratch = [UInt8](repeating: 0, count: 256 * 1_024)
        var ready: [Int] = []
        while outstanding > 0 {
            if ContinuousClock.now >= giveUp {
                tally.errors += UInt64(outstanding)
                failure = failure ?? "\(outstanding) answers did not arrive within 30 s of the end"
                break
            }
            try readiness.wait(milliseconds: 100, into: &ready)
            for event in ready {
                let index = event >> 2
                if event & 2 != 0 { flush(index) }
                if event & 1 != 0 { try receive(index, into: &scratch) }
            }
            for index in unsent { flush(index) }
            unsent.removeAll(keepingCapacity: true)
        }
        if tally.operations == 0, let failure { throw BenchError(failure) }
        return tally
    }

    private mutating func receive(_ index: Int, into scratch: inout [UInt8]) throws {
        switch readiness.receive(index, into: &scratch) {
        case .none: return
        case .broken(let reason): return drop(index, reason)
        case .bytes(let count): connections[index].input.append(contentsOf: scratch[0..<count])
        }
        let now = ContinuousClock.now
        while let frame = nextFrame(index) {
            try answer(index, frame, now: now)
            guard readiness.sockets[index] >= 0 else { return }
        }
        // Drop what has been read: all of it, or, when a frame is still arriving, the frames before it once
        // they add up (a read that always ends inside a frame must not let the buffer grow for ever).
        if connections[index].consumed == connections[index].input.count {
            connections[index].input.removeAll(keepingCapacity: true)
            connections[index].consumed = 0
        } else if connections[index].consumed >= 64 * 1_024 {
            connections[index].input.removeFirst(connections[index].consumed)
            connections[index].consumed = 0
        }
    }

    /// The next whole frame in the connection's input, or nil until it has all arrived.
    private mutating func nextFrame(_ index: Int) -> Frame? {
        let start = connections[index].consumed
        let input = connections[index].input
        guard input.count - start >= Frame.lengthPrefixBytes else { return nil }
        let length = input[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
        guard length >= WireProtocol.headerBytes, length <= connections[index].frameBytesMax else {
            drop(index, "the server sent a frame of length \(length)")
            return nil
        }
        guard input.count - start >= Frame.lengthPrefixBytes + length else { return nil }
        connections[index].consumed = start + Frame.lengthPrefixBytes + length
        return Frame(
            version: input[start + 4], kind: input[start + 5], flags: UInt16(input[start + 6]) << 8 | UInt16(input[start + 7]),
            requestID: input[start + 8..<start + 12].reduce(0) { $0 << 8 | UInt32($1) },
            body: Array(input[start + 12..<start + 4 + length]))
    }

    private mutating func answer(_ index: Int, _ frame: Frame, now: ContinuousClock.Instant) throws {
        guard connections[index].welcomed else {
            let response = try? WireCodec.decodeResponse(frame)
            guard case .welcome(let welcome)? = response else {
                let reason = if case .error(let error)? = response { "\(error)" } else { "no welcome" }
                throw BenchError("the server refused the bench's handshake: \(reason)")
            }
            outstanding -= 1
            connections[index].welcomed = true
            connections[index].frameBytesMax = Int(welcome.limits.frameBytesMax)
            let lanes = min(plan.inFlight, Int(welcome.limits.inFlightRequestsMax))
            connections[index].lanes = Array(repeating: Lane(), count: lanes)
            for lane in 0..<lanes { next(index, lane, now: now) }
            return
        }
        let lane = Int(frame.requestID) - 1
        guard connections[index].lanes.indices.contains(lane), let waiting = connections[index].lanes[lane].waiting else {
            return drop(index, "the server answered request \(frame.requestID), which is not in flight")
        }
        // A commit's answer is only counted, not decoded: a `reply` frame (0x82) whose reply tag is
        // `committed` (3), protocol/wire.md 6.2. A reserve's answer is read for its reservation id alone once
        // the connection knows the scopes (`reservedScopes`); the first is decoded whole.
        let knownScopes: [String]? = if case .reserve = waiting { connections[index].reservedScopes } else { nil }
        let reservedID = knownScopes == nil ? nil : Self.reservedID(frame)
        let response: Response? = switch waiting {
        case .commit: nil
        case .reserve where reservedID != nil: nil
        default: try? WireCodec.decodeResponse(frame)
        }
        let success: Bool
        if case .commit = waiting {
            success = frame.kind == 0x82 && frame.body.first == 3
        } else if reservedID != nil {
            success = true
        } else if let response, case .error = response {
            success = false
        } else {
            success = response != nil  // a reply, or the balances a read asked for
        }
        if now >= plan.warmupEnd, now < plan.end {
            _ = tally.histogram.record(Bench.microseconds(now - connections[index].lanes[lane].began))
            tally.operations += 1
            if !success { tally.errors += 1 }
        }
        switch waiting {
        case .reserve(let estimate):
            let id: ReservationID, scopes: [String]
            if let reservedID, let knownScopes {
                (id, scopes) = (reservedID, knownScopes)
            } else if case .reply(.reserved(let reply, _))? = response {
                (id, scopes) = (reply.reservationID, reply.balances.map(\.scope.rawValue))
                connections[index].reservedScopes = scopes
            } else {
                return next(index, lane, now: now)
            }
            let actual = estimate - 10
            connections[index].lanes[lane].waiting = .commit(actual: actual, scopes: scopes)
            send(index, lane, .commit(CommitRequest(
                reservationID: id, idempotencyKey: connections[index].lanes[lane].key,
                actual: Quantity(.usdMicrocents, Amount(actual)))))
        case .commit(let actual, let scopes):
            if success {
                for scope in scopes { tally.committed[scope, default: 0] += actual }
            }
            next(index, lane, now: now)
        case .balances:
            next(index, lane, now: now)
        }
    }

    /// The reservation id of a `reserved` reply frame (kind 0x82, reply tag 1, decision byte, then the id as
    /// a u32 length and UTF-8: protocol/wire.md 6.2), or nil for any other frame.
    static func reservedID(_ frame: Frame) -> ReservationID? {
        guard frame.kind == 0x82, frame.body.first == 1 else { return nil }
        var reader = ByteReader(frame.body)
        return try? { () throws(EventCodecError) -> ReservationID in
            _ = try reader.readU8("reply tag")
            _ = try reader.readU8("reserved.decision")
            return try reader.readReservationID("reservation_id", bytesMax: EventCodec.FieldLimit.reservationIDBytesMax)
        }()
    }

    /// The lane's next step (a reserve, or a balance read every fifth step of the mix shape), or its end once
    /// the measured time is over.
    private mutating func next(_ index: Int, _ lane: Int, now: ContinuousClock.Instant) {
        guard now < plan.end else {
            if connections[index].lanes[lane].waiting != nil { outstanding -= 1 }
            connections[index].lanes[lane].waiting = nil
            return
        }
        if connections[index].lanes[lane].waiting == nil { outstanding += 1 }
        connections[index].lanes[lane].step += 1
        let step = connections[index].lanes[lane].step
        if plan.shape == .mix && step % 5 == 0 {
            connections[index].lanes[lane].waiting = .balances
            return send(index, lane, .balances(BalancesRequest(segments: [.workspace: "shared"])))
        }
        let key = "\(plan.keyPrefix)c\(connections[index].index)-l\(lane)-\(step)"
        let estimate = Int64(1_000 + (step % 97))
        connections[index].lanes[lane].key = key
        connections[index].lanes[lane].waiting = .reserve(estimate: estimate)
        send(index, lane, .reserve(ReserveRequest(
            idempotencyKey: key, subject: connections[index].subject, action: action, estimate: Quantity(.usdMicrocents, Amount(estimate)))))
    }

    /// Queues the lane's request; it goes out with the others decided in this round.
    private mutating func send(_ index: Int, _ lane: Int, _ request: Request) {
        if connections[index].output.isEmpty { unsent.append(index) }
        connections[index].output.bytes.append(contentsOf: WireCodec.encodeRequest(request, requestID: UInt32(lane + 1)).serialized)
        connections[index].lanes[lane].began = .now
    }

    /// Writes what the connection has queued; waits for room when the socket is full.
    private mutating func flush(_ index: Int) {
        if let broken = readiness.flush(index, &connections[index].output) { drop(index, broken) }
    }

    /// Closes a broken connection; its requests in flight count as errors.
    private mutating func drop(_ index: Int, _ reason: String) {
        guard readiness.sockets[index] >= 0 else { return }
        failure = failure ?? reason
        readiness.remove(index)
        if !connections[index].welcomed {
            outstanding -= 1
            tally.errors += 1
        }
        for lane in connections[index].lanes.indices where connections[index].lanes[lane].waiting != nil {
            connections[index].lanes[lane].waiting = nil
            outstanding -= 1
            tally.errors += 1
        }
    }
}
