import CLibevent
import CaseBridgeTLS
import Foundation
import Logging
import Synchronization

/// Accepts connections on one loop and hands each to the next loop: TLS on TCP, or plaintext on
/// a Unix socket (the console), whose file is made owner-only.
public final class Listener: @unchecked Sendable {
    public typealias DelegateFactory = @Sendable (EventLoop) -> ConnectionDelegate

    public let port: Int
    private var listener: OpaquePointer?
    private let group: EventLoopGroup
    /// Replaced by ``replaceTLS(_:)`` (a reload): new connections take the new one.
    private let tlsContext: Mutex<TLSContext?>
    private var tls: TLSContext? { tlsContext.withLock { $0 } }
    private let unixPath: String?
    private let timeouts: ConnectionTimeouts
    private let maxConnections: Int
    private let maxHandshakesPerAddress: Int
    private let connectionsPerAddressPerSecond: Int
    /// New connections each address may still open now (a bucket refilled each second).
    private let arrivals = Mutex<[String: (tokens: Double, at: ContinuousClock.Instant)]>([:])
    private let logger: Logger
    private let makeDelegate: DelegateFactory
    private let onRefusal: @Sendable (Refusal) -> Void
    /// Sockets open now, lingering ones included: what the process holds in file descriptors.
    private let open = Atomic<Int>(0)
    /// Connections still in their TLS handshake, by remote host.
    private let handshaking = Mutex<[String: Int]>([:])

    /// Binds `address` ("host:port", port 0 picks a free one; or "unix:/path") and starts accepting.
    /// A Unix socket gets no TLS; a TCP listener must have it.
    public init(
        address endpoint: String,
        group: EventLoopGroup,
        tls: TLSContext?,
        timeouts: ConnectionTimeouts,
        maxConnections: Int,
        maxHandshakesPerAddress: Int = 32,
        connectionsPerAddressPerSecond: Int = 50,
        backlog: Int32 = 1024,
        logger: Logger,
        onRefusal: @escaping @Sendable (Refusal) -> Void = { _ in },
        makeDelegate: @escaping DelegateFactory
    ) throws(ConnectionError) {
        self.group = group
        self.tlsContext = Mutex(tls)
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.maxHandshakesPerAddress = maxHandshakesPerAddress
        self.connectionsPerAddressPerSecond = connectionsPerAddressPerSecond
        self.logger = logger
        self.onRefusal = onRefusal
        self.makeDelegate = makeDelegate
        let address = try SocketAddress(endpoint: endpoint)
        guard address.isUnix || tls != nil else {
            throw ConnectionError(.badAddress, "\(endpoint): TCP listeners must use TLS")
        }
        unixPath = address.unixPath
        if let unixPath { unlink(unixPath) }  // a socket file left by a previous run
        let loop = group.loops[0]
        let flags = UInt32(LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC)
        // The listener is created before self is complete; its context is set right after.
        let created = address.withSockaddr { sockaddr, length in
            evconnlistener_new_bind(loop.base, nil, nil, flags, backlog, sockaddr, length)
        }
        guard let created else {
            throw ConnectionError(.io, "cannot listen on \(address): \(String(cString: strerror(errno)))")
        }
        listener = created
        if let unixPath { chmod(unixPath, 0o600) }  // who may use the console: the node's own user
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(evconnlistener_get_fd(created), $0, &length)
            }
        }
        self.port =
            address.isUnix
            ? 0 : Int(withUnsafeBytes(of: &bound) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) })
        evconnlistener_set_cb(
            created,
            { _, fd, address, length, context in
                Unmanaged<Listener>.fromOpaque(context!).takeUnretainedValue().accepted(fd, address!, length)
            },
            Unmanaged.passUnretained(self).toOpaque()
        )
    }

    /// New connections handshake with `tls` from now on (a new certificate, key or CRL);
    /// connections already open keep theirs.
    public func replaceTLS(_ tls: TLSContext) { tlsContext.withLock { $0 = tls } }

    /// Connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// Accepting is cheap on purpose: a stranger's connection costs a counter until it proves who
    /// it is, and one address cannot hold more than its share of handshakes.
    private func accepted(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>, _ length: Int32) {
        let socketAddress = SocketAddress(address, length: length)
        let remote = unixPath.map { "unix:\($0)" } ?? socketAddress.description
        let host = unixPath.map { "unix:\($0)" } ?? socketAddress.host
        guard open.load(ordering: .relaxed) < maxConnections else {
            evutil_closesocket(fd)
            onRefusal(Refusal(.connectionLimit, source: host, reason: "\(maxConnections) connections open"))
            return
        }
        guard unixPath != nil || arrive(from: host) else {
            evutil_closesocket(fd)
            onRefusal(
                Refusal(
                    .addressLimit,
                    source: host,
                    reason: "more than \(connectionsPerAddressPerSecond) new connections a second"
                )
            )
            return
        }
        let admitted =
            unixPath != nil
            || handshaking.withLock { counts in
                guard counts[host, default: 0] < maxHandshakesPerAddress else { return false }
                counts[host, default: 0] += 1
                return true
            }
        guard admitted else {
            evutil_closesocket(fd)
            onRefusal(Refusal(.addressLimit, source: host, reason: "\(maxHandshakesPerAddress) handshakes under way"))
            return
        }
        open.add(1, ordering: .relaxed)
        let loop = group.next()
        loop.execute { [self] in
            let handshakeOver =
                unixPath != nil
                ? {}
                : { [self] in
                    handshaking.withLock { counts in
                        counts[host, default: 1] -= 1
                        if counts[host] == 0 { counts.removeValue(forKey: host) }
                    }
                }
            let delegate = HandshakeTrackingDelegate(inner: makeDelegate(loop), handshakeOver: handshakeOver)
            let connection = Connection.accept(
                fd: fd,
                remoteAddress: remote,
                loop: loop,
                tls: tls,
                timeouts: timeouts,
                logger: logger,
                delegate: delegate
            ) { [self] in
                open.subtract(1, ordering: .relaxed)
            }
            if connection == nil { handshakeOver() }
        }
    }

    /// Takes one new connection from the address's allowance (two seconds' worth at most).
    private func arrive(from host: String) -> Bool {
        let rate = Double(connectionsPerAddressPerSecond)
        let now = ContinuousClock.now
        return arrivals.withLock { all in
            if all.count > 10_000 { all = all.filter { now - $0.value.at < .seconds(2) } }
            var entry = all[host] ?? (2 * rate, now)
            let elapsed = now - entry.at
            entry.tokens = min(
                2 * rate,
                entry.tokens + rate
                    * (Double(elapsed.components.seconds)
                        + Double(elapsed.components.attoseconds) / 1e18)
            )
            entry.at = now
            guard entry.tokens >= 1 else {
                all[host] = entry
                return false
            }
            entry.tokens -= 1
            all[host] = entry
            return true
        }
    }

    /// Stops accepting; open connections are left to their owners. Call from any thread.
    public func close() {
        let done = DispatchSemaphore(value: 0)
        group.loops[0].execute { [self] in
            if let listener { evconnlistener_free(listener) }
            listener = nil
            if let unixPath { unlink(unixPath) }
            done.signal()
        }
        done.wait()
    }
}

/// Tells the listener once when the handshake is over (verified, or the connection gone), then
/// passes every event on.
private final class HandshakeTrackingDelegate: ConnectionDelegate {
    let inner: ConnectionDelegate
    var handshakeOver: (() -> Void)?
    init(inner: ConnectionDelegate, handshakeOver: @escaping () -> Void) {
        self.inner = inner
        self.handshakeOver = handshakeOver
    }
    private func over() {
        handshakeOver?()
        handshakeOver = nil
    }
    func connectionReady(_ connection: Connection) {
        over()
        inner.connectionReady(connection)
    }
    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        inner.connection(connection, read: bytes)
    }
    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        over()
        inner.connectionClosed(connection, error: error)
    }
    func connectionWritable(_ connection: Connection) { inner.connectionWritable(connection) }
}
