import CaseBridgeHTTP2
import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeTLS
import Foundation
import Logging
import Synchronization

/// Every limit of a server, with defaults.
public struct RPCServerConfiguration: Sendable {
    /// "host:port" (port 0 picks a free one; ``RPCServer/port`` tells which), or "unix:/path" for
    /// a local plaintext socket, such as the console's.
    public var address = "127.0.0.1:0"
    /// The identity handlers see for callers on a Unix socket, which present no certificate.
    public var localPeer: PeerIdentity? = nil
    /// Event loop threads; 0 means one per core.
    public var loopThreads = 0
    public var maxConnections = 4096
    public var maxReceiveMessageBytes = 4 * 1024 * 1024
    public var maxSendMessageBytes = 4 * 1024 * 1024
    public var http2 = HTTP2Settings()
    public var timeouts = ConnectionTimeouts()
    /// A connection with no open call for this long is closed (GOAWAY first).
    public var idleTimeout: Duration = .seconds(300)
    /// Ping an otherwise quiet connection this often; close it if nothing arrives for another `keepaliveTimeout`.
    public var keepaliveInterval: Duration = .seconds(60)
    public var keepaliveTimeout: Duration = .seconds(20)
    /// Longest time a graceful shutdown waits for calls in flight.
    public var shutdownGracePeriod: Duration = .seconds(10)
    public var protoLimits = ProtoLimits()

    public init() {}
}

/// A gRPC server over TLS 1.3 with mutual certificates.
public final class RPCServer: Sendable {
    public let port: Int
    let core: ServerCore
    private let listener: Listener
    private let group: EventLoopGroup

    /// Called for every connection refused during the TLS handshake (for the audit log).
    public typealias RefusalHandler = @Sendable (_ remoteAddress: String, _ error: ConnectionError) -> Void

    /// `tls` is required for TCP; a Unix socket address (the console) runs without it.
    public init(configuration: RPCServerConfiguration, tls: TLSContext?, router: RPCRouter, logger: Logger,
                onRefusedConnection: RefusalHandler? = nil) throws {
        let group = EventLoopGroup(threads: configuration.loopThreads == 0 ? ProcessInfo.processInfo.activeProcessorCount : configuration.loopThreads,
                                   name: "cb-server")
        let core = ServerCore(configuration: configuration, router: router, logger: logger, onRefusedConnection: onRefusedConnection)
        do {
            listener = try Listener(address: configuration.address, group: group, tls: tls,
                                       timeouts: configuration.timeouts, maxConnections: configuration.maxConnections,
                                       logger: logger) { loop in ServerConnection(core: core, loop: loop) }
        } catch {
            group.shutdown()
            throw error
        }
        self.group = group
        self.core = core
        self.port = listener.port
        logger.info("listening", metadata: ["address": "\(configuration.address)", "port": "\(listener.port)"])
    }

    /// Connections open now (including ones still in their TLS handshake).
    public var openConnections: Int { listener.openConnections }

    /// Stops accepting, lets calls in flight finish (up to the grace period), then closes everything.
    public func shutdown() async {
        listener.close()
        let connections = core.connections.withLock { Array($0.values) }
        for connection in connections { connection.loop.execute { connection.beginGracefulShutdown() } }
        let deadline = ContinuousClock.now.advanced(by: core.configuration.shutdownGracePeriod)
        while ContinuousClock.now < deadline, core.connections.withLock({ !$0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for connection in core.connections.withLock({ Array($0.values) }) {
            connection.loop.execute { connection.abort(reason: "shutdown grace period over") }
        }
        while core.connections.withLock({ !$0.isEmpty }) { try? await Task.sleep(for: .milliseconds(10)) }
        group.shutdown()
    }
}

/// What every connection of one server shares.
final class ServerCore: Sendable {
    let configuration: RPCServerConfiguration
    let router: RPCRouter
    let logger: Logger
    let onRefusedConnection: RPCServer.RefusalHandler?
    let connections = Mutex<[ObjectIdentifier: ServerConnection]>([:])

    init(configuration: RPCServerConfiguration, router: RPCRouter, logger: Logger, onRefusedConnection: RPCServer.RefusalHandler?) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        self.onRefusedConnection = onRefusedConnection
    }
}

/// One client connection on one loop: HTTP/2 framing in, calls out to handlers, responses back.
final class ServerConnection: ConnectionDelegate, HTTP2SessionDelegate, @unchecked Sendable {
    let core: ServerCore
    let loop: EventLoop
    private var connection: Connection?
    private let session: HTTP2Session
    private var streams: [Int32: Stream] = [:]
    private var peer: PeerIdentity?
    private var lastRead = ContinuousClock.now
    private var lastCallEnded = ContinuousClock.now
    private var housekeeping: LoopTimer?
    private var draining = false

    final class Stream {
        var machine: ServerCallStateMachine
        let input: AsyncThrowingStream<[UInt8], Error>.Continuation
        let call: ServerCall
        var task: Task<Void, Never>?
        var deadline: LoopTimer?
        init(machine: ServerCallStateMachine, input: AsyncThrowingStream<[UInt8], Error>.Continuation, call: ServerCall) {
            self.machine = machine
            self.input = input
            self.call = call
        }
    }

    init(core: ServerCore, loop: EventLoop) {
        self.core = core
        self.loop = loop
        session = HTTP2Session(role: .server, settings: core.configuration.http2)
        session.delegate = self
    }

    // MARK: TLS connection events

    func connectionReady(_ connection: Connection) {
        self.connection = connection
        peer = connection.peer ?? core.configuration.localPeer
        core.connections.withLock { $0[ObjectIdentifier(self)] = self }
        let interval = min(core.configuration.keepaliveInterval, core.configuration.idleTimeout, .seconds(1))
        housekeeping = LoopTimer(loop: loop, after: interval, repeating: true) { [weak self] in self?.tick() }
        flush()
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        lastRead = .now
        do {
            try session.receive(bytes)
        } catch {
            core.logger.info("HTTP/2 protocol error, closing connection",
                             metadata: ["peer": "\(peer?.description ?? connection.remoteAddress)", "error": "\(error)"])
            flush()
            connection.close()
            return
        }
        flush()
    }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        if peer == nil, let error {
            core.logger.warning("connection refused", metadata: ["remote": "\(connection.remoteAddress)", "reason": "\(error)"])
            core.onRefusedConnection?(connection.remoteAddress, error)
        }
        for stream in streams.values { cancel(stream, reason: "connection closed") }
        streams.removeAll()
        housekeeping = nil
        self.connection = nil
        core.connections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(self)) }
    }

    // MARK: HTTP/2 events

    func session(_ session: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool) {
        if let stream = streams[streamID] {
            // Trailers from the client end its side of the stream.
            if endStream { handleInbound(stream.machine.receiveEndOfStream(), streamID) }
            return
        }
        guard let peer, !draining else {
            session.resetStream(streamID, errorCode: 7)  // REFUSED_STREAM
            return
        }
        var machine = ServerCallStateMachine(maxReceiveMessageBytes: core.configuration.maxReceiveMessageBytes)
        switch machine.receiveHeaders(headers, endStream: endStream, oversized: oversized, lookup: core.router.lookup) {
        case .reject(let outbound):
            apply(outbound, streamID)
        case .accept(let head, _):
            guard let route = core.router.route(head.path) else { return }
            let (requests, input) = AsyncThrowingStream<[UInt8], Error>.makeStream()
            let call = ServerCall(peer: peer, head: head, requests: requests, limits: core.configuration.protoLimits,
                                  maxSendMessageBytes: core.configuration.maxSendMessageBytes, logger: core.logger) { [self] action in
                loop.execute { self.perform(action, streamID) }
            }
            let stream = Stream(machine: machine, input: input, call: call)
            streams[streamID] = stream
            if let timeout = head.timeout {
                stream.deadline = LoopTimer(loop: loop, after: timeout) { [weak self] in self?.deadlineExpired(streamID, timeout) }
            }
            stream.task = Task { await route.run(call) }
        }
    }

    func session(_ session: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        handleInbound(stream.machine.receiveData(data), streamID)
    }

    func session(_ session: HTTP2Session, endOfDataStreamID streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        handleInbound(stream.machine.receiveEndOfStream(), streamID)
    }

    func session(_ session: HTTP2Session, closedStreamID streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        lastCallEnded = .now
        if !stream.machine.isClosed { cancel(stream, reason: "client cancelled the call") }
        stream.deadline = nil
        stream.input.finish()
    }

    func session(_ session: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32) {
        draining = true
    }

    // MARK: Applying results

    private func handleInbound(_ result: ServerCallStateMachine.InboundResult, _ streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        switch result {
        case .messages(let messages):
            for message in messages { stream.input.yield(message) }
        case .endOfRequests:
            stream.input.finish()
        case .reject(let outbound):
            stream.call.markClosed()
            stream.input.finish(throwing: CancellationError())
            stream.task?.cancel()
            apply(outbound, streamID)
        }
    }

    private func perform(_ action: ServerCall.Action, _ streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        switch action {
        case .message(let bytes, let initial):
            for outbound in stream.machine.send(message: bytes, initialMetadata: initial) { apply(outbound, streamID) }
        case .finish(let code, let message, let initial, let trailing):
            if let outbound = stream.machine.finish(code, message, initialMetadata: initial, trailingMetadata: trailing) {
                apply(outbound, streamID)
            }
        }
        flush()
    }

    private func apply(_ outbound: ServerCallStateMachine.Outbound, _ streamID: Int32) {
        switch outbound {
        case .responseHeaders(let headers):
            session.submitResponse(streamID: streamID, headers: headers, body: true)
        case .message(let framed):
            session.send(framed, streamID: streamID)
        case .trailers(let trailers):
            session.end(streamID: streamID, trailers: trailers)
            finishStream(streamID)
        case .trailersOnly(let headers):
            session.submitResponse(streamID: streamID, headers: headers, body: false)
            finishStream(streamID)
        }
    }

    /// After the status: the deadline no longer matters.
    private func finishStream(_ streamID: Int32) {
        streams[streamID]?.deadline = nil
    }

    /// Once the status is on the wire, a client still sending is told to stop (RST_STREAM NO_ERROR,
    /// as PROTOCOL-HTTP2.md allows). Sooner would overtake the trailers: nghttp2 sends resets first.
    func session(_ session: HTTP2Session, sentEndOfStreamID streamID: Int32) {
        guard let stream = streams[streamID], !stream.machine.requestComplete else { return }
        session.resetStream(streamID, errorCode: 0)
    }

    private func deadlineExpired(_ streamID: Int32, _ timeout: Duration) {
        guard let stream = streams[streamID], !stream.machine.isClosed else { return }
        stream.call.markClosed()
        stream.task?.cancel()
        stream.input.finish(throwing: CancellationError())
        if let outbound = stream.machine.finish(.deadlineExceeded, "deadline of \(timeout) exceeded",
                                                initialMetadata: Metadata(), trailingMetadata: Metadata()) {
            apply(outbound, streamID)
        }
        flush()
    }

    private func cancel(_ stream: Stream, reason: String) {
        stream.call.markClosed()
        stream.task?.cancel()
        stream.input.finish(throwing: CancellationError())
    }

    private func flush() {
        guard let connection else { return }
        do {
            try session.drainOutput { connection.write($0) }
        } catch {
            connection.close()
            return
        }
        if !session.isActive || (draining && streams.isEmpty) { connection.close() }
    }

    // MARK: Idle, keepalive, shutdown

    private func tick() {
        let c = core.configuration
        let now = ContinuousClock.now
        if streams.isEmpty, now - lastCallEnded > c.idleTimeout, now - lastRead > c.idleTimeout {
            session.submitGoAway()
            draining = true
        } else if now - lastRead > c.keepaliveInterval + c.keepaliveTimeout {
            core.logger.info("closing connection: no keepalive answer", metadata: ["peer": "\(peer?.description ?? "?")"])
            connection?.abort(ConnectionError(.idle, "no answer to keepalive"))
            return
        } else if now - lastRead > c.keepaliveInterval {
            session.submitPing()
        }
        flush()
    }

    func beginGracefulShutdown() {
        guard connection != nil else { return }
        session.submitShutdownNotice()
        flush()
        // One round trip later, name the last stream we will serve; new ones are refused.
        housekeeping = LoopTimer(loop: loop, after: .milliseconds(100)) { [weak self] in
            guard let self else { return }
            session.submitGoAway()
            draining = true
            flush()
        }
    }

    func abort(reason: String) {
        connection?.abort(ConnectionError(.io, reason))
    }
}
