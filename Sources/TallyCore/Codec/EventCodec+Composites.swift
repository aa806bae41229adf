// The encodings of the composite values that events embed: subject, action, caps, metrics, and the
// per-scope figures. Writer and reader of each type sit in the same file, in the same field order.

private typealias Limit = EventCodec.FieldLimit

extension ByteWriter {
    /// Dimensions are written sorted by the UTF-8 bytes of their keys: a dictionary has no order of its
    /// own, and a byte order is one that a reader in any language can reproduce.
    public mutating func write(_ subject: Subject) {
        for level in ScopeLevel.allCases {
            writeOptionalString(
                subject.value(at: level), bytesMax: Limit.subjectValueBytesMax, field: "subject.\(level.name)")
        }
        let sorted = subject.dimensions.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        writeArray(sorted, countMax: Limit.dimensionsCountMax, field: "subject.dimensions") { writer, entry in
            writer.writeString(entry.key, bytesMax: Limit.dimensionKeyBytesMax, field: "dimension key")
            writer.writeString(entry.value, bytesMax: Limit.dimensionValueBytesMax, field: "dimension value")
        }
    }

    public mutating func write(_ action: Action) {
        writeString(action.kind, bytesMax: Limit.actionKindBytesMax, field: "action.kind")
        writeString(action.name, bytesMax: Limit.actionNameBytesMax, field: "action.name")
        writeArray(action.tags, countMax: Limit.actionTagsCountMax, field: "action.tags") {
            $0.writeString($1, bytesMax: Limit.actionTagBytesMax, field: "action tag")
        }
    }

    public mutating func write(_ caps: Caps) {
        writeOptionalI64(caps.maxTokens)
        writeOptionalI64(caps.maxStepsRemaining)
        for (list, field) in [(caps.toolAllowlist, "caps.tool_allowlist"), (caps.toolDenylist, "caps.tool_denylist")] {
            writeOptional(list) { writer, tools in
                writer.writeArray(tools, countMax: Limit.capsToolsCountMax, field: field) {
                    $0.writeString($1, bytesMax: Limit.capsToolBytesMax, field: "caps tool")
                }
            }
        }
        writeOptionalI64(caps.cooldownMilliseconds)
    }

    public mutating func writeOptional(_ caps: Caps?) { writeOptional(caps) { $0.write($1) } }

    public mutating func write(_ metrics: StandardMetrics) {
        writeOptionalI64(metrics.tokensInput)
        writeOptionalI64(metrics.tokensOutput)
        writeOptionalI64(metrics.latencyMilliseconds)
        writeOptionalString(metrics.modelVersion, bytesMax: Limit.modelVersionBytesMax, field: "metrics.model_version")
        writeOptional(metrics.custom, field: "metrics.custom")
    }

    public mutating func write(_ figures: LedgerFigures) {
        for amount in [figures.allocated, figures.remaining, figures.reserved, figures.spent, figures.debt] {
            write(amount)
        }
    }

    mutating func write(_ delta: ScopeDelta) {
        write(delta.scope)
        for amount in [delta.remaining, delta.reserved, delta.spent, delta.debt] { write(amount) }
        writeBool(delta.marksOverLimit)
    }

    public mutating func write(_ balance: Balance) {
        write(balance.scope)
        writeU8(balance.unit.rawValue)
        write(balance.allocated)
        write(balance.remaining)
        write(balance.reserved)
        write(balance.spent)
        write(balance.debt)
        write(balance.overdraftLimit)
        writeBool(balance.isOverLimit)
        writeU8(balance.status.rawValue)
    }
}


extension ByteReader {
    /// Dimension keys must arrive in strictly increasing UTF-8 byte order, the order the writer uses, so
    /// each dictionary has one encoding. Keys that differ in bytes but are equal as Swift strings
    /// (canonically equivalent Unicode) cannot both live in a dictionary and are refused too.
    public mutating func readSubject() throws(EventCodecError) -> Subject {
        // The levels in `ScopeLevel.allCases` order, as `write(_ subject:)` writes them, read into locals: an
        // array of the six would be allocated (and grown) for every subject read, on every request and event.
        let tenant = try readOptionalString("subject.tenant", bytesMax: Limit.subjectValueBytesMax)
        let workspace = try readOptionalString("subject.workspace", bytesMax: Limit.subjectValueBytesMax)
        let app = try readOptionalString("subject.app", bytesMax: Limit.subjectValueBytesMax)
        let workflow = try readOptionalString("subject.workflow", bytesMax: Limit.subjectValueBytesMax)
        let agent = try readOptionalString("subject.agent", bytesMax: Limit.subjectValueBytesMax)
        let toolset = try readOptionalString("subject.toolset", bytesMax: Limit.subjectValueBytesMax)
        let count = try readCount("subject.dimensions", countMax: Limit.dimensionsCountMax)
        var dimensions: [String: String] = [:]
        if count > 0 { dimensions.reserveCapacity(count) }  // reserving 0 still costs about a thousand instructions
        var previousKey: String?
        for _ in 0..<count {
            let start = offset
            let key = try readString("dimension key", bytesMax: Limit.dimensionKeyBytesMax)
            let value = try readString("dimension value", bytesMax: Limit.dimensionValueBytesMax)
            let ascending = previousKey.map { $0.utf8.lexicographicallyPrecedes(key.utf8) } ?? true
            guard ascending, dimensions.updateValue(value, forKey: key) == nil else {
                throw EventCodecError(
                    .nonCanonicalKeys, offset: start,
                    reason: "dimension key at offset \(start) is not strictly after the previous key")
            }
            previousKey = key
        }
        return Subject(
            tenant: tenant, workspace: workspace, app: app, workflow: workflow, agent: agent, toolset: toolset,
            dimensions: dimensions)
    }

    public mutating func readAction() throws(EventCodecError) -> Action {
        let kind = try readString("action.kind", bytesMax: Limit.actionKindBytesMax)
        let name = try readString("action.name", bytesMax: Limit.actionNameBytesMax)
        let tags = try readArray("action.tags", countMax: Limit.actionTagsCountMax) {
            (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readString("action tag", bytesMax: Limit.actionTagBytesMax)
        }
        return Action(kind: kind, name: name, tags: tags)
    }

    private mutating func readOptionalTools(_ field: @autoclosure () -> String) throws(EventCodecError) -> [String]? {
        try readOptional(field()) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readArray(field(), countMax: Limit.capsToolsCountMax) {
                (reader: inout ByteReader) throws(EventCodecError) in
                try reader.readString("caps tool", bytesMax: Limit.capsToolBytesMax)
            }
        }
    }

    public mutating func readCaps() throws(EventCodecError) -> Caps {
        Caps(
            maxTokens: try readOptionalI64("caps.max_tokens"),
            maxStepsRemaining: try readOptionalI64("caps.max_steps_remaining"),
            toolAllowlist: try readOptionalTools("caps.tool_allowlist"),
            toolDenylist: try readOptionalTools("caps.tool_denylist"),
            cooldownMilliseconds: try readOptionalI64("caps.cooldown_ms"))
    }

    public mutating func readOptionalCaps() throws(EventCodecError) -> Caps? {
        try readOptional("caps") { (reader: inout ByteReader) throws(EventCodecError) in try reader.readCaps() }
    }

    public mutating func readOptionalMetrics() throws(EventCodecError) -> StandardMetrics? {
        try readOptional("metrics") { (reader: inout ByteReader) throws(EventCodecError) in
            StandardMetrics(
                tokensInput: try reader.readOptionalI64("metrics.tokens_input"),
                tokensOutput: try reader.readOptionalI64("metrics.tokens_output"),
                latencyMilliseconds: try reader.readOptionalI64("metrics.latency_ms"),
                modelVersion: try reader.readOptionalString(
                    "metrics.model_version", bytesMax: Limit.modelVersionBytesMax),
                custom: try reader.readOptionalJSON("metrics.custom"))
        }
    }

    public mutating func readFigures(_ field: @autoclosure () -> String) throws(EventCodecError) -> LedgerFigures {
        LedgerFigures(
            allocated: try readAmount("\(field()).allocated"), remaining: try readAmount("\(field()).remaining"),
            reserved: try readAmount("\(field()).reserved"), spent: try readAmount("\(field()).spent"),
            debt: try readAmount("\(field()).debt"))
    }

    mutating func readScopeDelta() throws(EventCodecError) -> ScopeDelta {
        ScopeDelta(
            scope: try readScopePath("delta.scope"), remaining: try readAmount("delta.remaining"),
            reserved: try readAmount("delta.reserved"), spent: try readAmount("delta.spent"),
            debt: try readAmount("delta.debt"), marksOverLimit: try readBool("delta.marks_over_limit"))
    }

    mutating func readScopeDeltas() throws(EventCodecError) -> [ScopeDelta] {
        try readArray("deltas", countMax: Limit.scopesCountMax) { (reader: inout ByteReader) throws(EventCodecError) in
            try reader.readScopeDelta()
        }
    }

    public mutating func readBalance() throws(EventCodecError) -> Balance {
        Balance(
            scope: try readScopePath("balance.scope"), unit: try readEnum(Unit.self, "balance.unit"),
            allocated: try readAmount("balance.allocated"), remaining: try readAmount("balance.remaining"),
            reserved: try readAmount("balance.reserved"), spent: try readAmount("balance.spent"),
            debt: try readAmount("balance.debt"), overdraftLimit: try readAmount("balance.overdraft_limit"),
            isOverLimit: try readBool("balance.is_over_limit"),
            status: try readEnum(BudgetStatus.self, "balance.status"))
    }
}
