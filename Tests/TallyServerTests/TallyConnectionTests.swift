import NIOCore
import NIOPosix
import Synchronization
import TallyClient
import TallyCore
import TallyWire
import Testing

/// The client against a scripted server on loopback: pipelining, error frames, the in-flight bound,
/// a connection that closes under waiting requests, and subscription credit.
@Suite struct TallyConnectionTests {
    @Test func pipelinedRequestsEachGetTheResponseWithTheirID() async throws {
        // The server holds eight requests and answers them in reverse order, echoing the id asked for.
        let held = Mutex<[(UInt32, ReservationID)]>([])
        let server = try await FakeServer { request, requestID, reply, _ in
            guard case .getReservation(let id) = request else { return }
            let batch = held.withLock { held -> [(UInt32, ReservationID)] in
                held.append((requestID, id))
                defer { if held.count == 8 { held.removeAll() } }
                return held.count == 8 ? held.reversed() : []
            }
            for (requestID, id) in batch { reply(.error(WireError(code: .notFound, message: id.description)), requestID) }
        }
        let connection = try await server.connect()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let error = await #expect(throws: WireError.self) {
                        try await connection.reservation(id: "r\(index)")
                    }
                    #expect(error?.message == "r\(index)")
                    #expect(error?.code == .notFound)
                }
            }
            try await group.waitForAll()
        }
        await connection.close()
        try await server.stop()
    }

    @Test func requestsBeyondTheServersInFlightBoundWaitForASlot() async throws {
        let outstanding = Mutex<[UInt32]>([])
        let peak = Mutex(0)
        let server = try await FakeServer(inFlightMax: 2) { request, requestID, reply, _ in
            let answer = outstanding.withLock { outstanding -> [UInt32] in
                outstanding.append(requestID)
                peak.withLock { $0 = max($0, outstanding.count) }
                defer { if outstanding.count == 2 { outstanding.removeAll() } }
                return outstanding.count == 2 ? outstanding : []
            }
            for id in answer { reply(.tenants([]), id) }
        }
        let connection = try await server.connect()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    let tenants = try await connection.tenants()
                    #expect(tenants.isEmpty)
                }
            }
            try await group.waitForAll()
        }
        #expect(peak.withLock { $0 } == 2)
        await connection.close()
        try await server.stop()
    }

    @Test func aClosedConnectionFailsEveryWaitingRequest() async throws {
        let received = Mutex(0)
        let server = try await FakeServer { _, _, _, close in
            if received.withLock({
                $0 += 1
                return $0
            }) == 3 {
                close()
            }
        }
        let connection = try await server.connect()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    await #expect(throws: TallyClientError.connectionClosed(serverError: nil)) {
                        try await connection.tenants()
                    }
                }
            }
        }
        await #expect(throws: TallyClientError.self) { try await connection.tenants() }
        try await server.stop()
    }

    @Test func aRefusedHandshakeThrowsTheServersError() async throws {
        let server = try await FakeServer(refuseHello: true) { _, _, _, _ in }
        await #expect(throws: WireError(code: .unauthorized, message: "no")) { try await server.connect() }
        try await server.stop()
    }

    @Test func aSubscriptionGrantsCreditAsTheConsumerTakesEvents() async throws {
        // The server sends only what it has credit for; ten events with a credit of 4 need grants of 2.
        let state = Mutex((sent: UInt8(0), credit: UInt32(0), grants: [UInt32]()))
        let server = try await FakeServer { request, requestID, reply, _ in
            let events = state.withLock { state -> [UInt8] in
                switch request {
                case .subscribe(_, let credit): state.credit = credit
                case .grantCredit(let credit):
                    state.credit += credit
                    state.grants.append(credit)
                default: return []
                }
                var events: [UInt8] = []
                while state.credit > 0 && state.sent < 10 {
                    state.sent += 1
                    state.credit -= 1
                    events.append(state.sent)
                }
                return events
            }
            if case .subscribe(let from, _) = request { reply(.subscribed(fromSequence: from), requestID) }
            for event in events { reply(.event(record: [event], chain: Array(repeating: event, count: 32)), requestID) }
        }
        let connection = try await server.connect()
        var received: [UInt8] = []
        for try await (record, chain) in connection.subscribe(from: 1, credit: 4) {
            received += record
            #expect(chain.count == 32)
            if received.count == 10 { break }
        }
        #expect(received == Array(1...10))
        #expect(state.withLock { $0.grants.allSatisfy { $0 == 2 } && $0.grants.count >= 3 })
        await connection.close()
        try await server.stop()
    }

    @Test func completionHandlersGetTheirResponsesAndMayChainTheNextRequest() async throws {
        // Each of eight chains sends five requests one after the other from its completion handler; the server
        // answers every request with an error frame naming the reservation asked for, which arrives as WireError.
        let server = try await FakeServer { request, requestID, reply, _ in
            guard case .getReservation(let id) = request else { return }
            reply(.error(WireError(code: .notFound, message: id.description)), requestID)
        }
        let connection = try await server.connect()
        let answers = await withTaskGroup(of: [String].self) { group in
            for chain in 0..<8 {
                group.addTask {
                    let answers = Mutex<[String]>([])
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        @Sendable func step(_ index: Int) {
                            guard index < 5 else { return done.resume() }
                            connection.send(.getReservation(reservationID: "r\(chain)-\(index)")) { result in
                                if case .failure(let error as WireError) = result, error.code == .notFound {
                                    answers.withLock { $0.append(error.message) }
                                }
                                step(index + 1)
                            }
                        }
                        step(0)
                    }
                    return answers.withLock { $0 }
                }
            }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        let expected = (0..<8).flatMap { chain in (0..<5).map { "r\(chain)-\($0)" } }
        #expect(answers.sorted() == expected.sorted())
        await connection.close()
        try await server.stop()
    }

    @Test func completionHandlerSendsRespectTheServersInFlightBound() async throws {
        let outstanding = Mutex<[UInt32]>([])
        let peak = Mutex(0)
        let server = try await FakeServer(inFlightMax: 3) { request, requestID, reply, _ in
            let answer = outstanding.withLock { outstanding -> [UInt32] in
                outstanding.append(requestID)
                peak.withLock { $0 = max($0, outstanding.count) }
                defer { if outstanding.count == 3 { outstanding.removeAll() } }
                return outstanding.count == 3 ? outstanding : []
            }
            for id in answer { reply(.tenants([]), id) }
        }
        let connection = try await server.connect()
        let results = try await withThrowingTaskGroup(of: Response.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await withCheckedThrowingContinuation { continuation in
                        connection.send(.listTenants(status: nil)) { continuation.resume(with: $0) }
                    }
                }
            }
            return try await group.reduce(into: [Response]()) { $0.append($1) }
        }
        #expect(results.count == 12)
        #expect(peak.withLock { $0 } == 3)
        await connection.close()
        try await server.stop()
    }

    @Test func completionHandlersLearnOfRefusalsAndOfAClosedConnection() async throws {
        let server = try await FakeServer { _, _, _, close in close() }
        let connection = try await server.connect()
        let send = { @Sendable (request: Request) async -> (any Error)? in
            await withCheckedContinuation { continuation in
                connection.send(request) { result in
                    if case .failure(let error) = result { return continuation.resume(returning: error) }
                    continuation.resume(returning: nil)
                }
            }
        }
        let unsupported = await send(.grantCredit(1))
        #expect(unsupported is TallyClientError)
        let closed = await send(.listTenants(status: nil))
        #expect(closed as? TallyClientError == .connectionClosed(serverError: nil))
        let later = await send(.listTenants(status: nil))
        #expect(later is TallyClientError)
        try await server.stop()
    }
}

/// A loopback server that answers the handshake and hands every later request to a script.
private struct FakeServer {
    typealias Script =
        @Sendable (
            _ request: Request, _ requestID: UInt32, _ reply: (Response, UInt32) -> Void, _ close: () -> Void
        ) -> Void

    let channel: any Channel

    init(inFlightMax: UInt32 = 64, refuseHello: Bool = false, script: @escaping Script) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(FrameDecoder(frameBytesMax: 1 << 20)))
                    try child.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
                    try child.pipeline.syncOperations.addHandler(
                        ScriptHandler(inFlightMax: inFlightMax, refuseHello: refuseHello, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    func connect() async throws -> TallyConnection {
        try await TallyConnection.connect(
            host: "127.0.0.1", port: channel.localAddress!.port!, credential: .adminKey("test-admin-key"))
    }

    func stop() async throws {
        try await channel.close()
    }

    private final class ScriptHandler: ChannelInboundHandler {
        typealias InboundIn = Frame
        typealias OutboundOut = Frame

        let inFlightMax: UInt32
        let refuseHello: Bool
        let script: Script

        init(inFlightMax: UInt32, refuseHello: Bool, script: @escaping Script) {
            self.inFlightMax = inFlightMax
            self.refuseHello = refuseHello
            self.script = script
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            guard let request = try? WireCodec.decodeRequest(frame) else { return context.close(promise: nil) }
            let reply = { (response: Response, requestID: UInt32) in
                context.writeAndFlush(
                    self.wrapOutboundOut(WireCodec.encodeResponse(response, requestID: requestID)), promise: nil)
            }
            guard case .hello = request else {
                return script(request, frame.requestID, reply, { context.close(promise: nil) })
            }
            if refuseHello { return reply(.error(WireError(code: .unauthorized, message: "no")), frame.requestID) }
            let limits = ServerLimits(frameBytesMax: 1 << 20, inFlightRequestsMax: inFlightMax, listLimitMax: 100)
            reply(
                .welcome(Welcome(protocolVersion: 1, principal: .admin, limits: limits, serverName: "fake")),
                frame.requestID)
        }
    }
}
