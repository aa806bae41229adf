import Foundation
import Synchronization
import Testing
import TallyClient
import TallyCore
import TallyStore
import TallyWire

/// The real `tallyd` process, driven over the binary protocol on loopback.
@Suite(.serialized) struct ServerEndToEndTests {
    static let dollar: Int64 = 100_000_000
    static let workspace = "tenant:acme-corp/workspace:project-alpha"

    static func admin(_ server: ServerProcess) async throws -> TallyConnection {
        try await TallyConnection.connect(host: "127.0.0.1", port: server.port, credential: .adminKey(ServerProcess.adminKey), clientName: "test-admin")
    }

    /// Creates a tenant and a key for it, and connects with that key.
    static func tenant(_ id: String, _ admin: TallyConnection, _ server: ServerProcess) async throws -> TallyConnection {
        _ = try await admin.send(.createTenant(CreateTenantCommand(tenantID: id, name: id)))
        guard case .apiKeyCreated(_, let secret) = try await admin.send(.createApiKey(CreateApiKeyRequest(
            tenantID: id, name: "agents", permissions: Permission.defaultSet + [.budgetsRead, .budgetsWrite]))) else {
            throw ServerProcessError("no key created")
        }
        return try await TallyConnection.connect(host: "127.0.0.1", port: server.port, credential: .tenantKey(secret), clientName: "test-\(id)")
    }

    static func budget(_ admin: TallyConnection, _ scope: String, dollars: Int64) async throws {
        _ = try await admin.send(.createBudget(CreateBudgetRequest(scope: scope, unit: .usdMicrocents, allocated: Amount(dollars * dollar))))
    }

    static func reserve(_ connection: TallyConnection, agent: String, dollars: Int64, workflow: String? = nil, workspace: String = "project-alpha") async throws -> Response {
        try await connection.send(.reserve(ReserveRequest(
            idempotencyKey: UUID().uuidString, subject: Subject(workspace: workspace, workflow: workflow, agent: agent),
            action: Action(kind: "llm.completion", name: "openai:gpt-4o"), estimate: Quantity(.usdMicrocents, Amount(dollars * dollar)))))
    }

    static func reservationID(_ response: Response) -> ReservationID? {
        if case .reply(.reserved(let reply, _)) = response { return reply.reservationID }
        return nil
    }

    static func errorCode(_ body: () async throws -> Response) async -> ErrorCode? {
        do {
            _ = try await body()
            return nil
        } catch let error as WireError {
            return error.code
        } catch {
            return .internalError
        }
    }

    @Test func theSharedWorkspacePatternsWorkOverTheWire() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        let agents = try await Self.tenant("acme-corp", admin, server)
        // Pattern 2: a $50 workspace cap over planner $20, executor $30, reviewer $10.
        try await Self.budget(admin, Self.workspace, dollars: 50)
        for (agent, dollars) in [("planner", 20), ("executor", 30), ("reviewer", 10)] {
            try await Self.budget(admin, "\(Self.workspace)/agent:\(agent)", dollars: Int64(dollars))
        }
        #expect(await Self.errorCode { try await Self.reserve(agents, agent: "planner", dollars: 21) } == .budgetExceeded, "the agent's own cap")
        let planner = try #require(Self.reservationID(try await Self.reserve(agents, agent: "planner", dollars: 20)))
        let executor = try #require(Self.reservationID(try await Self.reserve(agents, agent: "executor", dollars: 25)))
        _ = try await agents.send(.commit(CommitRequest(reservationID: planner, idempotencyKey: "c1", actual: Quantity(.usdMicrocents, Amount(20 * Self.dollar)))))
        _ = try await agents.send(.commit(CommitRequest(reservationID: executor, idempotencyKey: "c2", actual: Quantity(.usdMicrocents, Amount(25 * Self.dollar)))))
        // The workspace has $5 left: the reviewer's own $10 no longer matters; degrading to $5 works.
        #expect(await Self.errorCode { try await Self.reserve(agents, agent: "reviewer", dollars: 8) } == .budgetExceeded)
        #expect(Self.reservationID(try await Self.reserve(agents, agent: "reviewer", dollars: 5)) != nil)
        guard case .budgets(let balances) = try await agents.send(.balances(BalancesRequest(segments: [.workspace: "project-alpha"]))) else {
            Issue.record("balances answer with budgets")
            return
        }
        #expect(balances.map(\.scope.rawValue) == [Self.workspace] + ["executor", "planner", "reviewer"].map { "\(Self.workspace)/agent:\($0)" })
        #expect(balances.first?.spent.value == 45 * Self.dollar && balances.first?.remaining.value == 0)
        // Pattern 1: one shared workspace budget, no per-agent limits: agents draw from the same pool.
        try await Self.budget(admin, "tenant:acme-corp/workspace:pool", dollars: 50)
        #expect(Self.reservationID(try await Self.reserve(agents, agent: "planner", dollars: 30, workspace: "pool")) != nil)
        #expect(await Self.errorCode { try await Self.reserve(agents, agent: "executor", dollars: 21, workspace: "pool") } == .budgetExceeded)
        #expect(Self.reservationID(try await Self.reserve(agents, agent: "executor", dollars: 20, workspace: "pool")) != nil)
        // Pattern 3: workflow budgets isolate tasks.
        for task in ["task-123", "task-456"] { try await Self.budget(admin, "tenant:acme-corp/workspace:prod/workflow:\(task)", dollars: 10) }
        #expect(Self.reservationID(try await Self.reserve(agents, agent: "planner", dollars: 10, workflow: "task-123", workspace: "prod")) != nil)
        #expect(await Self.errorCode { try await Self.reserve(agents, agent: "executor", dollars: 1, workflow: "task-123", workspace: "prod") } == .budgetExceeded)
        #expect(Self.reservationID(try await Self.reserve(agents, agent: "executor", dollars: 10, workflow: "task-456", workspace: "prod")) != nil)
        // Pattern 4: tiered agents with independent limits (no workspace budget).
        try await Self.budget(admin, "tenant:acme-corp/workspace:tiered/agent:planner", dollars: 20)
        try await Self.budget(admin, "tenant:acme-corp/workspace:tiered/agent:executor", dollars: 5)
        #expect(await Self.errorCode { try await Self.reserve(agents, agent: "executor", dollars: 6, workspace: "tiered") } == .budgetExceeded)
        #expect(Self.reservationID(try await Self.reserve(agents, agent: "planner", dollars: 20, workspace: "tiered")) != nil)
        await agents.close()
        await admin.close()
    }

    @Test func aForeignTenantsKeyIsRefusedOnEveryOperation() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        let acme = try await Self.tenant("acme", admin, server)
        let globex = try await Self.tenant("globex", admin, server)
        try await Self.budget(admin, "tenant:acme", dollars: 10)
        let id = try #require(Self.reservationID(try await Self.reserve(acme, agent: "a", dollars: 1)))
        let quantity = Quantity(.usdMicrocents, 1)
        let foreign: [(String, Request)] = [
            ("commit", .commit(CommitRequest(reservationID: id, idempotencyKey: "x", actual: quantity))),
            ("release", .release(ReleaseRequest(reservationID: id, idempotencyKey: "x"))),
            ("extend", .extend(ExtendRequest(reservationID: id, idempotencyKey: "x", extendByMilliseconds: 1_000))),
            ("get", .getReservation(reservationID: id)),
            ("list", .listReservations(ListReservationsRequest(tenant: "acme"))),
            ("balances", .balances(BalancesRequest(tenant: "acme"))),
            ("reserve", .reserve(ReserveRequest(idempotencyKey: "x", subject: Subject(tenant: "acme", agent: "a"), action: Action(kind: "k", name: "n"), estimate: quantity))),
            ("decide", .decide(DecideRequest(idempotencyKey: "x", subject: Subject(tenant: "acme", agent: "a"), action: Action(kind: "k", name: "n"), estimate: quantity))),
            ("debit", .debit(DebitRequest(idempotencyKey: "x", subject: Subject(tenant: "acme", agent: "a"), action: Action(kind: "k", name: "n"), actual: quantity))),
            ("fund", .fundBudget(FundBudgetRequest(scope: "tenant:acme", unit: .usdMicrocents, operation: .credit, amount: 1))),
        ]
        for (name, request) in foreign {
            #expect(await Self.errorCode { try await globex.send(request) } == .forbidden, "\(name) with another tenant's key")
        }
        #expect(await Self.errorCode { try await globex.send(.createTenant(CreateTenantCommand(tenantID: "evil", name: "evil"))) } == .insufficientPermissions)
        guard case .reservation(let reservation) = try await acme.send(.getReservation(reservationID: id)) else {
            Issue.record("the owner still reads it")
            return
        }
        #expect(reservation.status == .active && reservation.tenant == "acme")
        await acme.close()
        await globex.close()
        await admin.close()
    }

    @Test func aSubscriptionStreamsTheLogInOrderWithItsChain() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        let agents = try await Self.tenant("acme", admin, server)
        try await Self.budget(admin, "tenant:acme", dollars: 10)
        for _ in 0..<5 { _ = try await Self.reserve(agents, agent: "a", dollars: 1) }
        var received: [Event] = []
        var previousChain: [UInt8]?
        for try await (record, chain) in admin.subscribe(from: 1, credit: 4) {
            let event = try EventCodec.decode(record)
            received.append(event)
            #expect(chain.count == 32 && chain != previousChain)
            previousChain = chain
            if received.count == 8 { break }
        }
        // Tenant, key, budget, five reservations: more events than the credit of 4, so credit was granted.
        #expect(received.map(\.sequence) == Array(1...8))
        #expect(received.map(\.body.typeName).prefix(3) == ["TenantCreated", "ApiKeyCreated", "BudgetCreated"])
        #expect(await Self.errorCode { try await agents.send(.balances(BalancesRequest())) } == nil)
        await agents.close()
        await admin.close()
    }

    @Test func anOmittedDefaultAndTheSameValueSentExplicitlyAreOnePayload() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        let agents = try await Self.tenant("acme", admin, server)
        try await Self.budget(admin, "tenant:acme", dollars: 10)
        func reserve(grace: Int64?) -> Request {
            .reserve(ReserveRequest(
                idempotencyKey: "same-key", subject: Subject(agent: "a"), action: Action(kind: "llm", name: "m"),
                estimate: Quantity(.usdMicrocents, 100), graceMilliseconds: grace))
        }
        let first = try await agents.send(reserve(grace: nil))
        let second = try await agents.send(reserve(grace: 5_000))
        #expect(Self.reservationID(first) != nil && Self.reservationID(first) == Self.reservationID(second), "a replay, not a second hold")
        #expect(await Self.errorCode { try await agents.send(reserve(grace: 4_000)) } == .idempotencyMismatch)
        await agents.close()
        await admin.close()
    }

    /// `--event-loops` sizes the group every plane's connections run on (one loop serves them for less CPU on two
    /// cores, BENCHMARKS.md); the server answers on both protocols with one loop or several, and a count outside
    /// 1-256 is refused before anything starts.
    @Test func theEventLoopsAreAsManyAsAskedAndServeBothProtocols() async throws {
        for count in [1, 3] {
            let server = try ServerProcess(arguments: ["--event-loops", "\(count)", "--no-archive"])
            defer { server.stop(); server.removeData() }
            let admin = try await Self.admin(server)
            let acme = try await Self.tenant("acme", admin, server)
            try await Self.budget(admin, "tenant:acme", dollars: 10)
            #expect(Self.reservationID(try await Self.reserve(acme, agent: "a", dollars: 1)) != nil)
            let listed = try HTTPTestClient(port: server.adminHTTPPort).admin("GET", "/v1/admin/tenants")
            #expect(listed.status == 200 && listed.text.contains("acme"), "\(listed)")
            #if os(Linux)
            let tasks = "/proc/\(server.process.processIdentifier)/task"
            let names = try FileManager.default.contentsOfDirectory(atPath: tasks).map {
                (try? String(contentsOfFile: "\(tasks)/\($0)/comm", encoding: .utf8)) ?? ""
            }
            #expect(names.filter { $0.hasPrefix("NIO-SGLTN") }.count == count, "\(names)")
            #endif
        }
        for refused in ["0", "257"] {
            let (status, output) = try ServerArchiverTests.tallydRefusing(["--event-loops", refused])
            #expect(status != 0 && output.contains("--event-loops must be 1-256"), "\(refused): \(output)")
        }
    }

    /// On Linux `tallyd` links jemalloc, which then serves the whole process's allocations (16 x 64 ran 6-9% faster
    /// on it than on the C library's malloc, BENCHMARKS.md): the server says so at start, from jemalloc's own
    /// statistics (a linked jemalloc that `malloc` bypassed would have allocated nothing), and the library is mapped.
    @Test func tallydAllocatesWithJemalloc() async throws {
        #if os(Linux)
        let server = try ServerProcess(arguments: ["--no-archive"])
        defer { server.stop(); server.removeData() }
        #expect(server.printed.contains("tallyd memory allocator: jemalloc "), "\(server.printed)")
        // Read to the end: a `/proc` file reports no size, and `String(contentsOfFile:)` stops after its first page.
        let maps = try #require(FileHandle(forReadingAtPath: "/proc/\(server.process.processIdentifier)/maps")).readDataToEndOfFile()
        #expect(String(decoding: maps, as: UTF8.self).contains("/libjemalloc.so"))
        let admin = try await Self.admin(server)
        let acme = try await Self.tenant("acme", admin, server)
        try await Self.budget(admin, "tenant:acme", dollars: 10)
        #expect(Self.reservationID(try await Self.reserve(acme, agent: "a", dollars: 1)) != nil)
        #endif
    }

    /// `--writer-cpus` and `--loop-cpus` pin the store's writer and the event loops (one core's caches for both cost
    /// about 10% less CPU per operation on two cores, BENCHMARKS.md) and leave every other thread alone; a list the
    /// process may not run on, or that is not a list, is refused before anything starts.
    @Test func theWriterAndTheLoopsRunOnTheCPUsGiven() async throws {
        #if os(Linux)
        let allowed = try #require(CPUSet.currentThread)
        let first = "\(allowed.cpus[0])"
        let server = try ServerProcess(arguments: ["--writer-cpus", first, "--loop-cpus", first, "--event-loops", "2", "--no-archive"])
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        let acme = try await Self.tenant("acme", admin, server)
        try await Self.budget(admin, "tenant:acme", dollars: 10)
        #expect(Self.reservationID(try await Self.reserve(acme, agent: "a", dollars: 1)) != nil)
        let tasks = "/proc/\(server.process.processIdentifier)/task"
        var cpusByThread: [String: [String]] = [:]
        for task in try FileManager.default.contentsOfDirectory(atPath: tasks) {
            let name = (try? String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let status = (try? String(contentsOfFile: "\(tasks)/\(task)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
            cpusByThread[name, default: []].append(line.map { $0.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces) } ?? "?")
        }
        #expect(cpusByThread["tally-writer"] == [first], "\(cpusByThread)")
        #expect(cpusByThread.filter { $0.key.hasPrefix("NIO-SGLTN") }.values.flatMap { $0 } == [first, first], "\(cpusByThread)")
        #expect(cpusByThread["tally-flusher"] == ["\(allowed)"], "\(cpusByThread)")
        #endif
        for (flag, value, message) in [
            ("--writer-cpus", "\(CPUSet.cpuLimit)", "--writer-cpus must list CPUs as 0, 0-1 or 0,2-3"),
            ("--loop-cpus", "1-0", "--loop-cpus must list CPUs as 0, 0-1 or 0,2-3"),
            ("--loop-cpus", "", "--loop-cpus must list CPUs"),
        ] {
            let (status, output) = try ServerArchiverTests.tallydRefusing([flag, value])
            #expect(status != 0 && output.contains(message), "\(flag) \(value): \(output)")
        }
        #if os(Linux)
        if let outside = (0..<CPUSet.cpuLimit).first(where: { !(CPUSet.currentThread?.cpus.contains($0) ?? true) }) {
            let (status, output) = try ServerArchiverTests.tallydRefusing(["--writer-cpus", "\(outside)"])
            #expect(status != 0 && output.contains("--writer-cpus \(outside): this process may run only on CPUs"), "\(output)")
        }
        #endif
    }

    @Test func aRequestBeforeTheHandshakeIsRefusedAndClosed() throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let raw = try RawConnection(port: server.port)
        let reserve = WireCodec.encodeRequest(.getReservation(reservationID: "r"), requestID: 7)
        raw.send(reserve.serialized)
        let answer = try Frame.parse(raw.readUntilClosed())
        guard case .error(let error) = try WireCodec.decodeResponse(answer) else {
            Issue.record("expected an error frame")
            return
        }
        #expect(error.code == .unauthorized && answer.requestID == 7)
    }

    /// Answers framed in the same event loop tick as a malformed frame still go out, in order, before its
    /// error frame and the close (the server frames a tick's answers into one buffer).
    @Test func answersBeforeAMalformedFrameArriveInOrderBeforeItsError() throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let raw = try RawConnection(port: server.port)
        let hello = WireCodec.encodeRequest(.hello(Hello(credential: .adminKey(ServerProcess.adminKey), clientName: "raw")), requestID: 1)
        let list = WireCodec.encodeRequest(.listTenants(status: nil), requestID: 2)
        let unknownKind: [UInt8] = [0, 0, 0, 8, 1, 0x7e, 0, 0, 0, 0, 0, 3]
        raw.send(hello.serialized + list.serialized + list.serialized + unknownKind)
        let frames = try Self.frames(raw.readUntilClosed())
        #expect(frames.map(\.requestID) == [1, 2, 2, 3])
        let responses = try frames.map { try WireCodec.decodeResponse($0) }
        guard responses.count == 4 else { return }
        guard case .welcome = responses[0], case .tenants = responses[1], case .tenants = responses[2],
              case .error(let error) = responses[3] else {
            Issue.record("expected welcome, tenants, tenants, error: \(responses)")
            return
        }
        #expect(error.code == .malformedFrame)
    }

    /// A lone command is answered before its projections are written (in a task of its event loop behind the
    /// answer); a read pipelined right behind it on the same connection is served on that very loop before
    /// the task, and still sees the command's effect (it writes the projections itself rather than wait).
    @Test func aReadPipelinedBehindALoneCommandSeesItsEffect() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        _ = try await Self.tenant("acme-corp", admin, server)
        try await Self.budget(admin, Self.workspace, dollars: 50)
        guard case .apiKeyCreated(_, let secret) = try await admin.send(.createApiKey(CreateApiKeyRequest(tenantID: "acme-corp", name: "raw"))) else {
            Issue.record("no key created")
            return
        }
        await admin.close()
        let raw = try RawConnection(port: server.port)
        let hello = WireCodec.encodeRequest(.hello(Hello(credential: .tenantKey(secret), clientName: "raw")), requestID: 1)
        raw.send(hello.serialized)
        _ = try Self.frames(Self.read(1, from: raw))
        func balances(_ id: UInt32) -> [UInt8] { WireCodec.encodeRequest(.balances(BalancesRequest(tenant: "acme-corp")), requestID: id).serialized }
        func workspace(_ response: Response) -> Budget? {
            guard case .budgets(let budgets) = response else { return nil }
            return budgets.first { $0.scope.rawValue == Self.workspace }
        }
        for round in 0..<3 {
            // Quiet for a while, so that the store runs the command on the connection's event loop.
            try await Task.sleep(for: .milliseconds(60))
            let reserve = WireCodec.encodeRequest(.reserve(ReserveRequest(
                idempotencyKey: "pipelined-\(round)", subject: Subject(workspace: "project-alpha", agent: "planner"),
                action: Action(kind: "llm", name: "m"), estimate: Quantity(.usdMicrocents, Amount(Self.dollar)))), requestID: 10)
            raw.send(reserve.serialized + balances(11))
            // Answers come by request id, not in order: the read is answered in the tick that reads it.
            let responses = try Self.byRequestID(Self.read(2, from: raw))
            let id = try #require(responses[10].flatMap(Self.reservationID), "reserved: \(responses)")
            #expect(try workspace(#require(responses[11]))?.reserved.value == Self.dollar, "round \(round): the reservation is in the read")
            try await Task.sleep(for: .milliseconds(60))
            let commit = WireCodec.encodeRequest(.commit(CommitRequest(
                reservationID: id, idempotencyKey: "commit-\(round)", actual: Quantity(.usdMicrocents, Amount(Self.dollar / 2)))), requestID: 12)
            raw.send(commit.serialized + balances(13))
            let after = try Self.byRequestID(Self.read(2, from: raw))
            guard case .reply(.committed) = after[12] else {
                Issue.record("round \(round): expected a commit reply: \(after)")
                return
            }
            let budget = try #require(after[13].flatMap(workspace), "balances: \(after)")
            #expect(budget.reserved.value == 0 && budget.spent.value == Int64(round + 1) * Self.dollar / 2, "round \(round): the commit is in the read")
        }
    }

    /// The responses in `received`, by request id.
    static func byRequestID(_ received: [UInt8]) throws -> [UInt32: Response] {
        var responses: [UInt32: Response] = [:]
        for frame in try frames(received) { responses[frame.requestID] = try WireCodec.decodeResponse(frame) }
        return responses
    }

    /// Reads until `count` whole frames have arrived (at most 50 reads of up to 5 s each).
    static func read(_ count: Int, from raw: RawConnection) -> [UInt8] {
        var received: [UInt8] = []
        for _ in 0..<50 {
            var bytes = received[...]
            var whole = 0
            while bytes.count >= 4 {
                let length = Int(bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) })
                guard bytes.count >= 4 + length else { break }
                whole += 1
                bytes = bytes.dropFirst(4 + length)
            }
            if whole >= count { break }
            let more = raw.readOnce()
            if more.isEmpty { break }
            received += more
        }
        return received
    }

    /// Splits what a server sent into its frames; a partial frame at the end is a test failure.
    static func frames(_ received: [UInt8]) throws -> [Frame] {
        var bytes = received[...]
        var frames: [Frame] = []
        while bytes.count >= 4 {
            let length = Int(bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) })
            guard bytes.count >= 4 + length else { break }
            frames.append(try Frame.parse(Array(bytes.prefix(4 + length))))
            bytes = bytes.dropFirst(4 + length)
        }
        #expect(bytes.isEmpty, "whole frames only")
        return frames
    }

    /// The server frames what it reads itself: frames cut anywhere across reads, and several in one read,
    /// are each answered once and in order, and an oversized length that arrives in pieces after them is
    /// refused (`PAYLOAD_TOO_LARGE`) after its four bytes.
    @Test func framesCutAnywhereAcrossReadsAreAnsweredInOrder() throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let raw = try RawConnection(port: server.port)
        let hello = WireCodec.encodeRequest(.hello(Hello(credential: .adminKey(ServerProcess.adminKey), clientName: "raw")), requestID: 1)
        var stream = hello.serialized
        for id in UInt32(2)...6 { stream += WireCodec.encodeRequest(.listTenants(status: nil), requestID: id).serialized }
        stream += [0x7f, 0xff, 0xff, 0xff]  // a length far over the limit; no body follows
        // Pieces of 1 to 9 bytes with a pause between them, so that most arrive in reads of their own.
        var offset = 0
        var piece = 1
        while offset < stream.count {
            let end = min(stream.count, offset + piece)
            raw.send(Array(stream[offset..<end]))
            offset = end
            piece = piece % 9 + 1
            usleep(1_000)
        }
        let frames = try Self.frames(raw.readUntilClosed())
        #expect(frames.map(\.requestID) == [1, 2, 3, 4, 5, 6, 0])
        let responses = try frames.map { try WireCodec.decodeResponse($0) }
        guard responses.count == 7, case .welcome = responses[0], case .error(let error) = responses[6] else {
            Issue.record("expected a welcome, five tenant lists and an error: \(responses)")
            return
        }
        #expect(responses[1..<6].allSatisfy { if case .tenants = $0 { true } else { false } })
        #expect(error.code == .payloadTooLarge)
    }

    @Test func malformedFramesCloseOnlyTheirOwnConnection() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let healthy = try await Self.admin(server)
        var random = SystemRandomNumberGenerator()
        let cases: [[UInt8]] = [
            [0, 0, 0, 3, 1, 2, 3],                                  // shorter than a header
            [0xff, 0xff, 0xff, 0xff, 1, 1, 0, 0, 0, 0, 0, 1],       // length far over the limit
            [0, 0, 0, 8, 9, 1, 0, 0, 0, 0, 0, 1],                   // protocol version 9
            [0, 0, 0, 8, 1, 0x7e, 0, 0, 0, 0, 0, 1],                // unknown kind
            (0..<64).map { _ in UInt8.random(in: 0...255, using: &random) },
        ]
        for bytes in cases {
            let raw = try RawConnection(port: server.port)
            raw.send(bytes)
            let answer = raw.readUntilClosed()
            if let frame = try? Frame.parse(answer), case .error(let error)? = try? WireCodec.decodeResponse(frame) {
                #expect([.malformedFrame, .unsupportedProtocolVersion, .payloadTooLarge, .unauthorized].contains(error.code))
            } else {
                #expect(answer.isEmpty, "a broken peer gets an error frame or a plain close, nothing else")
            }
            guard case .tenants = try await healthy.send(.listTenants(status: nil)) else {
                Issue.record("the healthy connection must keep working")
                return
            }
        }
        await healthy.close()
    }

    @Test func racingClientsNeverOverspendTheWorkspaceCap() async throws {
        let server = try ServerProcess()
        defer { server.stop(); server.removeData() }
        let admin = try await Self.admin(server)
        _ = try await Self.tenant("acme-corp", admin, server)
        try await Self.budget(admin, Self.workspace, dollars: 50)
        guard case .apiKeyCreated(_, let secret) = try await admin.send(.createApiKey(CreateApiKeyRequest(tenantID: "acme-corp", name: "race"))) else { return }
        let accepted = Locked<[ReservationID]>([])
        let committed = Locked<Int64>(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    let connection = try await TallyConnection.connect(host: "127.0.0.1", port: server.port, credential: .tenantKey(secret))
                    for attempt in 0..<40 {
                        let cents = Int64(10 + (client * 7 + attempt) % 90)
                        guard let response = try? await connection.send(.reserve(ReserveRequest(
                            idempotencyKey: "race-\(client)-\(attempt)", subject: Subject(workspace: "project-alpha", agent: "agent\(client)"),
                            action: Action(kind: "llm", name: "m"), estimate: Quantity(.usdMicrocents, Amount(cents * 1_000_000))))),
                              let id = Self.reservationID(response) else { continue }
                        accepted.withLock { $0.append(id) }
                        if attempt % 2 == 0 {
                            let actual = cents * 1_000_000 / 2
                            if (try? await connection.send(.commit(CommitRequest(reservationID: id, idempotencyKey: "c-\(id)", actual: Quantity(.usdMicrocents, Amount(actual)))))) != nil {
                                committed.withLock { $0 += actual }
                            }
                        }
                    }
                    await connection.close()
                }
            }
            try await group.waitForAll()
        }
        guard case .budgets(let budgets) = try await admin.send(.balances(BalancesRequest(tenant: "acme-corp"))) else { return }
        let cap = try #require(budgets.first { $0.scope.rawValue == Self.workspace })
        #expect(cap.spent.value + cap.reserved.value <= 50 * Self.dollar, "the cap is never overspent")
        #expect(cap.spent.value == committed.withLock { $0 }, "the sum of acknowledged commits equals spent")
        await admin.close()
        server.stop()
        let report = try Maintenance.verify(directory: server.dataDirectory)
        #expect(report.isClean, "\(report.findings)")
        let store = try LedgerStore(directory: server.dataDirectory)
        defer { store.close() }
        for id in accepted.withLock({ $0 }) { #expect(try store.reservation(id) != nil, "accepted reservation \(id) is in the log") }
    }

    @Test func everyAcknowledgedRequestSurvivesSIGTERMUnderLoad() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        let admin = try await Self.admin(server)
        _ = try await Self.tenant("acme", admin, server)
        try await Self.budget(admin, "tenant:acme", dollars: 1_000_000)
        guard case .apiKeyCreated(_, let secret) = try await admin.send(.createApiKey(CreateApiKeyRequest(tenantID: "acme", name: "load"))) else { return }
        let acknowledged = Locked<[ReservationID]>([])
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for client in 0..<4 {
                    group.addTask {
                        guard let connection = try? await TallyConnection.connect(host: "127.0.0.1", port: server.port, credential: .tenantKey(secret)) else { return }
                        for attempt in 0..<2_000 {
                            guard let response = try? await Self.reserve(connection, agent: "a\(client)", dollars: 1, workspace: "w\(attempt % 3)"),
                                  let id = Self.reservationID(response) else { break }
                            acknowledged.withLock { $0.append(id) }
                        }
                    }
                }
            }
        }
        while acknowledged.withLock({ $0.count }) < 50 { try await Task.sleep(for: .milliseconds(5)) }
        let status = server.stop()
        await load.value
        #expect(status == 0, "graceful shutdown exits cleanly")
        let ids = acknowledged.withLock { $0 }
        let store = try LedgerStore(directory: server.dataDirectory)
        defer { store.close() }
        for id in ids { #expect(try store.reservation(id) != nil, "acknowledged reservation \(id) was lost") }
        #expect(ids.count >= 50)
    }
}
