import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Logging

/// One function per entry point that takes bytes from outside. Each must end in a value, a typed
/// error or a refusal for any input: a crash, a trap or a sanitizer report is a bug.
enum Harness: String, CaseIterable {
    /// The protobuf decode path of every message type: wire validation, protobuf-c, the Swift
    /// values; then encode again and decode the result, which must give the same bytes.
    case decode
    /// A server connection's HTTP/2 + gRPC session, from the first frame after the preface.
    case serverSession = "server-session"

    func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .decode: Self.decode(data)
        case .serverSession: Self.serverSession(data)
        }
    }

    static let names = ProtoCodec.messageTypeNames

    /// The first byte picks the message type; the rest is the message.
    static func decode(_ data: UnsafeRawBufferPointer) {
        guard let selector = data.first else { return }
        let name = names[Int(selector) % names.count]
        let bytes = Array(data.dropFirst())
        let limits = ProtoLimits(maxMessageBytes: 1 << 20)
        guard let once = try? ProtoCodec.reencode(bytes, as: name, limits: limits) else { return }
        guard let twice = try? ProtoCodec.reencode(once, as: name, limits: limits), twice == once else {
            fatalError("\(name): what the codec encoded does not decode to the same message")
        }
    }

    static let sessionHost: MemoryServerSession.Host = {
        var logger = Logger(label: "casebridge.fuzz")
        logger.logLevel = .critical
        var router = RPCRouter()
        HealthService(services: ["casebridge.v1.CaseExchange"]).register(in: &router)
        ReflectionService.register(in: &router)
        // A handler that decodes a real request type and answers, as the node's would.
        router.unary(CaseExchange.submitRequest) { request, _ in
            var receipt = SubmitReceipt()
            receipt.caseID = request.requestID
            return receipt
        }
        var configuration = RPCServerConfiguration()
        configuration.maxReceiveMessageBytes = 1 << 20
        configuration.protoLimits = ProtoLimits(maxMessageBytes: 1 << 20)
        return MemoryServerSession.Host(router: router, configuration: configuration, logger: logger)
    }()

    static let clientPreface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let peer = PeerIdentity(trustDomain: "casebridge.test", nodeID: "embassy-id")

    /// The input follows the client preface, in two reads split where its first byte says.
    static func serverSession(_ data: UnsafeRawBufferPointer) {
        let session = MemoryServerSession(host: sessionHost, peer: peer)
        let bytes = Array(data)
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        session.receive(clientPreface + bytes[..<split])
        session.receive(Array(bytes[split...]))
        session.close()
    }
}
