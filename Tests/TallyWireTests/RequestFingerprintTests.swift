import Testing
import TallyCore
import TallyWire

@Suite struct RequestFingerprintTests {
    static let reserve = ReserveRequest(
        idempotencyKey: "req-1", subject: Subject(tenant: "acme", agent: "bot", dimensions: ["a": "1", "b": "2"]),
        action: Action(kind: "llm.completion", name: "gpt"), estimate: Quantity(.usdMicrocents, 1500))

    /// Pinned so that a change of the encoding, which would break every stored idempotency hash, is seen.
    @Test func digestIsPinned() {
        #expect(RequestFingerprint.digest(.getReservation(reservationID: "res-1")).hex
            == "7b19db9206c2f5dc8d9591c956f93c086af10c500a195f23ff0ee51376c207ff")
    }

    @Test func digestIsTheSHA256OfKindAndBody() {
        let request = Request.reserve(Self.reserve)
        let frame = WireCodec.encodeRequest(request, requestID: 1)
        #expect(RequestFingerprint.digest(request) == RequestFingerprint.digest(try! WireCodec.decodeRequest(frame)))
    }

    @Test func dimensionInsertionOrderDoesNotMatter() {
        var forward: [String: String] = [:]
        var backward: [String: String] = [:]
        let keys = (0..<16).map { "key-\($0)" }
        for key in keys { forward[key] = key }
        for key in keys.reversed() { backward[key] = key }
        var one = Self.reserve
        one.subject.dimensions = forward
        var two = Self.reserve
        two.subject.dimensions = backward
        #expect(RequestFingerprint.digest(.reserve(one)) == RequestFingerprint.digest(.reserve(two)))
    }

    /// The router hashes a reserve with its grace period filled in without building the filled-in request:
    /// the digest must be exactly that request's.
    @Test func aReservesDigestWithAGracePeriodFilledInIsTheFilledInRequests() {
        for sent in [nil, Int64(0), 5_000, 60_000] as [Int64?] {
            var request = Self.reserve
            request.graceMilliseconds = sent
            for filled in [nil, Int64(0), 5_000, 123_456] as [Int64?] {
                var expected = request
                expected.graceMilliseconds = filled
                #expect(RequestFingerprint.digest(reserve: request, graceMilliseconds: filled)
                    == RequestFingerprint.digest(.reserve(expected)), "sent \(String(describing: sent)), filled \(String(describing: filled))")
            }
        }
    }

    @Test func everyFieldChangesTheDigest() {
        let base = Self.reserve
        var variants: [ReserveRequest] = []
        func vary(_ change: (inout ReserveRequest) -> Void) {
            var copy = base
            change(&copy)
            variants.append(copy)
        }
        vary { $0.idempotencyKey = "req-2" }
        vary { $0.subject.tenant = nil }
        vary { $0.subject.workspace = "prod" }
        vary { $0.subject.dimensions["a"] = "9" }
        vary { $0.action.tags = ["x"] }
        vary { $0.estimate = Quantity(.tokens, 1500) }
        vary { $0.estimate = Quantity(.usdMicrocents, 1501) }
        vary { $0.ttlMilliseconds = 60_000 }
        vary { $0.graceMilliseconds = 0 }
        vary { $0.overagePolicy = .reject }
        vary { $0.dryRun = true }
        vary { $0.metadata = JSONText("{}") }
        let digests = Set(([base] + variants).map { RequestFingerprint.digest(.reserve($0)) })
        #expect(digests.count == variants.count + 1)
    }

    @Test func sameBodyUnderAnotherKindDiffers() {
        let change = BudgetStatusRequest(scope: "tenant:acme", unit: .tokens)
        #expect(RequestFingerprint.digest(.freezeBudget(change)) != RequestFingerprint.digest(.unfreezeBudget(change)))
    }

    @Test func randomRequestsHashEqualExactlyWhenEqual() {
        var seen: [Digest256: Request] = [:]
        for seed in UInt64(0)..<400 {
            var generator = WireGenerator(seed: seed)
            let request = generator.request(Int(seed % UInt64(WireGenerator.requestCaseCount)))
            let digest = RequestFingerprint.digest(request)
            #expect(RequestFingerprint.digest(request) == digest, "seed \(seed)")
            if let earlier = seen[digest] { #expect(earlier == request, "seed \(seed) collides") }
            seen[digest] = request
        }
    }
}
