import Foundation
import Testing
import TestSupport
@testable import CaseBridgeProto

@Suite("Codec round trips")
struct RoundTripTests {
    @Test("every sample survives encode and decode", arguments: Samples.all.map(\.name))
    func roundTrip(name: String) throws {
        let sample = try #require(Samples.all.first { $0.name == name })
        #expect(try sample.matches(sample.encode()))
    }

    @Test("an empty message encodes to no bytes and decodes to defaults")
    func emptyMessage() throws {
        #expect(try ProtoCodec.encode(InterventionRequest()) == [])
        #expect(try ProtoCodec.decode(InterventionRequest.self, from: []) == InterventionRequest())
    }

    @Test("an enum value this version does not know is kept as its number")
    func unknownEnumValue() throws {
        var request = InterventionRequest()
        request.kind = RequestKind(rawValue: 77)
        let decoded = try ProtoCodec.decode(InterventionRequest.self, from: ProtoCodec.encode(request))
        #expect(decoded.kind.rawValue == 77)
        #expect(decoded.kind.description == "77")
    }

    @Test("fields a newer sender added are skipped, the rest is read")
    func unknownFieldsAreIgnored() throws {
        var request = InterventionRequest()
        request.requestID = "r1"
        // Field 99, length-delimited, "hi"; then field 98 as a varint.
        let bytes = try ProtoCodec.encode(request) + [0x9a, 0x06, 0x02, 0x68, 0x69, 0x90, 0x06, 0x07]
        #expect(try ProtoCodec.decode(InterventionRequest.self, from: bytes).requestID == "r1")
    }

    @Test("fields set in any order are read back by number, replaced, removed and compared alike")
    func fieldsInAnyOrder() {
        let order: [UInt32] = [9, 2, 15, 1, 7, 3, 12]
        var fields = ProtoFields()
        for number in order { fields.set(number, "field \(number)") }
        var inOrder = ProtoFields()
        for number in order.sorted() { inOrder.set(number, "field \(number)") }
        #expect(fields == inOrder)
        for number in UInt32(0)...16 {
            let expected = order.contains(number) ? "field \(number)" : ""
            #expect(fields.value(number) as String == expected)
        }
        fields.set(7, "again")
        fields.set(2, nil as String?)
        fields.set(12, [] as [String])
        #expect(fields.value(7) as String == "again")
        #expect(fields.optional(2) as String? == nil)
        #expect(fields.values(12) as [String] == [])
        #expect(fields != inOrder)
        inOrder.set(7, "again")
        inOrder.set(2, nil as String?)
        inOrder.set(12, nil as String?)
        #expect(fields == inOrder)
    }

    @Test("a string with NUL cannot be encoded, and the error names the field")
    func nulOnEncode() throws {
        var person = Person()
        person.fullName = "Ann\u{0}a"
        var request = InterventionRequest()
        request.persons = [person]
        let error = try #require(throws: ProtoError.self) { try ProtoCodec.encode(request) }
        #expect(error.code == .nulInString)
        #expect(error.field == "casebridge.v1.InterventionRequest.persons.full_name")
        #expect(!error.description.contains("Ann"))
    }

    @Test("enum names read back from text as staff type them")
    func enumNames() {
        #expect(CaseStatus(name: "in_progress") == .inProgress)
        #expect(CaseStatus(name: "IN-PROGRESS") == .inProgress)
        #expect(CaseStatus(name: "nonsense") == nil)
        #expect(PersonStatus.notFound.description == "not_found")
    }
}

@Suite("Codec refuses malformed input")
struct MalformedInputTests {
    func decodeError(_ bytes: [UInt8], limits: ProtoLimits = .default) throws -> ProtoError {
        try #require(throws: ProtoError.self) {
            try ProtoCodec.decode(InterventionRequest.self, from: bytes, limits: limits)
        }
    }

    @Test("a varint cut off at the end")
    func truncatedVarint() throws {
        let error = try decodeError([0x58, 0x80])  // created_at_ms, continuation bit, then nothing
        #expect(error.code == .truncated)
        #expect(error.field == "casebridge.v1.InterventionRequest.created_at_ms")
    }

    @Test("a varint longer than ten bytes")
    func overlongVarint() throws {
        #expect(try decodeError([0x58] + Array(repeating: 0xff, count: 11)).code == .malformedVarint)
    }

    @Test("a string field sent as a number")
    func wrongWireType() throws {
        let error = try decodeError([0x08, 0x01])  // field 1 (request_id) with wire type 0
        #expect(error.code == .wrongWireType)
        #expect(error.field == "casebridge.v1.InterventionRequest.request_id")
    }

    @Test("group wire types, which proto3 does not use")
    func groups() throws {
        #expect(try decodeError([0x0b, 0x0c]).code == .wrongWireType)
    }

    @Test("a length that runs past the end")
    func lengthPastEnd() throws {
        let error = try decodeError([0x0a, 0x05, 0x61])
        #expect(error.code == .truncated)
        #expect(error.field == "casebridge.v1.InterventionRequest.request_id")
    }

    @Test("field number zero")
    func fieldZero() throws {
        #expect(try decodeError([0x00, 0x01]).code == .invalidTag)
    }

    @Test("invalid UTF-8, deep inside a batch")
    func invalidUTF8() throws {
        var person = Person()
        person.fullName = "placeholder"
        var request = InterventionRequest()
        request.persons = [Person(), person]
        var bytes = try ProtoCodec.encode(request)
        // Overwrite "placeholder" with a lone continuation byte and an invalid lead byte.
        let at = try #require(bytes.firstRange(of: Array("placeholder".utf8)))
        bytes[at.lowerBound] = 0xc3
        bytes[at.lowerBound + 1] = 0x28
        let error = try decodeError(bytes)
        #expect(error.code == .invalidUTF8)
        #expect(error.field == "casebridge.v1.InterventionRequest.persons.full_name")
    }

    @Test("NUL inside a string, which protobuf-c would silently cut")
    func nulInString() throws {
        let error = try decodeError([0x0a, 0x03, 0x61, 0x00, 0x62])
        #expect(error.code == .nulInString)
        #expect(error.field == "casebridge.v1.InterventionRequest.request_id")
    }

    @Test("text is checked byte for byte whether or not it is ASCII")
    func textChecks() throws {
        func requestID(_ text: [UInt8]) -> [UInt8] { [0x0a, UInt8(text.count)] + text }
        let khmer = Array("សុខ".utf8)
        #expect(try ProtoCodec.decode(InterventionRequest.self, from: requestID(khmer)).requestID == "សុខ")
        #expect(try ProtoCodec.decode(InterventionRequest.self, from: requestID(Array("r-1".utf8))).requestID == "r-1")
        #expect(try decodeError(requestID([0xff])).code == .invalidUTF8)
        #expect(try decodeError(requestID(Array(khmer.dropLast()))).code == .invalidUTF8)
        #expect(try decodeError(requestID(Array("ab".utf8) + [0xed, 0xa0, 0x80])).code == .invalidUTF8)
        #expect(try decodeError(requestID(khmer + [0x00])).code == .nulInString)
        #expect(try decodeError(requestID([0x00] + khmer)).code == .nulInString)
    }

    @Test("nesting deeper than the configured limit")
    func tooDeep() throws {
        let bytes = try ProtoCodec.encode(Samples.fullCase())  // Case > request > persons > travel_document
        let error = try #require(throws: ProtoError.self) {
            try ProtoCodec.decode(Case.self, from: bytes, limits: ProtoLimits(maxDepth: 3))
        }
        #expect(error.code == .tooDeep)
        #expect(error.field == "casebridge.v1.Case.request.persons.travel_document")
        #expect(try ProtoCodec.decode(Case.self, from: bytes, limits: ProtoLimits(maxDepth: 4)) == Samples.fullCase())
    }

    @Test("a message over the configured size")
    func tooLarge() throws {
        let bytes = try ProtoCodec.encode(Samples.scriptsRequest())
        let error = try decodeError(bytes, limits: ProtoLimits(maxMessageBytes: bytes.count - 1))
        #expect(error.code == .tooLarge)
    }

    @Test("10 MB of garbage: refused by size, and by content when the limit allows it")
    func garbage() throws {
        var generator = SplitMix64(seed: 42)
        let garbage = (0..<10_000_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        #expect(try decodeError(garbage).code == .tooLarge)
        _ = try decodeError(garbage, limits: ProtoLimits(maxMessageBytes: 16_000_000))
    }

    @Test("thousands of random and mutated inputs end in a value or a typed error, never a crash")
    func fuzz() throws {
        var generator = SplitMix64(seed: 7)
        let valid = try ProtoCodec.encode(Samples.scriptsRequest())
        for round in 0..<3000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(generator.next() % 64)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            } else {
                bytes = valid
                for _ in 0..<(1 + Int(generator.next() % 4)) {
                    bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
                }
                bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count + 1))))
            }
            do {
                let decoded = try ProtoCodec.decode(InterventionRequest.self, from: bytes)
                // What decodes must encode again: every string in it is valid text.
                _ = try ProtoCodec.encode(decoded)
            } catch {
                // A typed error is the expected outcome for most of these inputs.
            }
        }
    }
}

/// A small deterministic generator, so that failures can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
