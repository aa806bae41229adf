import Foundation
import Testing
import TallyClient
import TallyCore
import TallyWire
import TallyTestSupport

/// The Cycles HTTP/JSON gateway of a real `tallyd`: both planes on loopback, driven with raw HTTP/1.1.
@Suite struct HTTPGatewayTests {
    /// A server with tenant `acme-corp`, a key for it (default permissions plus budgets and events), and the
    /// guide's pattern 2 budgets: workspace $50 over planner $20, executor $30, reviewer $10.
    struct Fixture {
        let server: ServerProcess
        let runtime: HTTPTestClient
        let admin: HTTPTestClient
        let key: String

        static let dollar: Int64 = 100_000_000

        init(tenant: String = "acme-corp") throws {
            server = try ServerProcess()
            runtime = HTTPTestClient(port: server.httpPort)
            admin = HTTPTestClient(port: server.adminHTTPPort)
            let created = try admin.admin("POST", "/v1/admin/tenants", #"{"tenant_id": "\#(tenant)", "name": "Acme"}"#)
            guard created.status == 201 else { throw ServerProcessError("tenant create: \(created)") }
            let keyReply = try admin.admin("POST", "/v1/admin/api-keys", """
                {"tenant_id": "\(tenant)", "name": "agents", "permissions": ["reservations:create", "reservations:commit",
                 "reservations:release", "reservations:extend", "reservations:list", "balances:read", "budgets:read",
                 "budgets:write", "events:read"]}
                """)
            guard keyReply.status == 201, let secret = keyReply.json["key_secret"]?.str else { throw ServerProcessError("key create: \(keyReply)") }
            key = secret
            for (scope, dollars) in [("", 50), ("/agent:planner", 20), ("/agent:executor", 30), ("/agent:reviewer", 10)] {
                let budget = try admin.admin("POST", "/v1/admin/budgets", """
                    {"scope": "tenant:\(tenant)/workspace:project-alpha\(scope)", "unit": "USD_MICROCENTS",
                     "allocated": {"amount": \(Int64(dollars) * Self.dollar), "unit": "USD_MICROCENTS"}}
                    """)
                guard budget.status == 201 else { throw ServerProcessError("budget create: \(budget)") }
            }
        }

        func stop() {
            server.stop()
            server.removeData()
        }

        func reserveBody(_ key: String, agent: String = "executor", amount: Int64 = 2 * dollar, extra: String = "") -> String {
            """
            {"idempotency_key": "\(key)", "subject": {"tenant": "acme-corp", "workspace": "project-alpha", "agent": "\(agent)"},
             "action": {"kind": "llm.completion", "name": "openai:gpt-4o"}, "estimate": {"unit": "USD_MICROCENTS", "amount": \(amount)}\(extra)}
            """
        }

        func reserve(_ idempotencyKey: String = UUID().uuidString, agent: String = "executor", amount: Int64 = 2 * dollar, extra: String = "") throws -> HTTPTestClient.Reply {
            try runtime.tenant(key, "POST", "/v1/reservations", reserveBody(idempotencyKey, agent: agent, amount: amount, extra: extra))
        }

        func balance(_ scope: String) throws -> JSONValue? {
            let reply = try runtime.tenant(key, "GET", "/v1/balances?tenant=acme-corp")
            return reply.json["balances"]?.items.first { $0["scope_path"]?.str == scope }
        }
    }

    static let workspace = "tenant:acme-corp/workspace:project-alpha"
    static let executor = workspace + "/agent:executor"

    // MARK: Runtime plane

    @Test func reserveCommitAndTheirReplaysFollowTheCyclesShapes() throws {
        let f = try Fixture()
        defer { f.stop() }
        let reserved = try f.reserve("r-1")
        #expect(reserved.status == 200, "\(reserved)")
        let body = reserved.json
        #expect(body["decision"]?.str == "ALLOW")
        #expect(body.memberNames == ["decision", "reservation_id", "reserved", "expires_at_ms", "remaining_ttl_ms", "scope_path", "affected_scopes", "balances"])
        #expect(body["scope_path"]?.str == Self.executor)
        #expect(body["affected_scopes"]?.items.compactMap(\.str) == ["tenant:acme-corp", Self.workspace, Self.executor])
        #expect(body.at("reserved", "amount")?.int == 2 * Fixture.dollar)
        // Runtime balances carry only the runtime fields: the leaf in `scope`, zero debt left out.
        let balance = body.at("balances", "1")
        #expect(balance?["scope"]?.str == "agent:executor")
        #expect(balance?.memberNames == ["scope", "scope_path", "remaining", "reserved", "spent", "allocated"])
        #expect(body.at("balances", "0", "remaining", "amount")?.int == 48 * Fixture.dollar)
        let id = try #require(body["reservation_id"]?.str)

        // Same key, same body: the original reservation, nothing held twice.
        let replay = try f.reserve("r-1")
        #expect(replay.status == 200)
        #expect(replay.json["reservation_id"]?.str == id)
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 2 * Fixture.dollar)
        // Same key, different body.
        let mismatch = try f.reserve("r-1", amount: 3 * Fixture.dollar)
        #expect(mismatch.status == 409)
        #expect(mismatch.json["error"]?.str == "IDEMPOTENCY_MISMATCH")
        // Header and body keys must agree (decision 10).
        let headerMismatch = try f.runtime.tenant(f.key, "POST", "/v1/reservations", f.reserveBody("r-2"), headers: [("X-Idempotency-Key", "other")])
        #expect(headerMismatch.status == 400)
        #expect(headerMismatch.json["error"]?.str == "INVALID_REQUEST")

        let commitBody = #"{"idempotency_key": "c-1", "actual": {"unit": "USD_MICROCENTS", "amount": 150000000}, "metrics": {"tokens_input": 10, "latency_ms": 5}}"#
        let committed = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/commit", commitBody)
        #expect(committed.status == 200, "\(committed)")
        #expect(committed.json["status"]?.str == "COMMITTED")
        #expect(committed.json.at("charged", "amount")?.int == 150_000_000)
        #expect(committed.json.at("released", "amount")?.int == 50_000_000)
        // A commit replay is the original answer byte for byte.
        let again = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/commit", commitBody)
        #expect(again.status == 200)
        #expect(again.body == committed.body)
        // A different key on the committed reservation.
        let finalized = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/commit", commitBody.replacingOccurrences(of: "c-1", with: "c-2"))
        #expect(finalized.status == 409)
        #expect(finalized.json["error"]?.str == "RESERVATION_FINALIZED")
        // The reserve replay after the commit: same id, remaining_ttl_ms now 0.
        let late = try f.reserve("r-1")
        #expect(late.json["reservation_id"]?.str == id)
        #expect(late.json["remaining_ttl_ms"]?.int == 0)

        let workspace = try #require(try f.balance(Self.workspace))
        #expect(workspace.at("spent", "amount")?.int == 150_000_000)
        #expect(workspace.at("reserved", "amount")?.int == 0)
        #expect(workspace.at("remaining", "amount")?.int == 50 * Fixture.dollar - 150_000_000)
        // GET /v1/balances items carry the full ledger fields too (decision 1).
        #expect(workspace["status"]?.str == "ACTIVE")
        #expect(workspace["unit"]?.str == "USD_MICROCENTS")
        #expect(workspace["is_over_limit"]?.bool == false)

        let detail = try f.runtime.tenant(f.key, "GET", "/v1/reservations/\(id)")
        #expect(detail.status == 200)
        #expect(detail.json["status"]?.str == "COMMITTED")
        #expect(detail.json.at("committed", "amount")?.int == 150_000_000)
        #expect(detail.json["finalized_at_ms"]?.int != nil)
        #expect(detail.json.at("subject", "agent")?.str == "executor")
    }

    @Test func releaseExtendDryRunDecideAndDirectDebit() throws {
        let f = try Fixture()
        defer { f.stop() }
        let id = try #require(try f.reserve(agent: "planner").json["reservation_id"]?.str)
        let extended = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/extend", #"{"idempotency_key": "e-1", "extend_by_ms": 30000}"#)
        #expect(extended.status == 200, "\(extended)")
        #expect(extended.json["status"]?.str == "ACTIVE")
        #expect(extended.json.memberNames == ["status", "expires_at_ms", "remaining_ttl_ms", "balances"])
        let released = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/release", #"{"idempotency_key": "l-1", "reason": "done early"}"#)
        #expect(released.status == 200)
        #expect(released.json["status"]?.str == "RELEASED")
        #expect(released.json.at("released", "amount")?.int == 2 * Fixture.dollar)
        let twice = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/release", #"{"idempotency_key": "l-2"}"#)
        #expect(twice.json["error"]?.str == "RESERVATION_FINALIZED")
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 0)

        // Dry run: ALLOW with the unmutated balances, no reservation; DENY is a 200 with a reason code.
        let allow = try f.reserve(extra: #", "dry_run": true"#)
        #expect(allow.status == 200)
        #expect(allow.json["decision"]?.str == "ALLOW")
        #expect(allow.json["reservation_id"] == nil && allow.json["expires_at_ms"] == nil)
        #expect(allow.json["affected_scopes"]?.items.count == 3)
        let deny = try f.reserve(amount: 31 * Fixture.dollar, extra: #", "dry_run": true"#)
        #expect(deny.status == 200)
        #expect(deny.json["decision"]?.str == "DENY")
        #expect(deny.json["reason_code"]?.str == "BUDGET_EXCEEDED")
        #expect(deny.json["balances"] == nil)
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 0)
        // Live: the same shortfall is a 409.
        let refused = try f.reserve(amount: 31 * Fixture.dollar)
        #expect(refused.status == 409)
        #expect(refused.json["error"]?.str == "BUDGET_EXCEEDED")
        #expect(refused.json.memberNames == ["error", "message", "request_id", "trace_id"])

        let decide = try f.runtime.tenant(f.key, "POST", "/v1/decide", """
            {"idempotency_key": "d-1", "subject": {"workspace": "project-alpha", "agent": "reviewer"},
             "action": {"kind": "llm.completion", "name": "m"}, "estimate": {"unit": "USD_MICROCENTS", "amount": \(11 * Fixture.dollar)}}
            """)
        #expect(decide.status == 200)
        #expect(decide.json["decision"]?.str == "DENY")
        #expect(decide.json["reason_code"]?.str == "BUDGET_EXCEEDED")

        let debit = try f.runtime.tenant(f.key, "POST", "/v1/events", """
            {"idempotency_key": "ev-1", "subject": {"workspace": "project-alpha", "agent": "reviewer"},
             "action": {"kind": "tool.search", "name": "web"}, "actual": {"unit": "USD_MICROCENTS", "amount": 1000}}
            """)
        #expect(debit.status == 201, "\(debit)")
        #expect(debit.json["status"]?.str == "APPLIED")
        #expect(debit.json["event_id"]?.str != nil)
        #expect(try f.balance(Self.workspace + "/agent:reviewer")?.at("spent", "amount")?.int == 1000)
    }

    @Test func badInputIsRefusedWithTheFieldNamedAndChangesNothing() throws {
        let f = try Fixture()
        defer { f.stop() }
        func expectInvalid(_ reply: HTTPTestClient.Reply, mentioning field: String, status: Int = 400, code: String = "INVALID_REQUEST", sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(reply.status == status, "\(reply)", sourceLocation: sourceLocation)
            #expect(reply.json["error"]?.str == code, "\(reply)", sourceLocation: sourceLocation)
            #expect(reply.json["message"]?.str?.contains(field) == true, "\(reply)", sourceLocation: sourceLocation)
            #expect(reply.json["request_id"]?.str?.isEmpty == false, sourceLocation: sourceLocation)
        }
        expectInvalid(try f.reserve(extra: #", "colour": "blue""#), mentioning: "colour")
        expectInvalid(try f.runtime.tenant(f.key, "POST", "/v1/reservations", f.reserveBody("x").replacingOccurrences(of: #""agent": "executor""#, with: #""agent": "executor", "team": "a""#)), mentioning: "subject.team")
        expectInvalid(try f.runtime.tenant(f.key, "POST", "/v1/reservations", #"{"idempotency_key": "x", "#), mentioning: "JSON")
        expectInvalid(try f.reserve(amount: -5), mentioning: "estimate.amount")
        expectInvalid(try f.runtime.tenant(f.key, "POST", "/v1/reservations", f.reserveBody("x").replacingOccurrences(of: "\"amount\": 200000000", with: "\"amount\": 2.5")), mentioning: "estimate.amount")
        expectInvalid(try f.reserve(extra: #", "ttl_ms": 999"#), mentioning: "ttl_ms")
        expectInvalid(try f.reserve(extra: #", "ttl_ms": 86400001"#), mentioning: "ttl_ms")
        expectInvalid(try f.reserve(extra: #", "grace_period_ms": 60001"#), mentioning: "grace_period_ms")
        expectInvalid(try f.reserve(extra: #", "overage_policy": "SOMETIMES""#), mentioning: "overage_policy")
        expectInvalid(try f.runtime.tenant(f.key, "POST", "/v1/reservations", #"{"idempotency_key": "x", "action": {"kind": "a", "name": "b"}, "estimate": {"unit": "TOKENS", "amount": 1}}"#), mentioning: "subject")
        // Boundaries accepted exactly at the limits.
        #expect(try f.reserve(extra: #", "ttl_ms": 1000, "grace_period_ms": 60000"#).status == 200)
        // An over-long string is refused by the wire limits before anything is hashed.
        expectInvalid(try f.reserve(String(repeating: "k", count: 5000)), mentioning: "idempotency")
        // Unit mismatch carries the details.
        let mismatch = try f.runtime.tenant(f.key, "POST", "/v1/reservations", f.reserveBody("u-1").replacingOccurrences(of: "\"unit\": \"USD_MICROCENTS\"", with: "\"unit\": \"TOKENS\""))
        #expect(mismatch.status == 400)
        #expect(mismatch.json["error"]?.str == "UNIT_MISMATCH")
        #expect(mismatch.json.at("details", "requested_unit")?.str == "TOKENS")
        #expect(mismatch.json.at("details", "expected_units", "0")?.str == "USD_MICROCENTS")
        // No budget anywhere.
        let nowhere = try f.runtime.tenant(f.key, "POST", "/v1/reservations", f.reserveBody("n-1").replacingOccurrences(of: "project-alpha", with: "elsewhere"))
        #expect(nowhere.status == 404)
        #expect(nowhere.json["error"]?.str == "NOT_FOUND")
        // A body over the limit.
        let huge = try f.runtime.send("POST", "/v1/reservations", headers: [("X-Cycles-API-Key", f.key)], rawBody: Array(repeating: 32, count: 300 * 1024))
        #expect(huge.status == 413)
        // Unknown reservations and endpoints.
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/reservations/no-such-id").json["error"]?.str == "NOT_FOUND")
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/nothing-here").status == 404)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/admin/tenants").status == 404, "admin endpoints live on the admin plane")
        // A known path with the wrong method: 405 with the methods it takes.
        let wrongMethod = try f.runtime.tenant(f.key, "DELETE", "/v1/reservations")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD, POST")
        #expect(wrongMethod.json["error"]?.str == "INVALID_REQUEST")
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/reservations/abc/commit").header("Allow") == "POST")
        #expect(try f.admin.admin("PUT", "/v1/admin/api-keys/k1").header("Allow") == "PATCH, DELETE")
        // None of it held or spent anything beyond the one accepted boundary reservation.
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 2 * Fixture.dollar)
        #expect(try f.balance(Self.workspace)?.at("spent", "amount")?.int == 0)
    }

    @Test func expiredReservationsAnswer410() throws {
        let f = try Fixture()
        defer { f.stop() }
        let reserved = try f.reserve(extra: #", "ttl_ms": 1000, "grace_period_ms": 0"#)
        let id = try #require(reserved.json["reservation_id"]?.str)
        // Past expires_at (+ no grace): commit is refused as expired even before the sweep.
        let deadline = Date().addingTimeInterval(10)
        Thread.sleep(forTimeInterval: 1.2)
        let commit = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/commit", #"{"idempotency_key": "c", "actual": {"unit": "USD_MICROCENTS", "amount": 1}}"#)
        #expect(commit.status == 410)
        #expect(commit.json["error"]?.str == "RESERVATION_EXPIRED")
        // After the sweep, GET is 410 too and the hold is back.
        var get = try f.runtime.tenant(f.key, "GET", "/v1/reservations/\(id)")
        while get.status != 410 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            get = try f.runtime.tenant(f.key, "GET", "/v1/reservations/\(id)")
        }
        #expect(get.status == 410)
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 0)
    }

    @Test func listingsFilterSortAndPageWithCursorsBoundToTheirFilters() throws {
        let f = try Fixture()
        defer { f.stop() }
        for index in 0..<5 { #expect(try f.reserve("l-\(index)", agent: index % 2 == 0 ? "planner" : "executor", amount: Int64(index + 1)).status == 200) }
        let first = try f.runtime.tenant(f.key, "GET", "/v1/reservations?agent=planner&sort_by=reserved&sort_dir=asc&limit=2")
        #expect(first.status == 200, "\(first)")
        #expect(first.json["reservations"]?.items.compactMap { $0.at("reserved", "amount")?.int } == [1, 3])
        #expect(first.json["has_more"]?.bool == true)
        let cursor = try #require(first.json["next_cursor"]?.str)
        let second = try f.runtime.tenant(f.key, "GET", "/v1/reservations?agent=planner&sort_by=reserved&sort_dir=asc&limit=2&cursor=\(cursor)")
        #expect(second.json["reservations"]?.items.compactMap { $0.at("reserved", "amount")?.int } == [5])
        #expect(second.json["has_more"]?.bool == false)
        let reused = try f.runtime.tenant(f.key, "GET", "/v1/reservations?agent=executor&limit=2&cursor=\(cursor)")
        #expect(reused.status == 400)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/reservations?status=PENDING").status == 400)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/reservations?limit=201").status == 400)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/reservations?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z").status == 400)
        let byKey = try f.runtime.tenant(f.key, "GET", "/v1/reservations?idempotency_key=l-3")
        #expect(byKey.json["reservations"]?.items.count == 1)
        // The admin key may list, naming the tenant; without it, a clear 400.
        #expect(try f.runtime.admin("GET", "/v1/reservations?tenant=acme-corp").json["reservations"]?.items.count == 5)
        let noTenant = try f.runtime.admin("GET", "/v1/reservations")
        #expect(noTenant.status == 400)
        #expect(noTenant.json["message"]?.str?.contains("tenant") == true)
        // Balances: one filter at least; paging by scope.
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/balances").status == 400)
        let page = try f.runtime.tenant(f.key, "GET", "/v1/balances?workspace=project-alpha&limit=3")
        #expect(page.json["balances"]?.items.count == 3)
        let next = try #require(page.json["next_cursor"]?.str)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/balances?workspace=project-alpha&limit=3&cursor=\(next)").json["balances"]?.items.count == 1)
        let scoped = try f.runtime.tenant(f.key, "GET", "/v1/balances?scope_prefix=\(Self.executor)&unit=USD_MICROCENTS")
        #expect(scoped.json["balances"]?.items.compactMap { $0["scope_path"]?.str } == [Self.executor])
    }

    // MARK: Tenancy and authentication

    @Test func tenantsAreIsolatedAndKeysChecked() throws {
        let f = try Fixture()
        defer { f.stop() }
        let id = try #require(try f.reserve().json["reservation_id"]?.str)
        #expect(try f.admin.admin("POST", "/v1/admin/tenants", #"{"tenant_id": "globex", "name": "Globex"}"#).status == 201)
        let other = try #require(try f.admin.admin("POST", "/v1/admin/api-keys", #"{"tenant_id": "globex", "name": "k"}"#).json["key_secret"]?.str)
        for (method, path, body) in [
            ("POST", "/v1/reservations/\(id)/commit", #"{"idempotency_key": "x", "actual": {"unit": "USD_MICROCENTS", "amount": 1}}"#),
            ("POST", "/v1/reservations/\(id)/release", #"{"idempotency_key": "x"}"#),
            ("POST", "/v1/reservations/\(id)/extend", #"{"idempotency_key": "x", "extend_by_ms": 1000}"#),
            ("GET", "/v1/reservations/\(id)", nil),
            ("GET", "/v1/balances?tenant=acme-corp", nil),
            ("GET", "/v1/reservations?tenant=acme-corp", nil),
            ("POST", "/v1/reservations", f.reserveBody("iso")),
            ("POST", "/v1/decide", f.reserveBody("iso")),
        ] as [(String, String, String?)] {
            let reply = try f.runtime.tenant(other, method, path, body)
            #expect(reply.status == 403, "\(method) \(path): \(reply)")
            #expect(reply.json["error"]?.str == "FORBIDDEN", "\(method) \(path)")
            #expect(reply.header("X-Cycles-Tenant") == "globex")
        }
        // Missing and invalid keys: 401 on the runtime plane, 403 on the admin plane (decision 19).
        let missing = try f.runtime.send("GET", "/v1/balances?tenant=acme-corp")
        #expect(missing.status == 401)
        #expect(missing.header("X-Request-Id") != nil && missing.header("X-Cycles-Trace-Id")?.count == 32)
        #expect(try f.runtime.tenant("not-a-key", "GET", "/v1/balances?tenant=acme-corp").status == 401)
        #expect(try f.admin.tenant("not-a-key", "GET", "/v1/admin/budgets").status == 403)
        #expect(try f.runtime.admin("GET", "/v1/reservations/\(id)", key: "wrong-admin-key-000000").status == 401)
        // The admin key works on the three runtime endpoints it is allowed on, and on no other.
        #expect(try f.runtime.admin("GET", "/v1/reservations/\(id)").status == 200)
        #expect(try f.runtime.send("POST", "/v1/reservations", headers: [("X-Admin-API-Key", ServerProcess.adminKey)], body: f.reserveBody("adm")).status == 401)
        let forced = try f.runtime.admin("POST", "/v1/reservations/\(id)/release", #"{"idempotency_key": "force", "reason": "[INCIDENT_FORCE_RELEASE]"}"#)
        #expect(forced.status == 200)
        // Admin-plane endpoints refuse tenant keys where only the admin may act.
        #expect(try f.admin.tenant(f.key, "GET", "/v1/admin/tenants").status == 401)
        // A revoked key stops working (within the one-second re-check).
        let keys = try f.admin.admin("GET", "/v1/admin/api-keys?tenant_id=globex")
        let keyID = try #require(keys.json["keys"]?.items.first?["key_id"]?.str)
        #expect(keys.json["keys"]?.items.first?["key_secret"] == nil)
        #expect(try f.admin.admin("DELETE", "/v1/admin/api-keys/\(keyID)").status == 200)
        Thread.sleep(forTimeInterval: 1.1)
        #expect(try f.runtime.tenant(other, "GET", "/v1/balances?tenant=globex").status == 401)
    }

    @Test func responseHeadersCarryTraceAndRequestIDs() throws {
        let f = try Fixture()
        defer { f.stop() }
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let parent = try f.runtime.send("GET", "/v1/balances?tenant=acme-corp", headers: [
            ("X-Cycles-API-Key", f.key), ("traceparent", "00-\(trace)-00f067aa0ba902b7-01"), ("X-Cycles-Trace-Id", String(repeating: "a", count: 32)),
        ])
        #expect(parent.header("X-Cycles-Trace-Id") == trace)
        #expect(parent.header("X-Cycles-Tenant") == "acme-corp")
        let cycles = try f.runtime.send("GET", "/v1/balances?tenant=acme-corp", headers: [("X-Cycles-API-Key", f.key), ("X-Cycles-Trace-Id", trace)])
        #expect(cycles.header("X-Cycles-Trace-Id") == trace)
        let malformed = try f.runtime.send("GET", "/v1/balances", headers: [("X-Cycles-API-Key", f.key), ("traceparent", "garbage"), ("X-Cycles-Trace-Id", "XYZ")])
        #expect(malformed.status == 400)
        let generated = try #require(malformed.header("X-Cycles-Trace-Id"))
        #expect(generated.count == 32 && generated != trace)
        #expect(malformed.json["trace_id"]?.str == generated)
        #expect(malformed.json["request_id"]?.str == malformed.header("X-Request-Id"))
        // The runtime commands are served on their own path (no task): the same headers, success or error.
        let reserved = try f.runtime.send("POST", "/v1/reservations", headers: [
            ("X-Cycles-API-Key", f.key), ("traceparent", "00-\(trace)-00f067aa0ba902b7-01"),
        ], body: f.reserveBody("traced"))
        #expect(reserved.status == 200)
        #expect(reserved.header("X-Cycles-Trace-Id") == trace)
        #expect(reserved.header("X-Cycles-Tenant") == "acme-corp")
        let reservedID = try #require(reserved.header("X-Request-Id"))
        let refused = try f.runtime.send("POST", "/v1/reservations/no-such-reservation/commit", headers: [
            ("X-Cycles-API-Key", f.key), ("X-Cycles-Trace-Id", trace),
        ], body: #"{"idempotency_key": "c", "actual": {"unit": "USD_MICROCENTS", "amount": 1}}"#)
        #expect(refused.status == 404)
        #expect(refused.header("X-Cycles-Trace-Id") == trace && refused.json["trace_id"]?.str == trace)
        #expect(refused.header("X-Cycles-Tenant") == "acme-corp")
        let refusedID = try #require(refused.header("X-Request-Id"))
        #expect(refused.json["request_id"]?.str == refusedID && refusedID != reservedID)
    }

    // MARK: Admin plane

    @Test func tenantsKeysAndTheCloseCascade() throws {
        let f = try Fixture()
        defer { f.stop() }
        // Create is idempotent on the same name; another name is a conflict.
        #expect(try f.admin.admin("POST", "/v1/admin/tenants", #"{"tenant_id": "acme-corp", "name": "Acme"}"#).status == 200)
        let conflict = try f.admin.admin("POST", "/v1/admin/tenants", #"{"tenant_id": "acme-corp", "name": "Other"}"#)
        #expect(conflict.status == 409)
        #expect(conflict.json["error"]?.str == "DUPLICATE_RESOURCE")
        let got = try f.admin.admin("GET", "/v1/admin/tenants/acme-corp")
        #expect(got.json["status"]?.str == "ACTIVE")
        #expect(got.json["created_at"]?.str?.hasSuffix("Z") == true)
        #expect(try f.admin.admin("GET", "/v1/admin/tenants/nobody").json["error"]?.str == "TENANT_NOT_FOUND")
        #expect(try f.admin.admin("GET", "/v1/admin/tenants?status=ACTIVE").json["tenants"]?.items.count == 1)
        // Key update: permissions replaced, visible in introspection.
        let keyID = try #require(try f.admin.admin("GET", "/v1/admin/api-keys?tenant_id=acme-corp").json["keys"]?.items.first?["key_id"]?.str)
        let patched = try f.admin.admin("PATCH", "/v1/admin/api-keys/\(keyID)", #"{"name": "renamed", "permissions": ["balances:read", "reservations:create"]}"#)
        #expect(patched.status == 200, "\(patched)")
        #expect(patched.json["permissions"]?.items.compactMap(\.str) == ["reservations:create", "balances:read"])
        Thread.sleep(forTimeInterval: 1.1)
        let introspect = try f.runtime.tenant(f.key, "GET", "/v1/auth/introspect")
        #expect(introspect.json["auth_type"]?.str == "tenant")
        #expect(introspect.json["tenant_id"]?.str == "acme-corp")
        #expect(introspect.json.at("capabilities", "view_balances")?.bool == true)
        #expect(introspect.json.at("capabilities", "manage_budgets")?.bool == false)
        #expect(introspect.json.at("capabilities", "manage_tenants")?.bool == false)
        #expect(try f.admin.admin("GET", "/v1/auth/introspect").json["permissions"]?.items.compactMap(\.str) == ["*"])
        // A permission the key no longer has.
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/reservations").json["error"]?.str == "FORBIDDEN")
        // Suspend: the tenant's keys stop authenticating; reactivate: they work again.
        #expect(try f.admin.admin("PATCH", "/v1/admin/tenants/acme-corp", #"{"status": "SUSPENDED"}"#).json["status"]?.str == "SUSPENDED")
        Thread.sleep(forTimeInterval: 1.1)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/balances?tenant=acme-corp").status == 401)
        #expect(try f.admin.admin("PATCH", "/v1/admin/tenants/acme-corp", #"{"status": "ACTIVE"}"#).status == 200)
        Thread.sleep(forTimeInterval: 1.1)
        let held = try #require(try f.reserve().json["reservation_id"]?.str)
        // Close: budgets closed, keys revoked, active reservations released, in one batch.
        let closed = try f.admin.admin("PATCH", "/v1/admin/tenants/acme-corp", #"{"status": "CLOSED"}"#)
        #expect(closed.json["status"]?.str == "CLOSED")
        #expect(try f.admin.admin("PATCH", "/v1/admin/tenants/acme-corp", #"{"status": "ACTIVE"}"#).status == 400)
        Thread.sleep(forTimeInterval: 1.1)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/balances?tenant=acme-corp").status == 401)
        let release = try f.runtime.admin("POST", "/v1/reservations/\(held)/release", #"{"idempotency_key": "after-close"}"#)
        #expect(release.status == 409)
        #expect(release.json["error"]?.str == "TENANT_CLOSED")
        #expect(try f.runtime.admin("GET", "/v1/reservations/\(held)").json["status"]?.str == "RELEASED")
        let budgets = try f.admin.admin("GET", "/v1/admin/budgets?tenant_id=acme-corp")
        #expect(budgets.json["ledgers"]?.items.allSatisfy { $0["status"]?.str == "CLOSED" && $0.at("reserved", "amount")?.int == 0 } == true)
        #expect(try f.admin.admin("GET", "/v1/admin/api-keys?tenant_id=acme-corp").json["keys"]?.items.allSatisfy { $0["status"]?.str == "REVOKED" } == true)
        let fund = try f.admin.admin("POST", "/v1/admin/budgets/fund?scope=\(Self.workspace)&unit=USD_MICROCENTS", #"{"operation": "CREDIT", "amount": {"unit": "USD_MICROCENTS", "amount": 1}}"#)
        #expect(fund.json["error"]?.str == "TENANT_CLOSED")
    }

    @Test func budgetsAreCreatedListedUpdatedFrozenAndFunded() throws {
        let f = try Fixture()
        defer { f.stop() }
        // Without tenant_id the admin key takes the tenant from the scope; a missing tenant says how to create it.
        let missing = try f.admin.admin("POST", "/v1/admin/budgets", #"{"scope": "tenant:initech/workspace:a", "unit": "TOKENS", "allocated": {"unit": "TOKENS", "amount": 5}}"#)
        #expect(missing.status == 404)
        #expect(missing.json["error"]?.str == "TENANT_NOT_FOUND")
        #expect(missing.json["message"]?.str?.contains("POST /v1/admin/tenants") == true)
        let duplicate = try f.admin.admin("POST", "/v1/admin/budgets", #"{"scope": "\#(Self.workspace)", "unit": "USD_MICROCENTS", "allocated": {"unit": "USD_MICROCENTS", "amount": 5}}"#)
        #expect(duplicate.status == 409)
        #expect(duplicate.json["error"]?.str == "DUPLICATE_RESOURCE")
        let wrongUnit = try f.admin.admin("POST", "/v1/admin/budgets", #"{"scope": "tenant:acme-corp/workspace:b", "unit": "TOKENS", "allocated": {"unit": "CREDITS", "amount": 5}}"#)
        #expect(wrongUnit.json["error"]?.str == "UNIT_MISMATCH")
        // A tenant key with budgets:write creates in its own tenant; tenant_id is refused with it.
        #expect(try f.admin.tenant(f.key, "POST", "/v1/admin/budgets", #"{"scope": "tenant:acme-corp/workspace:b", "unit": "TOKENS", "allocated": {"unit": "TOKENS", "amount": 7}}"#).status == 201)
        #expect(try f.admin.tenant(f.key, "POST", "/v1/admin/budgets", #"{"tenant_id": "acme-corp", "scope": "tenant:acme-corp/workspace:c", "unit": "TOKENS", "allocated": {"unit": "TOKENS", "amount": 7}}"#).status == 400)

        let list = try f.admin.admin("GET", "/v1/admin/budgets?tenant_id=acme-corp&unit=USD_MICROCENTS&sort_by=scope&sort_dir=desc")
        #expect(list.json["ledgers"]?.items.compactMap { $0["scope"]?.str }.first == Self.workspace + "/agent:reviewer")
        #expect(list.json["ledgers"]?.items.count == 4)
        let lookup = try f.admin.tenant(f.key, "GET", "/v1/admin/budgets/lookup?scope=\(Self.executor)&unit=USD_MICROCENTS")
        #expect(lookup.json.at("allocated", "amount")?.int == 30 * Fixture.dollar)
        #expect(try f.admin.admin("GET", "/v1/admin/budgets/lookup?scope=\(Self.executor)&unit=TOKENS").json["error"]?.str == "BUDGET_NOT_FOUND")

        let updated = try f.admin.admin("PATCH", "/v1/admin/budgets?scope=\(Self.executor)&unit=USD_MICROCENTS", #"{"overdraft_limit": {"unit": "USD_MICROCENTS", "amount": 1000}, "commit_overage_policy": "ALLOW_WITH_OVERDRAFT"}"#)
        #expect(updated.status == 200, "\(updated)")
        #expect(updated.json.at("overdraft_limit", "amount")?.int == 1000)

        #expect(try f.admin.admin("POST", "/v1/admin/budgets/freeze?scope=\(Self.executor)&unit=USD_MICROCENTS", #"{"reason": "audit"}"#).json["status"]?.str == "FROZEN")
        #expect(try f.reserve().json["error"]?.str == "BUDGET_FROZEN")
        #expect(try f.admin.admin("POST", "/v1/admin/budgets/freeze?scope=\(Self.executor)&unit=USD_MICROCENTS").status == 409)
        #expect(try f.admin.admin("POST", "/v1/admin/budgets/unfreeze?scope=\(Self.executor)&unit=USD_MICROCENTS").json["status"]?.str == "ACTIVE")
        #expect(try f.reserve(amount: 1).status == 200)

        func fund(_ operation: String, _ amount: Int64, spent: Int64? = nil, key: String? = nil) throws -> HTTPTestClient.Reply {
            var body = #"{"operation": "\#(operation)", "amount": {"unit": "USD_MICROCENTS", "amount": \#(amount)}"#
            if let spent { body += #", "spent": {"unit": "USD_MICROCENTS", "amount": \#(spent)}"# }
            if let key { body += #", "idempotency_key": "\#(key)""# }
            return try f.admin.admin("POST", "/v1/admin/budgets/fund?scope=\(Self.workspace + "/agent:reviewer")&unit=USD_MICROCENTS", body + "}")
        }
        let credit = try fund("CREDIT", 5 * Fixture.dollar, key: "f-1")
        #expect(credit.status == 200, "\(credit)")
        #expect(credit.json.at("previous_allocated", "amount")?.int == 10 * Fixture.dollar)
        #expect(credit.json.at("new_allocated", "amount")?.int == 15 * Fixture.dollar)
        #expect(try fund("CREDIT", 5 * Fixture.dollar, key: "f-1").body == credit.body)
        #expect(try fund("CREDIT", 6 * Fixture.dollar, key: "f-1").json["error"]?.str == "IDEMPOTENCY_MISMATCH")
        #expect(try fund("DEBIT", 20 * Fixture.dollar).json["error"]?.str == "BUDGET_EXCEEDED")
        #expect(try fund("DEBIT", 5 * Fixture.dollar).json.at("new_remaining", "amount")?.int == 10 * Fixture.dollar)
        #expect(try fund("RESET", 8 * Fixture.dollar).json.at("new_allocated", "amount")?.int == 8 * Fixture.dollar)
        #expect(try fund("RESET_SPENT", 9 * Fixture.dollar, spent: 1).json.at("new_spent", "amount")?.int == 1)
        #expect(try fund("REPAY_DEBT", 1).json.at("new_debt", "amount")?.int == 0)
        #expect(try fund("CREDIT", 1, spent: 1).status == 400)
        #expect(try f.admin.admin("POST", "/v1/admin/budgets/fund?scope=\(Self.executor)&unit=USD_MICROCENTS", #"{"operation": "CREDIT", "amount": {"unit": "TOKENS", "amount": 1}}"#).json["error"]?.str == "UNIT_MISMATCH")
    }

    @Test func theEventLogIsListedAsCyclesEvents() throws {
        let f = try Fixture()
        defer { f.stop() }
        let id = try #require(try f.reserve(agent: "planner").json["reservation_id"]?.str)
        #expect(try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/commit", #"{"idempotency_key": "c", "actual": {"unit": "USD_MICROCENTS", "amount": 300000000}}"#).status == 200)
        let all = try f.admin.admin("GET", "/v1/admin/events?tenant_id=acme-corp&limit=200")
        #expect(all.status == 200, "\(all)")
        let types = all.json["events"]?.items.compactMap { $0["event_type"]?.str } ?? []
        #expect(types.prefix(2) == ["tenant.created", "api_key.created"])
        #expect(types.filter { $0 == "budget.created" }.count == 4)
        #expect(types.contains("custom.tally.reservation_created") && types.contains("custom.tally.reservation_committed"))
        #expect(types.contains("reservation.commit_overage"))
        let overage = try #require(all.json["events"]?.items.first { $0["event_type"]?.str == "reservation.commit_overage" })
        #expect(overage.at("data", "overage", "amount")?.int == 100_000_000)
        #expect(overage["tenant_id"]?.str == "acme-corp")
        let eventID = try #require(overage["event_id"]?.str)
        let single = try f.admin.admin("GET", "/v1/admin/events/\(eventID)")
        #expect(single.json["event_type"]?.str == "reservation.commit_overage")
        #expect(try f.admin.admin("GET", "/v1/admin/events/evt_999999").status == 404)
        // Filters and paging.
        let budgetsOnly = try f.admin.admin("GET", "/v1/admin/events?event_type=budget.created&limit=3")
        #expect(budgetsOnly.json["events"]?.items.count == 3)
        let cursor = try #require(budgetsOnly.json["next_cursor"]?.str)
        #expect(try f.admin.admin("GET", "/v1/admin/events?event_type=budget.created&limit=3&cursor=\(cursor)").json["events"]?.items.count == 1)
        // The tenant feed needs events:read and shows only the key's tenant.
        let feed = try f.runtime.tenant(f.key, "GET", "/v1/events?category=reservation")
        #expect(feed.status == 200, "\(feed)")
        #expect(feed.json["events"]?.items.allSatisfy { $0["tenant_id"]?.str == "acme-corp" && $0["category"]?.str == "reservation" } == true)
        #expect(try f.runtime.tenant(f.key, "GET", "/v1/events?tenant_id=globex").status == 403)
    }

    @Test func everyAcknowledgedHTTPCommitSurvivesSIGTERMUnderLoad() throws {
        let f = try Fixture()
        defer { f.server.removeData() }
        let acknowledged = Locked<Int64>(0)
        let started = Locked(0)
        let workers = (0..<4).map { worker in
            Thread {
                for attempt in 0..<2_000 {
                    guard let reserved = try? f.reserve("w\(worker)-\(attempt)", agent: "executor", amount: 10),
                          let id = reserved.json["reservation_id"]?.str else { break }
                    let body = #"{"idempotency_key": "c", "actual": {"unit": "USD_MICROCENTS", "amount": 7}}"#
                    guard let commit = try? f.runtime.tenant(f.key, "POST", "/v1/reservations/\(id)/commit", body), commit.status == 200 else { break }
                    acknowledged.withLock { $0 += 7 }
                    started.withLock { $0 += 1 }
                }
                started.withLock { $0 += 1_000_000 }
            }
        }
        for worker in workers { worker.start() }
        let deadline = Date().addingTimeInterval(30)
        while started.withLock({ $0 }) < 40 && Date() < deadline { usleep(5_000) }
        #expect(f.server.stop() == 0, "graceful shutdown exits cleanly")
        while started.withLock({ $0 }) < 4_000_000 && Date() < deadline { usleep(5_000) }
        // Restart on the same directory: every acknowledged commit is in `spent`, and nothing else is.
        let again = try ServerProcess(dataDirectory: f.server.dataDirectory)
        defer { again.stop() }
        let reply = try HTTPTestClient(port: again.adminHTTPPort).admin("GET", "/v1/admin/budgets/lookup?scope=\(Self.executor)&unit=USD_MICROCENTS")
        let spent = try #require(reply.json.at("spent", "amount")?.int, "\(reply)")
        #expect(spent == acknowledged.withLock { $0 })
        #expect(spent >= 40 * 7, "only \(spent / 7) commits before the shutdown")
    }

    @Test func brokenHTTPPeersDoNotDisturbOthers() throws {
        let f = try Fixture()
        defer { f.stop() }
        // Garbage instead of HTTP, a head cut off mid-way, a body shorter than its Content-Length.
        let garbage = try RawConnection(port: f.server.httpPort)
        garbage.send(Array(repeating: 0xFF, count: 4096))
        let cut = try RawConnection(port: f.server.httpPort)
        cut.send(Array("POST /v1/reservations HTTP/1.1\r\nHost: x\r\nX-Cycles-API".utf8))
        let short = try RawConnection(port: f.server.httpPort)
        short.send(Array("POST /v1/reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nX-Cycles-API-Key: \(f.key)\r\n\r\n{\"idem".utf8))
        let answer = garbage.readUntilClosed()
        #expect(answer.isEmpty || String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 4"))
        // Meanwhile a well-behaved client is served as usual, and nothing was held.
        #expect(try f.reserve(amount: 1).status == 200)
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 1)
        withExtendedLifetime((cut, short)) {}
    }

    @Test func aClientThatAsksLeaveToSendItsBodyGetsItAndConnectionCloseIsHonoured() throws {
        let f = try Fixture()
        defer { f.stop() }
        let connection = try RawConnection(port: f.server.httpPort)
        // The client sends the head alone and waits for leave to send the body.
        let body = #"{"idempotency_key": "continue-1", "subject": {"tenant": "acme-corp", "workspace": "project-alpha"}, "action": {"kind": "llm", "name": "x"}, "estimate": {"unit": "USD_MICROCENTS", "amount": 5}}"#
        connection.send(Array("POST /v1/decide HTTP/1.1\r\nHost: x\r\nX-Cycles-API-Key: \(f.key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n".utf8))
        #expect(String(decoding: connection.readOnce(), as: UTF8.self) == "HTTP/1.1 100 Continue\r\n\r\n")
        connection.send(Array(body.utf8))
        let answer = String(decoding: connection.readUntilClosed(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")
        #expect(answer.contains("\"decision\":\"ALLOW\""), "the answer is whole before the server closes: \(answer)")
        #expect(answer.contains("\r\nDate: ") && answer.contains(" GMT\r\n"), "every response carries a Date: \(answer)")

        // Pipelined requests are answered in order on the one connection; a malformed one is refused and closes it.
        let pipelined = try RawConnection(port: f.server.httpPort)
        pipelined.send(Array(("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/balances?tenant=acme-corp HTTP/1.1\r\nHost: x\r\n"
            + "X-Cycles-API-Key: \(f.key)\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").utf8))
        let answers = String(decoding: pipelined.readUntilClosed(), as: UTF8.self).components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.map { $0.prefix(3) } == ["200", "200", "400"], "\(answers)")
        #expect(answers.first?.contains(#"{"status":"UP"}"#) == true && answers.dropFirst().first?.contains("\"balances\"") == true)
        #expect(answers.last?.contains(#""error":"INVALID_REQUEST","message":"Content-Length must be one decimal number"#) == true, "\(answers)")

        // An absolute-form target (as proxies send) is served as its path.
        let absolute = try RawConnection(port: f.server.httpPort)
        absolute.send(Array("GET http://127.0.0.1:\(f.server.httpPort)/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        #expect(String(decoding: absolute.readUntilClosed(), as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"))

        // A method the endpoint does not have is told which ones it has; one HTTP does not define is a 501.
        let put = try RawConnection(port: f.server.httpPort)
        put.send(Array("PUT /v1/balances?tenant=acme-corp HTTP/1.1\r\nHost: x\r\nX-Cycles-API-Key: \(f.key)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
        let answered = String(decoding: put.readUntilClosed(), as: UTF8.self)
        #expect(answered.hasPrefix("HTTP/1.1 405") && answered.contains("Allow: GET, HEAD\r\n"), "\(answered)")
        // HEAD is GET without the content: the same fields, the length of what GET would send, no body.
        let head = try RawConnection(port: f.server.httpPort)
        head.send(Array("HEAD /v1/balances?tenant=acme-corp HTTP/1.1\r\nHost: x\r\nX-Cycles-API-Key: \(f.key)\r\nConnection: close\r\n\r\n".utf8))
        let headAnswer = String(decoding: head.readUntilClosed(), as: UTF8.self)
        #expect(headAnswer.hasPrefix("HTTP/1.1 200 OK\r\n") && headAnswer.hasSuffix("\r\n\r\n") && !headAnswer.contains("balances"), "\(headAnswer)")
        #expect(headAnswer.contains("Content-Length: ") && !headAnswer.contains("Content-Length: 0\r\n"), "\(headAnswer)")
        let brew = try RawConnection(port: f.server.httpPort)
        brew.send(Array("BREW /v1/balances HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(String(decoding: brew.readUntilClosed(), as: UTF8.self).hasPrefix("HTTP/1.1 501 Not Implemented"))
    }


    @Test func manyPipelinedRequestsArrivingInOddPiecesAreAllAnsweredInOrder() throws {
        let f = try Fixture()
        defer { f.stop() }
        // 60 reservations, each a distinct amount, pipelined on one connection and cut into pieces of
        // varying sizes (bodies and heads split anywhere), the last one closing the connection.
        var stream: [UInt8] = []
        for index in 0..<60 {
            let body = #"{"idempotency_key": "pipe-\#(index)", "subject": {"workspace": "project-alpha", "agent": "planner"}, "action": {"kind": "llm", "name": "x"}, "estimate": {"unit": "USD_MICROCENTS", "amount": \#(index + 1)}}"#
            stream += Array(("POST /v1/reservations HTTP/1.1\r\nHost: x\r\nX-Cycles-API-Key: \(f.key)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\(index == 59 ? "Connection: close\r\n" : "")\r\n\(body)").utf8)
        }
        let connection = try RawConnection(port: f.server.httpPort)
        var offset = 0
        var piece = 1
        while offset < stream.count {  // bounded: every pass sends at least one byte
            let end = min(stream.count, offset + piece)
            connection.send(Array(stream[offset..<end]))
            offset = end
            piece = piece * 7 % 997 + 1
        }
        let answers = String(decoding: connection.readUntilClosed(), as: UTF8.self).components(separatedBy: "HTTP/1.1 ").dropFirst()
        #expect(answers.count == 60)
        #expect(answers.allSatisfy { $0.hasPrefix("200 OK") })
        let amounts = answers.compactMap { answer -> Int? in
            guard let range = answer.range(of: #""reserved":{"unit":"USD_MICROCENTS","amount":"#) else { return nil }
            return Int(answer[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(amounts == Array(1...60), "answered in the order sent")
        #expect(try f.balance("tenant:acme-corp/workspace:project-alpha/agent:planner")?.at("reserved", "amount")?.int == Int64((1...60).reduce(0, +)))
    }

    /// A lone reservation is answered before its projections are written (in a task of the loop behind the
    /// answer); the balance read pipelined right behind it is served before that task and still shows it.
    @Test func aBalanceReadPipelinedBehindALoneReservationShowsIt() throws {
        let f = try Fixture()
        defer { f.stop() }
        let connection = try RawConnection(port: f.server.httpPort)
        for round in 1...3 {
            usleep(60_000)  // quiet for a while, so that the store runs the command on the connection's event loop
            let body = #"{"idempotency_key": "behind-\#(round)", "subject": {"workspace": "project-alpha", "agent": "planner"}, "action": {"kind": "llm", "name": "x"}, "estimate": {"unit": "USD_MICROCENTS", "amount": 7}}"#
            connection.send(Array(("POST /v1/reservations HTTP/1.1\r\nHost: x\r\nX-Cycles-API-Key: \(f.key)\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)GET /v1/balances?tenant=acme-corp&agent=planner HTTP/1.1\r\nHost: x\r\n"
                + "X-Cycles-API-Key: \(f.key)\r\n\(round == 3 ? "Connection: close\r\n" : "")\r\n").utf8))
            var received = ""
            for _ in 0..<50 where received.components(separatedBy: "HTTP/1.1 ").count < 3 || !received.hasSuffix("}") {
                let more = connection.readOnce()
                if more.isEmpty { break }
                received += String(decoding: more, as: UTF8.self)
            }
            let answers = received.components(separatedBy: "HTTP/1.1 ").dropFirst()
            #expect(answers.count == 2 && answers.allSatisfy { $0.hasPrefix("200 OK") }, "round \(round): \(answers)")
            #expect(answers.last?.contains(#""reserved":{"unit":"USD_MICROCENTS","amount":\#(7 * round)}"#) == true, "round \(round): \(answers)")
        }
    }

    @Test func connectionsThatSendNoWholeRequestInTimeAreClosed() throws {
        let server = try ServerProcess(arguments: ["--http-idle-timeout", "1", "--no-archive"])
        defer {
            server.stop()
            server.removeData()
        }
        // Idle from the start: closed without an answer (the read gives up after 5 s, the server after 1).
        let idle = try RawConnection(port: server.httpPort)
        let quiet = idle.readUntilClosedByPeer()
        #expect(quiet.closed && quiet.bytes.isEmpty)
        // Part of a head, then nothing: told 408, then closed.
        let slow = try RawConnection(port: server.httpPort)
        slow.send(Array("GET /health HTTP/1.1\r\nHost:".utf8))
        let told = slow.readUntilClosedByPeer()
        #expect(told.closed && String(decoding: told.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(told)")
        // A client that keeps asking, more often than the timeout, keeps its connection past it.
        let busy = try RawConnection(port: server.httpPort)
        for round in 0..<5 {  // 5 x 0.4 s: twice the timeout in all
            busy.send(Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(String(decoding: busy.readOnce(), as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"), "round \(round)")
            usleep(400_000)
        }
    }

    @Test func connectionsOverTheLimitAreClosedAtAcceptOnEachProtocol() throws {
        let server = try ServerProcess(arguments: ["--connections-max", "2", "--no-archive"])
        defer {
            server.stop()
            server.removeData()
        }
        let health = Array("GET /health HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        var open = [try RawConnection(port: server.httpPort), try RawConnection(port: server.httpPort)]
        for connection in open {
            connection.send(health)
            #expect(String(decoding: connection.readOnce(), as: UTF8.self).hasPrefix("HTTP/1.1 200 OK"))
        }
        let third = try RawConnection(port: server.httpPort)
        third.send(health)
        #expect(third.readUntilClosed().isEmpty, "a third HTTP connection is closed without an answer")
        // Closing one makes room again.
        open.removeFirst()
        var answered = false
        for _ in 0..<50 where !answered {  // bounded: the server notices the close asynchronously
            let again = try RawConnection(port: server.httpPort)
            again.send(health)
            answered = String(decoding: again.readOnce(), as: UTF8.self).hasPrefix("HTTP/1.1 200 OK")
            if !answered { usleep(20_000) }
        }
        #expect(answered)

        // The binary protocol counts its own connections: two open, the third closed at once. (Accepts run
        // on several event loops, so the two are given time to be accepted before the third arrives.)
        var binary: [RawConnection] = []
        for _ in 0..<2 {
            binary.append(try RawConnection(port: server.port))
            usleep(200_000)
        }
        let started = Date()
        let refused = try RawConnection(port: server.port)
        let received = refused.readUntilClosed()
        #expect(received.isEmpty && Date().timeIntervalSince(started) < 4, "closed at accept, not after a timeout: \(received.count) bytes after \(Date().timeIntervalSince(started)) s")
        withExtendedLifetime((open, binary)) {}
    }

    @Test func aTakenHTTPPortStopsTheServerInsteadOfRunningHalfOfIt() throws {
        let first = try ServerProcess()
        defer { first.stop(); first.removeData() }
        // The second server's runtime plane asks for the first one's port: it must exit, not run without it.
        let process = Process()
        process.executableURL = try BuiltExecutable.url("tallyd")
        let directory = NSTemporaryDirectory() + "tallyd-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        process.arguments = [
            "--data-directory", directory, "--port", "0", "--http-port", "\(first.httpPort)", "--admin-http-port", "0",
            "--admin-key", ServerProcess.adminKey, "--log-level", "critical",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(process.terminationStatus != 0, "tallyd kept running without its HTTP runtime plane")
        // The first server is untouched.
        #expect(try HTTPTestClient(port: first.httpPort).admin("GET", "/v1/reservations?tenant=x").status == 200)
    }

    // MARK: Both fronts on one ledger

    @Test func aReservationMadeOverOneProtocolSettlesOverTheOther() async throws {
        let f = try Fixture()
        defer { f.stop() }
        let binary = try await TallyConnection.connect(host: "127.0.0.1", port: f.server.port, credential: .tenantKey(f.key), clientName: "cross-protocol")
        defer { Task { await binary.close() } }
        // HTTP reserve, binary commit.
        let httpID = try #require(try f.reserve().json["reservation_id"]?.str)
        let committed = try await binary.send(.commit(CommitRequest(reservationID: ReservationID(httpID), idempotencyKey: "bc", actual: Quantity(.usdMicrocents, 1_000))))
        guard case .reply(.committed(let commit)) = committed else { Issue.record("binary commit: \(committed)"); return }
        #expect(commit.charged.amount.value == 1_000)
        // Binary reserve, HTTP commit; the same idempotency key replays across the fronts.
        let request = ReserveRequest(
            idempotencyKey: "cross-1", subject: Subject(tenant: "acme-corp", workspace: "project-alpha", agent: "executor"),
            action: Action(kind: "llm.completion", name: "openai:gpt-4o"), estimate: Quantity(.usdMicrocents, Amount(2 * Fixture.dollar)))
        guard case .reply(.reserved(let reserved, _)) = try await binary.send(.reserve(request)) else { Issue.record("binary reserve"); return }
        #expect(try f.reserve("cross-1").json["reservation_id"]?.str == reserved.reservationID.description)
        let httpCommit = try f.runtime.tenant(f.key, "POST", "/v1/reservations/\(reserved.reservationID)/commit", #"{"idempotency_key": "hc", "actual": {"unit": "USD_MICROCENTS", "amount": 2000}}"#)
        #expect(httpCommit.status == 200)
        #expect(try f.balance(Self.executor)?.at("spent", "amount")?.int == 3_000)
        #expect(try f.balance(Self.workspace)?.at("reserved", "amount")?.int == 0)
    }
}
