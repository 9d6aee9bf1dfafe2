/// Files and rules for one side of mutually authenticated TLS 1.3.
public struct TLSConfiguration: Sendable, Equatable {
    /// PEM: this node's certificate, then any intermediates.
    public var certificateChainPath: String
    /// PEM: this node's private key.
    public var privateKeyPath: String
    /// PEM: the federation CA certificate(s) that peers must chain to.
    public var trustedCAPath: String
    /// PEM: certificate revocation lists of the federation CA; nil for none.
    public var revocationListPath: String?
    /// Peers must present an identity in this trust domain.
    public var trustDomain: String

    public init(
        certificateChainPath: String,
        privateKeyPath: String,
        trustedCAPath: String,
        revocationListPath: String? = nil,
        trustDomain: String
    ) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.trustedCAPath = trustedCAPath
        self.revocationListPath = revocationListPath
        self.trustDomain = trustDomain
    }
}
