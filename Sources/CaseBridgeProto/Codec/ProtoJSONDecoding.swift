import CCaseBridgeProto
import CProtobufC
import Foundation

extension ProtoError.Code {
    public static let invalidJSON = ProtoError.Code(name: "invalid JSON")
}

/// proto3 JSON in: what the Connect protocol's JSON form carries. Field names in lowerCamelCase or
/// as in the .proto file; enums by name or number; 64-bit integers as numbers or strings; bytes as
/// base64. An unknown field is an error naming it (a typo must not silently drop a change).
extension ProtoJSON {
    /// The wire bytes of the JSON message `json` of type `name` (checked again by the usual decoder).
    public static func wireBytes(json: Data, as name: String, limits: ProtoLimits) throws(ProtoError) -> [UInt8] {
        guard json.count <= limits.maxMessageBytes else {
            throw ProtoError(.tooLarge, field: name, detail: "\(json.count) bytes, limit \(limits.maxMessageBytes)")
        }
        // Foundation builds an object per JSON value: count them (and the nesting) in the bytes
        // first, so a small body of many empty values is refused before it costs memory.
        try checkStructure(json, as: name, limits: limits)
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: json.isEmpty ? Data("{}".utf8) : json, options: [])
        } catch {
            throw ProtoError(.invalidJSON, field: name, detail: "not a JSON object")
        }
        guard let object = parsed as? [String: Any] else {
            throw ProtoError(.invalidJSON, field: name, detail: "not a JSON object")
        }
        var budget = limits.maxElements
        let descriptor = try DescriptorRegistry.descriptor(for: name)
        let fields = try fields(object, descriptor, depth: 1, limits: limits, budget: &budget)
        return try ProtoCodec.encodeFields(fields, as: name)
    }

    /// Values (at each '{', '[' and ',' outside strings) and nesting, within the limits.
    static func checkStructure(_ json: Data, as name: String, limits: ProtoLimits) throws(ProtoError) {
        var inString = false, escaped = false
        var depth = 0, values = 0
        // Each message level may take two JSON levels (a repeated field's list, then its object).
        let maxDepth = 2 * limits.maxDepth + 1
        for byte in json {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == 0x5C {
                    escaped = true
                } else if byte == 0x22 {
                    inString = false
                }
                continue
            }
            switch byte {
            case 0x22: inString = true
            case 0x7B, 0x5B:
                depth += 1
                values += 1
                guard depth <= maxDepth else { throw ProtoError(.tooDeep, field: name) }
            case 0x7D, 0x5D: depth -= 1
            case 0x2C: values += 1
            default: break
            }
            guard values <= limits.maxElements else {
                throw ProtoError(
                    .tooManyElements,
                    field: name,
                    detail: "the message holds more than \(limits.maxElements)"
                )
            }
        }
    }

    /// The proto3 JSON of wire bytes of type `name`.
    public static func json(wireBytes bytes: [UInt8], as name: String, limits: ProtoLimits) throws(ProtoError) -> Data {
        let fields = try bytes.withUnsafeBytes { buffer in
            Result { () throws(ProtoError) in try ProtoCodec.decodeFields(name, from: buffer, limits: limits) }
        }.get()
        let object = self.object(fields, try DescriptorRegistry.descriptor(for: name))
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
    }

    static func fields(
        _ object: [String: Any],
        _ descriptor: MessageDescriptor,
        depth: Int,
        limits: ProtoLimits,
        budget: inout Int
    ) throws(ProtoError) -> ProtoFields {
        let messageName = descriptor.fullName
        guard depth <= limits.maxDepth else { throw ProtoError(.tooDeep, field: messageName) }
        var byName: [String: ProtobufCFieldDescriptor] = [:]
        for i in 0..<Int(descriptor.pointee.n_fields) {
            let field = descriptor.pointee.fields[i]
            let protoName = String(cString: field.name)
            byName[protoName] = field
            byName[camel(protoName)] = field
        }
        var fields = ProtoFields()
        for (key, value) in object {
            guard let field = byName[key] else {
                throw ProtoError(.invalidJSON, field: "\(messageName).\(key)", detail: "no such field")
            }
            let path = "\(messageName).\(String(cString: field.name))"
            if value is NSNull { continue }
            budget -= 1
            guard budget >= 0 else { throw ProtoError(.tooManyElements, field: path) }
            if field.label == PROTOBUF_C_LABEL_REPEATED {
                guard let array = value as? [Any] else {
                    throw ProtoError(.invalidJSON, field: path, detail: "expected a list")
                }
                budget -= array.count
                guard budget >= 0 else { throw ProtoError(.tooManyElements, field: path) }
                var list: [ProtoValue] = []
                for element in array {
                    list.append(try convert(element, field, path: path, depth: depth, limits: limits, budget: &budget))
                }
                fields[field.id] = .list(list)
            } else {
                fields[field.id] = try convert(
                    value,
                    field,
                    path: path,
                    depth: depth,
                    limits: limits,
                    budget: &budget
                )
            }
        }
        return fields
    }

    private static func convert(
        _ value: Any,
        _ field: ProtobufCFieldDescriptor,
        path: String,
        depth: Int,
        limits: ProtoLimits,
        budget: inout Int
    ) throws(ProtoError) -> ProtoValue {
        func wrong(_ expected: String) -> ProtoError {
            ProtoError(.invalidJSON, field: path, detail: "expected \(expected)")
        }
        switch field.type {
        case PROTOBUF_C_TYPE_STRING:
            guard let text = value as? String else { throw wrong("a string") }
            return .string(text)
        case PROTOBUF_C_TYPE_BOOL:
            guard isBool(value), let flag = value as? Bool else { throw wrong("true or false") }
            return .bool(flag)
        case PROTOBUF_C_TYPE_ENUM:
            let enumDescriptor = field.descriptor.assumingMemoryBound(to: ProtobufCEnumDescriptor.self)
            if let name = value as? String {
                guard let named = protobuf_c_enum_descriptor_get_value_by_name(enumDescriptor, name) else {
                    throw wrong("one of the enum's value names")
                }
                return .int(Int64(named.pointee.value))
            }
            guard let number = integer(value), let small = Int32(exactly: number) else { throw wrong("an enum name") }
            return .int(Int64(small))
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32:
            guard let number = integer(value), let small = Int32(exactly: number) else {
                throw wrong("a 32-bit integer")
            }
            return .int(Int64(small))
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64:
            guard let number = integer(value) else { throw wrong("a 64-bit integer") }
            return .int(number)
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32:
            guard let number = unsigned(value), number <= UInt64(UInt32.max) else {
                throw wrong("an unsigned 32-bit integer")
            }
            return .uint(number)
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64:
            guard let number = unsigned(value) else { throw wrong("an unsigned 64-bit integer") }
            return .uint(number)
        case PROTOBUF_C_TYPE_DOUBLE, PROTOBUF_C_TYPE_FLOAT:
            guard !isBool(value), !(value is String), let number = value as? Double else { throw wrong("a number") }
            return .double(number)
        case PROTOBUF_C_TYPE_BYTES:
            guard let text = value as? String, let data = Data(base64Encoded: text) else { throw wrong("base64") }
            return .bytes(Array(data))
        case PROTOBUF_C_TYPE_MESSAGE:
            guard let object = value as? [String: Any] else { throw wrong("an object") }
            let sub = field.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
            return .message(try fields(object, sub, depth: depth + 1, limits: limits, budget: &budget))
        default:
            throw wrong("a supported type")
        }
    }

    /// JSON true or false (Foundation hands numbers and booleans over as NSNumber alike).
    private static func isBool(_ value: Any) -> Bool {
        if let number = value as? NSNumber { return String(cString: number.objCType) == "c" }
        return value is Bool
    }

    /// An integer given as a JSON number (integral) or a decimal string, as proto3 JSON allows.
    private static func integer(_ value: Any) -> Int64? {
        if isBool(value) { return nil }
        if let text = value as? String { return Int64(text) }
        if let number = value as? NSNumber {
            let double = number.doubleValue
            guard double == double.rounded(), abs(double) < 9.2e18 else { return nil }
            return number.int64Value
        }
        return nil
    }

    private static func unsigned(_ value: Any) -> UInt64? {
        if isBool(value) { return nil }
        if let text = value as? String { return UInt64(text) }
        if let number = value as? NSNumber {
            let double = number.doubleValue
            guard double >= 0, double == double.rounded(), double < 1.8e19 else { return nil }
            return number.uint64Value
        }
        return nil
    }
}
