import CaseBridgeNet
import CaseBridgeTLS
import Foundation
import Logging

/// A server's HTTP/2 + gRPC session driven through memory: bytes in, bytes out, no socket and no
/// TLS. The same code as a real connection from the first frame on: what the fuzzer drives.
public final class MemoryServerSession: @unchecked Sendable {
    /// What every session of one router shares: a loop for the session, workers for handlers.
    public final class Host: Sendable {
        let loop: EventLoop
        let core: ServerCore

        public init(
            router: RPCRouter,
            configuration: RPCServerConfiguration = RPCServerConfiguration(),
            logger: Logger
        ) {
            loop = EventLoop(name: "cb-memory")
            core = ServerCore(
                configuration: configuration,
                router: router,
                workers: WorkerPool(threads: 2, name: "cb-mem-worker"),
                logger: logger
            ) { _ in }
        }

        public func shutdown() {
            loop.shutdown()
            core.workers.shutdown()
        }
    }

    private let host: Host
    private let connection: ServerConnection
    private let transport: MemoryTransport

    /// A new connection from `peer`, as if its TLS handshake had just been verified.
    public init(host: Host, peer: PeerIdentity) {
        self.host = host
        connection = ServerConnection(core: host.core, loop: host.loop)
        transport = MemoryTransport(peer: peer)
        let (connection, transport) = (self.connection, self.transport)
        transport.onClose = { [weak connection, weak transport] error in
            guard let connection, let transport else { return }
            connection.closed(transport, error)
        }
        onLoop { connection.ready(transport) }
    }

    /// Feeds bytes as if read from the socket; returns everything the server wrote since the last call.
    @discardableResult
    public func receive(_ bytes: [UInt8]) -> [UInt8] { Array(receiveWrites(bytes).joined()) }

    /// `receive`, write by write: on a socket, each write is a TLS record and a system call.
    public func receiveWrites(_ bytes: [UInt8]) -> [[UInt8]] {
        let (connection, transport) = (self.connection, self.transport)
        onLoop {
            guard !transport.isClosed else { return }
            bytes.withUnsafeBytes { connection.read($0) }
        }
        return onLoop { transport.takeWrites() }
    }

    /// Closes the connection as a peer's disconnect would.
    public func close() {
        let transport = self.transport
        onLoop { transport.abort(nil) }
    }

    private func onLoop<T>(_ body: @escaping () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: T?
        nonisolated(unsafe) let body = body
        host.loop.execute {
            result = body()
            done.signal()
        }
        done.wait()
        return result!
    }
}

/// Collects what the server writes; closing tells the server connection, as a socket would.
private final class MemoryTransport: ServerTransport {
    let peer: PeerIdentity?
    let remoteHost = "memory"
    let pendingOutputBytes = 0
    let peerCertificateSerial: String? = nil
    private var writes: [[UInt8]] = []
    private(set) var isClosed = false
    var onClose: ((ConnectionError?) -> Void)?

    init(peer: PeerIdentity) { self.peer = peer }

    func write(_ bytes: UnsafeRawBufferPointer) { writes.append(Array(bytes)) }
    func takeWrites() -> [[UInt8]] {
        defer { writes.removeAll() }
        return writes
    }
    func pauseReading(for duration: Duration) {}
    func close() { abort(nil) }
    func abort(_ error: ConnectionError?) {
        guard !isClosed else { return }
        isClosed = true
        onClose?(error)
        onClose = nil
    }
}
