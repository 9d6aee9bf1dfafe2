import CaseBridgeProto
import Foundation
import Testing

/// proto3 JSON both ways, as the HTTPS console's Connect JSON carries messages.
@Suite("proto3 JSON")
struct JSONCodecTests {
    @Test("every sample survives JSON out and back in", arguments: Samples.all.map(\.name))
    func roundTrip(_ name: String) throws {
        let sample = try #require(Samples.all.first { $0.name == name })
        let json = try ProtoJSON.json(wireBytes: try sample.encode(), as: sample.type, limits: .default)
        let back = try ProtoJSON.wireBytes(json: json, as: sample.type, limits: .default)
        #expect(try sample.matches(back), "\(String(decoding: json, as: UTF8.self).prefix(300))")
    }

    @Test("names as in the .proto file or camelCase, enums by name or number, 64-bit integers as strings")
    func accepted() throws {
        let json = Data(
            """
            {"case_id":"c1","sequence":"7","occurredAtMs":1700000000000,
             "statusChange":{"toStatus":"CASE_STATUS_ACKNOWLEDGED"},"skippedSequences":[1,"2"]}
            """.utf8
        )
        let update = try ProtoCodec.decode(
            CaseUpdate.self,
            from: try ProtoJSON.wireBytes(json: json, as: CaseUpdate.protoName, limits: .default)
        )
        #expect(update.caseID == "c1" && update.sequence == 7 && update.occurredAtMs == 1_700_000_000_000)
        #expect(update.skippedSequences == [1, 2])
        guard case .statusChange(let change)? = update.change else {
            Issue.record("no status change")
            return
        }
        #expect(change.toStatus == .acknowledged)
    }

    @Test("refused with the field named: unknown fields, wrong types, out-of-range numbers, bad enums, not JSON")
    func refused() {
        let cases: [(String, String)] = [
            (#"{"caseIdd":"x"}"#, "casebridge.v1.CaseUpdate.caseIdd"),
            (#"{"sequence":-1}"#, "casebridge.v1.CaseUpdate.sequence"),
            (#"{"sequence":1.5}"#, "casebridge.v1.CaseUpdate.sequence"),
            (#"{"caseId":5}"#, "casebridge.v1.CaseUpdate.case_id"),
            (#"{"statusChange":{"toStatus":"NOPE"}}"#, "casebridge.v1.StatusChange.to_status"),
            (#"{"statusChange":{"toStatus":99999999999}}"#, "casebridge.v1.StatusChange.to_status"),
            (#"{"skippedSequences":3}"#, "casebridge.v1.CaseUpdate.skipped_sequences"),
            (#"[1,2]"#, "casebridge.v1.CaseUpdate"),
            (#"{"#, "casebridge.v1.CaseUpdate"),
        ]
        for (json, field) in cases {
            let error = #expect(throws: ProtoError.self, "\(json)") {
                try ProtoJSON.wireBytes(json: Data(json.utf8), as: CaseUpdate.protoName, limits: .default)
            }
            #expect(error?.field == field, "\(json): \(String(describing: error))")
        }
    }

    @Test("many empty values or deep nesting are refused by counting the bytes, before JSON is parsed")
    func structureFirst() {
        let limits = ProtoLimits(maxElements: 1_000)
        let empties = "{\"persons\":[" + Array(repeating: "{}", count: 2_000).joined(separator: ",") + "]}"
        let many = #expect(throws: ProtoError.self) {
            try ProtoJSON.wireBytes(json: Data(empties.utf8), as: InterventionRequest.protoName, limits: limits)
        }
        #expect(many?.code == .tooManyElements)
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        let nested = #expect(throws: ProtoError.self) {
            try ProtoJSON.wireBytes(
                json: Data(("{\"persons\":" + deep + "}").utf8),
                as: InterventionRequest.protoName,
                limits: limits
            )
        }
        #expect(nested?.code == .tooDeep)
        // Brackets and commas inside strings are text, not structure.
        let text = "{\"summary\":\"" + String(repeating: "[,{\\\"", count: 2_000) + "\"}"
        #expect(throws: Never.self) {
            try ProtoJSON.wireBytes(json: Data(text.utf8), as: InterventionRequest.protoName, limits: limits)
        }
    }

    @Test("base64 as RFC 4648 gives it: padded for JSON bytes, URL-safe and unpadded for tokens")
    func base64() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")] {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
        }
        #expect(Base64.encode([0xfb, 0xff], urlSafe: true) == "-_8")
        #expect(Base64.encode([0xfb, 0xff]) == "+/8=")
    }

    @Test("a JSON list longer than the element budget is refused before it is encoded")
    func budget() {
        let json = Data(
            ("{\"skippedSequences\":[" + Array(repeating: "1", count: 2_000).joined(separator: ",") + "]}").utf8
        )
        let error = #expect(throws: ProtoError.self) {
            try ProtoJSON.wireBytes(json: json, as: CaseUpdate.protoName, limits: ProtoLimits(maxElements: 1_000))
        }
        #expect(error?.code == .tooManyElements)
    }
}
