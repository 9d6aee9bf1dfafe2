import Testing
@testable import CaseBridgeProto

/// A message's decoded size grows with its element count, not its byte count: these refuse the
/// cheap-to-send, expensive-to-decode messages before protobuf-c allocates anything for them.
@Suite("Decoding cost is bounded before it is paid")
struct DecodeCostTests {
    /// Field `number`, length-delimited, empty: two bytes that decode to one whole element.
    static func emptyElements(field number: UInt8, count: Int) -> [UInt8] {
        [UInt8](repeating: 0, count: count * 2).enumerated().map { $0.offset % 2 == 0 ? number << 3 | 2 : 0 }
    }

    @Test("4 MiB of empty persons is refused by count, naming the field")
    func emptyPersonsFlood() throws {
        let bytes = Self.emptyElements(field: 5, count: 2_000_000)
        let error = try #require(throws: ProtoError.self) {
            try ProtoCodec.decode(InterventionRequest.self, from: bytes)
        }
        #expect(error.code == .tooManyElements)
        #expect(error.field == "casebridge.v1.InterventionRequest.persons")
        #expect(error.detail == "more than 5000")
    }

    @Test("the contract's largest batch still decodes")
    func largestBatchDecodes() throws {
        var request = InterventionRequest()
        request.persons = (0..<ContractLimits.maxPersons).map { i in
            var person = Person()
            person.personRef = "P\(i)"
            person.languages = ["km", "th"]
            return person
        }
        #expect(
            try ProtoCodec.decode(InterventionRequest.self, from: ProtoCodec.encode(request)).persons.count == 5_000
        )
    }

    @Test("a per-person list over its limit is refused inside any person")
    func nestedListOverLimit() throws {
        var person = Person()
        person.needs = Array(repeating: "x", count: 17)
        var request = InterventionRequest()
        request.persons = [Person(), person]
        let error = try #require(throws: ProtoError.self) {
            try ProtoCodec.decode(InterventionRequest.self, from: ProtoCodec.encode(request))
        }
        #expect(error.code == .tooManyElements)
        #expect(error.field == "casebridge.v1.InterventionRequest.persons.needs")
    }

    @Test("a packed run counts each element")
    func packedRunCounts() throws {
        // indicators (field 8) packed: one length-delimited run of 65 one-byte varints.
        let bytes: [UInt8] = [8 << 3 | 2, 65] + [UInt8](repeating: 1, count: 65)
        let error = try #require(throws: ProtoError.self) {
            try ProtoCodec.decode(InterventionRequest.self, from: bytes)
        }
        #expect(error.field == "casebridge.v1.InterventionRequest.indicators")
    }

    @Test("unknown fields count against the whole message's element budget")
    func unknownFieldsFlood() throws {
        let limits = ProtoLimits(maxElements: 1_000)
        let bytes = Self.emptyElements(field: 15, count: 1_001)  // field 15 is not in Person
        let error = try #require(throws: ProtoError.self) {
            try ProtoCodec.decode(Person.self, from: bytes, limits: limits)
        }
        #expect(error.code == .tooManyElements)
        #expect(error.detail == "the message holds more than 1000")
        #expect(try ProtoCodec.decode(Person.self, from: Array(bytes.prefix(2_000)), limits: limits) == Person())
    }

    @Test("every repeated field of the contract has a limit")
    func everyRepeatedFieldHasALimit() {
        let unlisted = ContractLimits.repeatedFieldNames.filter {
            $0.hasPrefix("casebridge.") && ContractLimits.repeated[$0] == nil
        }
        #expect(unlisted == [])
        #expect(ContractLimits.repeated.keys.allSatisfy(ContractLimits.repeatedFieldNames.contains))
    }
}
