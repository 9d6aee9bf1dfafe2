import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Testing
import TestSupport

/// Every way a peer can fail to prove who it is gets refused, with a reason on both sides, and the
/// server keeps serving the next good call.
@Suite("Refused connections", .serialized)
struct RefusalTests {
    /// A call from a client with this certificate; returns what the client saw and what the server recorded.
    func refusedCall(node: String, folder: String) async throws -> (client: RPCError, server: [String]) {
        let server = try TestServer()
        let channel = try server.channel(as: node, folder: folder)
        let error = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        }
        try await assertStillServing(server)
        channel.close()
        await server.server.shutdown()
        return (error, server.refusals.all)
    }

    func assertStillServing(_ server: TestServer) async throws {
        let good = try server.channel()
        #expect(try await good.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty()) == GRPCTesting.Empty())
        good.close()
    }

    @Test("a certificate from another CA")
    func otherCA() async throws {
        let (client, server) = try await refusedCall(node: "other-ca", folder: "bad")
        #expect(client.code == .unavailable)
        #expect(client.message.contains("does not trust our certificate's CA"))
        #expect(server.contains { $0.contains("certificate not trusted") })
    }

    @Test("an expired certificate")
    func expired() async throws {
        let (client, server) = try await refusedCall(node: "expired", folder: "bad")
        #expect(client.message.contains("refused our certificate as expired"))
        #expect(server.contains { $0.contains("certificate expired") })
    }

    @Test("a certificate that is not valid yet")
    func notYetValid() async throws {
        let (_, server) = try await refusedCall(node: "not-yet-valid", folder: "bad")
        #expect(server.contains { $0.contains("certificate not yet valid") })
    }

    @Test("a revoked certificate, listed in the CRL")
    func revoked() async throws {
        let (client, server) = try await refusedCall(node: "revoked", folder: "bad")
        #expect(client.message.contains("revoked"))
        #expect(server.contains { $0.contains("certificate revoked") })
    }

    @Test("a certificate without a node identity, or in another trust domain")
    func wrongIdentity() async throws {
        for node in ["no-spiffe", "other-domain"] {
            let (client, server) = try await refusedCall(node: node, folder: "bad")
            #expect(client.code == .unavailable)
            #expect(server.contains { $0.contains("wrong peer identity") }, "\(node): \(server)")
        }
    }

    @Test("a server that is not the node the client meant to reach")
    func wrongServer() async throws {
        let server = try TestServer()  // serves as "ncct"
        let channel = try server.channel(expecting: "embassy-cn")
        let error = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        }
        #expect(error.code == .unavailable)
        #expect(
            error.message.contains(
                "reached spiffe://casebridge.test/node/ncct, expected spiffe://casebridge.test/node/embassy-cn"
            )
        )
        channel.close()
        await server.server.shutdown()
    }

    @Test("a server with an expired certificate, seen from our client")
    func expiredServer() async throws {
        var router = RPCRouter()
        InteropService.register(in: &router)
        let server = try RPCServer(
            configuration: RPCServerConfiguration(),
            tls: TLSContext(.server, configuration: Federation.configuration(node: "expired", folder: "bad")),
            router: router,
            logger: testLogger
        )
        let channel = RPCChannel(
            endpoint: "127.0.0.1:\(server.port)",
            target: Federation.identity("embassy-expired"),
            tls: try TLSContext(.client, configuration: Federation.configuration(node: "embassy-id")),
            logger: testLogger
        )
        let error = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        }
        #expect(error.message.contains("certificate expired"))
        channel.close()
        await server.shutdown()
    }

    @Test(
        "no client certificate, a TLS 1.2-only client, a client without ALPN h2",
        arguments: ["no-cert", "tls12", "no-alpn"]
    )
    func probes(mode: String) async throws {
        let server = try TestServer()
        let probe = try await server.tlsProbe(mode)
        #expect(probe.stdout.hasPrefix("REFUSED"), "\(probe.stdout)\(probe.stderr)")
        let expected = [
            "no-cert": "no certificate presented", "tls12": "TLS version refused", "no-alpn": "does not speak h2",
        ][mode]!
        // The refusal is recorded once the server's side of the handshake has run.
        for _ in 0..<100 where !server.refusals.all.contains(where: { $0.contains(expected) }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.refusals.all.contains { $0.contains(expected) }, "\(server.refusals.all)")
        try await assertStillServing(server)
        await server.server.shutdown()
    }

    @Test("a client that connects and never starts TLS is cut off at the handshake time-out")
    func handshakeTimeout() async throws {
        let server = try TestServer { $0.timeouts.handshake = .milliseconds(300) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(server.server.port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0)
        // Silence from us; the server gives up and closes (read returns 0).
        var byte: UInt8 = 0
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        #expect(read(fd, &byte, 1) == 0)
        for _ in 0..<50 where !server.refusals.all.contains(where: { $0.contains("TLS handshake timed out") }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(server.refusals.all.contains { $0.contains("TLS handshake timed out") }, "\(server.refusals.all)")
        try await assertStillServing(server)
        await server.server.shutdown()
    }

    @Test("a certificate verified once is taken again without verifying, until it expires; then refused")
    func verifiedChainExpires() async throws {
        let federation = try ShortLivedFederation()
        defer { federation.remove() }
        let (server, serverTLS) = try federation.server(Recorder())
        let expiry = ContinuousClock.now + .seconds(4)
        let client = try federation.issue("embassy-id", for: .seconds(4))
        /// One call on a new connection with a new client context (so no session to resume).
        func call() async throws {
            let channel = RPCChannel(
                endpoint: "127.0.0.1:\(server.port)",
                target: Federation.identity("ncct"),
                tls: try TLSContext(.client, configuration: client),
                logger: testLogger
            )
            defer { channel.close() }
            _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        }
        try await call()
        #expect(serverTLS.chainVerifications == (verified: 1, reused: 0))
        try await call()
        #expect(serverTLS.chainVerifications == (verified: 1, reused: 1))
        try await Task.sleep(until: expiry + .seconds(1.5))
        let error = try await #require(throws: RPCError.self) { try await call() }
        #expect(error.message.contains("refused our certificate as expired"))
        #expect(serverTLS.chainVerifications == (verified: 2, reused: 1))
        await server.shutdown()
    }

    @Test("a session resumed after its certificate expired is refused")
    func resumedAfterExpiry() async throws {
        let federation = try ShortLivedFederation()
        defer { federation.remove() }
        let refusals = Recorder()
        let (server, _) = try federation.server(refusals) { $0.idleTimeout = .milliseconds(300) }
        let expiry = ContinuousClock.now + .seconds(4)
        var configuration = RPCClientConfiguration()
        configuration.initialBackoff = .milliseconds(50)
        let channel = RPCChannel(
            endpoint: "127.0.0.1:\(server.port)",
            target: Federation.identity("ncct"),
            tls: try TLSContext(.client, configuration: try federation.issue("embassy-id", for: .seconds(4))),
            configuration: configuration,
            logger: testLogger
        )
        /// A call, then the server's idle close: the channel keeps the session for its next connection.
        func callThenIdle() async throws {
            _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
            for _ in 0..<150 where server.openConnections > 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        try await callThenIdle()
        try await callThenIdle()
        #expect(server.handshakes.full == 1 && server.handshakes.resumed == 1)
        try await Task.sleep(until: expiry + .seconds(1.5))
        await #expect(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        }
        #expect(
            refusals.all.contains { $0.contains("the certificate expired since the session began") },
            "\(refusals.all)"
        )
        #expect(server.handshakes.full == 1 && server.handshakes.resumed == 1)
        channel.close()
        await server.shutdown()
    }
}
