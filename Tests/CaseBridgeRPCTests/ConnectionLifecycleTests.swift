import CaseBridgeHTTP2
import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Testing
import TestSupport

/// A raw HTTP/2 client that opens streams and resets each at once: the "rapid reset" attack.
final class ResetFlood: ConnectionDelegate, HTTP2SessionDelegate, @unchecked Sendable {
    private let session = HTTP2Session(role: .client, settings: HTTP2Settings())
    private var connection: Connection?
    private let streams: Int
    private let done: @Sendable (String) -> Void
    private var goAway: UInt32?
    private(set) var opened = 0

    init(streams: Int, done: @escaping @Sendable (String) -> Void) {
        self.streams = streams
        self.done = done
        session.delegate = self
    }

    func connectionReady(_ connection: Connection) {
        self.connection = connection
        let headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "https"),
            HTTP2Header(":path", GRPCTesting.TestService.emptyCall.path), HTTP2Header(":authority", "ncct"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ]
        for _ in 0..<streams {
            guard self.connection != nil, let id = session.submitRequest(headers: headers) else { break }
            opened += 1
            flush()
            session.resetStream(id)
            flush()
        }
    }

    func connection(_ connection: Connection, read bytes: UnsafeRawBufferPointer) {
        try? session.receive(bytes)
        flush()
    }

    func connectionClosed(_ connection: Connection, error: ConnectionError?) {
        self.connection = nil
        done("opened=\(opened) goaway=\(goAway.map(String.init) ?? "none")")
    }

    private func flush() {
        guard let connection else { return }
        try? session.drainOutput { connection.write($0) }
    }

    func session(_ session: HTTP2Session, headers: [HTTP2Header], streamID: Int32, endStream: Bool, oversized: Bool) {}
    func session(_ session: HTTP2Session, data: UnsafeRawBufferPointer, streamID: Int32) {}
    func session(_ session: HTTP2Session, endOfDataStreamID streamID: Int32) {}
    func session(_ session: HTTP2Session, closedStreamID streamID: Int32, errorCode: UInt32) {}
    func session(_ session: HTTP2Session, sentEndOfStreamID streamID: Int32) {}
    func session(_ session: HTTP2Session, goAwayLastStreamID lastStreamID: Int32, errorCode: UInt32) {
        goAway = errorCode
    }
}

@Suite("Connection lifecycle and limits", .serialized)
struct ConnectionLifecycleTests {
    @Test("1,000 streams opened and reset at once: the server cuts the connection and keeps serving")
    func rapidReset() async throws {
        let server = try TestServer()
        let group = EventLoopGroup(threads: 1, name: "flood")
        let tls = try TLSContext(.client, configuration: Federation.configuration(node: "embassy-id"))
        let address = try SocketAddress(endpoint: server.endpoint)
        let outcome: String = await withCheckedContinuation { continuation in
            let loop = group.next()
            loop.execute {
                let flood = ResetFlood(streams: 1000) { continuation.resume(returning: $0) }
                _ = Connection.connect(
                    to: address,
                    expectedPeer: Federation.identity("ncct"),
                    loop: loop,
                    tls: tls,
                    timeouts: ConnectionTimeouts(),
                    logger: testLogger,
                    delegate: flood
                )
            }
        }
        // nghttp2's reset rate limit (burst 200) answers with GOAWAY and closes the connection.
        #expect(
            outcome.contains("goaway=") && !outcome.contains("goaway=none") && !outcome.contains("goaway=0"),
            "\(outcome)"
        )
        let channel = try server.channel()
        #expect(try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty()) == GRPCTesting.Empty())
        channel.close()
        group.shutdown()
        await server.server.shutdown()
    }

    @Test("graceful shutdown: the call in flight finishes, new calls are refused")
    func gracefulShutdown() async throws {
        let server = try TestServer()
        let channel = try server.channel()
        let request = InteropService.streamingRequest(sizes: [10, 10, 10], intervalUs: 300_000)
        let received = Recorder()
        let inFlight = Task {
            for try await response in channel.streaming(GRPCTesting.TestService.streamingOutputCall, [request]) {
                received.record("\(response.payload?.body.count ?? -1)")
            }
        }
        while received.all.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        let shutdown = Task { await server.server.shutdown() }
        // Once the shutdown has begun (however long a loaded machine takes to start it), new calls are refused.
        var refused: RPCError?
        for _ in 0..<100 where refused == nil {
            try await Task.sleep(for: .milliseconds(50))
            do { _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty()) } catch let error
                as RPCError
            {
                refused = error
            }
        }
        #expect(refused?.code == .unavailable, "\(String(describing: refused))")
        try await inFlight.value
        #expect(received.all == ["10", "10", "10"])
        await shutdown.value
        channel.close()
    }

    @Test("an idle connection is closed by the server; the channel reconnects on the next call")
    func idleTimeout() async throws {
        let server = try TestServer { $0.idleTimeout = .milliseconds(300) }
        let channel = try server.channel()
        _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        for _ in 0..<150 where server.server.openConnections > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.server.openConnections == 0)
        _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        channel.close()
        await server.server.shutdown()
    }

    @Test("a channel that reconnects resumes its TLS session; after the server reloads, a full handshake")
    func sessionResumption() async throws {
        let server = try TestServer { $0.idleTimeout = .milliseconds(300) }
        let channel = try server.channel()
        /// One call, then the server's idle close, seen through by both sides; then the server's
        /// count of handshakes, full and resumed, since it started.
        func callThenIdle(expecting full: Int, _ resumed: Int) async throws {
            _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
            for _ in 0..<150 where server.server.openConnections > 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.server.openConnections == 0)
            #expect(server.server.handshakes.full == full && server.server.handshakes.resumed == resumed)
        }
        try await callThenIdle(expecting: 1, 0)
        try await callThenIdle(expecting: 1, 1)
        // New trust material is a new context with no sessions: the kept ticket names none, a full
        // handshake follows.
        server.server.replaceTLS(try TLSContext(.server, configuration: Federation.configuration(node: "ncct"))) {
            _,
            _ in nil
        }
        try await callThenIdle(expecting: 2, 1)
        try await callThenIdle(expecting: 2, 2)
        channel.close()
        await server.server.shutdown()
    }

    @Test(
        "a connection that ends in an error leaves no session to resume; one closed in order does",
        arguments: [("garbage", "FULL"), ("close", "RESUMED")]
    )
    func sessionAfterError(ending: String, expected: String) async throws {
        let server = try TestServer()
        let probe = try await server.tlsProbe(ending)
        #expect(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(probe.stderr)")
        await server.server.shutdown()
    }

    @Test("the connection limit refuses the connection over it; the others keep working")
    func connectionLimit() async throws {
        let server = try TestServer { $0.maxConnections = 2 }
        let channels = try (0..<3).map { _ in try server.channel() }
        _ = try await channels[0].unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        _ = try await channels[1].unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        let error = try await #require(throws: RPCError.self) {
            try await channels[2].unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        }
        #expect(error.code == .unavailable)
        _ = try await channels[0].unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        channels.forEach { $0.close() }
        await server.server.shutdown()
    }

    @Test("1,000 concurrent mutually authenticated connections, each making a call")
    func thousandConnections() async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = max(limit.rlim_cur, min(limit.rlim_max, 8192))
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        try #require(limit.rlim_cur >= 2200, "needs 2,200 file descriptors for both ends")

        // One address and one identity here stand for a thousand peers: lift the limits that
        // exist to stop one source or one member from doing exactly this.
        let server = try TestServer {
            $0.maxHandshakesPerAddress = 1000
            $0.connectionsPerAddressPerSecond = 1000
            $0.peerLimits.maxConnections = 1000
            $0.peerLimits.maxConcurrentCalls = 1000
        }
        let group = EventLoopGroup(threads: 2, name: "many-clients")
        let tls = try TLSContext(.client, configuration: Federation.configuration(node: "embassy-id"))
        let channels = (0..<1000).map { _ in
            RPCChannel(
                endpoint: server.endpoint,
                target: Federation.identity("ncct"),
                tls: tls,
                logger: testLogger,
                group: group
            )
        }
        let succeeded = try await withThrowingTaskGroup(of: Bool.self) { tasks in
            for channel in channels {
                tasks.addTask {
                    try await channel.unary(
                        GRPCTesting.TestService.emptyCall,
                        GRPCTesting.Empty(),
                        timeout: .seconds(60)
                    ) == GRPCTesting.Empty()
                }
            }
            return try await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(succeeded == 1000)
        #expect(server.server.openConnections == 1000)
        channels.forEach { $0.close() }
        await server.server.shutdown()
        group.shutdown()
    }
}

@Suite("Connection accounting")
struct ConnectionAccountingTests {
    // Regression: the count went down only for connections that failed their handshake, so a
    // server would refuse everyone after maxConnections successful connections over its life.
    @Test("closed connections free their place under the connection limit")
    func limitIsReleased() async throws {
        let server = try TestServer { $0.maxConnections = 1 }
        for _ in 0..<3 {
            let channel = try server.channel()
            _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
            channel.close()
            for _ in 0..<100 where server.server.openConnections > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.server.openConnections == 0)
        }
        await server.server.shutdown()
    }
}
