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
        var found: [[UInt8]] = []
        try visit(bytes, message) { field, range in
            if field == number { found.append(Array(bytes[range])) }
        }
        return found
    }

    /// The bytes of the last occurrence of length-delimited field `number` (the one a decoder
    /// keeps for a singular field), copying nothing else: a look at one field of a large message.
    public static func last(_ number: Int, in bytes: [UInt8], message: String) throws(ProtoError) -> [UInt8]? {
        var last: Range<Int>?
        try visit(bytes, message) { field, range in
            if field == number { last = range }
        }
        return last.map { Array(bytes[$0]) }
    }

    /// The bytes of length-delimited field `number` if it is the first field of `bytes` (encoders
    /// write fields in number order, so a message's field 1 comes first), reading nothing further:
    /// a look at a large message's key that costs the same at any size.
    public static func leading(_ number: Int, in bytes: [UInt8], message: String) throws(ProtoError) -> [UInt8]? {
        var index = 0
        guard !bytes.isEmpty, try varint(bytes, &index, message) == UInt64(number) << 3 | 2 else { return nil }
        let length = try varint(bytes, &index, message)
        guard length <= UInt64(bytes.count - index) else { throw ProtoError(.truncated, field: message) }
        return Array(bytes[index..<index + Int(length)])
    }

    /// Every length-delimited field at the top level of `bytes`, with its number, in order: one
    /// pass for a reader that wants several. Other fields are skipped; malformed bytes are refused.
    public static func extract(
        from bytes: [UInt8],
        message: String
    ) throws(ProtoError) -> [(number: Int, value: [UInt8])] {
        var found: [(number: Int, value: [UInt8])] = []
        try visit(bytes, message) { field, range in found.append((field, Array(bytes[range]))) }
        return found
    }

    /// Calls `body` with the number and byte range of each length-delimited field at the top level.
    private static func visit(
        _ bytes: [UInt8],
        _ message: String,
        _ body: (Int, Range<Int>) -> Void
    ) throws(ProtoError) {
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
                if let number = Int(exactly: field) { body(number, index..<end) }
                index = end
            default: throw ProtoError(.wrongWireType, field: message, detail: "wire type \(tag & 7)")
            }
        }
        guard index == bytes.count else { throw ProtoError(.truncated, field: message) }
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
