import CaseBridgeProto
import Logging

/// The methods a server answers, by path. Register handlers before starting the server.
public struct RPCRouter: Sendable {
    struct Route: Sendable {
        let kind: RPCKind
        /// Counted against ``PeerLimits/maxExpensiveCalls``: lists, watches, reflection.
        var expensive = false
        let run: @Sendable (ServerCall) async -> Void
    }

    private(set) var routes: [String: Route] = [:]
    public init() {}

    /// Fully qualified names of the services with at least one method registered.
    public var services: [String] {
        Set(routes.keys.compactMap { $0.dropFirst().split(separator: "/").first.map(String.init) }).sorted()
    }

    func lookup(_ path: String) -> RouteLookup {
        if let route = routes[path] { return .method(route.kind) }
        let service = path.dropFirst().split(separator: "/").first.map(String.init) ?? ""
        return services.contains(service) ? .unknownMethod : .unknownService
    }

    func route(_ path: String) -> Route? { routes[path] }

    /// One request, one response.
    public mutating func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (Request, ServerCall) async throws -> Response
    ) {
        routes[method.path] = Route(kind: .unary) { call in
            await call.run {
                let request: Request = try await call.singleRequest()
                try await call.send(try await handler(request, call), withStatus: true)
            }
        }
    }

    /// One request, one response the handler gives already encoded (e.g. with parts stored byte
    /// for byte, see `RawFields`); it must be a valid `Response`.
    public mutating func unaryEncoded<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable (Request, ServerCall) async throws -> [UInt8]
    ) {
        routes[method.path] = Route(kind: .unary) { call in
            await call.run {
                let request: Request = try await call.singleRequest()
                try await call.sendEncoded(try await handler(request, call), withStatus: true)
            }
        }
    }

    /// One request the handler decodes itself (`ServerCall.decode`) if it needs to: one that can
    /// answer some requests from their bytes as they arrived (a retry known by its digest).
    public mutating func unaryUndecoded<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ handler: @escaping @Sendable ([UInt8], ServerCall) async throws -> Response
    ) {
        routes[method.path] = Route(kind: .unary) { call in
            await call.run {
                let bytes = try await call.singleRequestBytes()
                try await call.send(try await handler(bytes, call), withStatus: true)
            }
        }
    }

    /// One request, a stream of responses. `expensive` calls count against a peer's own limit.
    public mutating func serverStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        expensive: Bool = false,
        _ handler: @escaping @Sendable (Request, ServerCall, ResponseWriter<Response>) async throws -> Void
    ) {
        routes[method.path] = Route(kind: .serverStreaming, expensive: expensive) { call in
            await call.run {
                let request: Request = try await call.singleRequest()
                try await handler(request, call, ResponseWriter(call: call))
            }
        }
    }

    /// Streams both ways.
    public mutating func bidirectionalStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        expensive: Bool = false,
        _ handler:
            @escaping @Sendable (RequestStream<Request>, ServerCall, ResponseWriter<Response>) async throws
            -> Void
    ) {
        routes[method.path] = Route(kind: .bidirectionalStreaming, expensive: expensive) { call in
            await call.run {
                try await handler(RequestStream(call: call), call, ResponseWriter(call: call))
            }
        }
    }
}

/// Sends a server's response messages, in order.
public struct ResponseWriter<Response: ProtoMessage>: Sendable {
    let call: ServerCall
    public func send(_ message: Response) async throws { try await call.send(message) }
}

/// The messages a client streams to a server handler.
public struct RequestStream<Request: ProtoMessage>: AsyncSequence, Sendable {
    let call: ServerCall
    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: AsyncThrowingStream<[UInt8], Error>.AsyncIterator
        let call: ServerCall
        public mutating func next() async throws -> Request? {
            guard let bytes = try await inner.next() else { return nil }
            call.consumed(bytes.count)
            return try call.decode(Request.self, bytes)
        }
    }
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: call.requests.makeAsyncIterator(), call: call)
    }
}
