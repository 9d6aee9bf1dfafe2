import CaseBridgeHTTP2

/// One client-side call's response, with no I/O: headers, messages, trailers in, a result out.
struct ClientCallStateMachine {
    enum Event: Equatable {
        case initialMetadata(Metadata)
        case messages([[UInt8]])
        /// The call is over: `.ok` or the error.
        case finished(RPCError?, trailing: Metadata)
    }

    private var deframer: MessageDeframer
    private var headersReceived = false
    private(set) var finished = false

    init(maxReceiveMessageBytes: Int) {
        deframer = MessageDeframer(maxMessageBytes: maxReceiveMessageBytes)
    }

    static func requestHeaders(path: String, authority: String, timeout: Duration?, metadata: Metadata) -> [HTTP2Header]
    {
        var headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "https"), HTTP2Header(":path", path),
            HTTP2Header(":authority", authority), HTTP2Header("content-type", GRPCWire.contentType),
            HTTP2Header("te", "trailers"), HTTP2Header("user-agent", "casebridge-grpc/1"),
            HTTP2Header("grpc-accept-encoding", "identity"),
        ]
        if let timeout { headers.append(HTTP2Header("grpc-timeout", GRPCWire.formatTimeout(timeout))) }
        return headers + GRPCWire.headers(from: metadata)
    }

    mutating func receiveHeaders(_ headers: [HTTP2Header], endStream: Bool) -> Event? {
        guard !finished else { return nil }
        if !headersReceived {
            headersReceived = true
            let status = headers.first { $0.name == ":status" }.flatMap { Int($0.value) } ?? 0
            if status != 200 {
                return finish(
                    RPCError(GRPCWire.code(forHTTPStatus: status), "HTTP status \(status) from peer"),
                    headers
                )
            }
            if let type = headers.first(where: { $0.name == "content-type" })?.value,
                !type.hasPrefix(GRPCWire.contentType)
            {
                return finish(RPCError(.unknown, "peer answered with content-type \(type)"), headers)
            }
            if !endStream { return .initialMetadata(GRPCWire.metadata(from: headers)) }
        }
        // Trailers, or a trailers-only response.
        return finish(status(from: headers), headers)
    }

    mutating func receiveData(_ bytes: UnsafeRawBufferPointer) -> Event? {
        guard !finished else { return nil }
        guard headersReceived else { return finish(RPCError(.internal, "peer sent data before headers"), []) }
        do {
            return .messages(try deframer.push(bytes))
        } catch {
            return finish(error, [])
        }
    }

    /// The stream closed; if no status came, the reason is the reset code or a missing status.
    mutating func streamClosed(errorCode: UInt32) -> Event? {
        guard !finished else { return nil }
        let error: RPCError
        switch errorCode {
        case 0: error = RPCError(.internal, "stream ended without a status")
        case 0x7: error = RPCError(.unavailable, "peer refused the stream (REFUSED_STREAM)")
        case 0x8: error = RPCError(.cancelled, "peer cancelled the stream")
        // A condition of the moment (the contract keeps RESOURCE_EXHAUSTED for what a retry cannot cure).
        case 0xb: error = RPCError(.unavailable, "peer says calm down (ENHANCE_YOUR_CALM)")
        default: error = RPCError(.internal, "stream reset by peer (HTTP/2 error \(errorCode))")
        }
        return finish(error, [])
    }

    mutating func fail(_ error: RPCError) -> Event? {
        guard !finished else { return nil }
        return finish(error, [])
    }

    private func status(from trailers: [HTTP2Header]) -> RPCError? {
        guard let text = trailers.first(where: { $0.name == "grpc-status" })?.value, let code = Int(text) else {
            return RPCError(.internal, "response has no grpc-status")
        }
        if code == 0 { return nil }
        let message = trailers.first { $0.name == "grpc-message" }.map { GRPCWire.percentDecode($0.value) } ?? ""
        return RPCError(RPCCode(rawValue: code), message, metadata: GRPCWire.metadata(from: trailers))
    }

    private mutating func finish(_ error: RPCError?, _ trailers: [HTTP2Header]) -> Event {
        finished = true
        return .finished(error, trailing: GRPCWire.metadata(from: trailers))
    }
}
