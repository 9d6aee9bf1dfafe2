import CCaseBridgeProto
import CProtobufC

/// Checks untrusted bytes against a message descriptor before protobuf-c sees them.
///
/// protobuf-c 1.4 accepts invalid UTF-8 and silently truncates strings at NUL, and it has no
/// nesting limit; this walk rejects all three, plus anything that is not well-formed wire data,
/// naming the field concerned. It also counts what decoding would allocate (embedded messages,
/// repeated elements, unknown fields) and refuses a message over its limits before any of it is
/// paid for. Field paths are built only for an error: the walk itself allocates nothing.
struct WireValidator {
    let limits: ProtoLimits
    /// Elements the rest of the message may still hold.
    private var budget: Int

    init(limits: ProtoLimits) {
        self.limits = limits
        budget = limits.maxElements
    }

    mutating func validate(
        _ bytes: UnsafeRawBufferPointer,
        _ descriptor: MessageDescriptor,
        path: () -> String,
        depth: Int
    ) throws(ProtoError) {
        var reader = WireReader(bytes: bytes)
        // Elements of each repeated field in this occurrence of the message, by field index.
        var repeatedCounts = [Int](repeating: 0, count: Int(descriptor.pointee.n_fields))
        while !reader.atEnd {
            let tag = try reader.varint(path)
            let number = tag >> 3
            guard number >= 1, number <= 536_870_911 else {
                throw ProtoError(.invalidTag, field: path(), detail: "field number \(number)")
            }
            let wireType = UInt8(tag & 7)
            let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(number))
            func fieldPath() -> String {
                field.map { "\(path()).\(String(cString: $0.pointee.name))" } ?? "\(path()).#\(number)"
            }
            let payload: UnsafeRawBufferPointer?
            switch wireType {
            case 0: _ = try reader.varint(fieldPath); payload = nil
            case 1: try reader.skip(8, fieldPath); payload = nil
            case 5: try reader.skip(4, fieldPath); payload = nil
            case 2: payload = try reader.lengthDelimited(fieldPath)
            default:
                throw ProtoError(
                    .wrongWireType,
                    field: fieldPath(),
                    detail: "wire type \(wireType) is not used by proto3"
                )
            }
            guard let field else {
                try spend(1, fieldPath)  // unknown field: protobuf-c keeps a copy of it
                continue
            }
            let elements = try check(field, wireType: wireType, payload: payload, path: fieldPath, depth: depth)
            if field.pointee.label == PROTOBUF_C_LABEL_REPEATED {
                let index = field - descriptor.pointee.fields
                repeatedCounts[index] += elements
                let cap = ContractLimits.byField[UnsafeRawPointer(field)] ?? limits.maxRepeated
                if repeatedCounts[index] > cap {
                    throw ProtoError(.tooManyElements, field: fieldPath(), detail: "more than \(cap)")
                }
                try spend(elements, fieldPath)
            } else if field.pointee.type == PROTOBUF_C_TYPE_MESSAGE {
                try spend(1, fieldPath)
            }
        }
    }

    private mutating func spend(_ elements: Int, _ path: () -> String) throws(ProtoError) {
        budget -= elements
        if budget < 0 {
            throw ProtoError(
                .tooManyElements,
                field: path(),
                detail: "the message holds more than \(limits.maxElements)"
            )
        }
    }

    /// Checks one field's value; returns how many elements it holds (a packed run holds several).
    private mutating func check(
        _ field: UnsafePointer<ProtobufCFieldDescriptor>,
        wireType: UInt8,
        payload: UnsafeRawBufferPointer?,
        path: () -> String,
        depth: Int
    ) throws(ProtoError) -> Int {
        let type = field.pointee.type
        let expected = Self.wireType(of: type)
        if wireType != expected {
            // A repeated number may arrive packed (one length-delimited run) whatever its declaration.
            guard wireType == 2, expected != 2, field.pointee.label == PROTOBUF_C_LABEL_REPEATED, let payload else {
                throw ProtoError(.wrongWireType, field: path(), detail: "wire type \(wireType), expected \(expected)")
            }
            return try checkPacked(payload, elementWireType: expected, path: path)
        }
        guard let payload else { return 1 }
        switch type {
        case PROTOBUF_C_TYPE_STRING:
            try Self.checkText(payload, path: path)
        case PROTOBUF_C_TYPE_MESSAGE:
            guard depth + 1 <= limits.maxDepth else {
                throw ProtoError(.tooDeep, field: path(), detail: "limit \(limits.maxDepth)")
            }
            let sub = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
            try validate(payload, sub, path: path, depth: depth + 1)
        default:
            break
        }
        return 1
    }

    private func checkPacked(
        _ payload: UnsafeRawBufferPointer,
        elementWireType: UInt8,
        path: () -> String
    ) throws(ProtoError) -> Int {
        var reader = WireReader(bytes: payload)
        var elements = 0
        while !reader.atEnd {
            switch elementWireType {
            case 0: _ = try reader.varint(path)
            case 1: try reader.skip(8, path)
            default: try reader.skip(4, path)
            }
            elements += 1
        }
        return elements
    }

    /// Text must be UTF-8 without NUL. Most text is ASCII, which is checked by one pass over the
    /// bytes; only text with other bytes is decoded to validate it.
    static func checkText(_ bytes: UnsafeRawBufferPointer, path: () -> String) throws(ProtoError) {
        var ascii = true
        for byte in bytes {
            if byte == 0 { throw ProtoError(.nulInString, field: path()) }
            if byte >= 0x80 { ascii = false }
        }
        if !ascii, String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) == nil {
            throw ProtoError(.invalidUTF8, field: path())
        }
    }

    static func wireType(of type: ProtobufCType) -> UInt8 {
        switch type {
        case PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_DOUBLE: 1
        case PROTOBUF_C_TYPE_FIXED32, PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_FLOAT: 5
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_TYPE_MESSAGE: 2
        default: 0
        }
    }
}

/// A cursor over wire bytes that never reads past the end.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    var atEnd: Bool { position >= bytes.count }

    mutating func varint(_ path: () -> String) throws(ProtoError) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<10 {
            guard position < bytes.count else {
                throw ProtoError(.truncated, field: path(), detail: "varint runs past the end")
            }
            let byte = bytes[position]
            position += 1
            if i == 9 && byte > 1 { break }
            value |= UInt64(byte & 0x7f) << (7 * UInt64(i))
            if byte & 0x80 == 0 { return value }
        }
        throw ProtoError(.malformedVarint, field: path(), detail: "longer than 10 bytes")
    }

    mutating func skip(_ count: Int, _ path: () -> String) throws(ProtoError) {
        guard bytes.count - position >= count else {
            throw ProtoError(.truncated, field: path(), detail: "needs \(count) bytes, \(bytes.count - position) left")
        }
        position += count
    }

    mutating func lengthDelimited(_ path: () -> String) throws(ProtoError) -> UnsafeRawBufferPointer {
        let length = try varint(path)
        guard length <= UInt64(bytes.count - position) else {
            throw ProtoError(.truncated, field: path(), detail: "length \(length) past the end")
        }
        let start = position
        position += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<position])
    }
}
