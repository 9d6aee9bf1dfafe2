import CaseBridgeHTTP2

/// The shape of a method: how many messages go each way.
public enum RPCKind: Sendable, Equatable {
    case unary, serverStreaming, clientStreaming, bidirectionalStreaming
    var singleRequest: Bool { self == .unary || self == .serverStreaming }
}

/// What the router says about a request's path.
enum RouteLookup: Equatable {
    case method(RPCKind)
    case unknownMethod
    case unknownService
}

/// What a server learned from a request's headers.
struct RequestHead: Sendable, Equatable {
    var path: String
    var timeout: Duration?
    var metadata: Metadata
}

/// One server-side call, from request headers to status, with no I/O: every input returns what
/// to send or deliver. The connection applies the results to nghttp2 and the handler.
struct ServerCallStateMachine {
    enum Outbound: Equatable {
        case responseHeaders([HTTP2Header])
        case message([UInt8])
        /// Trailers after a response started.
        case trailers([HTTP2Header])
        /// Headers that are the whole response (no message was sent).
        case trailersOnly([HTTP2Header])
    }

    enum HeadersResult: Equatable {
        case accept(RequestHead, RPCKind)
        case reject(Outbound)
    }

    enum InboundResult: Equatable {
        case messages([[UInt8]])
        case endOfRequests
        /// The request broke the protocol; send this and close the stream.
        case reject(Outbound)
    }

    private enum State { case idle, open, closed }
    private var state = State.idle
    private var kind = RPCKind.unary
    private var deframer: MessageDeframer
    private var requestMessages = 0
    private var responseStarted = false
    private(set) var requestComplete = false

    init(maxReceiveMessageBytes: Int) {
        deframer = MessageDeframer(maxMessageBytes: maxReceiveMessageBytes)
    }

    var isClosed: Bool { state == .closed }

    mutating func receiveHeaders(
        _ headers: [HTTP2Header],
        endStream: Bool,
        oversized: Bool,
        lookup: (String) -> RouteLookup
    ) -> HeadersResult {
        guard state == .idle else { return .reject(reject(.internal, "unexpected headers")) }
        state = .open
        func value(_ name: String) -> String? { headers.first { $0.name == name }?.value }
        if oversized {
            return .reject(reject(.resourceExhausted, "request headers exceed the header list size limit"))
        }
        guard value(":method") == "POST" else {
            return .reject(reject(.internal, "method must be POST", httpStatus: "405"))
        }
        guard let contentType = value("content-type"), contentType.hasPrefix(GRPCWire.contentType) else {
            return .reject(reject(.internal, "content-type must be application/grpc", httpStatus: "415"))
        }
        guard let path = value(":path"), path.hasPrefix("/") else {
            return .reject(reject(.unimplemented, "missing :path"))
        }
        if let encoding = value("grpc-encoding"), encoding != "identity" {
            return .reject(
                reject(
                    .unimplemented,
                    "grpc-encoding \(encoding) is not supported; use identity",
                    extra: [HTTP2Header("grpc-accept-encoding", "identity")]
                )
            )
        }
        var timeout: Duration? = nil
        if let text = value("grpc-timeout") {
            guard let parsed = GRPCWire.parseTimeout(text) else {
                return .reject(reject(.internal, "malformed grpc-timeout"))
            }
            timeout = parsed
        }
        let found: RPCKind
        switch lookup(path) {
        case .method(let kind): found = kind
        case .unknownMethod: return .reject(reject(.unimplemented, "unknown method \(path)"))
        case .unknownService:
            let service = path.dropFirst().split(separator: "/").first.map(String.init) ?? ""
            return .reject(reject(.unimplemented, "unknown service \(service)"))
        }
        kind = found
        if endStream { requestComplete = true }
        if endStream, found.singleRequest {
            return .reject(reject(.internal, "request ended without a message"))
        }
        return .accept(RequestHead(path: path, timeout: timeout, metadata: GRPCWire.metadata(from: headers)), found)
    }

    mutating func receiveData(_ bytes: UnsafeRawBufferPointer) -> InboundResult {
        guard state == .open, !requestComplete else { return .messages([]) }
        do {
            let messages = try deframer.push(bytes)
            requestMessages += messages.count
            if kind.singleRequest, requestMessages > 1 {
                return .reject(reject(.internal, "more than one request message for a single-request method"))
            }
            return .messages(messages)
        } catch {
            return .reject(reject(error.code, error.message))
        }
    }

    mutating func receiveEndOfStream() -> InboundResult {
        guard state == .open, !requestComplete else { return .messages([]) }
        requestComplete = true
        if deframer.hasPartialMessage { return .reject(reject(.internal, "request ended inside a message")) }
        if kind.singleRequest, requestMessages == 0 {
            return .reject(reject(.internal, "request ended without a message"))
        }
        return .endOfRequests
    }

    /// A response message; the response headers go first when this is the first.
    mutating func send(message: [UInt8], initialMetadata: Metadata) -> [Outbound] {
        guard state == .open else { return [] }
        var out: [Outbound] = []
        if !responseStarted {
            responseStarted = true
            out.append(.responseHeaders(Self.responseHeaders(initialMetadata)))
        }
        out.append(.message(GRPCWire.frame(message)))
        return out
    }

    /// The call's status; nil once the call was already closed.
    mutating func finish(
        _ code: RPCCode,
        _ message: String,
        initialMetadata: Metadata,
        trailingMetadata: Metadata
    ) -> Outbound? {
        guard state == .open else { return nil }
        state = .closed
        let trailers = GRPCWire.trailers(code, message, trailingMetadata)
        return responseStarted ? .trailers(trailers) : .trailersOnly(Self.responseHeaders(initialMetadata) + trailers)
    }

    private mutating func reject(
        _ code: RPCCode,
        _ message: String,
        httpStatus: String = "200",
        extra: [HTTP2Header] = []
    ) -> Outbound {
        let wasStarted = responseStarted
        state = .closed
        let trailers = GRPCWire.trailers(code, message, Metadata()) + extra
        if wasStarted { return .trailers(trailers) }
        return .trailersOnly(
            [HTTP2Header(":status", httpStatus), HTTP2Header("content-type", GRPCWire.contentType)] + trailers
        )
    }

    static func responseHeaders(_ metadata: Metadata) -> [HTTP2Header] {
        [
            HTTP2Header(":status", "200"), HTTP2Header("content-type", GRPCWire.contentType),
            HTTP2Header("grpc-accept-encoding", "identity"),
        ] + GRPCWire.headers(from: metadata)
    }
}
