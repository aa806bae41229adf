extension EventCodec {
    /// The byte and element bounds the codec enforces on every variable-length field.
    ///
    /// They derive from `Limits`, never restate it: `Limits` counts user-visible strings in Unicode scalars,
    /// and one scalar takes at most four UTF-8 bytes, so a character bound becomes four times as many
    /// bytes here. Bounds that `Limits` already gives in bytes (scope paths, JSON text, tenant ids, which
    /// are ASCII) are used as they are. The codec's bounds exist to stop a hostile file from making the
    /// reader allocate; the finer character rules stay in `decide`. Changing a value here changes which
    /// records are readable, so each one is listed in `protocol/events.md`.
    enum FieldLimit {
        /// The longest UTF-8 encoding of one Unicode scalar.
        static let bytesPerScalarMax = 4

        static let tenantIDBytesMax = Limits.tenantIDLengthMax
        static let nameBytesMax = Limits.nameLengthMax * bytesPerScalarMax
        static let keyIDBytesMax = Limits.keyIDLengthMax * bytesPerScalarMax
        static let keyPrefixBytesMax = Limits.keyPrefixLengthMax * bytesPerScalarMax
        static let reservationIDBytesMax = Limits.reservationIDLengthMax * bytesPerScalarMax
        static let eventIDBytesMax = Limits.eventIDLengthMax * bytesPerScalarMax
        static let idempotencyKeyBytesMax = Limits.idempotencyKeyLengthMax * bytesPerScalarMax
        static let subjectValueBytesMax = Limits.subjectValueLengthMax * bytesPerScalarMax
        static let dimensionKeyBytesMax = Limits.dimensionKeyLengthMax * bytesPerScalarMax
        static let dimensionValueBytesMax = Limits.dimensionValueLengthMax * bytesPerScalarMax
        static let actionKindBytesMax = Limits.actionKindLengthMax * bytesPerScalarMax
        static let actionNameBytesMax = Limits.actionNameLengthMax * bytesPerScalarMax
        static let actionTagBytesMax = Limits.actionTagLengthMax * bytesPerScalarMax
        static let capsToolBytesMax = Limits.capsToolLengthMax * bytesPerScalarMax
        static let modelVersionBytesMax = Limits.modelVersionLengthMax * bytesPerScalarMax
        static let releaseReasonBytesMax = Limits.releaseReasonLengthMax * bytesPerScalarMax
        static let adminReasonBytesMax = Limits.adminReasonLengthMax * bytesPerScalarMax
        static let jsonTextBytesMax = Limits.jsonTextBytesMax
        static let scopePathBytesMax = Limits.scopePathLengthMax
        /// Key scope filters are validated in bytes against the scope path bound.
        static let scopeFilterPatternBytesMax = Limits.scopePathLengthMax

        static let dimensionsCountMax = Limits.dimensionsCountMax
        static let actionTagsCountMax = Limits.actionTagsCountMax
        static let capsToolsCountMax = Limits.capsToolsCountMax
        static let scopeFilterCountMax = Limits.scopeFilterCountMax
        /// `decide` stores a key's permissions deduplicated, so there can be no more than there are cases.
        static let permissionsCountMax = Permission.allCases.count
        /// A path has at most one segment per level, so per-scope lists (affected and budgeted scopes,
        /// deltas, balances) are never longer than the number of levels.
        static let scopesCountMax = ScopeLevel.allCases.count
    }
}
