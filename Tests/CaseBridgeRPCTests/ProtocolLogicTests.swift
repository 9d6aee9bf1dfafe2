import CaseBridgeHTTP2
import Testing
@testable import CaseBridgeRPC

/// The gRPC protocol logic, without sockets.
@Suite("gRPC protocol logic")
struct ProtocolLogicTests {
    let good = [
        HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "https"), HTTP2Header(":path", "/pkg.Svc/Unary"),
        HTTP2Header("content-type", "application/grpc+proto"), HTTP2Header("te", "trailers"),
        HTTP2Header("grpc-timeout", "250m"), HTTP2Header("x-agency", "ncct"),
    ]

    func lookup(_ path: String) -> RouteLookup {
        switch path {
        case "/pkg.Svc/Unary": .method(.unary)
        case "/pkg.Svc/Stream": .method(.bidirectionalStreaming)
        case let p where p.hasPrefix("/pkg.Svc/"): .unknownMethod
        default: .unknownService
        }
    }

    func status(_ outbound: ServerCallStateMachine.Outbound?) -> (code: String?, http: String?, message: String?) {
        let headers: [HTTP2Header]
        switch outbound {
        case .trailers(let h)?, .trailersOnly(let h)?: headers = h
        default: return (nil, nil, nil)
        }
        func v(_ n: String) -> String? { headers.first { $0.name == n }?.value }
        return (v("grpc-status"), v(":status"), v("grpc-message").map(GRPCWire.percentDecode))
    }

    func rejection(
        _ headers: [HTTP2Header],
        endStream: Bool = false
    ) -> (code: String?, http: String?, message: String?) {
        var machine = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        guard
            case .reject(let outbound) = machine.receiveHeaders(
                headers,
                endStream: endStream,
                oversized: false,
                lookup: lookup
            )
        else {
            return (nil, nil, nil)
        }
        return status(outbound)
    }

    @Test("good headers are accepted with deadline and custom metadata")
    func accept() {
        var machine = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        let result = machine.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        #expect(
            result
                == .accept(
                    RequestHead(path: "/pkg.Svc/Unary", timeout: .milliseconds(250), metadata: ["x-agency": "ncct"]),
                    .unary
                )
        )
    }

    @Test("bad requests get the status the spec names")
    func rejections() {
        func replacing(_ name: String, _ value: String) -> [HTTP2Header] {
            good.map { $0.name == name ? HTTP2Header(name, value) : $0 }
        }
        #expect(rejection(replacing(":method", "GET")).http == "405")
        #expect(rejection(replacing("content-type", "text/html")).http == "415")
        #expect(rejection(replacing(":path", "/pkg.Svc/Nope")).code == "12")
        #expect(rejection(replacing(":path", "/pkg.Svc/Nope")).message == "unknown method /pkg.Svc/Nope")
        #expect(rejection(replacing(":path", "/other.Svc/X")).message == "unknown service other.Svc")
        #expect(rejection(good + [HTTP2Header("grpc-encoding", "gzip")]).code == "12")
        #expect(rejection(replacing("grpc-timeout", "soon")).code == "13")
        #expect(rejection(good, endStream: true).code == "13")
    }

    @Test("messages split across frames are put back together; limits and flags are enforced")
    func inbound() {
        var machine = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        _ = machine.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        let framed = GRPCWire.frame([1, 2, 3])
        #expect(framed.prefix(2).withUnsafeBytes { machine.receiveData($0) } == .messages([]))
        #expect(framed.dropFirst(2).withUnsafeBytes { machine.receiveData($0) } == .messages([[1, 2, 3]]))
        #expect(machine.receiveEndOfStream() == .endOfRequests)

        var twice = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        _ = twice.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        guard case .reject(let extra) = (framed + framed).withUnsafeBytes({ twice.receiveData($0) }) else {
            Issue.record("a second message on a unary call was accepted")
            return
        }
        #expect(status(extra).code == "13")

        var large = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        _ = large.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        guard
            case .reject(let tooLarge) = GRPCWire.frame(Array(repeating: 0, count: 101)).withUnsafeBytes({
                large.receiveData($0)
            })
        else {
            Issue.record("an oversized message was accepted")
            return
        }
        #expect(status(tooLarge).code == "8")

        var compressed = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        _ = compressed.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        guard case .reject(let unsupported) = [UInt8]([1, 0, 0, 0, 0]).withUnsafeBytes({ compressed.receiveData($0) })
        else {
            Issue.record("a compressed message was accepted")
            return
        }
        #expect(status(unsupported).code == "12")
    }

    @Test("a response is headers, messages, trailers; a status alone is trailers-only")
    func outbound() {
        var machine = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        _ = machine.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        let first = machine.send(message: [9], initialMetadata: ["x-a": "1"])
        #expect(first.count == 2)
        #expect(machine.send(message: [9], initialMetadata: Metadata()).count == 1)
        guard
            case .trailers(let trailers)? = machine.finish(
                .ok,
                "",
                initialMetadata: Metadata(),
                trailingMetadata: ["x-b": "2"]
            )
        else {
            Issue.record("no trailers")
            return
        }
        #expect(trailers == [HTTP2Header("grpc-status", "0"), HTTP2Header("x-b", "2")])
        #expect(machine.finish(.internal, "again", initialMetadata: Metadata(), trailingMetadata: Metadata()) == nil)

        var failing = ServerCallStateMachine(maxReceiveMessageBytes: 100)
        _ = failing.receiveHeaders(good, endStream: false, oversized: false, lookup: lookup)
        let only = failing.finish(
            .permissionDenied,
            "not your case",
            initialMetadata: Metadata(),
            trailingMetadata: Metadata()
        )
        #expect(status(only).code == "7")
        #expect(status(only).http == "200")
    }

    @Test("the client maps HTTP errors, missing statuses and resets to gRPC codes")
    func clientSide() {
        var unavailable = ClientCallStateMachine(maxReceiveMessageBytes: 100)
        #expect(
            unavailable.receiveHeaders([HTTP2Header(":status", "503")], endStream: true)
                == .finished(RPCError(.unavailable, "HTTP status 503 from peer"), trailing: Metadata())
        )

        var noStatus = ClientCallStateMachine(maxReceiveMessageBytes: 100)
        _ = noStatus.receiveHeaders(
            [HTTP2Header(":status", "200"), HTTP2Header("content-type", "application/grpc")],
            endStream: false
        )
        #expect(
            noStatus.receiveHeaders([], endStream: true)
                == .finished(RPCError(.internal, "response has no grpc-status"), trailing: Metadata())
        )

        var reset = ClientCallStateMachine(maxReceiveMessageBytes: 100)
        #expect(
            reset.streamClosed(errorCode: 7)
                == .finished(RPCError(.unavailable, "peer refused the stream (REFUSED_STREAM)"), trailing: Metadata())
        )
    }

    @Test("timeouts and status messages encode as the spec says")
    func wireFormats() {
        #expect(GRPCWire.parseTimeout("1H") == .seconds(3600))
        #expect(GRPCWire.parseTimeout("100m") == .milliseconds(100))
        #expect(GRPCWire.parseTimeout("123456789S") == nil)  // more than 8 digits
        #expect(GRPCWire.parseTimeout("5x") == nil)
        #expect(GRPCWire.formatTimeout(.milliseconds(1)) == "1000u")
        #expect(GRPCWire.formatTimeout(.seconds(200)) == "200000m")
        let text = "50% done ☺\n"
        #expect(GRPCWire.percentEncode(text) == "50%25 done %E2%98%BA%0A")
        #expect(GRPCWire.percentDecode(GRPCWire.percentEncode(text)) == text)
        #expect(GRPCWire.percentDecode("bad %zz stays") == "bad %zz stays")
    }
}

/// Two nghttp2 sessions wired back to back in memory.
@Suite("HTTP/2 session in memory")
struct HTTP2SessionTests {
    final class EventLog: HTTP2SessionDelegate {
        var events: [String] = []
        func session(_ s: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool) {
            events.append(
                "headers \(streamID) \(headers.map { "\($0.name)=\($0.value)" }.joined(separator: ",")) "
                    + "end=\(endStream) oversized=\(oversized)"
            )
        }
        func session(_ s: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32) {
            events.append("data \(streamID) \(Array(data))")
        }
        func session(_ s: HTTP2Session, endOfDataStreamID streamID: Int32) { events.append("end \(streamID)") }
        func session(_ s: HTTP2Session, closedStreamID streamID: Int32, errorCode: UInt32) {
            events.append("closed \(streamID) \(errorCode)")
        }
        func session(_ s: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32) {
            events.append("goaway \(lastStreamID) \(HTTP2Session.errorName(errorCode))")
        }
        func session(_ s: HTTP2Session, sentEndOfStreamID streamID: Int32) {}
    }

    func pump(_ a: HTTP2Session, _ b: HTTP2Session) throws {
        for _ in 0..<10 {
            var ab: [UInt8] = [], ba: [UInt8] = []
            try a.drainOutput { ab += $0 }
            try b.drainOutput { ba += $0 }
            if ab.isEmpty && ba.isEmpty { return }
            try ab.withUnsafeBytes { try b.receive($0) }
            try ba.withUnsafeBytes { try a.receive($0) }
        }
    }

    /// A client and a server session with their event logs (kept here: delegates are weak), and a
    /// request stream the client opened.
    struct Pair {
        let client = HTTP2Session(role: .client, settings: HTTP2Settings())
        let server = HTTP2Session(role: .server, settings: HTTP2Settings())
        let clientEvents = EventLog(), serverEvents = EventLog()
        let id: Int32

        init() throws {
            client.delegate = clientEvents
            server.delegate = serverEvents
            id = try #require(
                client.submitRequest(headers: [
                    HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "https"),
                    HTTP2Header(":path", "/x"), HTTP2Header(":authority", "n"),
                ])
            )
        }
    }

    @Test("request, body, response and trailers cross in order")
    func exchange() throws {
        let pair = try Pair()
        let (client, server, clientEvents, serverEvents, id) =
            (pair.client, pair.server, pair.clientEvents, pair.serverEvents, pair.id)
        client.send([1, 2], streamID: id)
        client.end(streamID: id)
        try pump(client, server)
        #expect(
            serverEvents.events == [
                "headers 1 :method=POST,:scheme=https,:path=/x,:authority=n end=false oversized=false",
                "data 1 [1, 2]", "end 1",
            ]
        )
        server.submitResponse(streamID: id, headers: [HTTP2Header(":status", "200")], body: true)
        server.send([3], streamID: id)
        server.end(streamID: id, trailers: [HTTP2Header("grpc-status", "0")])
        try pump(client, server)
        #expect(
            clientEvents.events == [
                "headers 1 :status=200 end=false oversized=false", "data 1 [3]",
                "headers 1 grpc-status=0 end=true oversized=false", "closed 1 0",
            ]
        )
    }

    @Test("small frames go out gathered in one write (one TLS record), large ones in writes of their own")
    func gatheredWrites() throws {
        let pair = try Pair()
        let (client, server, clientEvents, id) = (pair.client, pair.server, pair.clientEvents, pair.id)
        client.end(streamID: id)
        try pump(client, server)
        server.submitResponse(streamID: id, headers: [HTTP2Header(":status", "200")], body: true)
        server.send([3], streamID: id)
        server.end(streamID: id, trailers: [HTTP2Header("grpc-status", "0")])
        var writes: [[UInt8]] = []
        try server.drainOutput { writes.append(Array($0)) }
        #expect(writes.count == 1, "headers, message and trailers: \(writes.map(\.count)) bytes a write")
        try Array(writes.joined()).withUnsafeBytes { try client.receive($0) }
        #expect(
            clientEvents.events.suffix(3) == [
                "data 1 [3]", "headers 1 grpc-status=0 end=true oversized=false", "closed 1 0",
            ]
        )

        // 40,000 bytes on a new stream: full DATA frames are written as nghttp2 makes them, none over
        // a frame, and everything arrives in order.
        let second = try #require(
            client.submitRequest(headers: [
                HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "https"),
                HTTP2Header(":path", "/x"), HTTP2Header(":authority", "n"),
            ])
        )
        client.end(streamID: second)
        try pump(client, server)
        let body = (0..<40_000).map { UInt8(truncatingIfNeeded: $0) }
        server.submitResponse(streamID: second, headers: [HTTP2Header(":status", "200")], body: true)
        server.send(body, streamID: second)
        server.end(streamID: second, trailers: [HTTP2Header("grpc-status", "0")])
        writes = []
        try server.drainOutput { writes.append(Array($0)) }
        #expect(writes.allSatisfy { $0.count <= HTTP2Session.gatheredBytes + 9 + 16_384 })
        #expect(writes.count >= 3 && writes.count <= 5, "\(writes.map(\.count)) bytes a write")
        try Array(writes.joined()).withUnsafeBytes { try client.receive($0) }
        // Each chunk as the client got it ("data 3 [0, 1, ...]"): the body whole, in order, though the
        // small frames were copied out of nghttp2's buffer and the full ones were not.
        let chunks = clientEvents.events.filter { $0.hasPrefix("data 3 ") }
        let received = chunks.flatMap { $0.dropFirst("data 3 [".count).dropLast().split(separator: ", ") }
        #expect(chunks.count >= 3)
        let intact = received.map { UInt8($0) } == body.map(Optional.some)
        #expect(intact, "\(received.count) of \(body.count) bytes, not as sent")
        #expect(clientEvents.events.last == "closed 3 0")
    }

    @Test("PINGs too close together with nothing sent between: the third strike is GOAWAY too_many_pings")
    func pingStrikes() throws {
        let pair = try Pair()
        let (client, server, clientEvents, id) = (pair.client, pair.server, pair.clientEvents, pair.id)
        try pump(client, server)
        server.submitResponse(streamID: id, headers: [HTTP2Header(":status", "200")], body: true)
        // Each PING answered by data (a stream being served, a BDP probe): never a strike.
        for _ in 0..<5 {
            client.submitPing()
            try pump(client, server)
            server.send([1], streamID: id)
            try pump(client, server)
        }
        // Nothing sent from here on: the first PING resets the count, the next two are strikes 1 and 2.
        for _ in 0..<3 {
            client.submitPing()
            try pump(client, server)
        }
        client.submitPing()
        let error = #expect(throws: HTTP2Error.self) { try pump(client, server) }
        #expect(error?.isFlood == true)
        #expect(error?.description.contains("too_many_pings") == true, "\(String(describing: error))")
        // The server's connection answers a flood with its own GOAWAY: one is sent, with the reason.
        server.submitGoAway(errorCode: 11)
        var goAway: [UInt8] = []
        try server.drainOutput { goAway += $0 }
        try goAway.withUnsafeBytes { try client.receive($0) }
        #expect(
            clientEvents.events.filter { $0.hasPrefix("goaway") } == ["goaway 1 ENHANCE_YOUR_CALM"],
            "\(clientEvents.events)"
        )
    }

    @Test("a header list over the limit is flagged, not delivered whole")
    func oversizedHeaders() throws {
        var settings = HTTP2Settings()
        settings.maxHeaderListSize = 200
        let client = HTTP2Session(role: .client, settings: HTTP2Settings())
        let server = HTTP2Session(role: .server, settings: settings)
        let serverEvents = EventLog()
        server.delegate = serverEvents
        _ = client.submitRequest(headers: [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "https"), HTTP2Header(":path", "/x"),
            HTTP2Header(":authority", "n"), HTTP2Header("x-big", String(repeating: "a", count: 300)),
        ])
        try pump(client, server)
        #expect(serverEvents.events.first?.hasSuffix("oversized=true") == true)
        #expect(serverEvents.events.first?.contains("x-big") == false)
    }
}
