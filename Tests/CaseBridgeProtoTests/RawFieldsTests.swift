import Testing
import CaseBridgeProto

@Suite("Fields taken as bytes")
struct RawFieldsTests {
    /// Field 1 twice (a decoder keeps the second), a varint, a fixed64 and field 2 between them.
    static let message: [UInt8] =
        [0x0a, 0x01, 0x61] + [0x10, 0x96, 0x01] + [0x19] + [UInt8](repeating: 7, count: 8)
        + [0x12, 0x02, 0x62, 0x63] + [0x0a, 0x02, 0x64, 0x65]

    @Test("every occurrence of a field, or the last one alone, and other wire types skipped")
    func occurrences() throws {
        #expect(try RawFields.extract(1, from: Self.message, message: "M") == [[0x61], [0x64, 0x65]])
        #expect(try RawFields.last(1, in: Self.message, message: "M") == [0x64, 0x65])
        #expect(try RawFields.last(2, in: Self.message, message: "M") == [0x62, 0x63])
        #expect(try RawFields.last(3, in: Self.message, message: "M") == nil)
        // Only the first field, and only if it is the one asked for.
        #expect(try RawFields.leading(1, in: Self.message, message: "M") == [0x61])
        #expect(try RawFields.leading(2, in: Self.message, message: "M") == nil)
        #expect(try RawFields.leading(2, in: Array(Self.message.dropFirst(3)), message: "M") == nil)
        #expect(try RawFields.leading(1, in: [], message: "M") == nil)
        let all = try RawFields.extract(from: Self.message, message: "M")
        #expect(all.map(\.number) == [1, 2, 1])
    }

    @Test("a field that runs past the end, or a wire type that is not one, is refused")
    func malformed() {
        for bytes: [UInt8] in [[0x0a, 0x05, 0x61], [0x19, 0x01], [0x0b], [0x0a]] {
            #expect(throws: ProtoError.self) { try RawFields.last(1, in: bytes, message: "M") }
        }
        #expect(throws: ProtoError.self) { try RawFields.leading(1, in: [0x0a, 0x05, 0x61], message: "M") }
    }
}
