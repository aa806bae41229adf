import HTTPTypes
import Logging
import NIOCore
import Synchronization
import TallyCore
import TallyStore
import TallyWire

/// The Cycles-compatible HTTP/JSON front (semantics sections 2, 4, 5 and 8): one responder per plane, on a
/// SwiftNIO HTTP/1.1 listener (`GatewayListener`), in the same process and over the same writer as the
/// binary protocol.
///
/// Requests become the binary protocol's `Request` values and go through the same `RequestRouter`, so
/// tenancy, permissions and the idempotency fingerprint are one code path for both fronts. Parsing,
/// validation and authentication run on the event loops; only decided commands reach the writer.
struct HTTPGateway: Sendable {
    typealias Request = GatewayRequest
    typealias Response = GatewayResponse

    enum Plane: String, Sendable {
        case runtime, admin
    }

    let plane: Plane
    let shared: GatewayShared

    /// Answers any request except the runtime plane's commands, which `startCommand` takes first.
    func respond(to request: Request) async -> Response {
        var request = request
        var exchange = Exchange(for: &request)
        let result: Result<Response, any Error>
        do {
            result = .success(try await route(&request, &exchange))
        } catch {
            result = .failure(error)
        }
        return finish(result, exchange)
    }

    /// Serves a runtime-plane ledger command (POST reserve, commit, release, extend, decide, debit: the hot
    /// path) without a task: parsed, authenticated and routed here, on the event loop, then handed to the
    /// writer with a completion that renders and `write`s the response on `loop`. That saves what an async
    /// exchange costs per request (the task, its continuation, the executor's job and the async frames;
    /// about a quarter of the gateway's allocations). Returns false, having done nothing, for any other
    /// request: `respond` serves those in a task. The checks and their order are `respond`'s.
    func startCommand(_ request: Request, on loop: any EventLoop, then write: @escaping @Sendable (Response) -> Void) -> Bool {
        guard plane == .runtime, request.method == .post else { return false }
        let parts = Self.segments(of: request.path)
        guard parts.count >= 2, parts[0] == "v1", let endpoint = Self.commandEndpoint(parts[1...]) else { return false }
        var request = request
        var exchange = Exchange(for: &request)
        do {
            let (wireRequest, principal, status) = try commandRequest(endpoint, &request, &exchange)
            switch try prepare(wireRequest, principal) {
            case .done(let response):
                write(finish(Result { () throws(WireError) in try rendered(response, status: status) }, exchange))
            case .command(let command, let answer):
                let exchange = exchange
                // A lone command's projections are written in a task behind the one that writes its answer.
                shared.submit(command, afterAnswer: { work in loop.execute(work) }) { outcome in
                    // Always through the loop's queue, also when the store answers on this very thread (a lone
                    // command): answering here would serve the connection's next pipelined request one stack
                    // frame deeper, and so on for each.
                    loop.execute {
                        write(finish(Result { () throws(WireError) in try rendered(answer(try outcome.get()), status: status) }, exchange))
                    }
                }
            }
        } catch {
            write(finish(.failure(error), exchange))
        }
        return true
    }

    /// The response of an exchange that ended in `result`: an error becomes its Cycles error body (an
    /// unexpected one is logged and answered as an internal error), and the id headers are added.
    private func finish<Failure: Error>(_ result: Result<Response, Failure>, _ exchange: Exchange) -> Response {
        var response: Response
        switch result {
        case .success(let success):
            response = success
        case .failure(let error as WireError):
            response = failure(error, exchange)
        case .failure(let error):
            shared.logger.error("HTTP request failed", metadata: ["request_id": "\(exchange.trace.requestID)", "error": "\(error)"])
            response = failure(WireError(code: .internalError, message: "internal error; retry with the same idempotency_key"), exchange)
        }
        response.headers[.requestID] = exchange.trace.requestID
        response.headers[.cyclesTraceID] = exchange.trace.traceID
        if let tenant = exchange.tenant { response.headers[.cyclesTenant] = tenant }
        return response
    }

    /// What the handlers learn about the exchange as it goes (for the response headers).
    struct Exchange: Sendable {
        let trace: TraceContext
        var tenant: String?
        var status = HTTPResponse.Status.ok

        /// The exchange of `request`: its trace from the request's headers (or fresh ids).
        init(for request: inout Request) {
            trace = TraceContext.resolve(
                traceparent: request.headers[.traceparent], cyclesTraceID: request.headers[.cyclesTraceID], ids: &request.ids)
        }
    }

    // MARK: Routing

    private func route(_ request: inout Request, _ exchange: inout Exchange) async throws -> Response {
        let path = request.path
        let parts = Self.segments(of: path)
        // HEAD is GET without the content (RFC 9110 section 9.3.2); the connection leaves the body out.
        let method = request.method == .head ? .get : request.method
        guard Self.definedMethods.contains(method) else {
            return failure(
                WireError(code: .invalidRequest, message: "the method \(method) is not implemented"),
                exchange, status: .init(code: 501, reasonPhrase: "Not Implemented"))
        }
        guard parts.count >= 2, parts[0] == "v1" else {
            if parts == ["health"] || parts == ["healthz"] { return json(Array(#"{"status":"UP"}"#.utf8)) }
            throw WireError(code: .notFound, message: "no such endpoint: \(method) \(path)")
        }
        let query = HTTPQuery(request.query)
        var endpoint = consume parts
        endpoint.removeFirst()  // "v1", in place
        if let response = try await common(endpoint, method, &request, query, &exchange) { return response }
        switch plane {
        case .runtime:
            if let response = try await runtime(endpoint, method, &request, query, &exchange) { return response }
        case .admin:
            if endpoint.first == "admin", let response = try await admin(Array(endpoint.dropFirst()), method, &request, query, &exchange) {
                return response
            }
        }
        let allowed = Self.methods(for: endpoint, plane: plane)
        guard allowed.isEmpty else {
            var response = failure(
                WireError(code: .invalidRequest, message: "\(method) is not allowed on \(path); use \(allowed.joined(separator: " or "))"),
                exchange, status: .methodNotAllowed)
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        }
        throw WireError(code: .notFound, message: "no such endpoint on the \(plane.rawValue) plane: \(method) \(path)")
    }

    /// The path's non-empty segments between slashes, in one array sized for the deepest endpoint.
    static func segments(of path: String) -> [String] {
        var segments: [String] = []
        segments.reserveCapacity(6)
        let utf8 = path.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex {
            let end = utf8[start...].firstIndex(of: UInt8(ascii: "/")) ?? utf8.endIndex
            if end > start { segments.append(String(Substring(utf8[start..<end]))) }
            start = end < utf8.endIndex ? utf8.index(after: end) : end
        }
        return segments
    }

    /// The methods HTTP defines (RFC 9110 section 9): one of them on the wrong endpoint is a 405, any other
    /// a 501 (RFC 9110 section 15.6.2).
    static let definedMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .delete, .connect, .options, .trace, .patch]

    /// Every endpoint of a plane with its methods (`*` is a path parameter): what a wrong method is told.
    static let endpoints: [Plane: [([String], [String])]] = [
        .runtime: [
            (["reservations"], ["GET", "POST"]), (["reservations", "*"], ["GET"]), (["reservations", "*", "commit"], ["POST"]),
            (["reservations", "*", "release"], ["POST"]), (["reservations", "*", "extend"], ["POST"]), (["decide"], ["POST"]),
            (["events"], ["GET", "POST"]), (["balances"], ["GET"]), (["auth", "introspect"], ["GET"]),
        ],
        .admin: [
            (["admin", "tenants"], ["GET", "POST"]), (["admin", "tenants", "*"], ["GET", "PATCH"]),
            (["admin", "api-keys"], ["GET", "POST"]), (["admin", "api-keys", "*"], ["PATCH", "DELETE"]),
            (["admin", "budgets"], ["GET", "POST", "PATCH"]), (["admin", "budgets", "lookup"], ["GET"]),
            (["admin", "budgets", "freeze"], ["POST"]), (["admin", "budgets", "unfreeze"], ["POST"]), (["admin", "budgets", "fund"], ["POST"]),
            (["admin", "events"], ["GET"]), (["admin", "events", "*"], ["GET"]), (["events"], ["GET"]), (["balances"], ["GET"]),
            (["auth", "introspect"], ["GET"]),
        ],
    ]

    static func methods(for endpoint: [String], plane: Plane) -> [String] {
        var methods: [String] = []
        for (pattern, allowed) in endpoints[plane] ?? [] where pattern.count == endpoint.count {
            if zip(pattern, endpoint).allSatisfy({ $0.0 == "*" || $0.0 == $0.1 }) { methods += allowed.filter { !methods.contains($0) } }
        }
        if let get = methods.firstIndex(of: "GET") { methods.insert("HEAD", at: get + 1) }
        return methods
    }

    /// Endpoints both planes serve: introspection, balances and the tenant event feed.
    private func common(_ endpoint: [String], _ method: HTTPRequest.Method, _ request: inout Request, _ query: HTTPQuery, _ exchange: inout Exchange) async throws -> Response? {
        switch (method, endpoint) {
        case (.get, ["auth", "introspect"]):
            return try introspect(request, &exchange)
        case (.get, ["balances"]):
            let principal = try authenticate(request, &exchange, admin: plane == .admin ? .allowed : .refused)
            return try await balances(query, principal)
        case (.get, ["events"]):
            let principal = try authenticate(request, &exchange, admin: .allowed)
            return try tenantEvents(query, principal)
        default:
            return nil
        }
    }

    // MARK: Authentication

    enum AdminKeyUse {
        /// The admin key is accepted on this endpoint (and a wrong one is a 401, no fall-through).
        case allowed
        /// Only the admin key is accepted.
        case required
        /// Tenant keys only; an `X-Admin-API-Key` header is ignored.
        case refused
    }

    /// The principal of the request (semantics 5.1, 5.2, decision 19): an invalid tenant key is a 401 on
    /// the runtime plane and a 403 on the admin plane.
    func authenticate(_ request: Request, _ exchange: inout Exchange, admin: AdminKeyUse) throws(WireError) -> Principal {
        if admin != .refused, let secret = request.headers[.adminAPIKey] {
            guard shared.adminKey.matches(secret) else { throw WireError(code: .unauthorized, message: "the admin key is not valid") }
            return .admin
        }
        if admin == .required {
            throw WireError(code: .unauthorized, message: "this endpoint needs the admin key in X-Admin-API-Key")
        }
        guard let secret = request.headers[.cyclesAPIKey] else {
            throw WireError(code: .unauthorized, message: "send a tenant API key in X-Cycles-API-Key")
        }
        switch shared.keys.check(secret: secret, now: shared.clock()) {
        case .success(let principal):
            if case .tenant(let id, _, _) = principal { exchange.tenant = id }
            return principal
        case .failure(let error):
            if plane == .admin, error.code == .unauthorized {
                throw WireError(code: .forbidden, message: "Invalid API key: \(error.message)")
            }
            throw error
        }
    }

    // MARK: Execution

    /// Routes a request through the shared router and runs what it returns.
    func perform(_ request: TallyWire.Request, _ principal: Principal) async throws -> TallyWire.Response {
        switch try prepare(request, principal) {
        case .done(let response):
            return response
        case .command(let command, let answer):
            return answer(try await shared.execute(command))
        }
    }

    /// What a request comes to before the ledger: answered (a read), or a command for the writer with what
    /// turns its decision into the answer.
    enum Prepared {
        case done(TallyWire.Response)
        case command(Command, answer: @Sendable (Decision) -> TallyWire.Response)
    }

    /// Checks the request's limits and routes it; a read runs here, a refusal is thrown.
    func prepare(_ request: TallyWire.Request, _ principal: Principal) throws -> Prepared {
        try WireCodec.checkLimits(request)
        switch shared.router.route(request, principal: principal) {
        case .command(let command, let answer):
            return .command(command, answer: answer)
        case .read(let read):
            return .done(try read())
        case .refuse(let error):
            throw error
        case .subscribe, .grantCredit:
            throw WireError(code: .invalidRequest, message: "event subscriptions are served by the binary protocol")
        }
    }

    /// Reads and parses the JSON body (bounded by `bodyBytesMax`).
    func body(_ request: inout Request, required: Bool = true) throws -> JSONValue? {
        guard !request.bodyTooLarge else {
            // The connection refused to read it; a declared length says by how much.
            if let length = request.headers[.contentLength].flatMap({ Int($0) }) {
                throw WireError(code: .payloadTooLarge, message: "the request body is \(length) bytes, over the limit of \(shared.bodyBytesMax)")
            }
            throw WireError(code: .payloadTooLarge, message: "the request body is over \(shared.bodyBytesMax) bytes")
        }
        let buffer = request.body
        guard buffer.readableBytes > 0 else {
            if required { throw WireError(code: .invalidRequest, message: "the request needs a JSON body") }
            return nil
        }
        do {
            return try buffer.withUnsafeReadableBytes { bytes throws(JSONParseError) in try JSONParser.parse(bytes) }
        } catch {
            throw WireError(code: .invalidRequest, message: "the body is not valid JSON: \(error)")
        }
    }

    /// Cycles: an `X-Idempotency-Key` header must equal the body's `idempotency_key` (decision 10).
    func checkIdempotencyHeader(_ request: Request, body key: String?) throws(WireError) {
        guard let header = request.headers[.idempotencyKey] else { return }
        guard header == key else {
            throw WireError(code: .invalidRequest, message: "X-Idempotency-Key (\(header)) differs from the body's idempotency_key (\(key ?? "absent"))")
        }
    }

    // MARK: Responses

    func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: bytes)
    }

    func json(status: HTTPResponse.Status = .ok, _ write: (inout JSONWriter) -> Void) -> Response {
        var writer = JSONWriter(capacity: 512)
        write(&writer)
        return json(writer.bytes, status: status)
    }

    /// A listing page: `{"<key>": [...], "next_cursor": ..., "has_more": ...}`.
    func page<Row>(_ key: String, _ rows: [Row], next: String?, _ write: (inout JSONWriter, Row) -> Void) -> Response {
        json { w in
            w.beginObject()
            w.key(key)
            w.beginArray()
            for row in rows { write(&w, row) }
            w.endArray()
            if let next {
                w.key("next_cursor")
                w.string(next)
            }
            w.key("has_more")
            w.bool(next != nil)
            w.endObject()
        }
    }

    private func failure(_ error: WireError, _ exchange: Exchange, status: HTTPResponse.Status? = nil) -> Response {
        json(CyclesResponses.error(error, requestID: exchange.trace.requestID, traceID: exchange.trace.traceID),
             status: status ?? HTTPResponse.Status(code: error.code.httpStatus))
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let cyclesTraceID = Self("X-Cycles-Trace-Id")!
    static let cyclesTenant = Self("X-Cycles-Tenant")!
    static let cyclesAPIKey = Self("X-Cycles-API-Key")!
    static let adminAPIKey = Self("X-Admin-API-Key")!
    static let idempotencyKey = Self("X-Idempotency-Key")!
    static let traceparent = Self("traceparent")!
    static let allow = Self("Allow")!
}

/// What both planes' responders share.
final class GatewayShared: Sendable {
    let store: LedgerStore
    let router: RequestRouter
    let keys: KeyCache
    let adminKey: AdminKey
    let clock: @Sendable () -> Int64
    let bodyBytesMax: Int
    let listLimitMax: Int
    let logger: Logger
    private let draining: Atomic<Bool> = Atomic(false)

    init(store: LedgerStore, router: RequestRouter, adminKey: AdminKey, clock: @escaping @Sendable () -> Int64, bodyBytesMax: Int, listLimitMax: Int, logger: Logger) {
        self.store = store
        self.router = router
        self.keys = KeyCache(authenticator: Authenticator(store: store, adminKey: adminKey))
        self.adminKey = adminKey
        self.clock = clock
        self.bodyBytesMax = bodyBytesMax
        self.listLimitMax = listLimitMax
        self.logger = logger
    }

    private let requestsInFlight: Atomic<Int> = Atomic(0)
    /// HTTP connections of both planes together.
    let connections = ConnectionCounter()

    func startDraining() { draining.store(true, ordering: .relaxed) }

    func requestStarted() { requestsInFlight.add(1, ordering: .relaxed) }
    func requestFinished() { requestsInFlight.subtract(1, ordering: .relaxed) }
    /// HTTP requests being answered (graceful shutdown waits for them).
    var inFlight: Int { requestsInFlight.load(ordering: .relaxed) }

    /// Hands a command to the writer; `completion` runs once its events are durable (or it is refused), on
    /// the thread that made them durable, or at once when the server is shutting down. `afterAnswer`: see
    /// `LedgerStore.submit`.
    func submit(
        _ command: Command, afterAnswer: LedgerStore.AfterAnswer? = nil,
        completion: @escaping @Sendable (Result<Decision, WireError>) -> Void
    ) {
        guard !draining.load(ordering: .relaxed) else {
            return completion(.failure(WireError(code: .limitExceeded, message: "the server is shutting down; retry with the same idempotency_key")))
        }
        store.submit(command, afterAnswer: afterAnswer) { outcome in
            switch outcome {
            case .success(.success(let decision)): completion(.success(decision))
            case .success(.failure(let refusal)): completion(.failure(WireError(refusal)))
            case .failure(let error): completion(.failure(WireError(code: .internalError, message: "the ledger could not make the change durable: \(error)")))
            }
        }
    }

    /// Hands a command to the writer and waits until its events are durable.
    func execute(_ command: Command) async throws(WireError) -> Decision {
        let outcome: Result<Decision, WireError> = await withCheckedContinuation { continuation in
            submit(command) { continuation.resume(returning: $0) }
        }
        return try outcome.get()
    }
}

/// Tenant keys checked against the store at most once a second per key (as the binary protocol re-checks
/// open connections), so a busy agent does not pay a SHA-256 lookup transaction on every request twice.
final class KeyCache: Sendable {
    private let authenticator: Authenticator
    private let entries = Mutex<[String: (principal: Principal, checkedAt: Int64)]>([:])
    static let entriesMax = 10_000

    init(authenticator: Authenticator) { self.authenticator = authenticator }

    /// The principal of a tenant key, as the binary handshake authenticates it.
    func check(secret: String, now: Int64) -> Result<Principal, WireError> {
        if let cached = entries.withLock({ $0[secret] }), now - cached.checkedAt < ServerContext.keyRecheckMilliseconds, now >= cached.checkedAt {
            return .success(cached.principal)
        }
        let result = authenticator.authenticate(.tenantKey(secret), now: now).map(\.0)
        entries.withLock { entries in
            switch result {
            case .success(let principal):
                if entries.count >= Self.entriesMax { entries.removeAll(keepingCapacity: true) }
                entries[secret] = (principal, now)
            case .failure:
                entries[secret] = nil
            }
        }
        return result
    }
}
