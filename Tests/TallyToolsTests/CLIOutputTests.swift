import Foundation
import TallyClient
import TallyCore
import TallyTools
import TallyWire
import Testing

// Not yet compiled: no test target depends on TallyTools. Enable with
// `.testTarget(name: "TallyToolsTests", dependencies: ["TallyTools", "TallyClient", "TallyWire", "TallyCore"])`.

@Suite struct TextTableTests {
    @Test func alignsColumnsAndRightAlignsNumbers() {
        let table = TextTable(
            headers: ["SCOPE", "REMAINING"], rows: [["tenant:acme", "1250"], ["tenant:acme/workspace:prod", "-7"]])
        #expect(
            table.render() == """
                SCOPE                       REMAINING
                tenant:acme                      1250
                tenant:acme/workspace:prod         -7
                """)
    }

    @Test func printsOnlyTheHeaderWhenEmptyAndTrimsTrailingSpaces() {
        #expect(TextTable(headers: ["KEY", "NAME"]).render() == "KEY  NAME")
        #expect(TextTable.fields([("status", "ACTIVE"), ("reason", "")]).render() == "FIELD   VALUE\nstatus  ACTIVE")
    }

    @Test func balancesHaveTheDocumentedColumns() {
        let budget = Self.budget
        let lines = BalanceTool.table([budget.balance]).render().split(separator: "\n")
        #expect(
            lines[0].split(separator: " ", omittingEmptySubsequences: true) == [
                "SCOPE", "UNIT", "ALLOCATED", "REMAINING", "RESERVED", "SPENT", "DEBT", "OVER-LIMIT", "STATUS",
            ])
        #expect(
            lines[1].split(separator: " ", omittingEmptySubsequences: true) == [
                "tenant:acme/workspace:prod", "TOKENS", "1000", "550", "200", "150", "100", "yes", "FROZEN",
            ])
    }

    static var budget: Budget {
        Budget(
            key: BudgetKey(try! ScopePath(parsing: "tenant:acme/workspace:prod"), .tokens), tenant: "acme",
            allocated: 1000,
            remaining: 550, reserved: 200, spent: 150, debt: 100, overdraftLimit: 500, isOverLimit: true,
            status: .frozen,
            createdAtMilliseconds: 1_000, updatedAtMilliseconds: 2_000)
    }
}

@Suite struct CyclesJSONTests {
    @Test func aBudgetUsesSnakeCaseKeysAndIntegerAmounts() throws {
        let object = try parse(BalanceTool.render(TextTableTests.budget).json)
        #expect(object["scope"] as? String == "tenant:acme/workspace:prod")
        #expect(object["unit"] as? String == "TOKENS")
        #expect(object["tenant_id"] as? String == "acme")
        #expect(object["is_over_limit"] as? Bool == true)
        #expect(object["status"] as? String == "FROZEN")
        let remaining = try #require(object["remaining"] as? [String: Any])
        #expect(remaining["amount"] as? Int == 550)
        #expect(remaining["unit"] as? String == "TOKENS")
        #expect((object["overdraft_limit"] as? [String: Any])?["amount"] as? Int == 500)
        #expect(object["created_at_ms"] as? Int == 1_000)
    }

    @Test func aListIsOneArray() throws {
        let data = Data(BalanceTool.render([TextTableTests.budget, TextTableTests.budget]).json.utf8)
        let array = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(array.count == 2)
    }

    @Test func aCreatedKeyCarriesItsSecretOnceAndNoHash() throws {
        let key = ApiKey(
            id: "k1", tenant: "acme", name: "agents", secretHash: .zero, prefix: "tally_ab", createdAtMilliseconds: 5)
        let rendered = KeyTool.renderCreated(key, secret: "tally_secret")
        let object = try parse(rendered.json)
        #expect(object["key_secret"] as? String == "tally_secret")
        #expect(object["key_id"] as? String == "k1")
        #expect(object["permissions"] as? [String] == Permission.defaultSet.map(\.rawValue))
        #expect(!rendered.json.contains("hash"))
        #expect(rendered.table.contains("secret: tally_secret"))
        #expect(rendered.table.contains(KeyTool.secretNote))
    }

    @Test func aTenantNamesItsDefaults() throws {
        let tenant = Tenant(id: "acme", name: "Acme", createdAtMilliseconds: 1, updatedAtMilliseconds: 2)
        let object = try parse(TenantTool.render(tenant, created: true).json)
        #expect(object["tenant_id"] as? String == "acme")
        #expect(object["default_commit_overage_policy"] as? String == "ALLOW_IF_AVAILABLE")
        #expect(object["default_reservation_ttl_ms"] as? Int == 60_000)
        #expect(object["created"] as? Bool == true)
    }

    private func parse(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }
}

@Suite struct ClientCommandTests {
    @Test func aRefusalPrintsItsCyclesCodeAndStatusAndExitsWithOne() {
        let error = WireError(code: .budgetExceeded, message: "insufficient budget at scope tenant:acme")
        let (message, code) = ClientCommand.describe(error, connecting: nil)
        #expect(message == "BUDGET_EXCEEDED (409): insufficient budget at scope tenant:acme")
        #expect(code == 1)
    }

    @Test func serverAndConnectionFailuresExitWithTwo() {
        #expect(ClientCommand.describe(WireError(code: .internalError, message: "disk"), connecting: nil).exitCode == 2)
        let refused = ClientCommand.describe(
            TallyClientError.connectionFailed("Connection refused"), connecting: .default)
        #expect(refused == ("cannot connect to 127.0.0.1:7070: Connection refused", 2))
        #expect(
            ClientCommand.describe(TallyClientError.connectionClosed(serverError: nil), connecting: nil).exitCode == 2)
    }

    @Test func flagsWinOverTheEnvironmentAndRuntimeCommandsPreferTheApiKey() throws {
        let environment = [
            "TALLY_ADDRESS": "tally.internal:9000", "TALLY_API_KEY": "env-key", "TALLY_ADMIN_KEY": "env-admin",
        ]
        let fromEnvironment = try ClientSettings.resolve(
            address: nil, apiKey: nil, adminKey: nil, format: .table, environment: environment)
        #expect(fromEnvironment.address == TallyAddress(host: "tally.internal", port: 9000))
        #expect(fromEnvironment.credential(for: .runtime) == .tenantKey("env-key"))
        #expect(fromEnvironment.credential(for: .admin) == .adminKey("env-admin"))
        let fromFlags = try ClientSettings.resolve(
            address: "[::1]:1", apiKey: "flag-key", adminKey: "", format: .json, environment: environment)
        #expect(fromFlags.address == TallyAddress(host: "::1", port: 1))
        #expect(fromFlags.credential(for: .admin) == .tenantKey("flag-key"))
        let defaults = try ClientSettings.resolve(
            address: nil, apiKey: nil, adminKey: nil, format: .table, environment: [:])
        #expect(defaults.address == .default)
        #expect(defaults.credential(for: .runtime) == nil)
    }
}

@Suite struct TailToolTests {
    @Test func anEventLineHasSequenceTimeTypeAndFacts() {
        let tenant = Tenant(id: "acme", name: "Acme", createdAtMilliseconds: 0, updatedAtMilliseconds: 0)
        let event = Event(sequence: 7, timestampMilliseconds: 1_500, body: .tenantCreated(tenant))
        #expect(
            TailTool.line(event, chain: [], format: .table)
                == "7  1970-01-01T00:00:01.500Z  TenantCreated  tenant=acme status=ACTIVE")
        let json = TailTool.line(event, chain: [0xab], format: .json)
        let expected = #"{"chain":"ab","sequence":7,"status":"ACTIVE","tenant":"acme","#
            + #""timestamp_ms":1500,"type":"TenantCreated"}"#
        #expect(json == expected)
    }
}
