import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

let interopPeer = repositoryRoot.appendingPathComponent("Tests/Peers/interop.py").path

/// gRPC's standard interop cases between CaseBridge and Python's grpcio, over mutual TLS 1.3.
@Suite("Interop with Python grpcio", .serialized)
struct InteropTests {
    static let serverCases = [
        "empty_unary", "large_unary", "near_limit_unary", "server_streaming", "custom_metadata",
        "status_code_and_message", "special_status_message", "unimplemented_method",
        "unimplemented_service", "timeout_on_sleeping_server", "cancel_after_first_response",
        "oversized_request", "oversized_response", "health", "reflection",
    ]

    @Test("a grpcio client passes every case against our server, which keeps serving")
    func grpcioClientAgainstOurServer() async throws {
        let server = try TestServer()
        let result = try await runDetached(
            "python3",
            [
                interopPeer, "client", "--port", String(server.server.port), "--ca", Federation.path("ca.pem"),
                "--cert", Federation.path("nodes/embassy-id.pem"), "--key", Federation.path("nodes/embassy-id.key"),
            ] + Self.serverCases
        )
        let lines = result.stdout.split(separator: "\n").map(String.init)
        for name in Self.serverCases {
            let line = lines.first { $0.hasPrefix("PASS \(name)") || $0.hasPrefix("FAIL \(name)") }
            #expect(line == "PASS \(name)", "\(line ?? "no result for \(name)")\n\(result.stderr.suffix(2000))")
        }
        // After every refusal above, a good call still works.
        let channel = try server.channel()
        _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        channel.close()
        await server.server.shutdown()
    }

    @Test("our client passes the cases against a grpcio server")
    func ourClientAgainstGrpcioServer() async throws {
        let peer = try BackgroundProcess(
            "python3",
            [
                interopPeer, "server", "--ca", Federation.path("ca.pem"),
                "--cert", Federation.path("nodes/embassy-vn.pem"),
                "--key", Federation.path("nodes/embassy-vn.key"),
            ]
        )
        defer { peer.stop() }
        let port = try #require(peer.waitForLine(prefix: "PORT ")).trimmingCharacters(in: .whitespaces)
        let channel = RPCChannel(
            endpoint: "127.0.0.1:\(port)",
            target: Federation.identity("embassy-vn"),
            tls: try .init(.client, configuration: Federation.configuration(node: "ncct")),
            configuration: {
                var c = RPCClientConfiguration()
                c.maxReceiveMessageBytes = 5 * 1024 * 1024
                return c
            }(),
            logger: testLogger
        )
        defer { channel.close() }
        let T = GRPCTesting.TestService.self

        // empty_unary
        #expect(try await channel.unary(T.emptyCall, GRPCTesting.Empty()) == GRPCTesting.Empty())

        // large_unary
        var large = GRPCTesting.SimpleRequest()
        large.responseSize = 314_159
        large.payload = InteropService.payload(271_828)
        #expect(try await channel.unary(T.unaryCall, large).payload?.body.count == 314_159)

        // server_streaming
        let streaming = InteropService.streamingRequest(sizes: [31415, 9, 2653, 58979])
        var sizes: [Int] = []
        for try await response in channel.streaming(T.streamingOutputCall, [streaming]) {
            sizes.append(response.payload?.body.count ?? -1)
        }
        #expect(sizes == [31415, 9, 2653, 58979])

        // custom_metadata
        let echoed = try await channel.unaryWithMetadata(
            T.unaryCall,
            large,
            metadata: [
                "x-grpc-test-echo-initial": "test_initial_metadata_value", "x-grpc-test-echo-trailing-bin": "CgsKCwoL",
            ]
        )
        #expect(echoed.initialMetadata["x-grpc-test-echo-initial"] == "test_initial_metadata_value")
        #expect(echoed.trailingMetadata["x-grpc-test-echo-trailing-bin"] == "CgsKCwoL")

        // status_code_and_message and special_status_message
        for text in ["test status message", "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"] {
            var request = GRPCTesting.SimpleRequest()
            var status = GRPCTesting.EchoStatus()
            status.code = 2
            status.message = text
            request.responseStatus = status
            let error = try await #require(throws: RPCError.self) { try await channel.unary(T.unaryCall, request) }
            #expect(error.code == .unknown)
            #expect(error.message == text)
        }

        // unimplemented_method and unimplemented_service
        let method = try await #require(throws: RPCError.self) {
            try await channel.unary(T.unimplementedCall, GRPCTesting.Empty())
        }
        #expect(method.code == .unimplemented)
        let service = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.UnimplementedService.unimplementedCall, GRPCTesting.Empty())
        }
        #expect(service.code == .unimplemented)

        // timeout_on_sleeping_server: the server sleeps before answering; the call's deadline ends it
        var sleepy = InteropService.streamingRequest(sizes: [1], intervalUs: 2_000_000)
        sleepy.payload = InteropService.payload(27182)
        let timedOut = try await #require(throws: RPCError.self) {
            for try await _ in channel.streaming(T.streamingOutputCall, [sleepy], timeout: .milliseconds(50)) {}
        }
        #expect(timedOut.code == .deadlineExceeded)

        // cancel_after_first_response
        var first = InteropService.streamingRequest(sizes: [31415])
        first.responseParameters +=
            InteropService.streamingRequest(sizes: [9], intervalUs: 2_000_000).responseParameters
        first.payload = InteropService.payload(27182)
        let received = Recorder()
        let consumer = Task {
            for try await response in channel.streaming(T.streamingOutputCall, [first]) {
                received.record("\(response.payload?.body.count ?? -1)")
            }
        }
        while received.all.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        consumer.cancel()
        _ = await consumer.result
        // Had the cancellation not reached the server, the second message would have arrived.
        #expect(received.all == ["31415"])

        // The channel still works after the cancellation.
        #expect(try await channel.unary(T.emptyCall, GRPCTesting.Empty()) == GRPCTesting.Empty())
    }

    @Test("a peer that goes silent (a cut link) is dropped by keepalive, not waited for until the deadline")
    func keepaliveDetectsSilentPeer() async throws {
        let peer = try BackgroundProcess(
            "python3",
            [
                interopPeer, "server", "--ca", Federation.path("ca.pem"),
                "--cert", Federation.path("nodes/embassy-vn.pem"),
                "--key", Federation.path("nodes/embassy-vn.key"),
            ]
        )
        defer {
            kill(peer.process.processIdentifier, SIGCONT)
            peer.stop()
        }
        let port = try #require(peer.waitForLine(prefix: "PORT ")).trimmingCharacters(in: .whitespaces)
        var configuration = RPCClientConfiguration()
        configuration.keepaliveInterval = .milliseconds(200)
        configuration.keepaliveTimeout = .milliseconds(300)
        let channel = RPCChannel(
            endpoint: "127.0.0.1:\(port)",
            target: Federation.identity("embassy-vn"),
            tls: try .init(.client, configuration: Federation.configuration(node: "ncct")),
            configuration: configuration,
            logger: testLogger
        )
        defer { channel.close() }
        _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        kill(peer.process.processIdentifier, SIGSTOP)  // no bytes, no reset: like a cut cable
        // A stop takes effect asynchronously; call only once the kernel reports the peer stopped.
        let statPath = "/proc/\(peer.process.processIdentifier)/stat"
        for _ in 0..<200 {
            let stat = (try? String(contentsOfFile: statPath, encoding: .utf8)) ?? ""
            if stat.split(separator: ")").last?.split(separator: " ").first == "T" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let error = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty(), timeout: .seconds(20))
        }
        #expect(error.code == .unavailable, "\(error)")
        #expect(error.message.contains("keepalive"), "\(error)")
    }
}
