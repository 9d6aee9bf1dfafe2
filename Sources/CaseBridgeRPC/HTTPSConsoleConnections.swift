import CaseBridgeHTTP1
import CaseBridgeHTTP2
import CaseBridgeNet
import Foundation

/// One HTTPS connection of the console: HTTP/2 when the client offered it, otherwise HTTP/1.1.
final class HTTPSConsoleConnection: ConnectionDelegate, @unchecked Sendable {
    let context: GatewayContext
    let loop: EventLoop
    private var transport: ConnectionDelegate?

    init(context: GatewayContext, loop: EventLoop) {
        self.context = context
        self.loop = loop
    }

    func connectionReady(_ connection: Connection) {
        let chosen: ConnectionDelegate =
            connection.negotiatedProtocol == "h2"
            ? HTTP2ConsoleConnection(context: context, loop: loop)
            : HTTP1ConsoleConnection(context: context, loop: loop)
        transport = chosen
        chosen.connectionReady(connection)
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        transport?.connection(connection, read: bytes)
    }

    func connectionWritable(_ connection: Connection) { transport?.connectionWritable(connection) }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        transport?.connectionClosed(connection, error: error)
        transport = nil
    }
}

/// HTTP/1.1: requests one after another (keep-alive), each answered before the next is read.
final class HTTP1ConsoleConnection: ConnectionDelegate, ResponseSink, @unchecked Sendable {
    let context: GatewayContext
    let loop: EventLoop
    private var connection: Connection?
    private var parser: HTTP1Parser
    private var exchange: Exchange?
    private var idleTimer: LoopTimer?
    private var waitingToSend: (@Sendable () -> Void)?
    private var closeAfterResponse = false
    private var chunked = false

    /// Responses fill the socket up to this much before the handler waits.
    static let highWater = 256 * 1024

    init(context: GatewayContext, loop: EventLoop) {
        self.context = context
        self.loop = loop
        parser = HTTP1Parser(
            maxHeadBytes: context.configuration.maxHeadBytes,
            maxBodyBytes: context.configuration.maxRequestBytes
        )
    }

    func connectionReady(_ connection: Connection) {
        self.connection = connection
        armIdleTimer()
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        parser.append(bytes)
        if exchange == nil { serveNext() }
    }

    func connectionWritable(_ connection: Connection) {
        if let resume = waitingToSend, connection.pendingOutputBytes < Self.highWater {
            waitingToSend = nil
            resume()
        }
    }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        exchange?.cancel()
        exchange = nil
        idleTimer = nil
        waitingToSend?()
        waitingToSend = nil
        self.connection = nil
    }

    private func armIdleTimer() {
        idleTimer = LoopTimer(loop: loop, after: context.configuration.idleTimeout) { [weak self] in
            guard let self, self.exchange == nil else { return }
            self.connection?.close()
        }
    }

    private func serveNext() {
        guard let connection, exchange == nil else { return }
        switch parser.next() {
        case .needMore:
            return
        case .refuse(let status, let reason):
            context.onRefusal(Refusal(.protocolError, source: connection.remoteHost, reason: "https: \(reason)"))
            closeAfterResponse = true
            respondError(status: status, code: status == 413 ? "resource_exhausted" : "invalid_argument", reason)
        case .request(let request):
            idleTimer = nil
            closeAfterResponse = request.close
            let exchange = Exchange(context: context, sink: self, source: connection.remoteHost)
            self.exchange = exchange
            exchange.start(request)
        }
    }

    // MARK: ResponseSink

    func head(status: Int, headers: [(String, String)], length: Int?) {
        chunked = length == nil
        let framing = length.map { ("Content-Length", String($0)) } ?? ("Transfer-Encoding", "chunked")
        write(HTTP1Response.head(status: status, headers: headers + [framing]))
    }

    func body(_ bytes: [UInt8]) { write(chunked ? HTTP1Response.chunk(bytes) : bytes) }

    func end() {
        if chunked { write(HTTP1Response.lastChunk) }
        exchange = nil
        if closeAfterResponse {
            connection?.close()
            return
        }
        armIdleTimer()
        serveNext()
    }

    func whenWritable(_ resume: @escaping @Sendable () -> Void) {
        guard let connection, connection.pendingOutputBytes >= Self.highWater else {
            resume()
            return
        }
        waitingToSend = resume
    }

    private func write(_ bytes: [UInt8]) { bytes.withUnsafeBytes { connection?.write($0) } }
}

/// HTTP/2: each stream one request, side by side, through nghttp2 as the node's gRPC server.
final class HTTP2ConsoleConnection: ConnectionDelegate, HTTP2SessionDelegate, @unchecked Sendable {
    let context: GatewayContext
    let loop: EventLoop
    private var connection: Connection?
    private let session: HTTP2Session
    private var requests: [Int32: (head: [HTTP2Header], body: [UInt8])] = [:]
    private var exchanges: [Int32: Exchange] = [:]
    private var buffered = 0
    private var waiters: [@Sendable () -> Void] = []
    private var idleTimer: LoopTimer?

    static let highWater = 256 * 1024

    init(context: GatewayContext, loop: EventLoop) {
        self.context = context
        self.loop = loop
        var settings = HTTP2Settings()
        settings.maxConcurrentStreams = UInt32(context.configuration.maxConcurrentStreams)
        settings.maxHeaderListSize = UInt32(context.configuration.maxHeadBytes)
        session = HTTP2Session(role: .server, settings: settings)
        session.delegate = self
    }

    func connectionReady(_ connection: Connection) {
        self.connection = connection
        armIdleTimer()
        flush()
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        do { try session.receive(bytes) } catch {
            context.onRefusal(Refusal(.protocolError, source: connection.remoteHost, reason: "https h2: \(error)"))
            flush()
            connection.close()
            return
        }
        flush()
    }

    func connectionWritable(_ connection: Connection) { flush() }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        for exchange in exchanges.values { exchange.cancel() }
        exchanges.removeAll()
        releaseWaiters()
        idleTimer = nil
        self.connection = nil
    }

    private func armIdleTimer() {
        idleTimer = LoopTimer(loop: loop, after: context.configuration.idleTimeout, repeating: true) { [weak self] in
            guard let self, self.exchanges.isEmpty, self.requests.isEmpty else { return }
            self.session.submitGoAway()
            self.flush()
            self.connection?.close()
        }
    }

    private func flush() {
        guard let connection else { return }
        do {
            try session.drainOutput(while: { connection.pendingOutputBytes < Self.highWater }) { connection.write($0) }
        } catch {
            connection.close()
            return
        }
        if session.queuedBodyBytes + connection.pendingOutputBytes < Self.highWater { releaseWaiters() }
        if !session.isActive { connection.close() }
    }

    private func releaseWaiters() {
        let ready = waiters
        waiters.removeAll()
        for resume in ready { resume() }
    }

    // MARK: HTTP/2 events

    func session(_ session: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool) {
        guard requests[streamID] == nil, exchanges[streamID] == nil else { return }  // trailers: ignored
        if oversized {
            sink(streamID).respondError(status: 431, code: "invalid_argument", "request headers too large")
            return
        }
        requests[streamID] = (headers, [])
        if endStream { start(streamID) }
    }

    func session(_ session: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32) {
        guard var request = requests[streamID] else { return }
        guard request.body.count + data.count <= context.configuration.maxRequestBytes,
            buffered + data.count <= 4 * context.configuration.maxRequestBytes
        else {
            buffered -= request.body.count
            requests[streamID] = nil
            sink(streamID).respondError(status: 413, code: "resource_exhausted", "request body too large")
            return
        }
        request.body.append(contentsOf: data)
        buffered += data.count
        requests[streamID] = request
    }

    func session(_ session: HTTP2Session, endOfDataStreamID streamID: Int32) { start(streamID) }

    func session(_ session: HTTP2Session, closedStreamID streamID: Int32, errorCode: UInt32) {
        if let request = requests.removeValue(forKey: streamID) { buffered -= request.body.count }
        exchanges.removeValue(forKey: streamID)?.cancel()
    }

    func session(_ session: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32) {}
    func session(_ session: HTTP2Session, sentEndOfStreamID streamID: Int32) {}

    private func start(_ streamID: Int32) {
        guard let (head, body) = requests.removeValue(forKey: streamID), let connection else { return }
        buffered -= body.count
        func value(_ name: String) -> String { head.first { $0.name == name }?.value ?? "" }
        var headers = head.filter { !$0.name.hasPrefix(":") }.map { (name: $0.name, value: $0.value) }
        headers.append((name: "host", value: value(":authority")))
        let request = HTTP1Request(
            method: value(":method"),
            target: value(":path"),
            headers: headers,
            body: body,
            close: false
        )
        let exchange = Exchange(context: context, sink: sink(streamID), source: connection.remoteHost)
        exchanges[streamID] = exchange
        exchange.start(request)
    }

    private func sink(_ streamID: Int32) -> StreamSink { StreamSink(connection: self, streamID: streamID) }

    /// One stream's response.
    final class StreamSink: ResponseSink {
        let connection: HTTP2ConsoleConnection
        let streamID: Int32
        var loop: EventLoop { connection.loop }

        init(connection: HTTP2ConsoleConnection, streamID: Int32) {
            self.connection = connection
            self.streamID = streamID
        }

        func head(status: Int, headers: [(String, String)], length: Int?) {
            var fields = [HTTP2Header(":status", String(status))]
            fields += headers.map { HTTP2Header($0.0.lowercased(), $0.1) }
            if let length { fields.append(HTTP2Header("content-length", String(length))) }
            connection.session.submitResponse(streamID: streamID, headers: fields, body: true)
            connection.flush()
        }

        func body(_ bytes: [UInt8]) {
            connection.session.send(bytes, streamID: streamID)
            connection.flush()
        }

        func end() {
            connection.session.end(streamID: streamID)
            connection.exchanges[streamID] = nil
            connection.flush()
        }

        func whenWritable(_ resume: @escaping @Sendable () -> Void) {
            guard let socket = connection.connection,
                connection.session.queuedBodyBytes + socket.pendingOutputBytes >= HTTP2ConsoleConnection.highWater
            else {
                resume()
                return
            }
            connection.waiters.append(resume)
        }
    }
}
