import CaseBridgeHTTP2
import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeTLS
import Logging

/// Limits and retry rules of a client channel, with defaults.
public struct RPCClientConfiguration: Sendable {
    public var maxReceiveMessageBytes = 4 * 1024 * 1024
    public var maxSendMessageBytes = 4 * 1024 * 1024
    public var http2 = HTTP2Settings()
    public var timeouts = ConnectionTimeouts()
    /// Reconnection backoff (gRPC connection-backoff.md): first delay, growth, jitter, ceiling.
    public var initialBackoff: Duration = .seconds(1)
    public var backoffMultiplier = 1.6
    public var backoffJitter = 0.2
    public var maxBackoff: Duration = .seconds(120)
    /// With calls open and nothing heard for this long, PING the peer; with nothing heard for
    /// `keepaliveTimeout` more, drop the connection (a silently cut link) so the next call reconnects.
    public var keepaliveInterval: Duration = .seconds(30)
    public var keepaliveTimeout: Duration = .seconds(10)
    public var protoLimits = ProtoLimits()
    public init() {}
}

/// A successful unary call: the response and the metadata around it.
public struct UnaryResponse<Message: Sendable>: Sendable {
    public var message: Message
    public var initialMetadata: Metadata
    public var trailingMetadata: Metadata
}

/// A client's way to one peer node. Connects on first use, multiplexes calls on one HTTP/2
/// connection, reconnects with backoff after a failure, and checks that the server is `target`.
public final class RPCChannel: Sendable {
    public let endpoint: String
    public let target: PeerIdentity
    /// Sent with every call before the call's own metadata (credentials: "authorization").
    public let callMetadata: Metadata
    let core: ChannelCore
    private let ownedGroup: EventLoopGroup?

    /// `endpoint` is "host:port" (TLS; the server must prove it is `target`) or "unix:/path" (`tls` nil).
    public init(
        endpoint: String,
        target: PeerIdentity,
        tls: TLSContext?,
        configuration: RPCClientConfiguration = RPCClientConfiguration(),
        logger: Logger,
        group: EventLoopGroup? = nil,
        callMetadata: Metadata = Metadata()
    ) {
        self.endpoint = endpoint
        self.target = target
        self.callMetadata = callMetadata
        ownedGroup = group == nil ? EventLoopGroup(threads: 1, name: "cb-client") : nil
        let loop = (group ?? ownedGroup!).next()
        core = ChannelCore(
            endpoint: endpoint,
            target: target,
            tls: tls,
            configuration: configuration,
            logger: logger,
            loop: loop
        )
    }

    public func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ request: Request,
        metadata: Metadata = Metadata(),
        timeout: Duration? = nil
    ) async throws -> Response {
        try await unaryWithMetadata(method, request, metadata: metadata, timeout: timeout).message
    }

    public func unaryWithMetadata<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ request: Request,
        metadata: Metadata = Metadata(),
        timeout: Duration? = nil
    ) async throws -> UnaryResponse<Response> {
        var initial = Metadata()
        var message: Response?
        var trailing = Metadata()
        for try await event in events(method.path, [try encode(request)], metadata: metadata, timeout: timeout) {
            switch event {
            case .initialMetadata(let m): initial = m
            case .message(let bytes):
                guard message == nil else {
                    throw RPCError(.internal, "peer sent more than one response to a unary call")
                }
                message = try decode(Response.self, bytes)
            case .trailingMetadata(let m): trailing = m
            }
        }
        guard let message else { throw RPCError(.internal, "peer ended a unary call without a response") }
        return UnaryResponse(message: message, initialMetadata: initial, trailingMetadata: trailing)
    }

    /// A unary call whose response is returned as it arrived, undecoded: for a caller that keeps
    /// parts of it byte for byte (see `RawFields`). The caller decodes it.
    public func unaryEncoded<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ request: Request,
        timeout: Duration? = nil
    ) async throws -> [UInt8] {
        try await unaryBytes(method.path, try encode(request), timeout: timeout)
    }

    /// A unary call with the request and the response as bytes, untouched: for a caller that sends
    /// what it built itself (a conformance check adding a field a newer node would send).
    public func unaryBytes(_ path: String, _ request: [UInt8], timeout: Duration? = nil) async throws -> [UInt8] {
        var message: [UInt8]?
        for try await event in events(path, [request], metadata: Metadata(), timeout: timeout) {
            guard case .message(let bytes) = event else { continue }
            guard message == nil else { throw RPCError(.internal, "peer sent more than one response to a unary call") }
            message = bytes
        }
        guard let message else { throw RPCError(.internal, "peer ended a unary call without a response") }
        return message
    }

    /// A server-streaming call (or any call: all `requests` are sent, then the request side is closed).
    public func streaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ requests: [Request],
        metadata: Metadata = Metadata(),
        timeout: Duration? = nil
    ) -> AsyncThrowingStream<Response, Error> {
        let (stream, continuation) = AsyncThrowingStream<Response, Error>.makeStream()
        let task = Task {
            do {
                let encoded = try requests.map(encode)
                for try await event in events(method.path, encoded, metadata: metadata, timeout: timeout) {
                    if case .message(let bytes) = event { continuation.yield(try decode(Response.self, bytes)) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Closes the connection; calls in flight fail with UNAVAILABLE.
    /// New trust material (a reload): later connections use `tls`; the open one is closed.
    public func replaceTLS(_ tls: TLSContext) {
        core.loop.execute { [core] in core.replaceTLS(tls) }
    }

    public func close() {
        core.loop.execute { [core] in core.close() }
        ownedGroup?.shutdown()
    }

    enum Event: Sendable {
        case initialMetadata(Metadata)
        case message([UInt8])
        case trailingMetadata(Metadata)
    }

    private func events(
        _ path: String,
        _ requests: [[UInt8]],
        metadata: Metadata,
        timeout: Duration?
    ) -> AsyncThrowingStream<Event, Error> {
        let (stream, continuation) = AsyncThrowingStream<Event, Error>.makeStream()
        var all = callMetadata
        for entry in metadata { all.add(entry.name, entry.value) }
        let call = ClientCall(
            path: path,
            requests: requests,
            metadata: all,
            timeout: timeout,
            maxReceiveMessageBytes: core.configuration.maxReceiveMessageBytes
        ) { event in
            switch event {
            case .initialMetadata(let m): continuation.yield(.initialMetadata(m))
            case .messages(let messages): for m in messages { continuation.yield(.message(m)) }
            case .finished(let error, let trailing):
                continuation.yield(.trailingMetadata(trailing))
                if let error { continuation.finish(throwing: error) } else { continuation.finish() }
            }
        }
        continuation.onTermination = { [core] termination in
            if case .cancelled = termination { core.loop.execute { call.cancel() } }
        }
        core.loop.execute { [core] in core.submit(call) }
        return stream
    }

    private func encode<M: ProtoMessage>(_ message: M) throws -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try ProtoCodec.encode(message) } catch {
            throw RPCError(.internal, "request could not be encoded: \(error)")
        }
        guard bytes.count <= core.configuration.maxSendMessageBytes else {
            throw RPCError(
                .resourceExhausted,
                "request of \(bytes.count) bytes exceeds the limit of \(core.configuration.maxSendMessageBytes) bytes"
            )
        }
        return bytes
    }

    private func decode<M: ProtoMessage>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
        do { return try ProtoCodec.decode(M.self, from: bytes, limits: core.configuration.protoLimits) } catch {
            throw RPCError(.internal, "peer sent a malformed \(M.protoName): \(error)")
        }
    }
}

/// One call on the client side. Lives on the channel's loop.
final class ClientCall: @unchecked Sendable {
    let path: String
    let requests: [[UInt8]]
    let metadata: Metadata
    let timeout: Duration?
    var machine: ClientCallStateMachine
    let observer: (ClientCallStateMachine.Event) -> Void
    var streamID: Int32?
    weak var connection: ClientConnection?
    var deadline: LoopTimer?
    let expiry: ContinuousClock.Instant?

    init(
        path: String,
        requests: [[UInt8]],
        metadata: Metadata,
        timeout: Duration?,
        maxReceiveMessageBytes: Int,
        observer: @escaping (ClientCallStateMachine.Event) -> Void
    ) {
        self.path = path
        self.requests = requests
        self.metadata = metadata
        self.timeout = timeout
        self.expiry = timeout.map { ContinuousClock.now.advanced(by: $0) }
        self.machine = ClientCallStateMachine(maxReceiveMessageBytes: maxReceiveMessageBytes)
        self.observer = observer
    }

    func deliver(_ event: ClientCallStateMachine.Event?) {
        guard var event else { return }
        if case .finished(let error, let trailing) = event {
            deadline = nil
            // A server often resets the stream at the deadline before our own timer fires; past our
            // deadline, that is still DEADLINE_EXCEEDED to the caller.
            if error?.code == .cancelled, let expiry, ContinuousClock.now >= expiry {
                event = .finished(RPCError(.deadlineExceeded, "deadline of \(timeout!) exceeded"), trailing: trailing)
            }
        }
        observer(event)
    }

    func fail(_ error: RPCError) { deliver(machine.fail(error)) }

    func cancel() {
        guard !machine.finished else { return }
        if let streamID, let connection { connection.reset(streamID) }
        fail(RPCError(.cancelled, "call cancelled by the caller"))
    }
}

/// The channel's connection state, on its loop.
final class ChannelCore: @unchecked Sendable {
    let endpoint: String
    let target: PeerIdentity
    /// On the loop only; a reload replaces it.
    var tls: TLSContext?
    let configuration: RPCClientConfiguration
    let logger: Logger
    let loop: EventLoop

    private enum State {
        case idle
        case connecting(ClientConnection)
        case ready(ClientConnection)
        case waiting(until: ContinuousClock.Instant, error: String)
    }
    private var state = State.idle
    private var pending: [ClientCall] = []
    private var failures = 0

    init(
        endpoint: String,
        target: PeerIdentity,
        tls: TLSContext?,
        configuration: RPCClientConfiguration,
        logger: Logger,
        loop: EventLoop
    ) {
        self.endpoint = endpoint
        self.target = target
        self.tls = tls
        self.configuration = configuration
        self.logger = logger
        self.loop = loop
    }

    func submit(_ call: ClientCall) {
        if let timeout = call.timeout {
            call.deadline = LoopTimer(loop: loop, after: timeout) { [weak call] in
                guard let call else { return }
                // The status first: resetting the stream closes it at once, which would report CANCELLED.
                call.fail(RPCError(.deadlineExceeded, "deadline of \(timeout) exceeded"))
                if let streamID = call.streamID { call.connection?.reset(streamID) }
            }
        }
        switch state {
        case .ready(let connection) where connection.acceptsCalls:
            connection.start(call)
        case .connecting:
            pending.append(call)
        case .waiting(let until, let error) where ContinuousClock.now < until:
            let seconds = Double((until - .now).components.seconds)
            call.fail(
                RPCError(
                    .unavailable,
                    "cannot reach \(target.nodeID) at \(endpoint): \(error) "
                        + "(next attempt in \(Int(seconds.rounded(.up)))s)"
                )
            )
        default:
            pending.append(call)
            connect()
        }
    }

    private func connect() {
        let connection = ClientConnection(core: self)
        state = .connecting(connection)
        let address: SocketAddress
        do { address = try SocketAddress(endpoint: endpoint) } catch {
            connectionFailed(connection, error)
            return
        }
        if Connection.connect(
            to: address,
            expectedPeer: target,
            loop: loop,
            tls: tls,
            timeouts: configuration.timeouts,
            logger: logger,
            delegate: connection
        ) == nil, case .connecting(let current) = state, current === connection {
            connectionFailed(connection, ConnectionError(.io, "could not start connecting to \(endpoint)"))
        }
    }

    func connectionReady(_ connection: ClientConnection) {
        guard case .connecting(let current) = state, current === connection else { return }
        state = .ready(connection)
        failures = 0
        let calls = pending
        pending.removeAll()
        for call in calls where !call.machine.finished { connection.start(call) }
    }

    func connectionFailed(_ connection: ClientConnection, _ error: ConnectionError) {
        switch state {
        case .connecting(let current) where current === connection:
            failures += 1
            let delay = backoff(failures)
            state = .waiting(until: .now + delay, error: error.description)
            logger.info(
                "peer unreachable",
                metadata: ["peer": "\(target)", "endpoint": "\(endpoint)", "error": "\(error)", "retry-in": "\(delay)"]
            )
            let calls = pending
            pending.removeAll()
            for call in calls {
                call.fail(RPCError(.unavailable, "cannot reach \(target.nodeID) at \(endpoint): \(error)"))
            }
        case .ready(let current) where current === connection:
            state = .idle
        default:
            break
        }
    }

    /// gRPC connection backoff: initial * multiplier^(n-1), capped, with ± jitter.
    func backoff(_ attempt: Int) -> Duration {
        let c = configuration
        let seconds = min(c.initialBackoff.seconds * pow(c.backoffMultiplier, attempt - 1), c.maxBackoff.seconds)
        let jittered = seconds * Double.random(in: (1 - c.backoffJitter)...(1 + c.backoffJitter))
        return .milliseconds(Int64(jittered * 1000))
    }

    /// New trust material (a reload): the next connection uses it; the open one is closed so that
    /// a peer now revoked is not sent anything more (calls in flight fail UNAVAILABLE: retried).
    func replaceTLS(_ tls: TLSContext) {
        self.tls = tls
        dropConnection()
    }

    private func dropConnection() {
        switch state {
        case .ready(let connection), .connecting(let connection): connection.close()
        default: break
        }
        state = .idle
    }

    func close() {
        dropConnection()
        for call in pending { call.fail(RPCError(.unavailable, "channel closed")) }
        pending.removeAll()
    }
}

private func pow(_ base: Double, _ exponent: Int) -> Double {
    (0..<max(0, exponent)).reduce(1.0) { result, _ in result * base }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// One HTTP/2 connection of a channel.
final class ClientConnection: ConnectionDelegate, HTTP2SessionDelegate, @unchecked Sendable {
    /// Weak: a channel may be released while its connection is still closing.
    private weak var core: ChannelCore?
    private let target: PeerIdentity
    private let authority: String
    private var connection: Connection?
    private let session: HTTP2Session
    private var calls: [Int32: ClientCall] = [:]
    private var goingAway = false
    private var lastRead = ContinuousClock.now
    private var keepalive: LoopTimer?
    private let keepaliveInterval: Duration
    private let keepaliveTimeout: Duration

    init(core: ChannelCore) {
        self.core = core
        target = core.target
        // A Unix socket path is not a valid :authority (nghttp2 refuses the stream); use localhost.
        authority = core.endpoint.hasPrefix("unix:") ? "localhost" : core.endpoint
        keepaliveInterval = core.configuration.keepaliveInterval
        keepaliveTimeout = core.configuration.keepaliveTimeout
        session = HTTP2Session(role: .client, settings: core.configuration.http2)
        session.delegate = self
    }

    var acceptsCalls: Bool { connection != nil && !goingAway }

    func start(_ call: ClientCall) {
        guard !call.machine.finished else { return }
        let headers = ClientCallStateMachine.requestHeaders(
            path: call.path,
            authority: authority,
            timeout: call.timeout,
            metadata: call.metadata
        )
        guard let streamID = session.submitRequest(headers: headers) else {
            call.fail(RPCError(.unavailable, "no new stream allowed on the connection to \(target.nodeID)"))
            return
        }
        call.streamID = streamID
        call.connection = self
        calls[streamID] = call
        for request in call.requests { session.send(GRPCWire.frame(request), streamID: streamID) }
        session.end(streamID: streamID)
        flush()
    }

    func reset(_ streamID: Int32) {
        session.resetStream(streamID)
        flush()
    }

    func close() { connection?.close() }

    // MARK: TLS connection events

    func connectionReady(_ connection: Connection) {
        self.connection = connection
        lastRead = .now
        let tick = min(keepaliveInterval, keepaliveTimeout) / 2
        keepalive = LoopTimer(loop: connection.loop, after: tick, repeating: true) { [weak self] in self?.checkAlive() }
        core?.connectionReady(self)
        flush()
    }

    /// Only while calls wait for answers: an idle channel need not keep its connection alive.
    private func checkAlive() {
        guard let connection, !calls.isEmpty else { return }
        let quiet = ContinuousClock.now - lastRead
        if quiet > keepaliveInterval + keepaliveTimeout {
            connection.abort(ConnectionError(.idle, "no answer from \(target.nodeID) for \(quiet) (keepalive)"))
        } else if quiet > keepaliveInterval {
            session.submitPing()
            flush()
        }
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        lastRead = .now
        do { try session.receive(bytes) } catch {
            failAll(RPCError(.unavailable, "HTTP/2 error from \(target.nodeID): \(error)"))
            connection.close()
        }
        flush()
    }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        let reason = error ?? ConnectionError(.closedByPeer, "connection closed")
        failAll(RPCError(.unavailable, "connection to \(target.nodeID) lost: \(reason)"))
        self.connection = nil
        keepalive = nil
        core?.connectionFailed(self, reason)
    }

    private func failAll(_ error: RPCError) {
        let open = calls
        calls.removeAll()
        for call in open.values { call.fail(error) }
    }

    // MARK: HTTP/2 events

    func session(_ session: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool) {
        guard let call = calls[streamID] else { return }
        call.deliver(call.machine.receiveHeaders(headers, endStream: endStream))
    }

    func session(_ session: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32) {
        guard let call = calls[streamID] else { return }
        call.deliver(call.machine.receiveData(data))
        if call.machine.finished { session.resetStream(streamID) }
    }

    func session(_ session: HTTP2Session, endOfDataStreamID streamID: Int32) {}
    func session(_ session: HTTP2Session, sentEndOfStreamID streamID: Int32) {}

    func session(_ session: HTTP2Session, closedStreamID streamID: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        call.deliver(call.machine.streamClosed(errorCode: errorCode))
    }

    func session(_ session: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32) {
        goingAway = true
        // Calls above the last stream the server will process were never seen: safe to fail as UNAVAILABLE.
        for (id, call) in calls where id > lastStreamID {
            calls.removeValue(forKey: id)
            call.fail(RPCError(.unavailable, "\(target.nodeID) is shutting down (GOAWAY)"))
        }
    }

    private func flush() {
        guard let connection else { return }
        do { try session.drainOutput { connection.write($0) } } catch { connection.close() }
        if goingAway, calls.isEmpty { connection.close() }
    }
}
