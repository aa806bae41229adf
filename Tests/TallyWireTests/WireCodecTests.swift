import Foundation
import Testing
@testable import TallyCore
@testable import TallyWire

@Suite struct WireCodecTests {
    /// Seeds for the randomized round trips; a failure message names its seed and case.
    static let seeds: [UInt64] = Array(1...60)

    // MARK: Golden vectors

    /// Regenerates protocol/vectors from the encoder. Run once with TALLY_WRITE_VECTORS=1 after a
    /// deliberate protocol change; the other tests then pin the files byte for byte.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TALLY_WRITE_VECTORS"] != nil))
    func writeGoldenVectors() throws {
        for vector in WireVectors.all { try VectorFiles.write(vector) }
    }

    @Test(arguments: WireVectors.requests + WireVectors.replies + WireVectors.responses)
    func goldenVectorDecodesAndReencodesByteForByte(_ vector: WireVector) throws {
        let bytes = try VectorFiles.read(vector.name)
        #expect(bytes == vector.bytes, "the file differs from what the encoder writes for \(vector.name)")
        let frame = try Frame.parse(bytes)
        #expect(frame.requestID == WireVector.requestID)
        switch vector.message {
        case .request(let request):
            let decoded = try WireCodec.decodeRequest(frame)
            #expect(decoded == request)
            #expect(WireCodec.encodeRequest(decoded, requestID: frame.requestID).serialized == bytes)
        case .response(let response):
            let decoded = try WireCodec.decodeResponse(frame)
            #expect(decoded == response)
            #expect(WireCodec.encodeResponse(decoded, requestID: frame.requestID).serialized == bytes)
        case nil:
            Issue.record("a valid vector carries its message")
        }
    }

    @Test(arguments: WireVectors.malformed)
    func malformedVectorGivesItsError(_ vector: WireVector) throws {
        let bytes = try VectorFiles.read(vector.name)
        #expect(bytes == vector.bytes)
        #expect(throws: WireError.self) { _ = try VectorFiles.readAsPeer(bytes) }
        do {
            _ = try VectorFiles.readAsPeer(bytes)
        } catch {
            #expect(error.code == vector.expectedError, "\(vector.name): \(error.message)")
        }
    }

    @Test func vectorsCoverEveryKindAndReplyTag() {
        let requestKinds = Set(WireVectors.requests.map { $0.bytes[5] })
        let responseKinds = Set((WireVectors.replies + WireVectors.responses).map { $0.bytes[5] })
        let replyTags = Set(WireVectors.replies.map { $0.bytes[12] })
        #expect(requestKinds == Set(RequestKind.allCases.map(\.rawValue)))
        #expect(responseKinds == Set(ResponseKind.allCases.map(\.rawValue)))
        #expect(replyTags == Set(1...UInt8(WireGenerator.replyCaseCount)))
    }

    // MARK: Randomized round trips

    @Test(arguments: 0..<WireGenerator.requestCaseCount)
    func randomRequestsRoundTrip(_ caseIndex: Int) throws {
        for seed in Self.seeds {
            var generator = WireGenerator(seed: seed &* 1000 &+ UInt64(caseIndex))
            let request = generator.request(caseIndex)
            let bytes = WireCodec.encodeRequest(request, requestID: UInt32(truncatingIfNeeded: seed)).serialized
            let frame = try Frame.parse(bytes)
            let decoded = try WireCodec.decodeRequest(frame)
            #expect(decoded == request, "seed \(seed), request case \(caseIndex)")
            #expect(WireCodec.encodeRequest(decoded, requestID: frame.requestID).serialized == bytes, "seed \(seed)")
            #expect(frame.requestID == UInt32(truncatingIfNeeded: seed))
            try WireCodec.checkLimits(request)
        }
    }

    @Test(arguments: 0..<WireGenerator.responseCaseCount)
    func randomResponsesRoundTrip(_ caseIndex: Int) throws {
        for seed in Self.seeds {
            var generator = WireGenerator(seed: seed &* 1000 &+ UInt64(caseIndex))
            let response = generator.response(caseIndex)
            let bytes = WireCodec.encodeResponse(response, requestID: 9).serialized
            let decoded = try WireCodec.decodeResponse(try Frame.parse(bytes))
            #expect(decoded == response, "seed \(seed), response case \(caseIndex)")
            #expect(WireCodec.encodeResponse(decoded, requestID: 9).serialized == bytes, "seed \(seed)")
        }
    }

    @Test(arguments: 0..<WireGenerator.replyCaseCount)
    func randomRepliesRoundTrip(_ caseIndex: Int) throws {
        for seed in Self.seeds {
            var generator = WireGenerator(seed: seed &* 7919 &+ UInt64(caseIndex))
            let response = Response.reply(generator.reply(caseIndex))
            let bytes = WireCodec.encodeResponse(response, requestID: 1).serialized
            #expect(try WireCodec.decodeResponse(try Frame.parse(bytes)) == response, "seed \(seed), reply case \(caseIndex)")
        }
    }

    // MARK: Hostile input

    /// Every prefix and every single-byte change of random frames: each read either succeeds or throws
    /// a typed `WireError` with a frame-level code; none traps or allocates past a limit.
    @Test func truncatedAndCorruptedFramesGiveWireErrors() {
        var random = WirePRNG(state: 42)
        for round in 0..<40 {
            var generator = WireGenerator(seed: UInt64(round))
            let bytes = round % 2 == 0
                ? WireCodec.encodeRequest(generator.request(round % WireGenerator.requestCaseCount), requestID: 1).serialized
                : WireCodec.encodeResponse(generator.response(round % WireGenerator.responseCaseCount), requestID: 1).serialized
            for length in 0..<bytes.count {
                expectWireErrorOrValue(Array(bytes.prefix(length)), mustFail: true, "round \(round), prefix \(length)")
            }
            for index in bytes.indices {
                var damaged = bytes
                damaged[index] ^= random.byte() | 1
                expectWireErrorOrValue(damaged, mustFail: false, "round \(round), byte \(index)")
            }
        }
    }

    @Test func randomGarbageGivesWireErrors() {
        var random = WirePRNG(state: 7)
        for round in 0..<2000 {
            var bytes = (0..<random.below(64)).map { _ in random.byte() }
            if round % 2 == 0 && bytes.count >= 12 {
                // A plausible header makes the garbage reach the body readers.
                let length = UInt32(bytes.count - 4)
                bytes[0...3] = [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                                UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
                bytes[4] = 1
                bytes[6] = 0
                bytes[7] = 0
            }
            expectWireErrorOrValue(bytes, mustFail: false, "garbage round \(round)")
        }
    }

    private func expectWireErrorOrValue(_ bytes: [UInt8], mustFail: Bool, _ context: String) {
        do {
            _ = try VectorFiles.readAsPeer(bytes)
            #expect(!mustFail, "\(context) decoded although it is incomplete")
        } catch {
            let frameCodes: Set<ErrorCode> = [.malformedFrame, .unsupportedProtocolVersion, .payloadTooLarge]
            #expect(frameCodes.contains(error.code), "\(context): \(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test func bodyErrorNamesTheMessageFieldAndOffset() throws {
        var bytes = WireVectors.requests.first { $0.name == "release-request" }!.bytes
        bytes[12...15] = [0x00, 0x00, 0x02, 0x01]  // reservation_id length 513, over its 512-byte limit
        #expect {
            _ = try WireCodec.decodeRequest(try Frame.parse(bytes))
        } throws: { error in
            let wire = error as! WireError
            return wire.code == .malformedFrame && wire.message.contains("release")
                && wire.message.contains("reservation_id") && wire.message.contains("offset 0")
        }
    }

    @Test func requestKindIsNotAcceptedAsResponseAndViceVersa() throws {
        let request = WireCodec.encodeRequest(.grantCredit(1), requestID: 1)
        let response = WireCodec.encodeResponse(.subscribed(fromSequence: 1), requestID: 1)
        #expect(throws: WireError.self) { _ = try WireCodec.decodeResponse(request) }
        #expect(throws: WireError.self) { _ = try WireCodec.decodeRequest(response) }
    }

    @Test func segmentsOutOfOrderAreRefused() throws {
        let frame = WireCodec.encodeRequest(.balances(BalancesRequest(segments: [.tenant: "a", .agent: "b"])), requestID: 1)
        var body = frame.body
        // tenant, balances.scope_prefix, unit, status absent (4 bytes), then count 2, level 1 "a", level 5 "b".
        #expect(Array(body[4...6]) == [0, 2, 1])
        body[6] = 5
        body[12] = 1
        var damaged = frame
        damaged.body = body
        #expect(throws: WireError.self) { _ = try WireCodec.decodeRequest(damaged) }
    }

    // MARK: Errors

    @Test func unknownErrorCodeDecodesAsInternalErrorWithItsMessage() throws {
        var frame = WireCodec.encodeResponse(.error(WireError(code: .budgetExceeded, message: "from the future")), requestID: 3)
        frame.body[0] = 0x7F
        frame.body[1] = 0xFF
        guard case .error(let error) = try WireCodec.decodeResponse(frame) else {
            Issue.record("an error frame decodes as an error")
            return
        }
        #expect(error.code == .internalError)
        #expect(error.message == "from the future")
    }

    @Test func longErrorMessageIsCutAtAScalarBoundary() throws {
        let message = String(repeating: "é", count: WireLimits.errorMessageBytesMax)  // two bytes each
        let frame = WireCodec.encodeResponse(.error(WireError(code: .internalError, message: message)), requestID: 1)
        guard case .error(let error) = try WireCodec.decodeResponse(frame) else {
            Issue.record("an error frame decodes as an error")
            return
        }
        #expect(error.message.utf8.count == WireLimits.errorMessageBytesMax)
        #expect(message.hasPrefix(error.message))
    }

    // MARK: Limits

    @Test func checkLimitsRefusesAFieldOverItsByteLimit() {
        let key = String(repeating: "k", count: EventCodec.FieldLimit.idempotencyKeyBytesMax + 1)
        let request = Request.release(ReleaseRequest(reservationID: "res-1", idempotencyKey: key))
        #expect {
            try WireCodec.checkLimits(request)
        } throws: { error in
            (error as? WireError)?.code == .invalidRequest && (error as? WireError)?.message.contains("idempotency_key") == true
        }
    }

    @Test func checkLimitsAcceptsFieldsExactlyAtTheirLimits() throws {
        let limit = EventCodec.FieldLimit.self
        let request = Request.reserve(ReserveRequest(
            idempotencyKey: String(repeating: "k", count: limit.idempotencyKeyBytesMax),
            subject: Subject(agent: String(repeating: "🙂", count: limit.subjectValueBytesMax / 4)),
            action: Action(kind: "k", name: "n", tags: Array(repeating: "t", count: limit.actionTagsCountMax)),
            estimate: Quantity(.tokens, 1), metadata: JSONText(String(repeating: " ", count: limit.jsonTextBytesMax))))
        try WireCodec.checkLimits(request)
        #expect(try WireCodec.decodeRequest(WireCodec.encodeRequest(request, requestID: 1)) == request)
    }

    @Test func checkLimitsCountsDuplicatePermissions() {
        let permissions = Array(repeating: Permission.balancesRead, count: Permission.allCases.count + 1)
        let request = Request.createApiKey(CreateApiKeyRequest(tenantID: "acme", name: "n", permissions: permissions))
        #expect(throws: WireError.self) { try WireCodec.checkLimits(request) }
    }
}
