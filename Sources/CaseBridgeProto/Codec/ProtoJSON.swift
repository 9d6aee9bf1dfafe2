import CCaseBridgeProto
import CProtobufC

/// The proto3 JSON mapping of a message (lowerCamelCase names, enum value names, 64-bit integers
/// as strings, bytes as base64, default values left out), from protobuf-c's descriptors.
public enum ProtoJSON {
    public static func object<M: ProtoMessage>(_ message: M) -> [String: Any] {
        guard let descriptor = try? DescriptorRegistry.descriptor(for: M.protoName) else { return [:] }
        return object(message.protoFields, descriptor)
    }

    static func object(_ fields: ProtoFields, _ descriptor: MessageDescriptor) -> [String: Any] {
        var object: [String: Any] = [:]
        for i in 0..<Int(descriptor.pointee.n_fields) {
            let field = descriptor.pointee.fields[i]
            guard let value = fields[field.id] else { continue }
            let json: Any?
            if case .list(let list) = value {
                json = list.isEmpty ? nil : list.compactMap { convert($0, field, keepDefault: true) }
            } else {
                json = convert(
                    value,
                    field,
                    keepDefault: field.type == PROTOBUF_C_TYPE_MESSAGE || cb_field_is_oneof_value(field) != 0
                )
            }
            if let json { object[camel(String(cString: field.name))] = json }
        }
        return object
    }

    private static func convert(_ value: ProtoValue, _ field: ProtobufCFieldDescriptor, keepDefault: Bool) -> Any? {
        switch value {
        case .int(let v):
            if v == 0 && !keepDefault { return nil }
            if field.type == PROTOBUF_C_TYPE_ENUM {
                let enumDescriptor = field.descriptor.assumingMemoryBound(to: ProtobufCEnumDescriptor.self)
                if let named = protobuf_c_enum_descriptor_get_value(enumDescriptor, Int32(truncatingIfNeeded: v)) {
                    return String(cString: named.pointee.name)
                }
                return Int(v)
            }
            return [PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64].contains(field.type)
                ? String(v) : Int(v)
        case .uint(let v):
            if v == 0 && !keepDefault { return nil }
            return [PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64].contains(field.type) ? String(v) : Int(v)
        case .double(let v): return v == 0 && !keepDefault ? nil : v
        case .bool(let v): return !v && !keepDefault ? nil : v
        case .string(let v): return v.isEmpty && !keepDefault ? nil : v
        case .bytes(let v): return v.isEmpty && !keepDefault ? nil : Base64.encode(v)
        case .message(let nested):
            return object(nested, field.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
        case .list: return nil
        }
    }

    static func camel(_ name: String) -> String {
        var out = ""
        var upper = false
        for c in name {
            if c == "_" { upper = true; continue }
            out.append(upper ? Character(c.uppercased()) : c)
            upper = false
        }
        return out
    }
}
