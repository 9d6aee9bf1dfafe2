import CNghttp2

/// One header field, name in lower case.
public struct HTTP2Header: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Limits and settings of one HTTP/2 connection.
public struct HTTP2Settings: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise: streams the peer may open at once.
    public var maxConcurrentStreams: UInt32 = 100
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise, bytes per stream.
    public var initialWindowSize: UInt32 = 1 << 20
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce, bytes (names + values + 32 per field).
    public var maxHeaderListSize: UInt32 = 16 * 1024
    /// Stream resets the peer may send in a burst, then per second, before the connection is dropped
    /// (the "rapid reset" attack, CVE-2023-44487).
    public var resetBurst: UInt64 = 200
    public var resetsPerSecond: UInt64 = 50
    /// Control-frame replies (PING and SETTINGS acks) the peer may leave unread before the
    /// connection is closed with ENHANCE_YOUR_CALM: a peer that sends them and never reads.
    public var maxQueuedControlReplies: Int = 1000
    /// Server side, gRPC's keepalive enforcement: a PING that comes sooner than `minPingInterval`
    /// after the previous one, while this side has sent no headers or data since, is a strike; past
    /// `maxPingStrikes` the connection is closed with GOAWAY ENHANCE_YOUR_CALM "too_many_pings"
    /// (gRPC clients then slow their keepalive down). A PING flood costs the node a few frames.
    public var minPingInterval: Duration = .seconds(10)
    public var maxPingStrikes = 2
    /// When true, received DATA reopens the peer's flow-control window only once the application
    /// calls ``HTTP2Session/consume(streamID:bytes:)``: what a slow handler has not taken yet
    /// holds the sender back instead of piling up in memory.
    public var manualFlowControl = false

    public init() {}
}

/// Events of an HTTP/2 session, delivered synchronously while ``HTTP2Session/receive(_:)`` runs.
public protocol HTTP2SessionDelegate: AnyObject {
    /// A complete header block: request or response headers, or trailers.
    func session(_ session: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool)
    func session(_ session: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32)
    /// The peer closed its side with END_STREAM on a DATA frame.
    func session(_ session: HTTP2Session, endOfDataStreamID streamID: Int32)
    /// The stream is gone: both sides done, or reset (errorCode != 0).
    func session(_ session: HTTP2Session, closedStreamID streamID: Int32, errorCode: UInt32)
    func session(_ session: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32)
    /// A frame with END_STREAM went out on the stream: our side of it is closed.
    func session(_ session: HTTP2Session, sentEndOfStreamID streamID: Int32)
    /// A GOAWAY went out: ours, or one nghttp2 sent itself on a protocol error or flood.
    func session(_ session: HTTP2Session, sentGoAwayWithErrorCode errorCode: UInt32)
}

extension HTTP2SessionDelegate {
    public func session(_ session: HTTP2Session, sentGoAwayWithErrorCode errorCode: UInt32) {}
}

public struct HTTP2Error: Error, Sendable, CustomStringConvertible {
    public let code: Int32
    /// What happened, where nghttp2's own text for `code` does not say it.
    public var detail: String? = nil
    public var description: String { "HTTP/2: \(detail ?? String(cString: nghttp2_strerror(code)))" }
    /// The peer flooded the session (control frames it never reads the answers to, empty frames,
    /// PINGs more often than allowed).
    public var isFlood: Bool { code == NGHTTP2_ERR_FLOODED.rawValue }
}

/// An nghttp2 session driven through memory: bytes in with ``receive(_:)``, bytes out with
/// ``drainOutput(_:)``. Not thread-safe: one connection's thread uses it.
public final class HTTP2Session {
    public enum Role: Sendable { case server, client }

    public weak var delegate: HTTP2SessionDelegate?
    public let role: Role
    let session: OpaquePointer
    let settings: HTTP2Settings

    /// What each open stream still has to send.
    private var outbound: [Int32: Outbound] = [:]
    /// Body bytes queued on all streams and not yet taken by nghttp2.
    public private(set) var queuedBodyBytes = 0
    /// Header blocks being received.
    private var inbound: [Int32: (headers: [HTTP2Header], size: Int)] = [:]
    /// PINGs received (see ``HTTP2Settings/minPingInterval``).
    private var lastPing: ContinuousClock.Instant?
    private var sentSinceLastPing = false
    private var pingStrikes = 0
    private var tooManyPings = false

    struct Outbound {
        var chunks: [[UInt8]] = []
        var offset = 0
        var ended = false
        var trailers: [HTTP2Header]? = nil
        var deferred = false
        /// When nghttp2 last took bytes of this stream (or the stream got something to send).
        var lastProgress = ContinuousClock.now
        var queuedBytes: Int { chunks.reduce(0) { $0 + $1.count } - offset }
    }

    public init(role: Role, settings: HTTP2Settings) {
        self.role = role
        self.settings = settings
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameReceived)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, onFrameSent)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_stream_reset_rate_limit(option, settings.resetBurst, settings.resetsPerSecond)
        nghttp2_option_set_max_settings(option, 32)
        nghttp2_option_set_max_outbound_ack(option, settings.maxQueuedControlReplies)
        if settings.manualFlowControl { nghttp2_option_set_no_auto_window_update(option, 1) }
        nghttp2_option_set_max_reserved_remote_streams(option, 0)

        var created: OpaquePointer?
        // The session's user data is set below, once self is fully initialized.
        switch role {
        case .server: nghttp2_session_server_new2(&created, callbacks, nil, option)
        case .client: nghttp2_session_client_new2(&created, callbacks, nil, option)
        }
        session = created!
        nghttp2_session_set_user_data(session, Unmanaged.passUnretained(self).toOpaque())
        let entries = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: settings.maxConcurrentStreams
            ),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: settings.initialWindowSize
            ),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: settings.maxHeaderListSize
            ),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), entries, entries.count)
        // A larger connection window than the default 64 KiB, so that one large message does not stall.
        nghttp2_session_set_local_window_size(
            session,
            UInt8(NGHTTP2_FLAG_NONE.rawValue),
            0,
            Int32(settings.initialWindowSize) * 4
        )
    }

    deinit { nghttp2_session_del(session) }

    // MARK: Input and output

    /// Feeds bytes read from the connection. A thrown error means the connection must be closed
    /// once ``drainOutput(_:)`` has flushed what nghttp2 queued (usually a GOAWAY).
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2Error) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        let result = nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        if result < 0 { throw HTTP2Error(code: Int32(result)) }
        if tooManyPings {
            throw HTTP2Error(
                code: NGHTTP2_ERR_FLOODED.rawValue,
                detail: "more than \(settings.maxPingStrikes) PINGs less than \(settings.minPingInterval) apart "
                    + "with nothing sent between them (too_many_pings)"
            )
        }
    }

    /// Hands the bytes nghttp2 wants to send to `write`, in order, while `more` says the socket
    /// can take them; the rest stays queued in nghttp2 (frames are built lazily) for the next call.
    ///
    /// nghttp2 gives one frame at a time; small frames are gathered into pieces of up to
    /// `gatheredBytes` (a TLS record's worth), since each write becomes a TLS record and a system
    /// call of its own: a unary response's headers, message and trailers were three of each.
    public func drainOutput(
        while more: () -> Bool = { true },
        _ write: (UnsafeRawBufferPointer) -> Void
    ) throws(HTTP2Error) {
        var gathered: [UInt8] = []
        func writeGathered() {
            guard !gathered.isEmpty else { return }
            gathered.withUnsafeBytes { write($0) }
            gathered.removeAll(keepingCapacity: true)
        }
        defer { writeGathered() }
        while more() {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(session, &data)
            if count < 0 { throw HTTP2Error(code: Int32(count)) }
            guard count > 0, let data else { return }
            let frame = UnsafeRawBufferPointer(start: data, count: count)
            if gathered.isEmpty && count >= Self.gatheredBytes {
                write(frame)  // a full DATA frame: no copy
                continue
            }
            gathered.append(contentsOf: frame)  // valid only until nghttp2's next call
            if gathered.count >= Self.gatheredBytes { writeGathered() }
        }
    }

    /// The most bytes of small frames handed over in one write: one TLS record's plaintext.
    public static let gatheredBytes = 16 * 1024

    /// False once both sides are done with the connection (after GOAWAY, all streams closed).
    public var isActive: Bool {
        nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0
    }

    public var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    // MARK: Sending

    /// Response headers (server). `body: false` ends the stream with them (a trailers-only response).
    public func submitResponse(streamID: Int32, headers: [HTTP2Header], body: Bool) {
        if body { outbound[streamID] = Outbound() }
        withNameValues(headers) { nva, count in
            if body {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readOutbound)
                _ = nghttp2_submit_response(session, streamID, nva, count, &provider)
            } else {
                _ = nghttp2_submit_response(session, streamID, nva, count, nil)
            }
        }
    }

    /// A request (client); returns its stream id, or nil when no new stream may be opened.
    public func submitRequest(headers: [HTTP2Header]) -> Int32? {
        let streamID = withNameValues(headers) { nva, count in
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readOutbound)
            return nghttp2_submit_request(session, nil, nva, count, &provider, nil)
        }
        guard streamID > 0 else { return nil }
        outbound[streamID] = Outbound()
        return streamID
    }

    /// Queues body bytes on a stream opened with a body.
    public func send(_ bytes: [UInt8], streamID: Int32) {
        guard outbound[streamID] != nil, !bytes.isEmpty else { return }
        if outbound[streamID]!.chunks.isEmpty { outbound[streamID]!.lastProgress = .now }
        outbound[streamID]!.chunks.append(bytes)
        queuedBodyBytes += bytes.count
        resumeIfDeferred(streamID)
    }

    /// Streams with body bytes queued that nghttp2 has taken none of since `instant`: their peer
    /// stopped reading them (no WINDOW_UPDATE).
    public func streamsStalled(since instant: ContinuousClock.Instant) -> [Int32] {
        outbound.compactMap { id, stream in !stream.chunks.isEmpty && stream.lastProgress < instant ? id : nil }
    }

    /// Tells nghttp2 the application took `bytes` of a stream's DATA (manual flow control only):
    /// the peer may send that much more.
    public func consume(streamID: Int32, bytes: Int) {
        guard settings.manualFlowControl, bytes > 0 else { return }
        _ = nghttp2_session_consume(session, streamID, bytes)
    }

    /// Ends a stream's body, with trailers if given.
    public func end(streamID: Int32, trailers: [HTTP2Header]? = nil) {
        guard outbound[streamID] != nil else { return }
        outbound[streamID]!.ended = true
        outbound[streamID]!.trailers = trailers
        resumeIfDeferred(streamID)
    }

    public func resetStream(_ streamID: Int32, errorCode: UInt32 = NGHTTP2_CANCEL.rawValue) {
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Graceful shutdown, first step (server): tells the client to open no new streams.
    public func submitShutdownNotice() { _ = nghttp2_submit_shutdown_notice(session) }

    /// GOAWAY naming the last stream that will be processed. None after the session's own
    /// too_many_pings GOAWAY: a second would only repeat it without the reason.
    public func submitGoAway(errorCode: UInt32 = NGHTTP2_NO_ERROR.rawValue, lastStreamID: Int32? = nil) {
        guard !tooManyPings else { return }
        let last = lastStreamID ?? lastProcessedStreamID
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
    }

    public func submitPing() { _ = nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil) }

    private func resumeIfDeferred(_ streamID: Int32) {
        guard outbound[streamID]?.deferred == true else { return }
        outbound[streamID]!.deferred = false
        _ = nghttp2_session_resume_data(session, streamID)
    }

    private func withNameValues<R>(_ headers: [HTTP2Header], _ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        // nghttp2 copies names and values during submit (no NO_COPY flags), so temporary storage is fine.
        let storage = headers.map { (Array($0.name.utf8), Array($0.value.utf8)) }
        var nva: [nghttp2_nv] = []
        nva.reserveCapacity(storage.count)
        return withExtendedLifetime(storage) {
            for (name, value) in storage {
                let n = UnsafeMutablePointer<UInt8>(mutating: name.withUnsafeBufferPointer { $0.baseAddress! })
                let v =
                    value.isEmpty
                    ? UnsafeMutablePointer<UInt8>(mutating: emptyByte)
                    : UnsafeMutablePointer<UInt8>(mutating: value.withUnsafeBufferPointer { $0.baseAddress! })
                nva.append(
                    nghttp2_nv(
                        name: n,
                        value: v,
                        namelen: name.count,
                        valuelen: value.count,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
                    )
                )
            }
            return nva.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }

    // MARK: Callbacks from nghttp2

    fileprivate func beginHeaders(_ streamID: Int32) { inbound[streamID] = ([], 0) }

    fileprivate func header(_ streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard var block = inbound[streamID] else { return }
        block.size += name.count + value.count + 32
        if block.size <= Int(settings.maxHeaderListSize) {
            block.headers.append(
                HTTP2Header(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
            )
        }
        inbound[streamID] = block
    }

    fileprivate func headersComplete(_ streamID: Int32, endStream: Bool) {
        let block = inbound.removeValue(forKey: streamID) ?? ([], 0)
        delegate?.session(
            self,
            headers: block.headers,
            streamID: streamID,
            endStream: endStream,
            oversized: block.size > Int(settings.maxHeaderListSize)
        )
    }

    fileprivate func data(_ streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        delegate?.session(self, data: bytes, streamID: streamID)
    }
    fileprivate func endOfData(_ streamID: Int32) { delegate?.session(self, endOfDataStreamID: streamID) }

    fileprivate func closed(_ streamID: Int32, errorCode: UInt32) {
        if let gone = outbound.removeValue(forKey: streamID) { queuedBodyBytes -= gone.queuedBytes }
        inbound.removeValue(forKey: streamID)
        delegate?.session(self, closedStreamID: streamID, errorCode: errorCode)
    }

    fileprivate func sentEndOfStream(_ streamID: Int32) { delegate?.session(self, sentEndOfStreamID: streamID) }

    fileprivate func sentHeadersOrData() { sentSinceLastPing = true }

    /// A PING from the peer (not an ack): counts a strike when it comes too soon (server only).
    fileprivate func receivedPing() {
        guard role == .server, !tooManyPings else { return }
        let now = ContinuousClock.now
        defer {
            lastPing = now
            sentSinceLastPing = false
        }
        if sentSinceLastPing { pingStrikes = 0 }
        guard let last = lastPing, now - last < settings.minPingInterval, !sentSinceLastPing else { return }
        pingStrikes += 1
        guard pingStrikes > settings.maxPingStrikes else { return }
        tooManyPings = true
        let reason = Array("too_many_pings".utf8)
        _ = nghttp2_submit_goaway(
            session,
            UInt8(NGHTTP2_FLAG_NONE.rawValue),
            lastProcessedStreamID,
            NGHTTP2_ENHANCE_YOUR_CALM.rawValue,
            reason,
            reason.count
        )
    }
    fileprivate func sentGoAway(_ errorCode: UInt32) { delegate?.session(self, sentGoAwayWithErrorCode: errorCode) }

    /// The RFC 9113 name of an error code ("PROTOCOL_ERROR"), or its number.
    public static func errorName(_ code: UInt32) -> String {
        let names = [
            "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
            "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
            "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
        ]
        return code < names.count ? names[Int(code)] : "error \(code)"
    }

    fileprivate func goAway(lastStreamID: Int32, errorCode: UInt32) {
        delegate?.session(self, goAwayLastStreamID: lastStreamID, errorCode: errorCode)
    }

    /// Copies queued body bytes into nghttp2's frame buffer.
    fileprivate func read(
        _ streamID: Int32,
        into buffer: UnsafeMutablePointer<UInt8>,
        length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        guard var stream = outbound[streamID] else { return Int(cb_nghttp2_err_deferred()) }
        var written = 0
        while written < length, let first = stream.chunks.first {
            let take = min(length - written, first.count - stream.offset)
            first.withUnsafeBufferPointer {
                (buffer + written).update(from: $0.baseAddress! + stream.offset, count: take)
            }
            written += take
            stream.offset += take
            queuedBodyBytes -= take
            if stream.offset == first.count {
                stream.chunks.removeFirst()
                stream.offset = 0
            }
        }
        if written > 0 { stream.lastProgress = .now }
        if stream.chunks.isEmpty && stream.ended {
            flags.pointee |= cb_nghttp2_data_flag_eof()
            if let trailers = stream.trailers {
                flags.pointee |= cb_nghttp2_data_flag_no_end_stream()
                withNameValues(trailers) { nva, count in _ = nghttp2_submit_trailer(session, streamID, nva, count) }
            }
        } else if written == 0 {
            stream.deferred = true
            outbound[streamID] = stream
            return Int(cb_nghttp2_err_deferred())
        }
        outbound[streamID] = stream
        return written
    }
}

nonisolated(unsafe) private let emptyByte: UnsafePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    p.pointee = 0
    return UnsafePointer(p)
}()

private func owner(_ userData: UnsafeMutableRawPointer?) -> HTTP2Session {
    Unmanaged<HTTP2Session>.fromOpaque(userData!).takeUnretainedValue()
}

private func onBeginHeaders(
    _ s: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    owner(userData).beginHeaders(frame!.pointee.hd.stream_id)
    return 0
}

private func onHeader(
    _ s: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ name: UnsafePointer<UInt8>?,
    _ nameLength: Int,
    _ value: UnsafePointer<UInt8>?,
    _ valueLength: Int,
    _ flags: UInt8,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    owner(userData).header(
        frame!.pointee.hd.stream_id,
        name: UnsafeBufferPointer(start: name, count: nameLength),
        value: UnsafeBufferPointer(start: value, count: valueLength)
    )
    return 0
}

private func onFrameReceived(
    _ s: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    let hd = frame!.pointee.hd
    let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    switch UInt32(hd.type) {
    case NGHTTP2_HEADERS.rawValue:
        owner(userData).headersComplete(hd.stream_id, endStream: endStream)
    case NGHTTP2_DATA.rawValue where endStream:
        owner(userData).endOfData(hd.stream_id)
    case NGHTTP2_PING.rawValue where hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0:
        owner(userData).receivedPing()
    case NGHTTP2_GOAWAY.rawValue:
        owner(userData).goAway(
            lastStreamID: frame!.pointee.goaway.last_stream_id,
            errorCode: frame!.pointee.goaway.error_code
        )
    default:
        break
    }
    return 0
}

private func onFrameSent(
    _ s: OpaquePointer?,
    _ frame: UnsafePointer<nghttp2_frame>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    let hd = frame!.pointee.hd
    let type = UInt32(hd.type)
    if type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue {
        owner(userData).sentHeadersOrData()
        if hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 { owner(userData).sentEndOfStream(hd.stream_id) }
    }
    if type == NGHTTP2_GOAWAY.rawValue { owner(userData).sentGoAway(frame!.pointee.goaway.error_code) }
    return 0
}

private func onDataChunk(
    _ s: OpaquePointer?,
    _ flags: UInt8,
    _ streamID: Int32,
    _ data: UnsafePointer<UInt8>?,
    _ length: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    owner(userData).data(streamID, UnsafeRawBufferPointer(start: data, count: length))
    return 0
}

private func onStreamClose(
    _ s: OpaquePointer?,
    _ streamID: Int32,
    _ errorCode: UInt32,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    owner(userData).closed(streamID, errorCode: errorCode)
    return 0
}

private func readOutbound(
    _ s: OpaquePointer?,
    _ streamID: Int32,
    _ buffer: UnsafeMutablePointer<UInt8>?,
    _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?,
    _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    owner(userData).read(streamID, into: buffer!, length: length, flags: flags!)
}
