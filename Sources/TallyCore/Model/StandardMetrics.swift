/// Cycles `StandardMetrics` reported with a commit or direct debit: stored for audit, never used in math.
public struct StandardMetrics: Sendable, Hashable {
    public var tokensInput: Int64?
    public var tokensOutput: Int64?
    public var latencyMilliseconds: Int64?
    public var modelVersion: String?
    public var custom: JSONText?

    public init(
        tokensInput: Int64? = nil, tokensOutput: Int64? = nil, latencyMilliseconds: Int64? = nil,
        modelVersion: String? = nil, custom: JSONText? = nil
    ) {
        self.tokensInput = tokensInput
        self.tokensOutput = tokensOutput
        self.latencyMilliseconds = latencyMilliseconds
        self.modelVersion = modelVersion
        self.custom = custom
    }

    public func validate(field: String = "metrics") throws(Refusal) {
        for (name, value) in [("tokens_input", tokensInput), ("tokens_output", tokensOutput),
                              ("latency_ms", latencyMilliseconds)] {
            if let value, value < 0 { throw Refusal(.invalidRequest, "\(field).\(name) must be >= 0") }
        }
        if let modelVersion, modelVersion.hasMoreScalars(than: Limits.modelVersionLengthMax) {
            throw Refusal(.invalidRequest, "\(field).model_version is longer than \(Limits.modelVersionLengthMax) characters")
        }
        try custom?.validate(field: "\(field).custom")
    }
}

extension JSONText {
    public func validate(field: String) throws(Refusal) {
        if text.utf8.count > Limits.jsonTextBytesMax {
            throw Refusal(.invalidRequest, "\(field) is larger than \(Limits.jsonTextBytesMax) bytes")
        }
    }
}
