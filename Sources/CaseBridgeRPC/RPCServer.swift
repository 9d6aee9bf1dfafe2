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
    /// Threads that run handlers (decoding, SQLite); 0 means one per core, at least two.
    public var workerThreads = 0
    /// Sockets open at once, those in their handshake and those closing included.
    public var maxConnections = 4096
    /// Connections from one source address that may be in their TLS handshake at once.
    public var maxHandshakesPerAddress = 32
    /// New connections one source address may open per second (twice that in a burst).
    public var connectionsPerAddressPerSecond = 50
    public var maxReceiveMessageBytes = 4 * 1024 * 1024
    public var maxSendMessageBytes = 4 * 1024 * 1024
    /// Bytes one connection may hold in memory: requests received and not yet handled, responses
    /// not yet sent. Handlers wait to send above it; a request that would pass it is refused.
    public var maxConnectionBufferBytes = 16 * 1024 * 1024
    /// A peer that reads nothing of what it asked for, this long, loses the call (or the
    /// connection, when it reads nothing at all).
    public var stallTimeout: Duration = .seconds(30)
    public var http2 = HTTP2Settings()
    public var timeouts = ConnectionTimeouts()
    public var peerLimits = PeerLimits()
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

/// Handshakes a server completed: full ones, and TLS 1.3 resumptions of an earlier session.
public struct HandshakeCounts: Sendable, Equatable {
    public var full = 0
    public var resumed = 0
    public init() {}
}

/// A gRPC server over TLS 1.3 with mutual certificates.
public final class RPCServer: Sendable {
    public let port: Int
    let core: ServerCore
    private let listener: Listener
    private let group: EventLoopGroup

    /// Called for everything refused: handshakes, limits, protocol errors (for the audit log).
    public typealias RefusalHandler = @Sendable (Refusal) -> Void

    /// `tls` is required for TCP; a Unix socket address (the console) runs without it.
    public init(
        configuration: RPCServerConfiguration,
        tls: TLSContext?,
        router: RPCRouter,
        logger: Logger,
        onRefusal: RefusalHandler? = nil
    ) throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let group = EventLoopGroup(
            threads: configuration.loopThreads == 0 ? cores : configuration.loopThreads,
            name: "cb-server"
        )
        // One per core: more threads than cores made every hand-off a contended lock and a context
        // switch (4 on 2 cores cost a health check 106 µs of CPU, 2 cost 45 µs: Benchmarks/README.md).
        let workerThreads = configuration.workerThreads == 0 ? max(2, cores) : configuration.workerThreads
        let workers = WorkerPool(threads: workerThreads)
        let core = ServerCore(
            configuration: configuration,
            router: router,
            workers: workers,
            logger: logger,
            onRefusal: onRefusal ?? { _ in }
        )
        var timeouts = configuration.timeouts
        timeouts.closeFlush = min(timeouts.closeFlush, configuration.stallTimeout)
        do {
            listener = try Listener(
                address: configuration.address,
                group: group,
                tls: tls,
                timeouts: timeouts,
                maxConnections: configuration.maxConnections,
                maxHandshakesPerAddress: configuration.maxHandshakesPerAddress,
                connectionsPerAddressPerSecond: configuration.connectionsPerAddressPerSecond,
                logger: logger,
                onRefusal: core.onRefusal
            ) { loop in ServerConnection(core: core, loop: loop) }
        } catch {
            group.shutdown()
            workers.shutdown()
            throw error
        }
        self.group = group
        self.core = core
        self.port = listener.port
        logger.info("listening", metadata: ["address": "\(configuration.address)", "port": "\(listener.port)"])
    }

    /// A reload of trust material: new connections handshake with `tls`; each open connection whose
    /// peer `refusal` names a reason for (its certificate revoked, its node gone from the
    /// directory) is cut at once, and the refusal reported.
    public func replaceTLS(_ tls: TLSContext, refusal: @escaping @Sendable (PeerIdentity, String?) -> String?) {
        listener.replaceTLS(tls)
        for connection in core.connections.withLock({ Array($0.values) }) {
            connection.loop.execute { connection.recheck(refusal) }
        }
    }

    /// Sockets open now (including ones still in their TLS handshake, and ones closing).
    public var openConnections: Int { listener.openConnections }

    /// Verified handshakes since the server started, full and resumed.
    public var handshakes: HandshakeCounts { core.handshakes.withLock { $0 } }

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
        core.workers.shutdown()
    }
}

/// What every connection of one server shares.
final class ServerCore: Sendable {
    let configuration: RPCServerConfiguration
    let router: RPCRouter
    let workers: WorkerPool
    let admission: PeerAdmission
    let logger: Logger
    let onRefusal: @Sendable (Refusal) -> Void
    let connections = Mutex<[ObjectIdentifier: ServerConnection]>([:])
    /// Verified handshakes since start: full ones, and resumed ones (no certificates exchanged).
    let handshakes = Mutex<HandshakeCounts>(HandshakeCounts())

    init(
        configuration: RPCServerConfiguration,
        router: RPCRouter,
        workers: WorkerPool,
        logger: Logger,
        onRefusal: @escaping @Sendable (Refusal) -> Void
    ) {
        self.configuration = configuration
        self.router = router
        self.workers = workers
        self.admission = PeerAdmission(
            limits: configuration.peerLimits,
            maxMessageBytes: configuration.maxReceiveMessageBytes
        )
        self.logger = logger
        self.onRefusal = onRefusal
    }
}

/// What a server connection writes to: a TLS socket, or memory (the fuzzer's session).
protocol ServerTransport: AnyObject {
    var peer: PeerIdentity? { get }
    var remoteHost: String { get }
    var pendingOutputBytes: Int { get }
    /// The serial number of the peer's verified certificate, when it presented one.
    var peerCertificateSerial: String? { get }
    func write(_ bytes: UnsafeRawBufferPointer)
    func pauseReading(for duration: Duration)
    func close()
    func abort(_ error: ConnectionError?)
}

extension Connection: ServerTransport {}

/// One client connection on one loop: HTTP/2 framing in, calls out to handlers, responses back.
///
/// Memory is bounded here: nghttp2 is fed only what the socket takes, handlers wait to send while
/// the connection holds more than its limit, and a peer's flow-control window reopens only as
/// handlers take its messages.
final class ServerConnection: ConnectionDelegate, HTTP2SessionDelegate, @unchecked Sendable {
    let core: ServerCore
    let loop: EventLoop
    private var connection: ServerTransport?
    private let session: HTTP2Session
    private var streams: [Int32: Stream] = [:]
    /// Handlers of the calls the bytes being read open, started once all those bytes are taken in:
    /// a unary call's message has then arrived before its handler looks, so it runs without waiting
    /// (one wake-up of a worker thread instead of two).
    private var unstarted: [(streamID: Int32, start: () -> Void)] = []
    private var peer: PeerIdentity?
    /// The peer's key for its limits and its worker lane; nil until admitted.
    private var admittedPeer: String?
    private var lastRead = ContinuousClock.now
    private var lastCallEnded = ContinuousClock.now
    /// When the socket last took bytes, or had none waiting.
    private var lastWriteProgress = ContinuousClock.now
    private var housekeeping: LoopTimer?
    private var draining = false
    /// Request bytes held for handlers: partial messages and messages not yet taken.
    private var inboundBytes = 0
    /// Handlers waiting for room to send, in order.
    private var sendWaiters: [(streamID: Int32, resume: @Sendable () -> Void)] = []
    private var reportedProtocolError = false
    private var flushScheduled = false

    /// The socket is fed up to this much; the rest waits in nghttp2, which builds frames lazily.
    static let socketHighWater = 4 * Connection.writeLowWater

    final class Stream {
        var machine: ServerCallStateMachine
        let input: AsyncThrowingStream<[UInt8], Error>.Continuation
        let call: ServerCall
        let expensive: Bool
        var task: Task<Void, Never>?
        var deadline: LoopTimer?
        /// DATA bytes received, bytes handed back to flow control, and complete messages waiting
        /// for the handler: the window reopens for everything but what waits.
        var received = 0
        var consumed = 0
        var waiting = 0
        var buffered: Int { received - consumed }
        init(
            machine: ServerCallStateMachine,
            input: AsyncThrowingStream<[UInt8], Error>.Continuation,
            call: ServerCall,
            expensive: Bool
        ) {
            self.machine = machine
            self.input = input
            self.call = call
            self.expensive = expensive
        }
    }

    init(core: ServerCore, loop: EventLoop) {
        self.core = core
        self.loop = loop
        var settings = core.configuration.http2
        settings.manualFlowControl = true
        session = HTTP2Session(role: .server, settings: settings)
        session.delegate = self
    }

    private var source: String { peer?.description ?? connection?.remoteHost ?? "?" }

    private func refuse(_ kind: Refusal.Kind, _ reason: String) {
        core.onRefusal(Refusal(kind, source: source, reason: reason))
    }

    // MARK: TLS connection events

    func connectionReady(_ connection: Connection) {
        if connection.peer != nil {
            let resumed = connection.resumedSession
            core.handshakes.withLock { resumed ? ($0.resumed += 1) : ($0.full += 1) }
        }
        ready(connection)
    }
    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) { read(bytes) }
    func connectionWritable(_ connection: Connection) { writable() }
    func connectionClosed(_ connection: Connection, error: ConnectionError?) { closed(connection, error) }

    func ready(_ connection: ServerTransport) {
        self.connection = connection
        peer = connection.peer ?? core.configuration.localPeer
        core.connections.withLock { $0[ObjectIdentifier(self)] = self }
        let interval = min(core.configuration.keepaliveInterval, core.configuration.idleTimeout, .seconds(1))
        housekeeping = LoopTimer(loop: loop, after: interval, repeating: true) { [weak self] in self?.tick() }
        if let peer {
            if let refusal = core.admission.openConnection(peer.description) {
                refuse(.peerLimit, refusal)
                session.submitGoAway(errorCode: Self.enhanceYourCalm, lastStreamID: 0)
                draining = true
            } else {
                admittedPeer = peer.description
            }
        }
        flush()
    }

    func read(_ bytes: UnsafeRawBufferPointer) {
        guard let connection else { return }
        lastRead = .now
        do {
            try session.receive(bytes)
        } catch {
            unstarted.removeAll()
            if error.isFlood {
                refuse(.flood, "\(error)")
                session.submitGoAway(errorCode: Self.enhanceYourCalm)
            } else {
                refuse(.protocolError, "\(error)")
            }
            reportedProtocolError = true
            flush()
            connection.close()
            return
        }
        // A call already reset or closed in the same bytes needs no handler.
        for (streamID, start) in unstarted where streams[streamID] != nil { start() }
        unstarted.removeAll(keepingCapacity: true)
        flush()
    }

    func writable() {
        lastWriteProgress = .now
        flush()
    }

    func closed(_ connection: ServerTransport, _ error: ConnectionError?) {
        if peer == nil, let error {
            core.logger.debug(
                "connection refused",
                metadata: ["remote": "\(connection.remoteHost)", "reason": "\(error)"]
            )
            core.onRefusal(Refusal(.handshake, source: connection.remoteHost, reason: error.description))
        }
        for (id, stream) in streams {
            cancel(stream, reason: "connection closed")
            release(stream, id)
        }
        streams.removeAll()
        releaseWaiters { _ in true }
        housekeeping = nil
        self.connection = nil
        if let admittedPeer { core.admission.closeConnection(admittedPeer) }
        admittedPeer = nil
        core.connections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(self)) }
        MemoryReturn.soon()
    }

    // MARK: HTTP/2 events

    func session(_ session: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool) {
        if let stream = streams[streamID] {
            // Trailers from the client end its side of the stream.
            if endStream { handleInbound(stream.machine.receiveEndOfStream(), streamID) }
            return
        }
        guard let peer, let admittedPeer, !draining else {
            session.resetStream(streamID, errorCode: 7)  // REFUSED_STREAM
            return
        }
        var machine = ServerCallStateMachine(maxReceiveMessageBytes: core.configuration.maxReceiveMessageBytes)
        switch machine.receiveHeaders(headers, endStream: endStream, oversized: oversized, lookup: core.router.lookup) {
        case .reject(let outbound):
            apply(outbound, streamID)
        case .accept(let head, _):
            guard let route = core.router.route(head.path) else { return }
            if let refusal = core.admission.openCall(admittedPeer, expensive: route.expensive) {
                refuse(.peerLimit, refusal)
                if let outbound = machine.finish(
                    .unavailable,
                    refusal,
                    initialMetadata: Metadata(),
                    trailingMetadata: Metadata()
                ) {
                    apply(outbound, streamID)
                }
                return
            }
            let (requests, input) = AsyncThrowingStream<[UInt8], Error>.makeStream()
            let report = core.onRefusal, source = source
            let call = ServerCall(
                peer: peer,
                head: head,
                requests: requests,
                limits: core.configuration.protoLimits,
                maxSendMessageBytes: core.configuration.maxSendMessageBytes,
                logger: core.logger,
                onMalformed: { report(Refusal(.malformed, source: source, reason: $0)) }
            ) { [self] action in
                loop.execute { self.perform(action, streamID) }
            }
            let stream = Stream(machine: machine, input: input, call: call, expensive: route.expensive)
            streams[streamID] = stream
            if let timeout = head.timeout {
                stream.deadline = LoopTimer(loop: loop, after: timeout) { [weak self] in
                    self?.deadlineExpired(streamID, timeout)
                }
            }
            let lane = core.workers.lane(admittedPeer)
            unstarted.append((streamID, { stream.task = Task(executorPreference: lane) { await route.run(call) } }))
        }
    }

    func session(_ session: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32) {
        guard let stream = streams[streamID], let admittedPeer else {
            session.consume(streamID: streamID, bytes: data.count)  // a stream already answered
            return
        }
        stream.received += data.count
        inboundBytes += data.count
        if let refusal = core.admission.spend(data.count, by: admittedPeer) {
            refuse(.peerLimit, refusal)
            reject(stream, streamID, .unavailable, refusal)
            // Over its budget, the peer's further bytes stay in its own buffers until it has some.
            connection?.pauseReading(for: core.admission.refillTime(for: data.count))
            return
        }
        if bufferedBytes > core.configuration.maxConnectionBufferBytes {
            let reason =
                "the connection holds more than \(core.configuration.maxConnectionBufferBytes) bytes; "
                + "send fewer calls at once"
            refuse(.memory, reason)
            reject(stream, streamID, .unavailable, reason)
            return
        }
        handleInbound(stream.machine.receiveData(data), streamID)
        returnWindow(stream, streamID)
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
        release(stream, streamID)
        MemoryReturn.soon()
    }

    func session(_ session: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32) {
        draining = true
    }

    /// nghttp2 ended the session itself (a protocol error, a rapid-reset burst): say why, once.
    func session(_ session: HTTP2Session, sentGoAwayWithErrorCode errorCode: UInt32) {
        guard errorCode != 0, !reportedProtocolError else { return }
        reportedProtocolError = true
        let kind: Refusal.Kind = errorCode == Self.enhanceYourCalm ? .flood : .protocolError
        refuse(kind, "GOAWAY \(HTTP2Session.errorName(errorCode))")
    }

    // MARK: Applying results

    private func handleInbound(_ result: ServerCallStateMachine.InboundResult, _ streamID: Int32) {
        guard let stream = streams[streamID] else { return }
        switch result {
        case .messages(let messages):
            for message in messages {
                stream.waiting += message.count + GRPCWire.prefixBytes
                stream.input.yield(message)
            }
        case .endOfRequests:
            stream.input.finish()
        case .reject(let outbound):
            cancel(stream, reason: "request broke the protocol")
            apply(outbound, streamID)
        }
    }

    /// Hands flow control back everything of a stream but the messages its handler has not taken.
    private func returnWindow(_ stream: Stream, _ streamID: Int32) {
        let free = stream.received - stream.waiting - stream.consumed
        guard free > 0 else { return }
        stream.consumed += free
        inboundBytes -= free
        session.consume(streamID: streamID, bytes: free)
    }

    private func perform(_ action: ServerCall.Action, _ streamID: Int32) {
        guard let stream = streams[streamID] else {
            if case .message(_, _, let sent) = action { sent() }
            return
        }
        switch action {
        case .message(let bytes, let initial, let sent):
            for outbound in stream.machine.send(message: bytes, initialMetadata: initial) { apply(outbound, streamID) }
            if outboundBytes > core.configuration.maxConnectionBufferBytes / 2 {
                sendWaiters.append((streamID, sent))
            } else {
                sent()
            }
        case .finish(let code, let message, let initial, let trailing, let last):
            if let last {
                let outbounds = stream.machine.send(message: last, initialMetadata: initial)
                for outbound in outbounds { apply(outbound, streamID) }
            }
            if let outbound = stream.machine.finish(code, message, initialMetadata: initial, trailingMetadata: trailing)
            {
                apply(outbound, streamID)
            }
        case .consumed(let bytes):
            stream.waiting -= bytes + GRPCWire.prefixBytes
            returnWindow(stream, streamID)
        }
        flushAfterJobs()
    }

    /// Handlers' actions arrive as the loop's jobs, often several for one connection in a batch (a
    /// response and its status, many calls' responses under load): written out once, together.
    private func flushAfterJobs() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.afterJobs { [self] in
            flushScheduled = false
            flush()
        }
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

    /// Ends a call with `code` before its handler did (a refusal, a deadline), and stops the handler.
    private func reject(_ stream: Stream, _ streamID: Int32, _ code: RPCCode, _ message: String) {
        cancel(stream, reason: message)
        let outbound = stream.machine.finish(code, message, initialMetadata: Metadata(), trailingMetadata: Metadata())
        if let outbound { apply(outbound, streamID) }
        returnWindow(stream, streamID)
    }

    /// Once the status is on the wire, a client still sending is told to stop (RST_STREAM NO_ERROR,
    /// as PROTOCOL-HTTP2.md allows). Sooner would overtake the trailers: nghttp2 sends resets first.
    func session(_ session: HTTP2Session, sentEndOfStreamID streamID: Int32) {
        guard let stream = streams[streamID], !stream.machine.requestComplete else { return }
        session.resetStream(streamID, errorCode: 0)
    }

    private func deadlineExpired(_ streamID: Int32, _ timeout: Duration) {
        guard let stream = streams[streamID], !stream.machine.isClosed else { return }
        reject(stream, streamID, .deadlineExceeded, "deadline of \(timeout) exceeded")
        flush()
    }

    private func cancel(_ stream: Stream, reason: String) {
        stream.call.markClosed()
        stream.task?.cancel()
        stream.input.finish(throwing: CancellationError())
    }

    /// A stream is gone: its held bytes, its waiting senders and its place in the peer's limits.
    private func release(_ stream: Stream, _ streamID: Int32) {
        inboundBytes -= stream.buffered
        session.consume(streamID: streamID, bytes: stream.buffered)  // the connection's window counts them too
        stream.consumed = stream.received
        releaseWaiters { $0 == streamID }
        if let admittedPeer { core.admission.closeCall(admittedPeer, expensive: stream.expensive) }
    }

    private func releaseWaiters(where matches: (Int32) -> Bool) {
        let released = sendWaiters.filter { matches($0.streamID) }
        sendWaiters.removeAll { matches($0.streamID) }
        for waiter in released { waiter.resume() }
    }

    /// Response bytes not yet on the wire: queued in nghttp2 and in the socket's buffer.
    private var outboundBytes: Int { session.queuedBodyBytes + (connection?.pendingOutputBytes ?? 0) }
    private var bufferedBytes: Int { inboundBytes + outboundBytes }

    private func flush() {
        guard let connection else { return }
        do {
            try session.drainOutput(while: { connection.pendingOutputBytes < Self.socketHighWater }) {
                connection.write($0)
            }
        } catch {
            connection.close()
            return
        }
        if outboundBytes <= core.configuration.maxConnectionBufferBytes / 2, !sendWaiters.isEmpty {
            let waiters = sendWaiters
            sendWaiters.removeAll()
            for waiter in waiters { waiter.resume() }
        }
        if !session.isActive || (draining && streams.isEmpty) { connection.close() }
    }

    // MARK: Idle, keepalive, stalls, shutdown

    private func tick() {
        let c = core.configuration
        let now = ContinuousClock.now
        if connection?.pendingOutputBytes == 0 { lastWriteProgress = now }
        if now - lastWriteProgress > c.stallTimeout {
            refuse(.stalled, "read nothing of \(outboundBytes) bytes for \(c.stallTimeout)")
            connection?.abort(ConnectionError(.idle, "peer stopped reading"))
            return
        }
        for streamID in session.streamsStalled(since: now - c.stallTimeout) {
            guard let stream = streams[streamID] else { continue }
            refuse(.stalled, "stream \(streamID) read nothing for \(c.stallTimeout)")
            cancel(stream, reason: "peer stopped reading")
            session.resetStream(streamID, errorCode: Self.cancelCode)
        }
        if streams.isEmpty, now - lastCallEnded > c.idleTimeout, now - lastRead > c.idleTimeout {
            session.submitGoAway()
            draining = true
        } else if now - lastRead > c.keepaliveInterval + c.keepaliveTimeout {
            core.logger.info("closing connection: no keepalive answer", metadata: ["peer": "\(source)"])
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

    /// After a reload: cut the connection if its verified peer is no longer allowed.
    func recheck(_ refusal: (PeerIdentity, String?) -> String?) {
        guard let peer, let reason = refusal(peer, connection?.peerCertificateSerial) else { return }
        refuse(.revoked, reason)
        abort(reason: reason)
    }

    static let enhanceYourCalm: UInt32 = 0xb
    static let cancelCode: UInt32 = 0x8
}
