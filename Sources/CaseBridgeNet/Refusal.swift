/// Something a server refused a peer or a stranger: a connection, a call, or bytes past a limit.
/// Servers report each one; the owner audits and logs them, aggregated so that a flood of
/// refusals costs a few rows, not one each.
public struct Refusal: Sendable, Equatable {
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        /// The audit event name.
        public let event: String
        public var description: String { event }

        /// The TLS handshake failed or did not finish in time (no or wrong certificate, ...).
        public static let handshake = Kind(event: "tls.refused")
        /// The server's total connection limit was reached.
        public static let connectionLimit = Kind(event: "connection.limit")
        /// One source address had too many connections still in their handshake.
        public static let addressLimit = Kind(event: "connection.address_limit")
        /// A verified peer went past one of its own limits (connections, calls, bytes).
        public static let peerLimit = Kind(event: "peer.limit")
        /// The peer broke HTTP/2 (a malformed frame, a rapid-reset burst, ...).
        public static let protocolError = Kind(event: "http2.protocol_error")
        /// The peer flooded the connection (control frames it never reads the answers to).
        public static let flood = Kind(event: "http2.flood")
        /// The peer stopped reading what it asked for.
        public static let stalled = Kind(event: "http2.stalled")
        /// A request message that could not be decoded (malformed, or over the contract's limits).
        public static let malformed = Kind(event: "call.malformed")
        /// A reload found the peer's certificate revoked, or its node gone from the directory.
        public static let revoked = Kind(event: "connection.revoked")
        /// The peer sent more than the connection may hold in memory.
        public static let memory = Kind(event: "connection.memory_limit")
    }

    public let kind: Kind
    /// The verified peer's identity, or the remote address of a stranger.
    public let source: String
    /// What happened, for the audit detail and the log: never message contents.
    public let reason: String

    public init(_ kind: Kind, source: String, reason: String) {
        self.kind = kind
        self.source = source
        self.reason = reason
    }
}
