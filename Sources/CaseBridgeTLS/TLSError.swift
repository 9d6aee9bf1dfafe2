/// A TLS failure, with OpenSSL's own words for it.
public struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public static let configuration = Code(name: "TLS configuration")
        public static let handshake = Code(name: "TLS handshake failed")
        public static let handshakeTimeout = Code(name: "TLS handshake timed out")
        public static let untrustedCertificate = Code(name: "certificate not trusted")
        public static let expiredCertificate = Code(name: "certificate expired")
        public static let notYetValidCertificate = Code(name: "certificate not yet valid")
        public static let revokedCertificate = Code(name: "certificate revoked")
        public static let noPeerCertificate = Code(name: "no certificate presented")
        public static let wrongIdentity = Code(name: "wrong peer identity")
        public static let noALPN = Code(name: "peer does not speak h2 (ALPN)")
        public static let protocolVersion = Code(name: "TLS version refused (TLS 1.3 only)")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message.isEmpty ? code.name : "\(code.name): \(message)" }
}
