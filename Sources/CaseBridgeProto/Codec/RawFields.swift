/// Length-delimited fields taken or given as bytes, untouched: how a node returns what it stored
/// byte for byte (fields a newer sender added included) inside a message it builds, and how a
/// reader takes such a part out again without decoding and re-encoding it.
public enum RawFields {
    /// Appends field `number` holding `value` (a sub-message's bytes, as they are).
    public static func append(_ number: Int, _ value: [UInt8], to bytes: inout [UInt8]) {
        appendVarint(UInt64(number) << 3 | 2, to: &bytes)
        appendVarint(UInt64(value.count), to: &bytes)
        bytes.append(contentsOf: value)
    }

    /// The bytes of every occurrence of length-delimited field `number` at the top level of
    /// `bytes`, in order. Other fields are skipped; malformed bytes are refused.
    public static func extract(_ number: Int, from bytes: [UInt8], message: String) throws(ProtoError) -> [[UInt8]] {
        try extract(from: bytes, message: message).filter { $0.number == number }.map(\.value)
    }

    /// Every length-delimited field at the top level of `bytes`, with its number, in order: one
    /// pass for a reader that wants several. Other fields are skipped; malformed bytes are refused.
    public static func extract(
        from bytes: [UInt8],
        message: String
    ) throws(ProtoError) -> [(number: Int, value: [UInt8])] {
        var found: [(number: Int, value: [UInt8])] = []
        var index = 0
        while index < bytes.count {
            let tag = try varint(bytes, &index, message)
            let field = tag >> 3
            guard field > 0 else { throw ProtoError(.invalidTag, field: message) }
            switch tag & 7 {
            case 0: _ = try varint(bytes, &index, message)
            case 1: index += 8
            case 5: index += 4
            case 2:
                let length = try varint(bytes, &index, message)
                guard length <= UInt64(bytes.count - index) else { throw ProtoError(.truncated, field: message) }
                let end = index + Int(length)
                if let number = Int(exactly: field) { found.append((number, Array(bytes[index..<end]))) }
                index = end
            default: throw ProtoError(.wrongWireType, field: message, detail: "wire type \(tag & 7)")
            }
        }
        guard index == bytes.count else { throw ProtoError(.truncated, field: message) }
        return found
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private static func varint(_ bytes: [UInt8], _ index: inout Int, _ message: String) throws(ProtoError) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard index < bytes.count else { throw ProtoError(.truncated, field: message) }
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte < 0x80 { return value }
        }
        throw ProtoError(.malformedVarint, field: message)
    }
}
