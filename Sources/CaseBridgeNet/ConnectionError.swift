import CaseBridgeTLS

/// Why a connection could not be made, or ended.
public struct ConnectionError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public static let badAddress = Code(name: "bad address")
        public static let io = Code(name: "connection failed")
        public static let refused = Code(name: "connection refused")
        public static let closedByPeer = Code(name: "connection closed by peer")
        public static let tls = Code(name: "TLS")
        public static let idle = Code(name: "idle time-out")
        public var description: String { name }
    }

    public var code: Code
    public var message: String
    /// Set when TLS refused the connection; `message` then repeats its text.
    public var tls: TLSError?

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public init(_ tls: TLSError) {
        self.code = .tls
        self.message = tls.description
        self.tls = tls
    }

    public var description: String { code == .tls ? message : "\(code.name): \(message)" }
}
