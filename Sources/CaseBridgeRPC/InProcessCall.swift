import CaseBridgeProto
import CaseBridgeTLS
import Logging

/// A call to a router's handler from inside the process, without HTTP/2: what a gateway in front
/// of the same handlers uses (the console's Connect JSON over HTTPS). The handler runs exactly as
/// for a gRPC call: the same checks, the same metadata, the same status codes.
public final class InProcessCall: Sendable {
    public enum Event: Sendable {
        /// A response message; call `sent` once it is written, so the handler may send the next.
        case message([UInt8], sent: @Sendable () -> Void)
        case finished(RPCCode, String, trailing: Metadata)
    }

    public let events: AsyncStream<Event>
    public let kind: RPCKind
    private let call: ServerCall
    private let task: Task<Void, Never>

    /// nil when the router has no such method.
    public init?(
        router: RPCRouter,
        path: String,
        request: [UInt8],
        metadata: Metadata,
        peer: PeerIdentity,
        limits: ProtoLimits,
        maxSendMessageBytes: Int,
        logger: Logger
    ) {
        guard let route = router.route(path) else { return nil }
        let (requests, input) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        input.yield(request)
        input.finish()
        let (events, output) = AsyncStream<Event>.makeStream()
        let call = ServerCall(
            peer: peer,
            head: RequestHead(path: path, timeout: nil, metadata: metadata),
            requests: requests,
            limits: limits,
            maxSendMessageBytes: maxSendMessageBytes,
            logger: logger
        ) { action in
            switch action {
            case .message(let bytes, _, let sent): output.yield(.message(bytes, sent: sent))
            case .finish(let code, let message, _, let trailing, let last):
                if let last { output.yield(.message(last, sent: {})) }
                output.yield(.finished(code, message, trailing: trailing))
                output.finish()
            case .consumed: break
            }
        }
        self.events = events
        self.kind = route.kind
        self.call = call
        task = Task { await route.run(call) }
    }

    /// The client went away: the handler sees its call closed and stops.
    public func cancel() {
        call.markClosed()
        task.cancel()
    }
}
