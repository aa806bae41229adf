/// Scope paths derived before (`ScopePath.derive`), found again by the tenant and subject they came from.
///
/// Every reserve, dry run, decide and debit derives the subject's scope paths: four or five strings built
/// piece by piece and hashed, about a twentieth of the writer's time per reserve. Agents send the same few
/// subjects over and over, so the writer keeps the paths it derived in a small direct-mapped table and
/// hands out the same array again (one retain; the reservation then shares the paths instead of owning
/// copies, which also makes freeing it cheaper). A slot is found by a cheap mix of the values' lengths and
/// last bytes; the tenant and every level's raw value are compared in full, so a collision is a miss and
/// never a wrong path. Dimensions are not part of a path and not compared.
///
/// One thread at a time (the store's writer): the table is not `Sendable`.
package final class ScopeDerivations {
    private struct Entry {
        var tenant: String
        var subject: Subject
        var paths: [ScopePath]
    }

    private var slots: [Entry?]
    static let slotCount = 512

    /// `slotCount` other than the default only in tests (one slot makes every lookup a collision).
    package init(slotCount: Int = ScopeDerivations.slotCount) {
        precondition(slotCount > 0)
        slots = Array(repeating: nil, count: slotCount)
    }

    /// `ScopePath.derive(subject:tenant:)`, from the table when this tenant and subject were derived before.
    package func paths(subject: Subject, tenant: String) -> [ScopePath] {
        let slot = Self.slot(subject, tenant, of: slots.count)
        if let entry = slots[slot], entry.tenant == tenant, Self.sameLevels(entry.subject, subject) {
            return entry.paths
        }
        let paths = ScopePath.derive(subject: subject, tenant: tenant)
        // Kept without dimensions: only the levels are compared, and a cached subject should not pin them.
        let levels = Subject(
            tenant: subject.tenant, workspace: subject.workspace, app: subject.app, workflow: subject.workflow,
            agent: subject.agent, toolset: subject.toolset)
        slots[slot] = Entry(tenant: tenant, subject: levels, paths: paths)
        return paths
    }

    /// Equal raw values at every level give equal derived paths (derivation reads nothing else but the tenant).
    private static func sameLevels(_ left: Subject, _ right: Subject) -> Bool {
        left.workspace == right.workspace && left.app == right.app && left.workflow == right.workflow
            && left.agent == right.agent && left.toolset == right.toolset && left.tenant == right.tenant
    }

    private static func slot(_ subject: Subject, _ tenant: String, of count: Int) -> Int {
        var mix: UInt64 = 0x9E37_79B9_7F4A_7C15
        mix = mixed(mix, tenant)
        for level in ScopeLevel.allCases { mix = mixed(mix, subject.value(at: level)) }
        return Int(truncatingIfNeeded: (mix ^ mix >> 31) % UInt64(count))
    }

    /// Folds in a value's length and its last eight bytes (subjects of one workspace differ most at the end).
    private static func mixed(_ mix: UInt64, _ value: String?) -> UInt64 {
        guard let value else { return (mix ^ 0xff) &* 0x100_0000_01B3 }
        var next = (mix ^ UInt64(truncatingIfNeeded: value.utf8.count)) &* 0xFF51_AFD7_ED55_8CCD
        for byte in value.utf8.suffix(8) { next = (next ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return next
    }
}
