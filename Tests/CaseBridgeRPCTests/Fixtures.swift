import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Logging
import Synchronization
import TestSupport

/// The test federation in certs/.
enum Federation {
    static let certs = repositoryRoot.appendingPathComponent("certs")
    static let domain = "casebridge.test"

    static func configuration(node: String, folder: String = "nodes", crl: Bool = true) -> TLSConfiguration {
        TLSConfiguration(
            certificateChainPath: certs.appendingPathComponent("\(folder)/\(node).pem").path,
            privateKeyPath: certs.appendingPathComponent("\(folder)/\(node).key").path,
            trustedCAPath: certs.appendingPathComponent("ca.pem").path,
            revocationListPath: crl ? certs.appendingPathComponent("crl.pem").path : nil,
            trustDomain: domain
        )
    }

    static func identity(_ node: String) -> PeerIdentity { PeerIdentity(trustDomain: domain, nodeID: node) }
    static func path(_ relative: String) -> String { certs.appendingPathComponent(relative).path }
}

/// A federation made at run time, in a temporary folder, whose certificates may live for seconds.
struct ShortLivedFederation {
    let folder: URL
    private let caKey: String
    private let caCertificate: String

    init() throws {
        folder = try makeTemporaryFolder("short-lived")
        caKey = try CertificateAuthority.newKey()
        caCertificate = try CertificateAuthority.caCertificate(commonName: "Short-lived CA", keyPEM: caKey, days: 1)
        try caCertificate.write(to: folder.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
    }

    /// A certificate and key for `node`, valid from now for `lifetime`, as a TLS configuration.
    func issue(_ node: String, for lifetime: Duration) throws -> TLSConfiguration {
        let key = try CertificateAuthority.newKey()
        let certificate = try CertificateAuthority.nodeCertificate(
            nodeID: node,
            trustDomain: Federation.domain,
            caCertificatePEM: caCertificate,
            caKeyPEM: caKey,
            keyPEM: key,
            validFor: lifetime
        )
        try certificate.write(to: folder.appendingPathComponent("\(node).pem"), atomically: true, encoding: .utf8)
        try key.write(to: folder.appendingPathComponent("\(node).key"), atomically: true, encoding: .utf8)
        return TLSConfiguration(
            certificateChainPath: folder.appendingPathComponent("\(node).pem").path,
            privateKeyPath: folder.appendingPathComponent("\(node).key").path,
            trustedCAPath: folder.appendingPathComponent("ca.pem").path,
            trustDomain: Federation.domain
        )
    }

    /// A server as "ncct" with the interop service, recording what it refuses.
    func server(
        _ refusals: Recorder,
        configure: (inout RPCServerConfiguration) -> Void = { _ in }
    ) throws -> (RPCServer, TLSContext) {
        let tls = try TLSContext(.server, configuration: try issue("ncct", for: .seconds(86_400)))
        var configuration = RPCServerConfiguration()
        configure(&configuration)
        var router = RPCRouter()
        InteropService.register(in: &router)
        let server = try RPCServer(configuration: configuration, tls: tls, router: router, logger: testLogger) {
            refusals.record("\($0.kind): \($0.reason)")
        }
        return (server, tls)
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

let testLogger: Logger = {
    var logger = Logger(label: "casebridge.test")
    logger.logLevel = .critical
    return logger
}()

/// A server on 127.0.0.1 with the interop TestService, health and reflection, as node "ncct".
final class TestServer: Sendable {
    let server: RPCServer
    let health: HealthService
    let refusals = Recorder()

    init(configure: (inout RPCServerConfiguration) -> Void = { _ in }) throws {
        var configuration = RPCServerConfiguration()
        configuration.loopThreads = 2
        configure(&configuration)
        var router = RPCRouter()
        InteropService.register(in: &router)
        let health = HealthService(services: router.services)
        health.register(in: &router)
        ReflectionService.register(in: &router)
        let refusals = self.refusals
        server = try RPCServer(
            configuration: configuration,
            tls: TLSContext(.server, configuration: Federation.configuration(node: "ncct")),
            router: router,
            logger: testLogger
        ) { refusals.record("\($0.kind): \($0.reason)") }
        self.health = health
    }

    var endpoint: String { "127.0.0.1:\(server.port)" }

    /// Python's ssl against this server as embassy-id (Tests/Peers/tls_probe.py, which lists the modes).
    func tlsProbe(_ mode: String) async throws -> ProcessResult {
        try await runDetached(
            "python3",
            [
                repositoryRoot.appendingPathComponent("Tests/Peers/tls_probe.py").path, String(server.port),
                Federation.path("ca.pem"), mode, Federation.path("nodes/embassy-id.pem"),
                Federation.path("nodes/embassy-id.key"),
            ]
        )
    }

    func channel(
        as node: String = "embassy-id",
        folder: String = "nodes",
        expecting target: String = "ncct",
        configure: (inout RPCClientConfiguration) -> Void = { _ in }
    ) throws -> RPCChannel {
        var configuration = RPCClientConfiguration()
        configuration.initialBackoff = .milliseconds(50)
        configure(&configuration)
        return RPCChannel(
            endpoint: endpoint,
            target: Federation.identity(target),
            tls: try TLSContext(.client, configuration: Federation.configuration(node: node, folder: folder)),
            configuration: configuration,
            logger: testLogger
        )
    }
}

/// gRPC's interop TestService (interop-test-descriptions.md), as a CaseBridge server implements it.
enum InteropService {
    typealias T = GRPCTesting.TestService

    static func register(in router: inout RPCRouter) {
        router.unary(T.emptyCall) { _, _ in GRPCTesting.Empty() }
        router.unary(T.unaryCall) { request, call in
            echoMetadata(call)
            if let status = request.responseStatus, status.code != 0 {
                throw RPCError(RPCCode(rawValue: Int(status.code)), status.message)
            }
            var response = GRPCTesting.SimpleResponse()
            response.payload = payload(Int(request.responseSize))
            if request.fillUsername { response.username = call.peer.nodeID }
            return response
        }
        router.serverStreaming(T.streamingOutputCall) { request, call, writer in
            echoMetadata(call)
            try await respond(request.responseParameters, writer)
            if let status = request.responseStatus, status.code != 0 {
                throw RPCError(RPCCode(rawValue: Int(status.code)), status.message)
            }
        }
        router.bidirectionalStreaming(T.fullDuplexCall) { requests, call, writer in
            echoMetadata(call)
            for try await request in requests {
                if let status = request.responseStatus, status.code != 0 {
                    throw RPCError(RPCCode(rawValue: Int(status.code)), status.message)
                }
                try await respond(request.responseParameters, writer)
            }
        }
    }

    /// A StreamingOutputCallRequest asking for one response per size, each after `intervalUs`.
    static func streamingRequest(sizes: [Int], intervalUs: Int = 0) -> GRPCTesting.StreamingOutputCallRequest {
        var request = GRPCTesting.StreamingOutputCallRequest()
        request.responseParameters = sizes.map { size in
            var parameters = GRPCTesting.ResponseParameters()
            parameters.size = Int32(size)
            parameters.intervalUs = Int32(intervalUs)
            return parameters
        }
        return request
    }

    static func payload(_ size: Int) -> GRPCTesting.Payload {
        var payload = GRPCTesting.Payload()
        payload.body = [UInt8](repeating: 0, count: size)
        return payload
    }

    private static func respond(
        _ parameters: [GRPCTesting.ResponseParameters],
        _ writer: ResponseWriter<GRPCTesting.StreamingOutputCallResponse>
    ) async throws {
        for parameter in parameters {
            if parameter.intervalUs > 0 { try await Task.sleep(for: .microseconds(Int(parameter.intervalUs))) }
            var response = GRPCTesting.StreamingOutputCallResponse()
            response.payload = payload(Int(parameter.size))
            try await writer.send(response)
        }
    }

    private static func echoMetadata(_ call: ServerCall) {
        if let value = call.requestMetadata["x-grpc-test-echo-initial"] {
            call.setInitialMetadata(["x-grpc-test-echo-initial": value])
        }
        if let value = call.requestMetadata["x-grpc-test-echo-trailing-bin"] {
            call.setTrailingMetadata(["x-grpc-test-echo-trailing-bin": value])
        }
    }
}
