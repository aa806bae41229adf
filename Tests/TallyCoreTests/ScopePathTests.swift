import Testing
@testable import TallyCore

/// Scope derivation (semantics 1.3, decisions 8 and 9) and the admin scope grammar (5.6).
@Suite struct ScopePathTests {
    @Test func derivationSkipsMissingLevelsAndListsEveryPrefixInCanonicalOrder() {
        let scopes = ScopePath.derive(subject: Subject(workspace: "prod", agent: "bot"), tenant: "acme")
        #expect(scopes.map(\.rawValue) == ["tenant:acme", "tenant:acme/workspace:prod", "tenant:acme/workspace:prod/agent:bot"])
        #expect(scopes.last?.leaf == "agent:bot")
    }

    @Test func theEffectiveTenantIsAlwaysFirstWhateverTheSubjectSays() {
        let scopes = ScopePath.derive(subject: Subject(tenant: "Mallory", toolset: "X"), tenant: "acme")
        #expect(scopes.map(\.rawValue) == ["tenant:acme", "tenant:acme/toolset:x"])
    }

    @Test func blankValuesAreTreatedAsAbsent() {
        let scopes = ScopePath.derive(subject: Subject(workspace: "", app: " ", agent: "a"), tenant: "acme")
        #expect(scopes.map(\.rawValue) == ["tenant:acme", "tenant:acme/agent:a"])
        // Only spaces and tabs are blank: a space carrying a combining mark, a no-break space or a newline is a value.
        let blanks = Subject(workspace: "\t \t", app: " \u{301}", workflow: "\u{A0}", agent: "\n", toolset: "  ")
        #expect(blanks.presentValue(at: .workspace) == nil)
        #expect(blanks.presentValue(at: .toolset) == nil)
        #expect(blanks.presentValue(at: .app) == " \u{301}")
        #expect(blanks.presentValue(at: .workflow) == "\u{A0}")
        #expect(blanks.presentValue(at: .agent) == "\n")
    }

    @Test func aSubjectNamingAnotherTenantIsForbidden() {
        var ledger = LedgerScenario(tenants: ["acme", "other"])
        ledger.budget("tenant:acme", 100)
        #expect(ledger.reserve(Subject(tenant: "other", agent: "a"), 1).errorCode == .forbidden)
        #expect(ledger.decide(Subject(tenant: "other", agent: "a"), 1).errorCode == .forbidden)
        #expect(ledger.debit(Subject(tenant: "other", agent: "a"), 1).errorCode == .forbidden)
        #expect(ledger.reserve(Subject(tenant: "ACME", agent: "a"), 1).errorCode == nil, "tenant ids compare lower-cased")
    }

    struct SubjectCase: Sendable, CustomTestStringConvertible {
        var name: String
        var subject: Subject
        var valid: Bool
        var testDescription: String { name }
    }

    static let subjects: [SubjectCase] = [
        SubjectCase(name: "only dimensions", subject: Subject(dimensions: ["team": "x"]), valid: false),
        SubjectCase(name: "empty", subject: Subject(), valid: false),
        SubjectCase(name: "128 characters", subject: Subject(agent: String(repeating: "a", count: 128)), valid: true),
        SubjectCase(name: "129 characters", subject: Subject(agent: String(repeating: "a", count: 129)), valid: false),
        SubjectCase(name: "slash", subject: Subject(agent: "a/b"), valid: false),
        SubjectCase(name: "colon", subject: Subject(agent: "a:b"), valid: false),
        SubjectCase(name: "allowed punctuation", subject: Subject(agent: "A_b.c-9"), valid: true),
        SubjectCase(name: "16 dimensions", subject: Subject(agent: "a", dimensions: Dictionary(uniqueKeysWithValues: (0..<16).map { ("k\($0)", "v") })), valid: true),
        SubjectCase(name: "17 dimensions", subject: Subject(agent: "a", dimensions: Dictionary(uniqueKeysWithValues: (0..<17).map { ("k\($0)", "v") })), valid: false),
        SubjectCase(name: "257-character dimension value", subject: Subject(agent: "a", dimensions: ["k": String(repeating: "v", count: 257)]), valid: false),
    ]

    @Test(arguments: subjects)
    func subjectValidationFollowsTheCyclesSchema(example: SubjectCase) {
        var ledger = LedgerScenario()
        ledger.budget("tenant:acme", 100)
        #expect(ledger.reserve(example.subject, 1).errorCode == (example.valid ? nil : .invalidRequest))
    }

    struct GrammarCase: Sendable, CustomTestStringConvertible {
        var text: String
        var parsed: String?
        var testDescription: String { text }
    }

    static let grammar: [GrammarCase] = [
        GrammarCase(text: "tenant:Acme/Workspace:Prod", parsed: "tenant:acme/workspace:prod"),
        GrammarCase(text: "tenant:acme/agent:bot.v2", parsed: "tenant:acme/agent:bot.v2"),
        GrammarCase(text: "workspace:prod", parsed: nil),
        GrammarCase(text: "tenant:acme/agent:a/workspace:w", parsed: nil),
        GrammarCase(text: "tenant:acme/workspace:w/workspace:v", parsed: nil),
        GrammarCase(text: "tenant:acme/team:x", parsed: nil),
        GrammarCase(text: "tenant:acme/agent:-bad", parsed: nil),
        GrammarCase(text: "tenant:acme/agent:", parsed: nil),
        GrammarCase(text: "tenant:acme//agent:a", parsed: nil),
        GrammarCase(text: "", parsed: nil),
    ]

    @Test(arguments: grammar)
    func budgetScopesFollowTheAdminGrammarAndAreLowerCased(example: GrammarCase) {
        let parsed = try? ScopePath(parsing: example.text)
        #expect(parsed?.rawValue == example.parsed)
        if let parsed {
            #expect((try? ScopePath(decoding: parsed.rawValue)) == parsed, "a parsed path survives the log's check")
        }
    }

    @Test func storedPathsAreRevalidatedWhenReadBack() {
        for bad in ["Tenant:acme", "tenant:ACME", "agent:a", "tenant:acme/agent:a/workspace:w", "tenant:"] {
            #expect((try? ScopePath(decoding: bad)) == nil, "\(bad)")
        }
    }

    @Test func subjectFiltersMatchWholeSegments() throws {
        let path = try ScopePath(parsing: "tenant:acme/workspace:prod/agent:planner")
        #expect(path.contains(level: .workspace, value: "PROD"))
        #expect(!path.contains(level: .workspace, value: "pro"))
        #expect(path.hasPrefix(try ScopePath(parsing: "tenant:acme/workspace:prod")))
        #expect(!path.hasPrefix(try ScopePath(parsing: "tenant:acme/workspace:pr")))
        #expect(path.depth == 3)
    }
}
