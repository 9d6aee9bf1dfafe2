import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// Our client against our server, over real TLS 1.3 and HTTP/2 on loopback.
@Suite("Swift client and server", .serialized)
struct EndToEndTests {
    @Test("a unary call returns the response and metadata both ways")
    func unary() async throws {
        let server = try TestServer()
        let channel = try server.channel()
        var request = GRPCTesting.SimpleRequest()
        request.responseSize = 1000
        request.fillUsername = true
        let response = try await channel.unaryWithMetadata(
            GRPCTesting.TestService.unaryCall,
            request,
            metadata: [
                "x-grpc-test-echo-initial": "hello",
                "x-grpc-test-echo-trailing-bin": "AAEC",
            ]
        )
        #expect(response.message.payload?.body.count == 1000)
        // The handler sees the caller's certificate identity, not anything the caller says.
        #expect(response.message.username == "embassy-id")
        #expect(response.initialMetadata["x-grpc-test-echo-initial"] == "hello")
        #expect(response.trailingMetadata["x-grpc-test-echo-trailing-bin"] == "AAEC")
        channel.close()
        await server.server.shutdown()
    }

    @Test("a server stream delivers every message in order")
    func serverStreaming() async throws {
        let server = try TestServer()
        let channel = try server.channel()
        let request = InteropService.streamingRequest(sizes: [31415, 9, 2653, 58979])
        var sizes: [Int] = []
        for try await response in channel.streaming(GRPCTesting.TestService.streamingOutputCall, [request]) {
            sizes.append(response.payload?.body.count ?? -1)
        }
        #expect(sizes == [31415, 9, 2653, 58979])
        channel.close()
        await server.server.shutdown()
    }

    @Test("status code and message, including whitespace and non-BMP characters, arrive intact")
    func statusMessage() async throws {
        let server = try TestServer()
        let channel = try server.channel()
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        var request = GRPCTesting.SimpleRequest()
        var status = GRPCTesting.EchoStatus()
        status.code = 2
        status.message = message
        request.responseStatus = status
        let error = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.unaryCall, request)
        }
        #expect(error.code == .unknown)
        #expect(error.message == message)
        channel.close()
        await server.server.shutdown()
    }

    @Test("unknown methods and services answer UNIMPLEMENTED; the server keeps serving")
    func unimplemented() async throws {
        let server = try TestServer()
        let channel = try server.channel()
        let method = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.TestService.unimplementedCall, GRPCTesting.Empty())
        }
        #expect(method.code == .unimplemented)
        #expect(method.message.contains("unknown method"))
        let service = try await #require(throws: RPCError.self) {
            try await channel.unary(GRPCTesting.UnimplementedService.unimplementedCall, GRPCTesting.Empty())
        }
        #expect(service.code == .unimplemented)
        #expect(service.message.contains("unknown service grpc.testing.UnimplementedService"))
        _ = try await channel.unary(GRPCTesting.TestService.emptyCall, GRPCTesting.Empty())
        channel.close()
        await server.server.shutdown()
    }
}

@Suite("Local console socket")
struct UnixSocketTests {
    @Test("a server on a Unix socket answers plaintext gRPC; the socket file is owner-only")
    func unixSocket() async throws {
        let folder = try makeTemporaryFolder("socket")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("console.sock").path
        var configuration = RPCServerConfiguration()
        configuration.address = "unix:\(path)"
        configuration.localPeer = Federation.identity("ncct")
        var router = RPCRouter()
        InteropService.register(in: &router)
        let server = try RPCServer(configuration: configuration, tls: nil, router: router, logger: testLogger)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let channel = RPCChannel(
            endpoint: "unix:\(path)",
            target: Federation.identity("ncct"),
            tls: nil,
            logger: testLogger
        )
        var request = GRPCTesting.SimpleRequest()
        request.fillUsername = true
        #expect(try await channel.unary(GRPCTesting.TestService.unaryCall, request).username == "ncct")
        channel.close()
        await server.shutdown()
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
