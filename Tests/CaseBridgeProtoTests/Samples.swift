import CaseBridgeProto

/// The same values as Tests/Peers/codec_peer.py builds with the official Python runtime,
/// built here independently.
enum Samples {
    static func personKhmer() -> Person {
        var p = Person()
        p.personRef = "P1"
        p.fullName = "Sok Chantha"
        p.nativeName = "សុខ ចាន់ធា"
        p.otherNames = ["Tha", "ចាន់"]
        p.nationality = "KH"
        p.dateOfBirth = "2001-03-09"
        p.sex = .female
        p.phone = "+85512345678"
        p.languages = ["km"]
        p.needs = ["interpreter"]
        p.description = "red shirt, building B"
        return p
    }

    static func personChinese() -> Person {
        var p = Person()
        p.personRef = "P2"
        p.fullName = "Wang Xiaoming"
        p.nativeName = "王小明"
        p.nationality = "CN"
        p.dateOfBirth = "1999"
        p.sex = .male
        p.languages = ["zh-Hans", "en"]
        var document = TravelDocument()
        document.number = "E12345678"
        document.issuingCountry = "CN"
        document.kind = "passport"
        document.withheld = true
        p.travelDocument = document
        return p
    }

    static func scriptsRequest() -> InterventionRequest {
        var r = InterventionRequest()
        r.requestID = "7d3f2c4e-0b1a-4c5d-9e8f-112233445566"
        r.originNode = "embassy-cn"
        r.kind = .rescue
        r.urgency = .immediate
        r.persons = [personKhmer(), personChinese()]
        var location = Location()
        location.province = "Preah Sihanouk"
        location.district = "Prey Nob"
        location.siteName = "Golden Fortune compound"
        location.address = "Street 7"
        var point = GeoPoint()
        point.latitude = 10.627
        point.longitude = 103.522
        point.accuracyM = 50
        location.coordinates = point
        location.detail = "4th floor"
        r.location = location
        r.summary = "Contact by messenger 🙏; passports taken; «urgent» — ត្រូវការជំនួយ"
        r.indicators = [.documentsWithheld, .detention]
        var source = InformationSource()
        source.kind = .family
        source.description = "mother's call"
        source.receivedAtMs = 1_795_000_000_000
        r.source = source
        var consent = Consent()
        consent.basis = .vitalInterest
        consent.note = "no contact possible"
        r.consent = consent
        r.createdAtMs = 1_795_000_100_000
        r.originReference = "CN-PP-2026-0412"
        r.contact = "Consular desk"
        return r
    }

    static func batch500() -> InterventionRequest {
        var r = InterventionRequest()
        r.requestID = "00000000-0000-4000-8000-000000000500"
        r.originNode = "embassy-id"
        r.kind = .repatriation
        r.urgency = .urgent
        r.persons = (0..<500).map { i in
            var p = Person()
            p.personRef = "P" + pad(i, 3)
            p.fullName = "Person \(i)"
            p.nationality = "ID"
            p.dateOfBirth = "\(1980 + i % 25)-\(pad(1 + i % 12, 2))-\(pad(1 + i % 28, 2))"
            p.sex = i % 2 == 1 ? .female : .male
            p.phone = "+6281200" + pad(i, 5)
            p.languages = ["id"]
            p.minor = i % 7 == 0
            p.needs = i % 11 == 0 ? ["medical"] : []
            return p
        }
        return r
    }

    static func maximal() -> InterventionRequest {
        var r = InterventionRequest()
        r.requestID = "ffffffff-ffff-4fff-bfff-ffffffffffff"
        r.originNode = String(repeating: "e", count: 64)
        r.kind = RequestKind(rawValue: 99)  // unknown to this version: kept as a number
        r.urgency = .routine
        var p = Person()
        p.personRef = String(repeating: "X", count: 64)
        p.fullName = String(repeating: "A", count: 1000)
        p.nativeName = String(repeating: "ក", count: 500)
        p.sex = .other
        p.minor = true
        p.travelDocument = TravelDocument()
        r.persons = [p]
        var location = Location()
        var point = GeoPoint()
        point.latitude = -90
        point.longitude = 180
        point.accuracyM = .max
        location.coordinates = point
        r.location = location
        r.summary = String(repeating: "x", count: 20_000)
        r.indicators = (1...10).map { ControlIndicator(rawValue: $0) } + [ControlIndicator(rawValue: 42)]
        var source = InformationSource()
        source.kind = .other
        source.receivedAtMs = -1
        r.source = source
        r.createdAtMs = .max
        return r
    }

    static func updateOutcomes() -> CaseUpdate {
        var u = CaseUpdate()
        u.updateID = "a1b2c3d4-0000-4000-8000-000000000001"
        u.caseID = "7d3f2c4e-0b1a-4c5d-9e8f-112233445566"
        u.sequence = .max
        u.actorNode = "ncct"
        u.occurredAtMs = 1_795_000_200_000
        u.author = "Officer Dara"
        var first = PersonOutcome()
        first.personRef = "P1"
        first.status = .rescued
        first.note = "safe"
        var second = PersonOutcome()
        second.personRef = "P2"
        second.status = .notFound
        var outcomes = PersonOutcomes()
        outcomes.outcomes = [first, second]
        u.change = .personOutcomes(outcomes)
        return u
    }

    static func updateWithdrawal() -> CaseUpdate {
        var u = CaseUpdate()
        u.updateID = "a1b2c3d4-0000-4000-8000-000000000002"
        u.caseID = "c"
        u.sequence = 1
        u.actorNode = "embassy-cn"
        u.change = .withdrawal(Withdrawal())
        return u
    }

    static func fullCase() -> Case {
        var c = Case()
        c.caseID = "7d3f2c4e-0b1a-4c5d-9e8f-112233445566"
        c.request = scriptsRequest()
        c.status = .inProgress
        c.step = .sheltered
        var first = PersonState()
        first.personRef = "P1"
        first.status = .sheltered
        first.updatedAtMs = 1_795_000_300_000
        var second = PersonState()
        second.personRef = "P2"
        second.status = .notFound
        second.note = "moved"
        c.persons = [first, second]
        var sheltered = OutcomeCount()
        sheltered.status = .sheltered
        sheltered.count = 1
        var notFound = OutcomeCount()
        notFound.status = .notFound
        notFound.count = 1
        c.outcomeCounts = [sheltered, notFound]
        c.history = [updateOutcomes(), updateWithdrawal()]
        var delivery = Delivery()
        delivery.messageID = "a1b2c3d4-0000-4000-8000-000000000001"
        delivery.peerNode = "embassy-cn"
        delivery.state = .retryWaiting
        delivery.attempts = 3
        delivery.lastError = "UNAVAILABLE: connection refused"
        delivery.queuedAtMs = 1
        delivery.nextAttemptAtMs = 2
        c.deliveries = [delivery]
        c.requestingNode = "embassy-cn"
        c.createdAtMs = 1_795_000_100_000
        c.updatedAtMs = 1_795_000_300_000
        return c
    }

    static func reflectionResponse() -> GRPCReflectionV1Alpha.ServerReflectionResponse {
        var request = GRPCReflectionV1Alpha.ServerReflectionRequest()
        request.messageRequest = .fileContainingSymbol("casebridge.v1.CaseExchange")
        var files = GRPCReflectionV1Alpha.FileDescriptorResponse()
        files.fileDescriptorProto = [Array(0...255), []]
        var response = GRPCReflectionV1Alpha.ServerReflectionResponse()
        response.originalRequest = request
        response.messageResponse = .fileDescriptorResponse(files)
        return response
    }

    static func healthServing() -> GRPCHealth.HealthCheckResponse {
        var response = GRPCHealth.HealthCheckResponse()
        response.status = .serving
        return response
    }

    /// Every sample by the name the Python peer uses, with a way to encode it and to check a decoding.
    static let all: [Sample] = [
        Sample("empty_request", InterventionRequest()),
        Sample("scripts_request", scriptsRequest()),
        Sample("batch_500", batch500()),
        Sample("maximal", maximal()),
        Sample("update_outcomes", updateOutcomes()),
        Sample("update_withdrawal", updateWithdrawal()),
        Sample("full_case", fullCase()),
        Sample("reflection_response", reflectionResponse()),
        Sample("health_serving", healthServing()),
    ]

    private static func pad(_ n: Int, _ width: Int) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

struct Sample: Sendable {
    let name: String
    /// The message type's full name.
    let type: String
    let encode: @Sendable () throws -> [UInt8]
    /// Decodes bytes as the sample's type and says whether they equal the sample.
    let matches: @Sendable ([UInt8]) throws -> Bool

    init<M: ProtoMessage>(_ name: String, _ value: M) {
        self.name = name
        self.type = M.protoName
        self.encode = { try ProtoCodec.encode(value) }
        self.matches = { try ProtoCodec.decode(M.self, from: $0) == value }
    }
}
