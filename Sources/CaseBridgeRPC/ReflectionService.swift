import CaseBridgeProto

/// grpc.reflection (v1 and v1alpha): lets grpcurl, grpc_cli and grpcio-reflection discover a
/// node's services and message types, from the descriptors compiled out of proto/.
public struct ReflectionService: Sendable {
    typealias Request = GRPCReflectionV1.ServerReflectionRequest
    typealias Response = GRPCReflectionV1.ServerReflectionResponse

    let files: [ProtoFileDescriptor]
    let services: [String]

    /// Registers both versions; call after every other service so that all are listed.
    public static func register(in router: inout RPCRouter) {
        let v1 = GRPCReflectionV1.ServerReflection.serverReflectionInfo
        let services =
            router.services + [
                GRPCReflectionV1.ServerReflection.serviceName, GRPCReflectionV1Alpha.ServerReflection.serviceName,
            ]
        let service = ReflectionService(files: ProtoCodec.fileDescriptors, services: services.sorted())
        // v1alpha has the same messages on the wire; only the service name differs.
        let v1alpha = RPCMethod<Request, Response>(
            service: GRPCReflectionV1Alpha.ServerReflection.serviceName,
            name: v1.name,
            clientStreaming: true,
            serverStreaming: true
        )
        for method in [v1, v1alpha] {
            router.bidirectionalStreaming(method, expensive: true) { requests, _, writer in
                for try await request in requests { try await writer.send(service.answer(request)) }
            }
        }
    }

    func answer(_ request: Request) -> Response {
        var response = Response()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .listServices?:
            var list = GRPCReflectionV1.ListServiceResponse()
            list.service = services.map { name in
                var entry = GRPCReflectionV1.ServiceResponse()
                entry.name = name
                return entry
            }
            response.messageResponse = .listServicesResponse(list)
        case .fileByFilename(let name)?:
            response.messageResponse = filesResponse(files.first { $0.name == name }, notFound: "no file \(name)")
        case .fileContainingSymbol(let symbol)?:
            response.messageResponse = filesResponse(
                files.first { $0.symbols.contains(symbol) },
                notFound: "no symbol \(symbol)"
            )
        case .fileContainingExtension(let request)?:
            response.messageResponse = error(
                .notFound,
                "no extension \(request.extensionNumber) of \(request.containingType)"
            )
        case .allExtensionNumbersOfType(let type)?:
            if files.contains(where: { $0.symbols.contains(type) }) {
                var numbers = GRPCReflectionV1.ExtensionNumberResponse()
                numbers.baseTypeName = type
                response.messageResponse = .allExtensionNumbersResponse(numbers)
            } else {
                response.messageResponse = error(.notFound, "no type \(type)")
            }
        case nil:
            response.messageResponse = error(.invalidArgument, "empty reflection request")
        }
        return response
    }

    /// The file and every file it depends on, transitively, the file itself first.
    private func filesResponse(_ file: ProtoFileDescriptor?, notFound: String) -> Response.MessageResponse {
        guard let file else { return error(.notFound, notFound) }
        var ordered: [ProtoFileDescriptor] = []
        var queue = [file]
        while let next = queue.first {
            queue.removeFirst()
            guard !ordered.contains(where: { $0.name == next.name }) else { continue }
            ordered.append(next)
            queue += next.dependencies.compactMap { dependency in files.first { $0.name == dependency } }
        }
        var found = GRPCReflectionV1.FileDescriptorResponse()
        found.fileDescriptorProto = ordered.map(\.serialized)
        return .fileDescriptorResponse(found)
    }

    private func error(_ code: RPCCode, _ message: String) -> Response.MessageResponse {
        var error = GRPCReflectionV1.ErrorResponse()
        error.errorCode = Int32(code.rawValue)
        error.errorMessage = message
        return .errorResponse(error)
    }
}
