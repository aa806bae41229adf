import TallyCore
import TallyWire

/// The query parameters of one request, decoded once, with typed accessors whose messages name the
/// parameter. Blank values count as absent (semantics 2.8); unknown parameters are ignored.
struct HTTPQuery: Sendable {
    private(set) var values: [String: String] = [:]

    init(_ pairs: [(String, String)]) {
        for (name, value) in pairs where values[name] == nil && !value.allSatisfy({ $0 == " " }) {
            values[name] = value
        }
    }

    subscript(_ name: String) -> String? { values[name] }

    func integer(_ name: String, in range: ClosedRange<Int64>) throws(WireError) -> Int64? {
        guard let text = values[name] else { return nil }
        guard let number = Int64(text), range.contains(number) else {
            throw WireError(code: .invalidRequest, message: "\(name) must be an integer \(range.lowerBound)-\(range.upperBound), not \"\(text)\"")
        }
        return number
    }

    func decimal(_ name: String, in range: ClosedRange<Double>) throws(WireError) -> Double? {
        guard let text = values[name] else { return nil }
        guard let number = Double(text), range.contains(number) else {
            throw WireError(code: .invalidRequest, message: "\(name) must be a number \(range.lowerBound)-\(range.upperBound), not \"\(text)\"")
        }
        return number
    }

    func bool(_ name: String) throws(WireError) -> Bool? {
        guard let text = values[name] else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw WireError(code: .invalidRequest, message: "\(name) must be true or false, not \"\(text)\"")
        }
    }

    func enumeration<T>(_ name: String, _ cases: [T], _ label: (T) -> String) throws(WireError) -> T? {
        guard let text = values[name] else { return nil }
        if let match = cases.first(where: { label($0) == text.uppercased() || label($0) == text }) { return match }
        throw WireError(code: .invalidRequest, message: "\(name) must be one of \(cases.map(label).joined(separator: ", ")), not \"\(text)\"")
    }

    /// An ISO-8601 time (or epoch milliseconds).
    func instant(_ name: String) throws(WireError) -> Int64? {
        guard let text = values[name] else { return nil }
        if let milliseconds = Int64(text) { return milliseconds }
        guard let milliseconds = ISOTime.parse(text) else {
            throw WireError(code: .invalidRequest, message: "\(name) must be an ISO-8601 time such as 2026-11-29T10:42:00Z, not \"\(text)\"")
        }
        return milliseconds
    }

    func unit(_ name: String = "unit") throws(WireError) -> TallyCore.Unit? {
        try enumeration(name, TallyCore.Unit.allCases, \.cyclesName)
    }

    /// The subject filters present (`workspace=...`, `agent=...`), lower-cased as scopes are.
    func segments() -> [ScopeLevel: String] {
        var segments: [ScopeLevel: String] = [:]
        for level in ScopeLevel.allCases.dropFirst() {
            if let value = values[level.name] { segments[level] = value.lowercased() }
        }
        return segments
    }

    /// A stable text of every parameter except the paging and projection ones: what a cursor is bound to.
    func filterFingerprint(excluding: Set<String> = ["cursor", "limit", "include"]) -> String {
        values.keys.filter { !excluding.contains($0) }.sorted().map { "\($0)=\(values[$0] ?? "")" }.joined(separator: "&")
    }
}

/// Opaque page cursors bound to the filters they were issued for: reusing one with other filters is a
/// clear 400 instead of a silently wrong page.
enum PageCursor {
    static func make(position: String, filters: String) -> String {
        base64URL(Array("\(fnv1a(filters)):\(position)".utf8))
    }

    /// The position the cursor encodes, or a 400 when it is damaged or bound to other filters.
    static func position(_ cursor: String?, filters: String) throws(WireError) -> String? {
        guard let cursor else { return nil }
        guard let bytes = fromBase64URL(cursor), let text = String(validating: bytes, as: UTF8.self),
              let colon = text.firstIndex(of: ":"), UInt64(text[..<colon]) != nil else {
            throw WireError(code: .invalidRequest, message: "cursor is not a cursor this server issued")
        }
        guard text[..<colon] == "\(fnv1a(filters))" else {
            throw WireError(code: .invalidRequest, message: "cursor was issued for different filters; repeat the first request's filters or start without a cursor")
        }
        return String(text[text.index(after: colon)...])
    }

    private static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func base64URL(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var word: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { word |= UInt32(byte) << (16 - 8 * UInt32(offset)) }
            for position in 0..<(chunk.count + 1) { output.append(alphabet[Int((word >> (18 - 6 * UInt32(position))) & 63)]) }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func fromBase64URL(_ text: String) -> [UInt8]? {
        var values: [UInt32] = []
        for byte in text.utf8 {
            guard let value = alphabet.firstIndex(of: byte) else { return nil }
            values.append(UInt32(value))
        }
        guard values.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var word: UInt32 = 0
            for (offset, value) in chunk.enumerated() { word |= value << (18 - 6 * UInt32(offset)) }
            for position in 0..<(chunk.count - 1) { output.append(UInt8((word >> (16 - 8 * UInt32(position))) & 0xFF)) }
            index += 4
        }
        return output
    }
}

/// Pages a sorted in-memory listing by the position of its last row.
struct Paged<Row> {
    var rows: [Row]
    var nextCursor: String?

    init(_ all: [Row], limit: Int, after position: String?, filters: String, position key: (Row) -> String) {
        var start = 0
        if let position, let index = all.firstIndex(where: { key($0) == position }) { start = index + 1 }
        let end = min(all.count, start + limit)
        rows = Array(all[start..<end])
        nextCursor = end < all.count ? rows.last.map { PageCursor.make(position: key($0), filters: filters) } : nil
    }
}
