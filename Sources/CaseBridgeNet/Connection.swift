import CLibevent
import CaseBridgeTLS
import Foundation
import Logging

/// What a connection tells its owner, on the connection's loop thread.
public protocol ConnectionDelegate: AnyObject {
    /// TLS: the handshake finished and the peer's identity was verified. Plaintext: connected.
    func connectionReady(_ connection: Connection)
    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer)
    /// Called once; `error` is nil for an orderly close.
    func connectionClosed(_ connection: Connection, error: ConnectionError?)
    /// The bytes queued for the socket fell to ``Connection/writeLowWater``: room to send more.
    func connectionWritable(_ connection: Connection)
}

extension ConnectionDelegate {
    public func connectionWritable(_ connection: Connection) {}
}

/// Time limits of a connection.
public struct ConnectionTimeouts: Sendable, Equatable {
    /// From TCP accept or connect to a verified TLS peer.
    public var handshake: Duration = .seconds(10)
    /// How long a closing connection may take to flush what it still has to send.
    public var closeFlush: Duration = .seconds(5)
    /// Longest a refused or closed connection's socket is kept so the peer reads our last words
    /// (an alert, a GOAWAY); it counts against the connection limit meanwhile.
    public var lingerTotal: Duration = .seconds(30)
    /// The kernel's send buffer for accepted sockets, bytes; 0 leaves it to the kernel's tuning.
    public var socketSendBufferBytes = 0
    public init() {}
}

/// One connection (libevent bufferevent): mutually authenticated TLS 1.3 between nodes, or
/// plaintext on a local Unix socket for the console. Lives on one loop: call its methods there only.
public final class Connection: @unchecked Sendable {
    public let loop: EventLoop
    public let remoteAddress: String
    /// The remote address without its port: what per-source counts and audit entries use.
    public var remoteHost: String { SocketAddress.host(of: remoteAddress) }
    /// The application protocol TLS agreed ("h2", "http/1.1"); nil without TLS or ALPN.
    public var negotiatedProtocol: String? { ssl.flatMap(TLSInspection.negotiatedProtocol) }
    /// Whether the TLS handshake resumed an earlier session (no certificates exchanged again).
    public var resumedSession: Bool { ssl.map(TLSInspection.resumed) ?? false }
    public private(set) var peer: PeerIdentity?
    /// The serial number of the peer's verified certificate (hexadecimal), checked on a reload.
    public private(set) var peerCertificateSerial: String?
    public var delegate: ConnectionDelegate?
    /// Called once the socket is really closed, lingering included (the listener's count).
    var onSocketClosed: (() -> Void)?
    /// The delegate is told ``ConnectionDelegate/connectionWritable(_:)`` when the bytes queued for
    /// the socket fall to this after having been above it.
    public static let writeLowWater = 64 * 1024

    private var bev: OpaquePointer?
    /// nil for a plaintext (Unix socket) connection.
    private let ssl: OpaquePointer?
    /// Kept while the connection lives: OpenSSL's callbacks during its handshake read the context's
    /// state (trust domain, verified chains), which a reload would otherwise free under them.
    private let tls: TLSContext?
    private let expectedPeer: PeerIdentity?
    /// Client side: the peer the session this connection ends with is kept for, for the next one.
    private var resumptionKey: String?
    private let timeouts: ConnectionTimeouts
    private let logger: Logger
    private var timer: LoopTimer?
    private var resumeReading: LoopTimer?
    private var ready = false
    private var closing = false
    /// The connection keeps itself alive while libevent holds its callbacks.
    private var retained: Unmanaged<Connection>?

    private init(
        loop: EventLoop,
        bev: OpaquePointer,
        ssl: OpaquePointer?,
        remoteAddress: String,
        tls: TLSContext?,
        expectedPeer: PeerIdentity?,
        timeouts: ConnectionTimeouts,
        logger: Logger
    ) {
        self.loop = loop
        self.bev = bev
        self.ssl = ssl
        self.remoteAddress = remoteAddress
        self.tls = tls
        self.expectedPeer = expectedPeer
        self.timeouts = timeouts
        self.logger = logger
    }

    /// Server side: takes over an accepted socket and starts the TLS handshake (or, with no TLS
    /// context, is ready at once). Call on `loop`.
    /// `socketClosed` runs once the socket is closed for good (lingering included).
    static func accept(
        fd: Int32,
        remoteAddress: String,
        loop: EventLoop,
        tls: TLSContext?,
        timeouts: ConnectionTimeouts,
        logger: Logger,
        delegate: ConnectionDelegate,
        socketClosed: @escaping () -> Void
    ) -> Connection? {
        let ssl = try? tls?.makeSSL()
        let bev =
            if let ssl {
                bufferevent_openssl_socket_new(
                    loop.base,
                    fd,
                    ssl,
                    BUFFEREVENT_SSL_ACCEPTING,
                    Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
                )
            } else {
                tls == nil ? bufferevent_socket_new(loop.base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) : nil
            }
        guard let bev else {
            evutil_closesocket(fd)
            socketClosed()
            return nil
        }
        _ = cb_set_nodelay(fd)
        if timeouts.socketSendBufferBytes > 0 {
            _ = cb_set_send_buffer(fd, Int32(clamping: timeouts.socketSendBufferBytes))
        }
        let connection = Connection(
            loop: loop,
            bev: bev,
            ssl: ssl,
            remoteAddress: remoteAddress,
            tls: tls,
            expectedPeer: nil,
            timeouts: timeouts,
            logger: logger
        )
        connection.delegate = delegate
        connection.onSocketClosed = socketClosed
        connection.start()
        if ssl == nil { connection.handshakeDone() }  // plaintext: ready before the first byte is read
        return connection
    }

    /// Client side: connects and, with TLS, handshakes and checks that the server is `expectedPeer`.
    /// Call on `loop`.
    public static func connect(
        to address: SocketAddress,
        expectedPeer: PeerIdentity,
        loop: EventLoop,
        tls: TLSContext?,
        timeouts: ConnectionTimeouts,
        logger: Logger,
        delegate: ConnectionDelegate
    ) -> Connection? {
        // No SNI: node ids are not host names, and the server's identity is checked from its certificate.
        let resumptionKey = "\(expectedPeer)@\(address)"
        let ssl = try? tls?.makeSSL(resuming: resumptionKey)
        let bev =
            if let ssl {
                bufferevent_openssl_socket_new(
                    loop.base,
                    -1,
                    ssl,
                    BUFFEREVENT_SSL_CONNECTING,
                    Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)
                )
            } else {
                tls == nil ? bufferevent_socket_new(loop.base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) : nil
            }
        guard let bev else { return nil }
        let connection = Connection(
            loop: loop,
            bev: bev,
            ssl: ssl,
            remoteAddress: address.description,
            tls: tls,
            expectedPeer: expectedPeer,
            timeouts: timeouts,
            logger: logger
        )
        connection.delegate = delegate
        connection.resumptionKey = resumptionKey
        connection.start()
        let result = address.withSockaddr { bufferevent_socket_connect(bev, $0, $1) }
        if result != 0 {
            connection.finish(ConnectionError(.io, "\(address): \(String(cString: strerror(errno)))"))
            return nil
        }
        if !address.isUnix { _ = cb_set_nodelay(bufferevent_getfd(bev)) }
        return connection
    }

    private func start() {
        retained = Unmanaged.passRetained(self)
        let context = retained!.toOpaque()
        if ssl != nil { bufferevent_openssl_set_allow_dirty_shutdown(bev, 1) }
        bufferevent_setcb(
            bev,
            { _, context in
                Unmanaged<Connection>.fromOpaque(context!).takeUnretainedValue().readable()
            },
            { _, context in
                Unmanaged<Connection>.fromOpaque(context!).takeUnretainedValue().writable()
            },
            { _, events, context in
                Unmanaged<Connection>.fromOpaque(context!).takeUnretainedValue().event(events)
            },
            context
        )
        bufferevent_enable(bev, Int16(EV_READ | EV_WRITE))
        bufferevent_setwatermark(bev, Int16(EV_WRITE), Self.writeLowWater, 0)
        timer = LoopTimer(loop: loop, after: timeouts.handshake) { [weak self] in
            guard let self else { return }
            finish(ConnectionError(TLSError(.handshakeTimeout, "no verified TLS peer after \(timeouts.handshake)")))
        }
    }

    // MARK: Use

    /// Queues bytes to send.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard let bev, !bytes.isEmpty else { return }
        bufferevent_write(bev, bytes.baseAddress, bytes.count)
    }

    /// Bytes queued and not yet handed to the kernel.
    public var pendingOutputBytes: Int {
        guard let bev else { return 0 }
        return evbuffer_get_length(bufferevent_get_output(bev))
    }

    /// Reads nothing for `duration`: the peer's bytes wait in its own TCP buffers, costing us nothing
    /// (no decryption, no parsing) while it is over a rate limit.
    public func pauseReading(for duration: Duration) {
        guard let bev, !closing, resumeReading == nil else { return }
        bufferevent_disable(bev, Int16(EV_READ))
        resumeReading = LoopTimer(loop: loop, after: duration) { [weak self] in
            guard let self else { return }
            resumeReading = nil
            if let bev = self.bev, !closing { bufferevent_enable(bev, Int16(EV_READ)) }
        }
    }

    /// Stops reading, sends what is queued, then closes (or closes at once after `closeFlush`).
    public func close() {
        guard let bev, !closing else { return }
        closing = true
        bufferevent_disable(bev, Int16(EV_READ))
        if pendingOutputBytes == 0 {
            finish(nil)
        } else {
            timer = LoopTimer(loop: loop, after: timeouts.closeFlush) { [weak self] in self?.finish(nil) }
        }
    }

    /// Closes at once, dropping anything unsent.
    public func abort(_ error: ConnectionError? = nil) { finish(error) }

    // MARK: libevent callbacks

    private func readable() {
        guard let bev else { return }
        let input = bufferevent_get_input(bev)
        while let current = self.bev, current == bev, evbuffer_get_length(input) > 0, !closing {
            let length = evbuffer_get_contiguous_space(input)
            guard let data = evbuffer_pullup(input, length) else { break }
            delegate?.connection(self, read: UnsafeRawBufferPointer(start: data, count: length))
            evbuffer_drain(input, length)
        }
    }

    private func writable() {
        if closing {
            if pendingOutputBytes == 0 { finish(nil) }
        } else if ready {
            delegate?.connectionWritable(self)
        }
    }

    private func event(_ events: Int16) {
        let socketErrno = errno  // what libevent's failed connect or read left, before anything else runs
        if cb_bev_is_connected(events) != 0 {
            handshakeDone()
        } else if cb_bev_is_error(events) != 0 {
            finish(failure(eof: cb_bev_is_eof(events) != 0, errno: socketErrno))
        }
    }

    private func handshakeDone() {
        guard bev != nil, !ready else { return }
        guard let ssl else {
            // Plaintext: a local Unix socket, whose file permissions already decided who may connect.
            ready = true
            timer = nil
            delegate?.connectionReady(self)
            return
        }
        guard let tls, tls.verifiesPeers else {
            // The staff console: people sign in with password and second factor instead.
            ready = true
            timer = nil
            delegate?.connectionReady(self)
            return
        }
        switch TLSInspection.verifiedPeer(ssl, trustDomain: tls.configuration.trustDomain) {
        case .failure(let error):
            finish(ConnectionError(error))
        case .success(let identity):
            if let expectedPeer, identity != expectedPeer {
                finish(ConnectionError(TLSError(.wrongIdentity, "reached \(identity), expected \(expectedPeer)")))
                return
            }
            peer = identity
            peerCertificateSerial = TLSInspection.peerSerial(ssl)
            ready = true
            timer = nil
            delegate?.connectionReady(self)
        }
    }

    private func failure(eof: Bool, errno lastErrno: Int32) -> ConnectionError {
        var codes: [String] = []
        if let bev {
            while case let code = bufferevent_get_openssl_error(bev), code != 0 {
                // libevent also queues SSL_get_error() results (small numbers): those are not OpenSSL errors.
                if code > 0xff { codes.append(OpenSSLErrors.describe(code)) }
            }
        }
        if !codes.isEmpty {
            return ConnectionError(TLSInspection.failure(ssl, errorQueue: codes.joined(separator: "; ")))
        }
        if !ready, let ssl, TLSInspection.hasVerifyFailure(ssl) {
            return ConnectionError(TLSInspection.failure(ssl, errorQueue: ""))
        }
        let socketError = bev.map { cb_socket_error(bufferevent_getfd($0)) } ?? 0
        // Nothing listens there: the first thing to check is whether the node runs at all.
        if !ready, expectedPeer != nil, [socketError, lastErrno].contains(ECONNREFUSED) {
            return ConnectionError(.refused, "nothing is listening at \(remoteAddress): is the node running?")
        }
        if eof || socketError == 0 {
            return ConnectionError(
                .closedByPeer,
                ready ? "peer closed the connection" : "peer closed the connection during the TLS handshake"
            )
        }
        return ConnectionError(.io, String(cString: strerror(socketError)))
    }

    /// Frees the libevent side once and tells the delegate.
    private func finish(_ error: ConnectionError?) {
        guard let bev else { return }
        self.bev = nil
        timer = nil
        resumeReading = nil
        var socketClosed = onSocketClosed
        onSocketClosed = nil
        if expectedPeer == nil, error == nil || error?.code == .tls || error?.code == .idle || closing {
            // The server is closing while the client may still be sending: closing the socket now
            // would answer with RST and destroy what we last sent (a TLS alert, a GOAWAY) before
            // the client reads it. Keep the socket until the client has read it.
            if LingeringClose.start(
                duplicating: bufferevent_getfd(bev),
                loop: loop,
                total: timeouts.lingerTotal,
                onClosed: socketClosed
            ) {
                socketClosed = nil
            }
        }
        if ready, let ssl, let tls, let peer = resumptionKey { tls.keepSession(of: ssl, for: peer) }
        if ready, let ssl, expectedPeer == nil, error.map({ [.closedByPeer, .idle].contains($0.code) }) ?? true {
            TLSContext.endedInOrder(ssl)
        }
        resumptionKey = nil
        bufferevent_free(bev)  // also SSL_free and close(fd): BEV_OPT_CLOSE_ON_FREE
        socketClosed?()
        if let error {
            logger.debug("connection closed", metadata: ["remote": "\(remoteAddress)", "reason": "\(error)"])
        }
        let delegate = self.delegate
        self.delegate = nil
        delegate?.connectionClosed(self, error: error)
        retained?.release()
        retained = nil
    }
}
