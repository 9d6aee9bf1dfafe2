import CaseBridgeProto
import CaseBridgeTLS
import Logging
import Synchronization

/// One call as its handler sees it: who is calling, until when, with what metadata; and the
/// way back. Handlers run on the worker pool; sending hops to the connection's loop.
public final class ServerCall: Sendable {
    /// The caller's identity, from its verified certificate: never from the message.
    public let peer: PeerIdentity
    public let path: String
    public let deadline: ContinuousClock.Instant?
    public let requestMetadata: Metadata
    let requests: AsyncThrowingStream<[UInt8], Error>
    let limits: ProtoLimits
    let maxSendMessageBytes: Int
    let logger: Logger

    enum Action: Sendable {
        /// A response message; `sent` runs once the connection has room for more (backpressure).
        case message([UInt8], initialMetadata: Metadata, sent: @Sendable () -> Void)
        /// The status; `lastMessage` is a unary call's one response, which goes with it.
        case finish(RPCCode, String, initialMetadata: Metadata, trailingMetadata: Metadata, lastMessage: [UInt8]?)
        /// The handler took a request message of this many bytes: the peer may send more.
        case consumed(Int)
    }

    private struct State {
        var initialMetadata = Metadata()
        var trailingMetadata = Metadata()
        var closed = false
        var requestBytes: [UInt8]?
        /// A unary call's response, held to go with the status (`sendEncoded(_:withStatus:)`).
        var heldResponse: [UInt8]?
    }
    private let state = Mutex(State())
    private let perform: @Sendable (Action) -> Void
    /// Told of every request message that could not be decoded (for the audit log).
    private let onMalformed: @Sendable (String) -> Void

    init(
        peer: PeerIdentity,
        head: RequestHead,
        requests: AsyncThrowingStream<[UInt8], Error>,
        limits: ProtoLimits,
        maxSendMessageBytes: Int,
        logger: Logger,
        onMalformed: @escaping @Sendable (String) -> Void = { _ in },
        perform: @escaping @Sendable (Action) -> Void
    ) {
        self.peer = peer
        self.path = head.path
        self.deadline = head.timeout.map { ContinuousClock.now.advanced(by: $0) }
        self.requestMetadata = head.metadata
        self.requests = requests
        self.limits = limits
        self.maxSendMessageBytes = maxSendMessageBytes
        self.logger = logger
        self.onMalformed = onMalformed
        self.perform = perform
    }

    /// Metadata sent with the response headers (before the first message).
    public func setInitialMetadata(_ metadata: Metadata) { state.withLock { $0.initialMetadata = metadata } }
    /// Metadata sent with the status.
    public func setTrailingMetadata(_ metadata: Metadata) { state.withLock { $0.trailingMetadata = metadata } }

    /// The request message exactly as it arrived (single-request methods): what a node stores, so
    /// that fields a newer sender added are kept even though this version skips them.
    public var requestBytes: [UInt8]? { state.withLock { $0.requestBytes } }

    /// True once the call ended: answered, cancelled by the client, or past its deadline.
    public var isClosed: Bool { state.withLock { $0.closed } }

    func markClosed() { state.withLock { $0.closed = true } }

    func consumed(_ bytes: Int) { perform(.consumed(bytes)) }

    /// A request message as `M`, within this server's limits; malformed bytes are refused (and
    /// reported) as `invalidArgument`.
    public func decode<M: ProtoMessage>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
        do {
            return try ProtoCodec.decode(M.self, from: bytes, limits: limits)
        } catch {
            let refusal = RPCError(.invalidArgument, "malformed \(M.protoName): \(error)")
            onMalformed("\(path): \(refusal.message)")
            throw refusal
        }
    }

    func singleRequest<M: ProtoMessage>() async throws -> M {
        let bytes = try await singleRequestBytes()
        let message = try decode(M.self, bytes)
        state.withLock { $0.requestBytes = bytes }
        return message
    }

    /// The one request message of a unary or server-streaming call, not yet decoded.
    func singleRequestBytes() async throws -> [UInt8] {
        var iterator = requests.makeAsyncIterator()
        guard let bytes = try await iterator.next() else {
            throw RPCError(.internal, "request ended without a message")
        }
        consumed(bytes.count)
        return bytes
    }

    /// `withStatus` for a unary call's one response (see `sendEncoded`).
    func send<M: ProtoMessage>(_ message: M, withStatus: Bool = false) async throws {
        let bytes: [UInt8]
        do {
            bytes = try ProtoCodec.encode(message)
        } catch {
            logger.error("response could not be encoded", metadata: ["path": "\(path)", "error": "\(error)"])
            throw RPCError(.internal, "response could not be encoded")
        }
        try await sendEncoded(bytes, withStatus: withStatus)
    }

    /// Sends a response message the handler encoded itself. A unary call's one response is held and
    /// goes with the status (`withStatus`): one step on the connection's thread and one write for
    /// both, instead of a round trip to this thread between them and a write each.
    func sendEncoded(_ bytes: [UInt8], withStatus: Bool = false) async throws {
        guard bytes.count <= maxSendMessageBytes else {
            throw RPCError(
                .resourceExhausted,
                "response of \(bytes.count) bytes exceeds the limit of \(maxSendMessageBytes) bytes"
            )
        }
        let initial = try state.withLock { state throws -> Metadata in
            if state.closed { throw CancellationError() }
            if withStatus { state.heldResponse = bytes }
            return state.initialMetadata
        }
        if withStatus { return }
        // Waits while the connection holds more unsent bytes than its limit: a peer that reads
        // slowly slows this handler down instead of filling memory.
        await withCheckedContinuation { (room: CheckedContinuation<Void, Never>) in
            perform(.message(bytes, initialMetadata: initial, sent: { room.resume() }))
        }
        if isClosed { throw CancellationError() }
    }

    /// Runs a handler body and answers with its outcome as the call's status.
    func run(_ body: () async throws -> Void) async {
        do {
            try await body()
            finish(.ok, "")
        } catch let error as RPCError {
            finish(error.code, error.message, extra: error.metadata)
        } catch is CancellationError {
            finish(.cancelled, "call cancelled")
        } catch {
            // Unknown errors may carry personal data: log the type, tell the peer nothing specific.
            logger.error("handler failed", metadata: ["path": "\(path)", "error-type": "\(type(of: error))"])
            finish(.unknown, "internal error")
        }
    }

    private func finish(_ code: RPCCode, _ message: String, extra: Metadata = Metadata()) {
        let (initial, trailing, held, wasClosed) = state.withLock { state in
            defer {
                state.closed = true
                state.heldResponse = nil
            }
            var trailing = state.trailingMetadata
            for entry in extra { trailing.add(entry.name, entry.value) }
            return (state.initialMetadata, trailing, state.heldResponse, state.closed)
        }
        if !wasClosed {
            perform(.finish(code, message, initialMetadata: initial, trailingMetadata: trailing, lastMessage: held))
        }
    }
}
