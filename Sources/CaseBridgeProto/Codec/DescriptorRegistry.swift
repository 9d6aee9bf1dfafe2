import CCaseBridgeProto
import CProtobufC

typealias MessageDescriptor = UnsafePointer<ProtobufCMessageDescriptor>

/// protobuf-c's message descriptors by full name, found by walking every
/// service's inputs and outputs and every message field below them.
enum DescriptorRegistry {
    nonisolated(unsafe) static let byName: [String: MessageDescriptor] = {
        var found: [String: MessageDescriptor] = [:]
        func visit(_ descriptor: MessageDescriptor) {
            let name = String(cString: descriptor.pointee.name)
            guard found[name] == nil else { return }
            found[name] = descriptor
            for i in 0..<Int(descriptor.pointee.n_fields) {
                let field = descriptor.pointee.fields[i]
                if field.type == PROTOBUF_C_TYPE_MESSAGE, let sub = field.descriptor {
                    visit(sub.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
                }
            }
        }
        for s in 0..<casebridge_services_count {
            guard let service = casebridge_service(s) else { continue }
            for m in 0..<Int(service.pointee.n_methods) {
                visit(service.pointee.methods[m].input)
                visit(service.pointee.methods[m].output)
            }
        }
        return found
    }()

    static func descriptor(for name: String) throws(ProtoError) -> MessageDescriptor {
        guard let descriptor = byName[name] else {
            throw ProtoError(.unknownMessageType, field: name)
        }
        return descriptor
    }
}

extension UnsafePointer where Pointee == ProtobufCMessageDescriptor {
    var fullName: String { String(cString: pointee.name) }
}

/// One RPC method as the contract declares it, for listings and tooling.
public struct ContractMethod: Sendable, Equatable {
    public let service: String
    public let name: String
    public let input: String
    public let output: String
}

extension ProtoCodec {
    /// Every method of every service in proto/, from protobuf-c's service descriptors.
    public static var contractMethods: [ContractMethod] {
        (0..<casebridge_services_count).compactMap(casebridge_service).flatMap { service in
            (0..<Int(service.pointee.n_methods)).map { m in
                let method = service.pointee.methods[m]
                return ContractMethod(
                    service: String(cString: service.pointee.name),
                    name: String(cString: method.name),
                    input: method.input.fullName,
                    output: method.output.fullName
                )
            }
        }
    }
}
