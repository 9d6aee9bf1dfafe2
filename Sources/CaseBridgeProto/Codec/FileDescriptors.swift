import CCaseBridgeProto

/// One .proto file of the contract as compiled: what server reflection hands to gRPC tooling.
public struct ProtoFileDescriptor: Sendable, Equatable {
    /// Path as imported, e.g. "casebridge/v1/request.proto".
    public let name: String
    public let package: String
    public let dependencies: [String]
    /// Fully qualified names declared here: messages (nested too), enums, services, methods.
    public let symbols: [String]
    public let services: [String]
    /// The serialized google.protobuf.FileDescriptorProto.
    public let serialized: [UInt8]
}

extension ProtoCodec {
    /// Every file in proto/, from the descriptor set that scripts/generate-proto embeds.
    public static let fileDescriptors: [ProtoFileDescriptor] = {
        let set = UnsafeRawBufferPointer(start: casebridge_descriptor_set_ptr(), count: casebridge_descriptor_set_size)
        return (try? DescriptorSetReader.files(set)) ?? []
    }()
}

/// Reads just enough of descriptor.proto (FileDescriptorSet, FileDescriptorProto and the names in it)
/// with the wire reader, so that no generated code for descriptor.proto is needed.
enum DescriptorSetReader {
    static func files(_ set: UnsafeRawBufferPointer) throws(ProtoError) -> [ProtoFileDescriptor] {
        var files: [ProtoFileDescriptor] = []
        for (number, value) in try fields(set) where number == 1 {  // FileDescriptorSet.file
            if let value { files.append(try file(value)) }
        }
        return files
    }

    private static func file(_ bytes: UnsafeRawBufferPointer) throws(ProtoError) -> ProtoFileDescriptor {
        var name = "", package = "", dependencies: [String] = [], symbols: [String] = [], services: [String] = []
        var messages: [UnsafeRawBufferPointer] = [], enums: [UnsafeRawBufferPointer] = [],
            serviceBytes: [UnsafeRawBufferPointer] = []
        for (number, value) in try fields(bytes) {
            guard let value else { continue }
            switch number {
            case 1: name = text(value)
            case 2: package = text(value)
            case 3: dependencies.append(text(value))
            case 4: messages.append(value)
            case 5: enums.append(value)
            case 6: serviceBytes.append(value)
            default: break
            }
        }
        for message in messages { try collectMessage(message, scope: package, into: &symbols) }
        for e in enums { symbols.append("\(package).\(try nameField(e))") }
        for service in serviceBytes {
            let serviceName = "\(package).\(try nameField(service))"
            services.append(serviceName)
            symbols.append(serviceName)
            for (number, value) in try fields(service) where number == 2 {  // ServiceDescriptorProto.method
                if let value { symbols.append("\(serviceName).\(try nameField(value))") }
            }
        }
        return ProtoFileDescriptor(
            name: name,
            package: package,
            dependencies: dependencies,
            symbols: symbols,
            services: services,
            serialized: Array(bytes)
        )
    }

    /// DescriptorProto: name = 1, nested_type = 3, enum_type = 4.
    private static func collectMessage(
        _ bytes: UnsafeRawBufferPointer,
        scope: String,
        into symbols: inout [String]
    ) throws(ProtoError) {
        let full = "\(scope).\(try nameField(bytes))"
        symbols.append(full)
        for (number, value) in try fields(bytes) {
            guard let value else { continue }
            if number == 3 { try collectMessage(value, scope: full, into: &symbols) }
            if number == 4 { symbols.append("\(full).\(try nameField(value))") }
        }
    }

    private static func nameField(_ bytes: UnsafeRawBufferPointer) throws(ProtoError) -> String {
        for (number, value) in try fields(bytes) where number == 1 {
            if let value { return text(value) }
        }
        return ""
    }

    /// Top-level fields of a message: number and, for length-delimited ones, the payload.
    private static func fields(
        _ bytes: UnsafeRawBufferPointer
    ) throws(ProtoError) -> [(UInt64, UnsafeRawBufferPointer?)] {
        var reader = WireReader(bytes: bytes)
        var result: [(UInt64, UnsafeRawBufferPointer?)] = []
        while !reader.atEnd {
            let tag = try reader.varint({ "descriptor" })
            switch tag & 7 {
            case 0: _ = try reader.varint({ "descriptor" }); result.append((tag >> 3, nil))
            case 1: try reader.skip(8, { "descriptor" }); result.append((tag >> 3, nil))
            case 5: try reader.skip(4, { "descriptor" }); result.append((tag >> 3, nil))
            case 2: result.append((tag >> 3, try reader.lengthDelimited({ "descriptor" })))
            default: throw ProtoError(.wrongWireType, field: "descriptor")
            }
        }
        return result
    }

    private static func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
}
