import CCaseBridgeProto
import CProtobufC
#if canImport(Glibc)
import Glibc
#endif

/// Converts messages to and from the protobuf wire format through protobuf-c.
///
/// The one place that walks fields: it reads protobuf-c's descriptors, so a new
/// message in proto/ needs no code here.
public enum ProtoCodec {
    public static func encode<M: ProtoMessage>(_ message: M) throws(ProtoError) -> [UInt8] {
        try encodeFields(message.protoFields, as: M.protoName)
    }

    public static func decode<M: ProtoMessage>(
        _ type: M.Type,
        from bytes: [UInt8],
        limits: ProtoLimits = .default
    ) throws(ProtoError) -> M {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(ProtoError) in try decodeFields(M.protoName, from: buffer, limits: limits) }
        }
        return M(fields: try result.get())
    }

    /// Every message type this codec knows, by full name, sorted.
    public static var messageTypeNames: [String] { DescriptorRegistry.byName.keys.sorted() }

    /// Decodes bytes as the named message type and encodes the result again, as a node does with
    /// every message it receives and stores; the decode fuzzer drives the codec through it.
    public static func reencode(
        _ bytes: [UInt8],
        as name: String,
        limits: ProtoLimits = .default
    ) throws(ProtoError) -> [UInt8] {
        let fields = try bytes.withUnsafeBytes { buffer in
            Result { () throws(ProtoError) in try decodeFields(name, from: buffer, limits: limits) }
        }.get()
        return try encodeFields(fields, as: name)
    }

    static func encodeFields(_ fields: ProtoFields, as name: String) throws(ProtoError) -> [UInt8] {
        let descriptor = try DescriptorRegistry.descriptor(for: name)
        let c = try CMessage.build(fields, descriptor, path: { name })
        defer { protobuf_c_message_free_unpacked(c, nil) }
        let size = protobuf_c_message_get_packed_size(c)
        guard size > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = protobuf_c_message_pack(c, buffer.baseAddress!)
        }
    }

    static func decodeFields(
        _ name: String,
        from bytes: UnsafeRawBufferPointer,
        limits: ProtoLimits
    ) throws(ProtoError) -> ProtoFields {
        guard bytes.count <= limits.maxMessageBytes else {
            throw ProtoError(.tooLarge, field: name, detail: "\(bytes.count) bytes, limit \(limits.maxMessageBytes)")
        }
        let descriptor = try DescriptorRegistry.descriptor(for: name)
        var validator = WireValidator(limits: limits)
        try validator.validate(bytes, descriptor, path: { name }, depth: 1)
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        guard let c = protobuf_c_message_unpack(descriptor, nil, bytes.count, base) else {
            throw ProtoError(.rejectedByProtobufC, field: name)
        }
        defer { protobuf_c_message_free_unpacked(c, nil) }
        return CMessage.read(UnsafeRawPointer(c), descriptor)
    }
}

/// Reading and writing protobuf-c's in-memory message structs, field by field from the descriptor.
private enum CMessage {
    typealias Field = ProtobufCFieldDescriptor

    static func read(_ message: UnsafeRawPointer, _ descriptor: MessageDescriptor) -> ProtoFields {
        var fields = ProtoFields(capacity: Int(descriptor.pointee.n_fields))
        for i in 0..<Int(descriptor.pointee.n_fields) {
            let field = descriptor.pointee.fields + i
            let f = field.pointee
            if cb_field_is_oneof(field) != 0,
                message.load(fromByteOffset: Int(f.quantifier_offset), as: UInt32.self) != f.id
            {
                continue
            }
            let member = message + Int(f.offset)
            if f.label == PROTOBUF_C_LABEL_REPEATED {
                let count = message.load(fromByteOffset: Int(f.quantifier_offset), as: Int.self)
                guard count > 0, let array = member.load(as: UnsafeRawPointer?.self) else { continue }
                let stride = elementSize(f.type)
                fields[f.id] = .list((0..<count).compactMap { readValue(array + $0 * stride, f) })
            } else {
                if f.label == PROTOBUF_C_LABEL_OPTIONAL, f.type != PROTOBUF_C_TYPE_STRING,
                    f.type != PROTOBUF_C_TYPE_MESSAGE,
                    message.load(fromByteOffset: Int(f.quantifier_offset), as: Int32.self) == 0
                {
                    continue
                }
                fields[f.id] = readValue(member, f)
            }
        }
        return fields
    }

    private static func readValue(_ p: UnsafeRawPointer, _ f: Field) -> ProtoValue? {
        switch f.type {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_ENUM:
            return .int(Int64(p.load(as: Int32.self)))
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64:
            return .int(p.load(as: Int64.self))
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32:
            return .uint(UInt64(p.load(as: UInt32.self)))
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64:
            return .uint(p.load(as: UInt64.self))
        case PROTOBUF_C_TYPE_FLOAT:
            return .double(Double(p.load(as: Float.self)))
        case PROTOBUF_C_TYPE_DOUBLE:
            return .double(p.load(as: Double.self))
        case PROTOBUF_C_TYPE_BOOL:
            return .bool(p.load(as: protobuf_c_boolean.self) != 0)
        case PROTOBUF_C_TYPE_STRING:
            guard let s = p.load(as: UnsafePointer<CChar>?.self) else { return nil }
            return .string(String(cString: s))
        case PROTOBUF_C_TYPE_BYTES:
            let data = p.load(as: ProtobufCBinaryData.self)
            guard let base = data.data, data.len > 0 else { return .bytes([]) }
            return .bytes(Array(UnsafeBufferPointer(start: base, count: data.len)))
        case PROTOBUF_C_TYPE_MESSAGE:
            guard let sub = p.load(as: UnsafeRawPointer?.self) else { return nil }
            return .message(read(sub, f.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)))
        default:
            return nil
        }
    }

    /// A malloc'ed protobuf-c message, freed by the caller with protobuf_c_message_free_unpacked.
    /// `path` names the field for an error only: it is not worked out for every field built.
    static func build(
        _ fields: ProtoFields,
        _ descriptor: MessageDescriptor,
        path: () -> String
    ) throws(ProtoError) -> UnsafeMutablePointer<ProtobufCMessage> {
        let raw = calloc(1, descriptor.pointee.sizeof_message)!
        let message = raw.assumingMemoryBound(to: ProtobufCMessage.self)
        protobuf_c_message_init(descriptor, raw)
        do {
            for i in 0..<Int(descriptor.pointee.n_fields) {
                let field = descriptor.pointee.fields + i
                let f = field.pointee
                guard let value = fields[f.id] else { continue }
                func fieldPath() -> String { "\(path()).\(String(cString: f.name))" }
                let member = raw + Int(f.offset)
                if f.label == PROTOBUF_C_LABEL_REPEATED {
                    guard case .list(let list) = value, !list.isEmpty else { continue }
                    let array = calloc(list.count, elementSize(f.type))!
                    // Count and pointer first, so that a failure below frees what was written.
                    raw.storeBytes(of: list.count, toByteOffset: Int(f.quantifier_offset), as: Int.self)
                    member.storeBytes(of: array, as: UnsafeMutableRawPointer.self)
                    for (n, element) in list.enumerated() {
                        try writeValue(element, array + n * elementSize(f.type), f, path: fieldPath)
                    }
                } else {
                    try writeValue(value, member, f, path: fieldPath)
                    if cb_field_is_oneof(field) != 0 {
                        raw.storeBytes(of: f.id, toByteOffset: Int(f.quantifier_offset), as: UInt32.self)
                    } else if f.label == PROTOBUF_C_LABEL_OPTIONAL, f.type != PROTOBUF_C_TYPE_STRING,
                        f.type != PROTOBUF_C_TYPE_MESSAGE
                    {
                        raw.storeBytes(of: 1, toByteOffset: Int(f.quantifier_offset), as: protobuf_c_boolean.self)
                    }
                }
            }
        } catch {
            protobuf_c_message_free_unpacked(message, nil)
            throw error
        }
        return message
    }

    private static func writeValue(
        _ value: ProtoValue,
        _ p: UnsafeMutableRawPointer,
        _ f: Field,
        path: () -> String
    ) throws(ProtoError) {
        switch (f.type, value) {
        case (PROTOBUF_C_TYPE_INT32, _), (PROTOBUF_C_TYPE_SINT32, _), (PROTOBUF_C_TYPE_SFIXED32, _),
            (PROTOBUF_C_TYPE_ENUM, _):
            p.storeBytes(of: Int32(truncatingIfNeeded: value.int), as: Int32.self)
        case (PROTOBUF_C_TYPE_INT64, _), (PROTOBUF_C_TYPE_SINT64, _), (PROTOBUF_C_TYPE_SFIXED64, _):
            p.storeBytes(of: value.int, as: Int64.self)
        case (PROTOBUF_C_TYPE_UINT32, _), (PROTOBUF_C_TYPE_FIXED32, _):
            p.storeBytes(of: UInt32(truncatingIfNeeded: value.int), as: UInt32.self)
        case (PROTOBUF_C_TYPE_UINT64, .uint(let v)), (PROTOBUF_C_TYPE_FIXED64, .uint(let v)):
            p.storeBytes(of: v, as: UInt64.self)
        case (PROTOBUF_C_TYPE_FLOAT, .double(let v)):
            p.storeBytes(of: Float(v), as: Float.self)
        case (PROTOBUF_C_TYPE_DOUBLE, .double(let v)):
            p.storeBytes(of: v, as: Double.self)
        case (PROTOBUF_C_TYPE_BOOL, .bool(let v)):
            p.storeBytes(of: v ? 1 : 0, as: protobuf_c_boolean.self)
        case (PROTOBUF_C_TYPE_STRING, .string(var s)):
            guard let copy = cString(&s) else { throw ProtoError(.nulInString, field: path()) }
            p.storeBytes(of: copy, as: UnsafeMutablePointer<CChar>?.self)
        case (PROTOBUF_C_TYPE_BYTES, .bytes(let b)):
            let data = malloc(max(b.count, 1))!.assumingMemoryBound(to: UInt8.self)
            b.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: b.count) }
            p.storeBytes(of: ProtobufCBinaryData(len: b.count, data: data), as: ProtobufCBinaryData.self)
        case (PROTOBUF_C_TYPE_MESSAGE, .message(let fields)):
            let sub = f.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
            let built = try build(fields, sub, path: path)
            p.storeBytes(of: built, as: UnsafeMutablePointer<ProtobufCMessage>.self)
        default:
            // Generated types never produce this; a hand-built ProtoFields might.
            throw ProtoError(.wrongWireType, field: path(), detail: "value does not fit the field's type")
        }
    }

    /// A malloc'ed, NUL-terminated copy of the text, copied from its UTF-8 in one go; nil if the text
    /// holds a NUL, which C would read as its end.
    private static func cString(_ text: inout String) -> UnsafeMutablePointer<CChar>? {
        text.withUTF8 { utf8 in
            if let base = utf8.baseAddress, memchr(base, 0, utf8.count) != nil { return nil }
            let copy = malloc(utf8.count + 1)!.assumingMemoryBound(to: UInt8.self)
            if let base = utf8.baseAddress { copy.update(from: base, count: utf8.count) }
            copy[utf8.count] = 0
            return UnsafeMutableRawPointer(copy).assumingMemoryBound(to: CChar.self)
        }
    }

    private static func elementSize(_ type: ProtobufCType) -> Int {
        switch type {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64,
            PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE:
            8
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE:
            MemoryLayout<UnsafeRawPointer>.size
        case PROTOBUF_C_TYPE_BYTES:
            MemoryLayout<ProtobufCBinaryData>.stride
        default:
            4
        }
    }
}
