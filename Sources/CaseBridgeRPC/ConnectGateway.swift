import CaseBridgeHTTP1
import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeTLS
import Foundation
import Logging

/// Limits of the HTTPS console listener.
public struct ConnectGatewayConfiguration: Sendable {
    public var address = "127.0.0.1:0"
    public var maxConnections = 256
    public var maxRequestBytes = 4 * 1024 * 1024
    public var maxHeadBytes = 16 * 1024
    /// A connection with no request in progress for this long is closed.
    public var idleTimeout: Duration = .seconds(60)
    public var timeouts = ConnectionTimeouts()
    public var protoLimits = ProtoLimits()
    public var maxResponseBytes = 64 * 1024 * 1024
    public init() {}
}

/// The Connect protocol's JSON form of a router's methods over HTTPS (HTTP/1.1): `POST
/// /<service>/<Method>` with `application/json` for unary calls; server streams as Connect
/// streaming (`application/connect+json`) or, for a plain `application/json` request, as
/// Server-Sent Events. Calls reach the very handlers the gRPC socket serves (``InProcessCall``).
///
/// Browsers sign in once and carry the session in a cookie (`Secure; HttpOnly; SameSite=Strict`);
/// every cookie-borne call must also carry the `X-CSRF-Token` the sign-in set in a readable cookie,
/// and a cross-origin `Origin` is refused. Tools send `Authorization: Bearer <token>` instead.
public final class ConnectGateway: Sendable {
    public let port: Int
    private let listener: Listener
    private let group: EventLoopGroup

    public init(
        configuration: ConnectGatewayConfiguration,
        tls: TLSContext,
        router: RPCRouter,
        localPeer: PeerIdentity,
        logger: Logger,
        onRefusal: @escaping @Sendable (Refusal) -> Void = { _ in }
    ) throws {
        let group = EventLoopGroup(threads: 1, name: "cb-console-https")
        let context = GatewayContext(
            configuration: configuration,
            router: router,
            peer: localPeer,
            logger: logger,
            onRefusal: onRefusal,
            outputTypes: Dictionary(
                ProtoCodec.contractMethods.map { ("/\($0.service)/\($0.name)", $0.output) },
                uniquingKeysWith: { a, _ in a }
            ),
            inputTypes: Dictionary(
                ProtoCodec.contractMethods.map { ("/\($0.service)/\($0.name)", $0.input) },
                uniquingKeysWith: { a, _ in a }
            )
        )
        do {
            listener = try Listener(
                address: configuration.address,
                group: group,
                tls: tls,
                timeouts: configuration.timeouts,
                maxConnections: configuration.maxConnections,
                logger: logger,
                onRefusal: onRefusal
            ) { loop in GatewayConnection(context: context, loop: loop) }
        } catch {
            group.shutdown()
            throw error
        }
        port = listener.port
        self.group = group
    }

    public func shutdown() {
        listener.close()
        group.shutdown()
    }

    /// The CSRF token that goes with a session token: derived, so the node keeps nothing more.
    public static func csrfToken(forSession token: String) -> String {
        Data(Digest.sha256(Array("casebridge-csrf/\(token)".utf8)).prefix(18)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }
}

struct GatewayContext: Sendable {
    let configuration: ConnectGatewayConfiguration
    let router: RPCRouter
    let peer: PeerIdentity
    let logger: Logger
    let onRefusal: @Sendable (Refusal) -> Void
    let outputTypes: [String: String]
    let inputTypes: [String: String]
}

/// Connect's names and HTTP statuses for gRPC codes.
enum ConnectCodes {
    static func name(_ code: RPCCode) -> String {
        switch code.rawValue {
        case 1: "canceled"
        case 2: "unknown"
        case 3: "invalid_argument"
        case 4: "deadline_exceeded"
        case 5: "not_found"
        case 6: "already_exists"
        case 7: "permission_denied"
        case 8: "resource_exhausted"
        case 9: "failed_precondition"
        case 10: "aborted"
        case 11: "out_of_range"
        case 12: "unimplemented"
        case 13: "internal"
        case 14: "unavailable"
        case 15: "data_loss"
        case 16: "unauthenticated"
        default: "unknown"
        }
    }

    static func httpStatus(_ code: RPCCode) -> Int {
        switch code.rawValue {
        case 1: 499
        case 3, 9, 11: 400
        case 4: 504
        case 5: 404
        case 6, 10: 409
        case 7: 403
        case 8: 429
        case 12: 501
        case 14: 503
        case 16: 401
        default: 500
        }
    }
}

/// One HTTPS connection of the console: requests one after another (keep-alive), each answered
/// before the next is read.
final class GatewayConnection: ConnectionDelegate, @unchecked Sendable {
    let context: GatewayContext
    let loop: EventLoop
    private var connection: Connection?
    private var parser: HTTP1Parser
    private var call: InProcessCall?
    private var idleTimer: LoopTimer?
    /// A handler's message waits for the socket to drain before the next is produced.
    private var waitingToSend: (@Sendable () -> Void)?
    private var closeAfterResponse = false

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
        if call == nil { serveNext() }
    }

    func connectionWritable(_ connection: Connection) {
        if let resume = waitingToSend, connection.pendingOutputBytes < Self.highWater {
            waitingToSend = nil
            resume()
        }
    }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        call?.cancel()
        call = nil
        idleTimer = nil
        waitingToSend?()
        waitingToSend = nil
        self.connection = nil
    }

    private func armIdleTimer() {
        idleTimer = LoopTimer(loop: loop, after: context.configuration.idleTimeout) { [weak self] in
            guard let self, self.call == nil else { return }
            self.connection?.close()
        }
    }

    private func serveNext() {
        guard connection != nil, call == nil else { return }
        switch parser.next() {
        case .needMore:
            return
        case .refuse(let status, let reason):
            report(reason)
            closeAfterResponse = true
            respondError(status: status, code: status == 413 ? "resource_exhausted" : "invalid_argument", reason)
        case .request(let request):
            idleTimer = nil
            closeAfterResponse = request.close
            handle(request)
        }
    }

    private func report(_ reason: String) {
        context.onRefusal(Refusal(.protocolError, source: connection?.remoteHost ?? "?", reason: "https: \(reason)"))
    }

    // MARK: One request

    private func handle(_ request: HTTP1Request) {
        let path = request.target
        guard request.method == "POST" else {
            let status = request.method == "GET" || request.method == "HEAD" ? 404 : 405
            respondError(
                status: status,
                code: status == 404 ? "not_found" : "unimplemented",
                status == 404 ? "nothing here: call POST /casebridge.v1.Console/<Method>" : "use POST"
            )
            return
        }
        guard let inputType = context.inputTypes[path], let outputType = context.outputTypes[path] else {
            respondError(status: 404, code: "unimplemented", "no method \(path.prefix(200))")
            return
        }
        let contentType = (request.header("content-type") ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        let streamingProtocol = contentType == "application/connect+json"
        guard contentType == "application/json" || streamingProtocol else {
            respondError(status: 415, code: "invalid_argument", "send Content-Type: application/json")
            return
        }
        if let origin = request.header("origin"), let host = request.header("host"),
            origin != "https://\(host)"
        {
            report("cross-origin call refused")
            respondError(status: 403, code: "permission_denied", "calls from another origin are refused")
            return
        }
        var metadata = Metadata()
        if let authorization = request.header("authorization") {
            metadata.add("authorization", authorization)
        } else if let session = Self.cookie("cb_session", in: request) {
            guard request.header("x-csrf-token") == ConnectGateway.csrfToken(forSession: session) else {
                report("browser call without its CSRF token")
                respondError(
                    status: 403,
                    code: "permission_denied",
                    "a signed-in browser call needs the X-CSRF-Token header (from the cb_csrf cookie)"
                )
                return
            }
            metadata.add("authorization", "Bearer \(session)")
        }
        var body = request.body
        if streamingProtocol {
            // One enveloped message: flags (1 byte), length (4 bytes), JSON.
            guard body.count >= 5,
                body.count - 5 == Int(body[1]) << 24 | Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4])
            else {
                respondError(status: 400, code: "invalid_argument", "malformed Connect envelope")
                return
            }
            body = Array(body.dropFirst(5))
        }
        let wire: [UInt8]
        do {
            wire = try ProtoJSON.wireBytes(json: Data(body), as: inputType, limits: context.configuration.protoLimits)
        } catch {
            respondError(status: 400, code: "invalid_argument", "\(error)")
            return
        }
        guard
            let call = InProcessCall(
                router: context.router,
                path: path,
                request: wire,
                metadata: metadata,
                peer: context.peer,
                limits: context.configuration.protoLimits,
                maxSendMessageBytes: context.configuration.maxResponseBytes,
                logger: context.logger
            )
        else {
            respondError(status: 404, code: "unimplemented", "no method \(path.prefix(200))")
            return
        }
        self.call = call
        let responder = Responder(
            connection: self,
            path: path,
            outputType: outputType,
            streaming: call.kind != .unary,
            connectStreaming: streamingProtocol,
            secure: true
        )
        Task {
            for await event in call.events { await responder.deliver(event) }
        }
    }

    /// Called on the loop when a response is complete.
    fileprivate func finishedResponse() {
        call = nil
        if closeAfterResponse {
            connection?.close()
            return
        }
        armIdleTimer()
        serveNext()
    }

    fileprivate func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { connection?.write($0) }
    }

    /// Runs `resume` once the socket has room (at once when it has).
    fileprivate func whenWritable(_ resume: @escaping @Sendable () -> Void) {
        guard let connection, connection.pendingOutputBytes >= Self.highWater else {
            resume()
            return
        }
        waitingToSend = resume
    }

    private func respondError(status: Int, code: String, _ message: String) {
        let body = Array(Self.errorJSON(code: code, message: message))
        write(
            HTTP1Response.head(
                status: status,
                headers: Self.headers(contentType: "application/json", length: body.count)
            ) + body
        )
        finishedResponse()
    }

    // MARK: Helpers

    static func errorJSON(code: String, message: String) -> Data {
        (try? JSONSerialization.data(
            withJSONObject: ["code": code, "message": message],
            options: [.sortedKeys, .withoutEscapingSlashes]
        ))
            ?? Data("{}".utf8)
    }

    /// Headers on every answer: no caching, no sniffing, no framing, no referrer, HTTPS only.
    static func headers(contentType: String, length: Int?, extra: [(String, String)] = []) -> [(String, String)] {
        var headers: [(String, String)] = [("Content-Type", contentType)]
        if let length {
            headers.append(("Content-Length", String(length)))
        } else {
            headers.append(("Transfer-Encoding", "chunked"))
        }
        headers += [
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Strict-Transport-Security", "max-age=31536000"),
        ]
        return headers + extra
    }

    static func cookie(_ name: String, in request: HTTP1Request) -> String? {
        for header in request.headers where header.name == "cookie" {
            for pair in header.value.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == name, !parts[1].isEmpty { return parts[1] }
            }
        }
        return nil
    }
}

/// Turns one call's events into one HTTP response, on the connection's loop.
private final class Responder: @unchecked Sendable {
    let connection: GatewayConnection
    let path: String
    let outputType: String
    let streaming: Bool
    let connectStreaming: Bool
    let secure: Bool
    private var started = false
    private var unaryMessage: [UInt8]?

    init(
        connection: GatewayConnection,
        path: String,
        outputType: String,
        streaming: Bool,
        connectStreaming: Bool,
        secure: Bool
    ) {
        self.connection = connection
        self.path = path
        self.outputType = outputType
        self.streaming = streaming
        self.connectStreaming = connectStreaming
        self.secure = secure
    }

    func deliver(_ event: InProcessCall.Event) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            connection.loop.execute { [self] in
                handle(event)
                done.resume()
            }
        }
    }

    private var limits: ProtoLimits { connection.context.configuration.protoLimits }

    private func json(_ bytes: [UInt8]) -> [UInt8] {
        let big = ProtoLimits(maxMessageBytes: max(bytes.count, limits.maxMessageBytes), maxElements: .max / 2)
        return Array((try? ProtoJSON.json(wireBytes: bytes, as: outputType, limits: big)) ?? Data("{}".utf8))
    }

    /// Runs on the loop.
    private func handle(_ event: InProcessCall.Event) {
        switch event {
        case .message(let bytes, let sent):
            guard streaming else {
                unaryMessage = bytes
                sent()
                return
            }
            startStreamIfNeeded()
            let body = json(bytes)
            if connectStreaming {
                connection.write(HTTP1Response.chunk(Self.envelope(flags: 0, body)))
            } else {
                connection.write(HTTP1Response.chunk(Array("data: ".utf8) + body + Array("\n\n".utf8)))
            }
            connection.whenWritable(sent)
        case .finished(let code, let message, _):
            if streaming {
                finishStream(code, message)
            } else {
                finishUnary(code, message)
            }
            connection.finishedResponse()
        }
    }

    private func startStreamIfNeeded() {
        guard !started else { return }
        started = true
        let type = connectStreaming ? "application/connect+json" : "text/event-stream"
        connection.write(
            HTTP1Response.head(status: 200, headers: GatewayConnection.headers(contentType: type, length: nil))
        )
    }

    private func finishStream(_ code: RPCCode, _ message: String) {
        if !started, code != .ok, !connectStreaming {
            // Refused before anything was sent (not signed in, not allowed): a plain HTTP error.
            finishUnary(code, message)
            return
        }
        startStreamIfNeeded()
        let error: [String: Any] = ["code": ConnectCodes.name(code), "message": message]
        if connectStreaming {
            let end = (try? JSONSerialization.data(withJSONObject: code == .ok ? [:] : ["error": error])) ?? Data()
            connection.write(HTTP1Response.chunk(Self.envelope(flags: 2, Array(end))))
        } else {
            let data = (try? JSONSerialization.data(withJSONObject: code == .ok ? [:] : error)) ?? Data()
            let name = code == .ok ? "end" : "error"
            connection.write(
                HTTP1Response.chunk(Array("event: \(name)\ndata: ".utf8) + Array(data) + Array("\n\n".utf8))
            )
        }
        connection.write(HTTP1Response.lastChunk)
    }

    private func finishUnary(_ code: RPCCode, _ message: String) {
        guard code == .ok, let bytes = unaryMessage else {
            let body = Array(GatewayConnection.errorJSON(code: ConnectCodes.name(code), message: message))
            connection.write(
                HTTP1Response.head(
                    status: ConnectCodes.httpStatus(code),
                    headers: GatewayConnection.headers(contentType: "application/json", length: body.count)
                ) + body
            )
            return
        }
        let body = json(bytes)
        connection.write(
            HTTP1Response.head(
                status: 200,
                headers: GatewayConnection.headers(
                    contentType: "application/json",
                    length: body.count,
                    extra: cookies(for: bytes)
                )
            ) + body
        )
    }

    /// Signing in sets the session cookie (and its CSRF companion); signing out clears them.
    private func cookies(for bytes: [UInt8]) -> [(String, String)] {
        let attributes = "Path=/; Secure; SameSite=Strict"
        if path.hasSuffix("/Logout") {
            return [
                ("Set-Cookie", "cb_session=; \(attributes); HttpOnly; Max-Age=0"),
                ("Set-Cookie", "cb_csrf=; \(attributes); Max-Age=0"),
            ]
        }
        var token: String?
        if path.hasSuffix("/Login"), let reply = try? ProtoCodec.decode(LoginReply.self, from: bytes) {
            token = reply.token
        } else if path.hasSuffix("/CompleteEnrolment"),
            let done = try? ProtoCodec.decode(EnrolmentDone.self, from: bytes)
        {
            token = done.session?.token
        }
        guard let token, !token.isEmpty else { return [] }
        return [
            ("Set-Cookie", "cb_session=\(token); \(attributes); HttpOnly"),
            ("Set-Cookie", "cb_csrf=\(ConnectGateway.csrfToken(forSession: token)); \(attributes)"),
        ]
    }

    static func envelope(flags: UInt8, _ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        return [
            flags, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
            UInt8(truncatingIfNeeded: n),
        ] + body
    }
}
