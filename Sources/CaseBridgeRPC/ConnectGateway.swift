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
    /// HTTP/2 streams one connection may have open at once.
    public var maxConcurrentStreams = 32
    /// A connection with no request in progress for this long is closed.
    public var idleTimeout: Duration = .seconds(60)
    public var timeouts = ConnectionTimeouts()
    public var protoLimits = ProtoLimits()
    public var maxResponseBytes = 64 * 1024 * 1024
    /// Pages served to browsers by path ("/" included), for GET and HEAD.
    public var files: [String: StaticFile] = [:]
    public init() {}
}

/// A file the HTTPS listener serves as it is: the web console's pages, scripts and catalogs.
public struct StaticFile: Sendable {
    public let contentType: String
    public let bytes: [UInt8]
    public init(contentType: String, bytes: [UInt8]) {
        self.contentType = contentType
        self.bytes = bytes
    }
}

/// The Connect protocol's JSON form of a router's methods over HTTPS (HTTP/2, or HTTP/1.1 for
/// simpler clients): `POST
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
        let group = EventLoopGroup(threads: 1, name: "cb-https")
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
            ) { loop in HTTPSConsoleConnection(context: context, loop: loop) }
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
        Base64.encode(Array(Digest.sha256(Array("casebridge-csrf/\(token)".utf8)).prefix(18)), urlSafe: true)
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

/// Where one response goes: HTTP/1.1 bytes on the connection, or one HTTP/2 stream. Used on the
/// connection's loop only.
protocol ResponseSink: AnyObject {
    var loop: EventLoop { get }
    /// `length` nil: a body of unknown length follows (a stream of messages).
    func head(status: Int, headers: [(String, String)], length: Int?)
    func body(_ bytes: [UInt8])
    /// The response is complete.
    func end()
    /// Runs `resume` once the client has taken enough of what was sent (at once if it has).
    func whenWritable(_ resume: @escaping @Sendable () -> Void)
}

extension ResponseSink {
    func respond(status: Int, headers: [(String, String)] = [], json: [UInt8]) {
        head(status: status, headers: Exchange.headers(contentType: "application/json") + headers, length: json.count)
        body(json)
        end()
    }

    func respondError(status: Int, code: String, _ message: String) {
        respond(status: status, json: Array(Exchange.errorJSON(code: code, message: message)))
    }
}

/// One request to the console, from its head to the last byte of its answer, whatever the
/// transport: checks (method, path, content type, origin, session or CSRF), JSON to protobuf, the
/// call, and its events back as JSON.
final class Exchange: @unchecked Sendable {
    let context: GatewayContext
    let sink: ResponseSink
    /// Where the refusals of this request are reported from (the remote address).
    let source: String
    private(set) var call: InProcessCall?

    init(context: GatewayContext, sink: ResponseSink, source: String) {
        self.context = context
        self.sink = sink
        self.source = source
    }

    /// The client went away.
    func cancel() { call?.cancel() }

    private func report(_ reason: String) {
        context.onRefusal(Refusal(.protocolError, source: source, reason: "https: \(reason)"))
    }

    func start(_ request: HTTP1Request) {
        let path = request.target
        if request.method == "GET" || request.method == "HEAD",
            let file = context.configuration.files[String(path.prefix { $0 != "?" && $0 != "#" })]
        {
            serve(file, head: request.method == "HEAD")
            return
        }
        guard request.method == "POST" else {
            let status = request.method == "GET" || request.method == "HEAD" ? 404 : 405
            sink.respondError(
                status: status,
                code: status == 404 ? "not_found" : "unimplemented",
                status == 404 ? "nothing here: call POST /casebridge.v1.Console/<Method>" : "use POST"
            )
            return
        }
        guard let inputType = context.inputTypes[path], let outputType = context.outputTypes[path] else {
            sink.respondError(status: 404, code: "unimplemented", "no method \(path.prefix(200))")
            return
        }
        let contentType = (request.header("content-type") ?? "").split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        let connectStreaming = contentType == "application/connect+json"
        guard contentType == "application/json" || connectStreaming else {
            sink.respondError(status: 415, code: "invalid_argument", "send Content-Type: application/json")
            return
        }
        if let origin = request.header("origin"), let host = request.header("host"), origin != "https://\(host)" {
            report("cross-origin call refused")
            sink.respondError(status: 403, code: "permission_denied", "calls from another origin are refused")
            return
        }
        var metadata = Metadata()
        if let authorization = request.header("authorization") {
            metadata.add("authorization", authorization)
        } else if let session = Self.cookie("cb_session", in: request) {
            guard request.header("x-csrf-token") == ConnectGateway.csrfToken(forSession: session) else {
                report("browser call without its CSRF token")
                sink.respondError(
                    status: 403,
                    code: "permission_denied",
                    "a signed-in browser call needs the X-CSRF-Token header (from the cb_csrf cookie)"
                )
                return
            }
            metadata.add("authorization", "Bearer \(session)")
        }
        var body = request.body
        if connectStreaming {
            // One enveloped message: flags (1 byte), length (4 bytes, big-endian), JSON.
            let length = body.count >= 5 ? body[1...4].reduce(0) { $0 << 8 | Int($1) } : -1
            guard length == body.count - 5 else {
                sink.respondError(status: 400, code: "invalid_argument", "malformed Connect envelope")
                return
            }
            body = Array(body.dropFirst(5))
        }
        let wire: [UInt8]
        do {
            wire = try ProtoJSON.wireBytes(json: Data(body), as: inputType, limits: context.configuration.protoLimits)
        } catch {
            sink.respondError(status: 400, code: "invalid_argument", "\(error)")
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
            sink.respondError(status: 404, code: "unimplemented", "no method \(path.prefix(200))")
            return
        }
        self.call = call
        let responder = Responder(
            sink: sink,
            path: path,
            outputType: outputType,
            streaming: call.kind != .unary,
            connectStreaming: connectStreaming,
            limits: context.configuration.protoLimits
        )
        Task {
            for await event in call.events { await responder.deliver(event) }
        }
    }

    private func serve(_ file: StaticFile, head: Bool) {
        sink.head(
            status: 200,
            headers: Exchange.headers(contentType: file.contentType, page: true),
            length: file.bytes.count
        )
        if !head { sink.body(file.bytes) }
        sink.end()
    }

    static func errorJSON(code: String, message: String) -> Data {
        (try? JSONSerialization.data(
            withJSONObject: ["code": code, "message": message],
            options: [.sortedKeys, .withoutEscapingSlashes]
        )) ?? Data("{}".utf8)
    }

    /// Headers on every answer: no sniffing, no framing, no referrer, HTTPS only. Data is never
    /// cached; a page (`page`) is revalidated, and may load only this origin's scripts, styles and
    /// calls, never inline script or anything from another origin.
    static func headers(contentType: String, page: Bool = false) -> [(String, String)] {
        [
            ("Content-Type", contentType),
            ("Cache-Control", page ? "no-cache" : "no-store"),
            (
                "Content-Security-Policy",
                // blob: for pictures the console fetched (attachments), made by its own script.
                page
                    ? "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                        + "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
                    : "default-src 'none'; frame-ancestors 'none'"
            ),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Strict-Transport-Security", "max-age=31536000"),
        ]
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

/// Turns one call's events into one response, on the sink's loop.
private final class Responder: @unchecked Sendable {
    let sink: ResponseSink
    let path: String
    let outputType: String
    let streaming: Bool
    let connectStreaming: Bool
    let limits: ProtoLimits
    private var started = false
    private var unaryMessage: [UInt8]?

    init(
        sink: ResponseSink,
        path: String,
        outputType: String,
        streaming: Bool,
        connectStreaming: Bool,
        limits: ProtoLimits
    ) {
        self.sink = sink
        self.path = path
        self.outputType = outputType
        self.streaming = streaming
        self.connectStreaming = connectStreaming
        self.limits = limits
    }

    func deliver(_ event: InProcessCall.Event) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            sink.loop.execute { [self] in
                handle(event)
                done.resume()
            }
        }
    }

    /// A response the node produced itself: as large as it is (a 5,000-person case).
    private func json(_ bytes: [UInt8]) -> [UInt8] {
        let room = ProtoLimits(maxMessageBytes: max(bytes.count, limits.maxMessageBytes), maxElements: .max / 2)
        return Array((try? ProtoJSON.json(wireBytes: bytes, as: outputType, limits: room)) ?? Data("{}".utf8))
    }

    private func handle(_ event: InProcessCall.Event) {
        switch event {
        case .message(let bytes, let sent):
            guard streaming else {
                unaryMessage = bytes
                sent()
                return
            }
            startStream()
            let body = json(bytes)
            sink.body(connectStreaming ? Self.envelope(flags: 0, body) : Array("data: ".utf8) + body + [10, 10])
            sink.whenWritable(sent)
        case .finished(let code, let message, _):
            if streaming { finishStream(code, message) } else { finishUnary(code, message) }
        }
    }

    private func startStream() {
        guard !started else { return }
        started = true
        let type = connectStreaming ? "application/connect+json" : "text/event-stream"
        sink.head(status: 200, headers: Exchange.headers(contentType: type), length: nil)
    }

    private func finishStream(_ code: RPCCode, _ message: String) {
        if !started, code != .ok, !connectStreaming {
            // Refused before anything was sent (not signed in, not allowed): a plain HTTP error.
            finishUnary(code, message)
            return
        }
        startStream()
        let error: [String: Any] = ["code": ConnectCodes.name(code), "message": message]
        if connectStreaming {
            let end = (try? JSONSerialization.data(withJSONObject: code == .ok ? [:] : ["error": error])) ?? Data()
            sink.body(Self.envelope(flags: 2, Array(end)))
        } else {
            let data = (try? JSONSerialization.data(withJSONObject: code == .ok ? [:] : error)) ?? Data()
            sink.body(Array("event: \(code == .ok ? "end" : "error")\ndata: ".utf8) + Array(data) + [10, 10])
        }
        sink.end()
    }

    private func finishUnary(_ code: RPCCode, _ message: String) {
        guard code == .ok, let bytes = unaryMessage else {
            sink.respondError(status: ConnectCodes.httpStatus(code), code: ConnectCodes.name(code), message)
            return
        }
        sink.respond(status: 200, headers: cookies(for: bytes), json: json(bytes))
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
        return [flags] + (0..<4).reversed().map { UInt8(truncatingIfNeeded: n >> (8 * UInt32($0))) } + body
    }
}
