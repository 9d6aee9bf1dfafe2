import CaseBridgeHTTP1
import CaseBridgeProto
import CaseBridgeRPC
import Foundation
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
    /// The HTTPS console's input: HTTP/1.1 requests, then each body as proto3 JSON of a message
    /// type; what decodes must give the same bytes after a trip out to JSON and back.
    case consoleHTTP = "console-http"

    func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .decode: Self.decode(data)
        case .serverSession: Self.serverSession(data)
        case .consoleHTTP: Self.consoleHTTP(data)
        }
    }

    /// The first byte picks the message type and where the bytes are split in two reads.
    static func consoleHTTP(_ data: UnsafeRawBufferPointer) {
        guard let selector = data.first else { return }
        let name = names[Int(selector) % names.count]
        let bytes = Array(data.dropFirst())
        let split = Int(selector) % (bytes.count + 1)
        var parser = HTTP1Parser(maxHeadBytes: 4096, maxBodyBytes: 1 << 20)
        var bodies: [[UInt8]] = []
        for piece in [bytes[..<split], bytes[split...]] {
            parser.append(piece)
            while case .request(let request) = parser.next() { bodies.append(request.body) }
        }
        let limits = ProtoLimits(maxMessageBytes: 1 << 20)
        for body in bodies {
            guard let wire = try? ProtoJSON.wireBytes(json: Data(body), as: name, limits: limits) else { continue }
            guard let json = try? ProtoJSON.json(wireBytes: wire, as: name, limits: limits),
                let again = try? ProtoJSON.wireBytes(json: json, as: name, limits: limits),
                (try? ProtoCodec.reencode(again, as: name, limits: limits))
                    == (try? ProtoCodec.reencode(wire, as: name, limits: limits))
            else {
                fatalError("\(name): accepted JSON does not survive a trip out and back")
            }
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
