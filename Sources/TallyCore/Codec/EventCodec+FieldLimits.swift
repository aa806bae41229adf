extension EventCodec {
    /// The byte and element bounds the codec enforces on every variable-length field.
    ///
    /// They derive from `Limits`, never restate it: `Limits` counts user-visible strings in Unicode scalars,
    /// and one scalar takes at most four UTF-8 bytes, so a character bound becomes four times as many
    /// bytes here. Bounds that `Limits` already gives in bytes (scope paths, JSON text, tenant ids, which
    /// are ASCII) are used as they are. The codec's bounds exist to stop a hostile file from making the
    /// reader allocate; the finer character rules stay in `decide`. Changing a value here changes which
    /// records are readable, so each one is listed in `protocol/events.md`.
    public enum FieldLimit {
        /// The longest UTF-8 encoding of one Unicode scalar.
        public static let bytesPerScalarMax = 4

        public static let tenantIDBytesMax = Limits.tenantIDLengthMax
        public static let nameBytesMax = Limits.nameLengthMax * bytesPerScalarMax
        public static let keyIDBytesMax = Limits.keyIDLengthMax * bytesPerScalarMax
        public static let keyPrefixBytesMax = Limits.keyPrefixLengthMax * bytesPerScalarMax
        public static let reservationIDBytesMax = Limits.reservationIDLengthMax * bytesPerScalarMax
        public static let eventIDBytesMax = Limits.eventIDLengthMax * bytesPerScalarMax
        public static let idempotencyKeyBytesMax = Limits.idempotencyKeyLengthMax * bytesPerScalarMax
        public static let subjectValueBytesMax = Limits.subjectValueLengthMax * bytesPerScalarMax
        public static let dimensionKeyBytesMax = Limits.dimensionKeyLengthMax * bytesPerScalarMax
        public static let dimensionValueBytesMax = Limits.dimensionValueLengthMax * bytesPerScalarMax
        public static let actionKindBytesMax = Limits.actionKindLengthMax * bytesPerScalarMax
        public static let actionNameBytesMax = Limits.actionNameLengthMax * bytesPerScalarMax
        public static let actionTagBytesMax = Limits.actionTagLengthMax * bytesPerScalarMax
        public static let capsToolBytesMax = Limits.capsToolLengthMax * bytesPerScalarMax
        public static let modelVersionBytesMax = Limits.modelVersionLengthMax * bytesPerScalarMax
        public static let releaseReasonBytesMax = Limits.releaseReasonLengthMax * bytesPerScalarMax
        public static let adminReasonBytesMax = Limits.adminReasonLengthMax * bytesPerScalarMax
        public static let jsonTextBytesMax = Limits.jsonTextBytesMax
        public static let scopePathBytesMax = Limits.scopePathLengthMax
        /// Key scope filters are validated in bytes against the scope path bound.
        public static let scopeFilterPatternBytesMax = Limits.scopePathLengthMax

        public static let dimensionsCountMax = Limits.dimensionsCountMax
        public static let actionTagsCountMax = Limits.actionTagsCountMax
        public static let capsToolsCountMax = Limits.capsToolsCountMax
        public static let scopeFilterCountMax = Limits.scopeFilterCountMax
        /// `decide` stores a key's permissions deduplicated, so there can be no more than there are cases.
        public static let permissionsCountMax = Permission.allCases.count
        /// A path has at most one segment per level, so per-scope lists (affected and budgeted scopes,
        /// deltas, balances) are never longer than the number of levels.
        public static let scopesCountMax = ScopeLevel.allCases.count
    }
}
