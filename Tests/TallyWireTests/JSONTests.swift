import Testing

@testable import TallyWire

/// The JSON value, parser and writer: round trips, every strict-parsing rule with its offset, limits, and
/// seeded random inputs that must never crash.
@Suite struct JSONTests {
    // MARK: Round trips

    @Test(arguments: [
        "null", "true", "false", "0", "-1", "123", "1.5", "-0.25", "1e3", "1E-7", "2.5e+10",
        "\"\"", "\"plain\"", "\"caf\u{E9} \u{1F600}\"", "\"q\\\"b\\\\s/c\\n\\r\\t\\b\\f\\u0001\"",
        "[]", "{}", "[1,[2,[3,[]]],{}]",
        #"{"id":"r-1","amount":{"unit":"USD_MICROCENTS","amount":5000},"dry_run":false,"tags":["a",null]}"#,
    ])
    func compactDocumentsRoundTripByteForByte(_ document: String) throws {
        let value = try JSONParser.parse(Array(document.utf8))
        #expect(value.serializedString() == document)
        #expect(try JSONParser.parse(value.serialized()) == value)
    }

    @Test(arguments: [
        " { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } }\r\n",
        "\"\\/\\u00e9\\uD83D\\uDE00\"",
        "[ 12345678901234567890 , -0 , 1.0 ]",
    ])
    func spacedAndEscapedDocumentsRoundTripToEqualValues(_ document: String) throws {
        let value = try JSONParser.parse(Array(document.utf8))
        #expect(try JSONParser.parse(value.serialized()) == value)
    }

    @Test func memberOrderIsPreserved() throws {
        let value = try JSONParser.parse(Array("{\"z\":1,\"a\":2,\"m\":3}".utf8))
        let members = [JSONMember("z", .integer(1)), JSONMember("a", .integer(2)), JSONMember("m", .integer(3))]
        #expect(value == .object(members))
        #expect(value.serializedString() == "{\"z\":1,\"a\":2,\"m\":3}")
        #expect(JSONValue.object(["z": .null, "a": .bool(true)]).serializedString() == "{\"z\":null,\"a\":true}")
    }

    @Test func subscriptFindsMembersOfObjectsOnly() throws {
        let value = try JSONParser.parse(Array("{\"amount\":5,\"unit\":\"USD\"}".utf8))
        #expect(value["amount"] == .integer(5))
        #expect(value["unit"] == .string("USD"))
        #expect(value["missing"] == nil)
        #expect(JSONValue.array([.integer(1)])["amount"] == nil)
    }

    @Test func typeNamesReadAsPhrases() {
        let values: [JSONValue] = [
            .null, .bool(true), .integer(1), .number("1.5"), .string(""), .array([]), .object([]),
        ]
        #expect(values.map(\.typeName) == [
            "null", "a boolean", "an integer", "a number", "a string", "an array", "an object",
        ])
    }

    // MARK: Numbers

    @Test(arguments: [
        ("9223372036854775807", JSONValue.integer(.max)),
        ("-9223372036854775808", .integer(.min)),
        ("9223372036854775808", .number("9223372036854775808")),
        ("-9223372036854775809", .number("-9223372036854775809")),
        ("18446744073709551616", .number("18446744073709551616")),
        ("-99999999999999999999999", .number("-99999999999999999999999")),
        ("0", .integer(0)),
        ("-0", .integer(0)),
        ("-0.0", .number("-0.0")),
        ("1.0", .number("1.0")),
        ("1e3", .number("1e3")),
        ("1E+3", .number("1E+3")),
    ])
    func numbersBecomeIntegersOnlyWhenPlainAndInsideInt64(_ text: String, _ expected: JSONValue) throws {
        #expect(try JSONParser.parse(Array(text.utf8)) == expected)
    }

    @Test func int64BoundariesSerializeInDecimal() {
        #expect(JSONValue.integer(.min).serializedString() == "-9223372036854775808")
        #expect(JSONValue.integer(.max).serializedString() == "9223372036854775807")
        #expect(JSONValue.array([.integer(0), .integer(-7), .number("1.50")]).serializedString() == "[0,-7,1.50]")
        for digits in 1...18 {
            let power = (0..<digits).reduce(Int64(1)) { value, _ in value * 10 }
            for value in [power / 10, power - 1, -(power - 1), power, power + 1] {
                #expect(JSONValue.integer(value).serializedString() == String(value))
            }
        }
    }

    // MARK: Strings

    @Test(arguments: [
        ("\"\\u0041\\u00e9\\u20AC\"", "A\u{E9}\u{20AC}"),
        ("\"\\uD83D\\uDE00\"", "\u{1F600}"),
        ("\"\\uDBFF\\uDFFF\"", "\u{10FFFF}"),
        ("\"x\\ud83d\\ude80y\"", "x\u{1F680}y"),
        ("\"\\u0000\"", "\u{0}"),
        ("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\u{8}\u{C}\n\r\t"),
        ("\"\u{1F468}\u{200D}\u{1F469}\"", "\u{1F468}\u{200D}\u{1F469}"),
    ])
    func escapesAndUTF8Decode(_ document: String, _ expected: String) throws {
        #expect(try JSONParser.parse(Array(document.utf8)) == .string(expected))
    }

    @Test func writerEscapesOnlyQuotesBackslashesAndControlCharacters() {
        let text = "a\"b\\c/d\n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F}é😀"
        let expected = "\"a\\\"b\\\\c/d\\n\\r\\t\\b\\f\\u0000\\u001f\u{7F}é😀\""
        #expect(JSONValue.string(text).serializedString() == expected)
        var writer = JSONWriter()
        writer.key("k\u{1}")
        #expect(writer.bytes == Array("\"k\\u0001\":".utf8))
    }

    // MARK: Writer

    @Test func writerPlacesCommasItself() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a")
        writer.integer(1)
        writer.key("b")
        writer.beginArray()
        writer.string("x")
        writer.string("y")
        writer.endArray()
        writer.key("c")
        writer.beginObject()
        writer.endObject()
        writer.key("d")
        writer.value(.array([.bool(false), .null]))
        writer.key("e")
        writer.null()
        writer.endObject()
        let expected = #"{"a":1,"b":["x","y"],"c":{},"d":[false,null],"e":null}"#
        #expect(String(decoding: writer.bytes, as: UTF8.self) == expected)
    }

    @Test func writerSeparatesNestedArrays() {
        var writer = JSONWriter(capacity: 0)
        writer.beginArray()
        writer.beginArray()
        writer.endArray()
        writer.beginArray()
        writer.integer(1)
        writer.endArray()
        writer.bool(true)
        writer.endArray()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "[[],[1],true]")
    }

    // MARK: Rejections

    struct Rejection: Sendable, CustomTestStringConvertible {
        var input: [UInt8]
        var message: String
        var offset: Int
        var testDescription: String { String(decoding: input, as: UTF8.self).debugDescription }

        init(_ text: String, _ message: String, _ offset: Int) {
            self.init(bytes: Array(text.utf8), message, offset)
        }

        init(bytes: [UInt8], _ message: String, _ offset: Int) {
            input = bytes
            self.message = message
            self.offset = offset
        }
    }

    static let quote = UInt8(ascii: "\"")

    static let rejections: [Rejection] = [
        // Structure and trailing content.
        Rejection("", "unexpected end of input", 0),
        Rejection("   ", "unexpected end of input", 3),
        Rejection("[", "unexpected end of input", 1),
        Rejection("{", "unexpected end of input", 1),
        Rejection("{\"a\"", "unexpected end of input", 4),
        Rejection("{\"a\":", "unexpected end of input", 5),
        Rejection("[1,]", "unexpected character ']'", 3),
        Rejection("{\"a\":1,}", "expected member name", 7),
        Rejection("{'a':1}", "expected member name", 1),
        Rejection("{1:2}", "expected member name", 1),
        Rejection("['a']", "unexpected character '''", 1),
        Rejection("{\"a\" 1}", "expected ':'", 5),
        Rejection("{\"a\":1 \"b\":2}", "expected ',' or '}'", 7),
        Rejection("[1 2]", "expected ',' or ']'", 3),
        Rejection("1 2", "unexpected character '2'", 2),
        Rejection("{\"a\":1}}", "unexpected character '}'", 7),
        Rejection("// c\n1", "unexpected character '/'", 0),
        Rejection("[1] // c", "unexpected character '/'", 4),
        Rejection("/* c */ 1", "unexpected character '/'", 0),
        Rejection("\u{0}", "unexpected byte 0x00", 0),
        Rejection(bytes: [0xEF, 0xBB, 0xBF, 0x31], "unexpected byte 0xEF", 0),
        // Literals.
        Rejection("NaN", "unexpected character 'N'", 0),
        Rejection("Infinity", "unexpected character 'I'", 0),
        Rejection("True", "unexpected character 'T'", 0),
        Rejection("tru", "unexpected end of input", 3),
        Rejection("nul1", "unexpected character '1'", 3),
        Rejection("truex", "unexpected character 'x'", 4),
        // Numbers.
        Rejection("-Infinity", "expected digit after '-'", 1),
        Rejection("-", "expected digit after '-'", 1),
        Rejection("- 1", "expected digit after '-'", 1),
        Rejection("+1", "unexpected character '+'", 0),
        Rejection("01", "leading zero in number", 1),
        Rejection("-012", "leading zero in number", 2),
        Rejection(".5", "unexpected character '.'", 0),
        Rejection("1.", "expected digit after '.'", 2),
        Rejection("1.e3", "expected digit after '.'", 2),
        Rejection("1e", "expected digit in exponent", 2),
        Rejection("1e+", "expected digit in exponent", 3),
        Rejection("[1E-x]", "expected digit in exponent", 4),
        Rejection("0x10", "unexpected character 'x'", 1),
        // Strings.
        Rejection("\"abc", "unterminated string", 0),
        Rejection("[\"abc", "unterminated string", 1),
        Rejection("\"ab\\", "unexpected end of input", 4),
        Rejection("\"a\u{1}\"", "unescaped control character in string", 2),
        Rejection("\"a\tb\"", "unescaped control character in string", 2),
        Rejection("\"a\nb\"", "unescaped control character in string", 2),
        Rejection("\"\\x\"", "invalid escape sequence", 1),
        Rejection("\"ab\\'\"", "invalid escape sequence", 3),
        Rejection("\"\\u12\"", "invalid \\u escape", 1),
        Rejection("\"\\u12G4\"", "invalid \\u escape", 1),
        Rejection("\"\\uD83D\"", "unpaired surrogate escape", 1),
        Rejection("\"\\uDE00\"", "unpaired surrogate escape", 1),
        Rejection("\"x\\uD83Dy\"", "unpaired surrogate escape", 2),
        Rejection("\"\\uD83D\\u0041\"", "unpaired surrogate escape", 1),
        Rejection("\"\\uD83D\\uD83D\"", "unpaired surrogate escape", 1),
        Rejection("\"\\uD83D\\", "unpaired surrogate escape", 1),
        // UTF-8: overlong forms, encoded surrogates, beyond U+10FFFF, stray and truncated sequences.
        Rejection(bytes: [quote, 0xC0, 0x80, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xC1, 0xBF, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xE0, 0x80, 0x80, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xF0, 0x80, 0x80, 0x80, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xED, 0xA0, 0x80, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xED, 0xBF, 0xBF, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xF4, 0x90, 0x80, 0x80, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xF5, 0x80, 0x80, 0x80, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xFF, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0x61, 0x80, quote], "invalid UTF-8", 2),
        Rejection(bytes: [quote, 0xE2, 0x82, quote], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xF0, 0x9F, 0x98], "invalid UTF-8", 1),
        Rejection(bytes: [quote, 0xC3], "invalid UTF-8", 1),
        // Duplicates, also when spelled differently.
        Rejection("{\"amount\":1,\"amount\":2}", "duplicate member \"amount\"", 12),
        Rejection("{\"a\":1,\"\\u0061\":2}", "duplicate member \"a\"", 7),
        Rejection("{\"a\":{\"b\":1,\"b\":1}}", "duplicate member \"b\"", 12),
        Rejection("{\"\\n\":1,\"\\n\":2}", "duplicate member \"\\n\"", 8),
    ]

    @Test(arguments: rejections)
    func strictParserRejectsWithMessageAndOffset(_ rejection: Rejection) {
        #expect(throws: JSONParseError(message: rejection.message, offset: rejection.offset)) {
            try JSONParser.parse(rejection.input)
        }
    }

    @Test func errorDescriptionNamesTheOffset() {
        let error = JSONParseError(message: "unterminated string", offset: 7)
        #expect(error.description == "unterminated string at byte 7")
    }

    @Test func duplicatesAreFoundInLargeObjects() throws {
        let members = (0..<1000).map { "\"m\($0)\":\($0)" }
        let unique = "{" + members.joined(separator: ",") + "}"
        #expect(try JSONParser.parse(Array(unique.utf8))["m999"] == .integer(999))
        let repeated = "{" + members.joined(separator: ",") + ",\"m500\":0}"
        #expect(throws: JSONParseError(message: "duplicate member \"m500\"", offset: unique.utf8.count)) {
            try JSONParser.parse(Array(repeated.utf8))
        }
    }

    @Test func longDuplicateNamesAreCutInTheMessage() throws {
        let name = String(repeating: "n", count: 100)
        let document = "{\"\(name)\":1,\"\(name)\":2}"
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(document.utf8)) }
        #expect(error?.message == "duplicate member \"\(String(repeating: "n", count: 64))\"…")
    }

    // MARK: Depth

    @Test func nestingUpToDepthMaxParsesAndOneMoreLevelDoesNot() throws {
        let depth = JSONParser.depthMax
        let deepest = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(try JSONParser.parse(Array(deepest.utf8)) != .null)
        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(try JSONParser.parse(Array(objects.utf8))["a"] != nil)
        let tooDeep = String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1)
        #expect(throws: JSONParseError(message: "nesting deeper than 64 levels", offset: depth)) {
            try JSONParser.parse(Array(tooDeep.utf8))
        }
    }

    @Test func hugeNestingIsAnErrorNotACrash() {
        let arrays = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(throws: JSONParseError(message: "nesting deeper than 64 levels", offset: 64)) {
            try JSONParser.parse(arrays)
        }
        let objects = Array(String(repeating: "{\"a\":", count: 100_000).utf8)
        #expect(throws: JSONParseError(message: "nesting deeper than 64 levels", offset: 64 * 5)) {
            try JSONParser.parse(objects)
        }
        let closed = Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(closed) }
    }

    // MARK: Randomized

    @Test func randomBytesNeverCrashAndAcceptedInputRoundTrips() throws {
        let seed: UInt64 = 0x5EED_0001
        var random = WirePRNG(state: seed)
        let alphabet = Array("{}[]:,\"\\/-+.0123456789eEtrufalsn \t\n\u{1}".utf8) + [0x80, 0xC3, 0xA9, 0xED, 0xF0, 0xFF]
        var accepted = 0
        for round in 0..<20_000 {
            let length = random.below(48)
            let input: [UInt8] = (0..<length).map { _ in
                round.isMultiple(of: 4) ? random.byte() : random.pick(alphabet)
            }
            guard let value = try? JSONParser.parse(input) else { continue }
            accepted += 1
            #expect(try JSONParser.parse(value.serialized()) == value, "seed \(seed) round \(round) input \(input)")
        }
        #expect(accepted > 0, "seed \(seed): the alphabet should produce some valid documents")
    }

    @Test func mutatedDocumentsNeverCrash() throws {
        let seed: UInt64 = 0x5EED_0002
        var random = WirePRNG(state: seed)
        for round in 0..<5_000 {
            var bytes = Self.randomValue(&random, depth: 0).serialized()
            for _ in 0...random.below(3) where !bytes.isEmpty {
                let position = random.below(bytes.count)
                switch random.below(3) {
                case 0: bytes[position] = random.byte()
                case 1: bytes.remove(at: position)
                default: bytes.insert(random.byte(), at: position)
                }
            }
            if let value = try? JSONParser.parse(bytes) {
                #expect(try JSONParser.parse(value.serialized()) == value, "seed \(seed) round \(round)")
            }
        }
    }

    @Test func randomTreesRoundTrip() throws {
        let seed: UInt64 = 0x5EED_0003
        var random = WirePRNG(state: seed)
        for round in 0..<2_000 {
            let value = Self.randomValue(&random, depth: 0)
            let bytes = value.serialized()
            #expect(try JSONParser.parse(bytes) == value, "seed \(seed) round \(round): \(value.serializedString())")
        }
    }

    static let numberTexts = [
        "1.5", "-0.0", "1e308", "2E-3", "-1.25e+7", "12345678901234567890", "-9223372036854775809", "0.000001",
    ]
    static let stringPieces = [
        "", "a", "amount", "\"", "\\", "/", "\n", "\u{0}", "\u{1F}", "\u{7F}",
        "é", "€", "😀", "\u{10FFFF}", " ", "'",
    ]

    static func randomValue(_ random: inout WirePRNG, depth: Int) -> JSONValue {
        switch random.below(depth < 5 ? 9 : 6) {
        case 0: return .null
        case 1: return .bool(random.oneIn(2))
        case 2: return .integer(random.pick([.min, .max, 0, -1, Int64(truncatingIfNeeded: random.next())]))
        case 3: return .number(random.pick(numberTexts))
        case 4, 5: return .string(randomString(&random))
        case 6: return .array((0..<random.below(5)).map { _ in randomValue(&random, depth: depth + 1) })
        default:
            var members: [JSONMember] = []
            for _ in 0..<random.below(5) {
                let name = randomString(&random)
                if !members.contains(where: { $0.name == name }) {
                    members.append(JSONMember(name, randomValue(&random, depth: depth + 1)))
                }
            }
            return .object(members)
        }
    }

    static func randomString(_ random: inout WirePRNG) -> String {
        (0..<random.below(4)).map { _ in random.pick(stringPieces) }.joined()
    }
}
