internal import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An OpenSSL SSL_CTX set up for CaseBridge: TLS 1.3 only, both sides present
/// certificates from the federation CA, ALPN "h2" required.
public final class TLSContext: @unchecked Sendable {
    /// `consoleServer`: the HTTPS console for a node's own staff (browsers, curl): a certificate for
    /// the host name staff use, no client certificate asked, ALPN "h2" or "http/1.1".
    public enum Side: Sendable { case server, client, consoleServer }

    public let side: Side
    public let configuration: TLSConfiguration
    /// Immutable after init; OpenSSL allows sharing an SSL_CTX between threads.
    let context: OpaquePointer
    /// The trust domain as a C string, read by the verify callback through the context's app data.
    private let trustDomainC: UnsafeMutablePointer<CChar>
    /// Chains verified before, reused by a peer that connects again (OpenSSL's callback argument).
    private let verifiedChains = VerifiedChains()
    /// Client side: TLS 1.3 sessions (tickets) to resume, by peer, each used once, newest last.
    /// A reconnect that resumes skips the certificate exchange and both signatures.
    private let sessions = Mutex<[String: [KeptSession]]>([:])
    /// Tickets kept per peer: one per connection that may reconnect at once.
    static let sessionsPerPeer = 4
    /// Server side: sessions kept for tickets (a few KiB each, with the peer's certificate); past
    /// this the oldest goes, and its ticket makes a full handshake.
    static let sessionsKept = 1_024

    public init(_ side: Side, configuration: TLSConfiguration) throws(TLSError) {
        self.side = side
        self.configuration = configuration
        guard let context = SSL_CTX_new(side == .client ? TLS_client_method() : TLS_server_method()) else {
            throw TLSError(.configuration, "SSL_CTX_new: \(OpenSSLErrors.drain())")
        }
        self.context = context
        self.trustDomainC = strdup(configuration.trustDomain)
        SSL_CTX_set_ex_data(context, 0, trustDomainC)
        try configure()
    }

    deinit {
        sessions.withLock { $0.values.joined().forEach { SSL_SESSION_free($0.session) } }
        SSL_CTX_free(context)
        free(trustDomainC)
    }

    private func configure() throws(TLSError) {
        guard cb_SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) == 1,
            cb_SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) == 1
        else {
            throw TLSError(.configuration, "cannot restrict to TLS 1.3: \(OpenSSLErrors.drain())")
        }
        // Per-connection buffers are freed while idle: 1,000 idle peers must stay cheap.
        _ = cb_SSL_CTX_set_mode(context, Int(SSL_MODE_RELEASE_BUFFERS))
        let c = configuration
        guard SSL_CTX_use_certificate_chain_file(context, c.certificateChainPath) == 1 else {
            throw TLSError(.configuration, "certificate \(c.certificateChainPath): \(OpenSSLErrors.drain())")
        }
        guard SSL_CTX_use_PrivateKey_file(context, c.privateKeyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError(.configuration, "private key \(c.privateKeyPath): \(OpenSSLErrors.drain())")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError(
                .configuration,
                "private key \(c.privateKeyPath) does not match certificate \(c.certificateChainPath)"
            )
        }
        if side == .consoleServer {
            // Staff prove who they are by password and second factor, not by certificate.
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
            SSL_CTX_set_alpn_select_cb(context, selectConsole, nil)
            return
        }
        guard SSL_CTX_load_verify_locations(context, c.trustedCAPath, nil) == 1 else {
            throw TLSError(.configuration, "CA \(c.trustedCAPath): \(OpenSSLErrors.drain())")
        }
        if let crl = c.revocationListPath { try loadRevocationList(crl) }
        guard cb_SSL_CTX_build_cert_chain(context) > 0 else {
            throw TLSError(.configuration, "certificate chain \(c.certificateChainPath): \(OpenSSLErrors.drain())")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verifyIdentity)
        // Unretained: connections keep this context (and so the cache) alive while they handshake.
        SSL_CTX_set_cert_verify_callback(context, verifyChain, Unmanaged.passUnretained(verifiedChains).toOpaque())
        switch side {
        case .consoleServer:
            break
        case .server:
            SSL_CTX_set_alpn_select_cb(context, selectH2, nil)
            // One ticket per handshake (OpenSSL sends two by default): a node reconnects on one
            // connection at a time. OpenSSL resumes a session with a verified client certificate only
            // within a named context. Tickets name sessions kept here (a reload makes a new context,
            // so a new cache): a ticket that carried the session cost a full handshake a tenth of its
            // CPU (OpenSSL 3.0 encodes the session, decodes it again, client certificate and all),
            // and a resumption as much again. A node has a few peers, each keeping 4 tickets.
            SSL_CTX_set_num_tickets(context, 1)
            cb_SSL_CTX_use_stateful_tickets(context, Self.sessionsKept)
            let name = Array("casebridge-node".utf8)
            SSL_CTX_set_session_id_context(context, name, UInt32(name.count))
        case .client:
            let protos: [UInt8] = [2, 0x68, 0x32]  // length-prefixed "h2"
            guard SSL_CTX_set_alpn_protos(context, protos, UInt32(protos.count)) == 0 else {
                throw TLSError(.configuration, "ALPN: \(OpenSSLErrors.drain())")
            }
        }
    }

    private func loadRevocationList(_ path: String) throws(TLSError) {
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSError(.configuration, "CRL \(path): \(OpenSSLErrors.drain())")
        }
        defer { BIO_free(bio) }
        let store = SSL_CTX_get_cert_store(context)
        var count = 0
        while let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) {
            X509_STORE_add_crl(store, crl)
            if let nextUpdate = Certificates.unixTime(X509_CRL_get0_nextUpdate(crl)) {
                verifiedChains.revocationList(nextUpdate: nextUpdate)
            }
            X509_CRL_free(crl)
            count += 1
        }
        ERR_clear_error()  // reading stops with a "no start line" error at the end of the file
        guard count > 0 else { throw TLSError(.configuration, "CRL \(path): no CRL in file") }
        X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL))
    }

    /// How many peer certificate chains this context verified in full, and how many handshakes
    /// reused an earlier verification of the same chain.
    package var chainVerifications: (verified: Int, reused: Int) { verifiedChains.verifications }

    /// Whether connections prove a node identity by certificate (not the staff console).
    public var verifiesPeers: Bool { side != .consoleServer }

    /// A new SSL object for one connection. The caller owns it (libevent frees it with the connection).
    /// `resuming`: client side, the peer to offer a session to, if ``keepSession(of:for:)`` kept one.
    package func makeSSL(serverName: String? = nil, resuming peer: String? = nil) throws(TLSError) -> OpaquePointer {
        guard let ssl = SSL_new(context) else { throw TLSError(.configuration, "SSL_new: \(OpenSSLErrors.drain())") }
        if let serverName, side == .client { _ = cb_SSL_set_tlsext_host_name(ssl, serverName) }
        if side == .client, let peer, let session = sessions.withLock({ $0[peer]?.popLast()?.session }) {
            SSL_set_session(ssl, session)  // takes its own reference
            SSL_SESSION_free(session)
        }
        return ssl
    }

    /// Client side: keeps the session a connection ends with (its newest ticket), to resume the
    /// next connection to `peer`. A server that restarted or reloaded its trust material no longer
    /// holds the session a ticket names, and answers it with a full handshake.
    package func keepSession(of ssl: OpaquePointer, for peer: String) {
        guard side == .client, let current = SSL_get1_session(ssl) else { return }
        defer { SSL_SESSION_free(current) }
        // A copy: freeing a connection that did not send close_notify marks its session (this
        // very object) as not resumable.
        guard SSL_SESSION_is_resumable(current) == 1, let session = SSL_SESSION_dup(current) else { return }
        sessions.withLock { all in
            all[peer, default: []].append(KeptSession(session: session))
            if all[peer]!.count > Self.sessionsPerPeer { SSL_SESSION_free(all[peer]!.removeFirst().session) }
        }
    }

    /// Server side: a connection that ended in order (either side closed it, or it idled out) keeps
    /// its session for the ticket it issued. OpenSSL drops a cached session whose connection is
    /// freed without a close_notify, as after an error; few peers send one before closing.
    package static func endedInOrder(_ ssl: OpaquePointer) {
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
    }

    /// The node identities this side's own certificate states.
    public var identities: [PeerIdentity] {
        guard let cert = SSL_CTX_get0_certificate(context) else { return [] }
        return Certificates.uriNames(cert).compactMap(PeerIdentity.init(uri:))
    }

    /// The start of this side's own certificate's validity, as unix seconds.
    public var certificateNotBefore: Int64? {
        guard let cert = SSL_CTX_get0_certificate(context) else { return nil }
        return Certificates.unixTime(X509_get0_notBefore(cert))
    }

    /// The expiry of this side's own certificate, as unix seconds.
    public var certificateNotAfter: Int64? {
        guard let cert = SSL_CTX_get0_certificate(context) else { return nil }
        return Certificates.unixTime(X509_get0_notAfter(cert))
    }
}

/// An SSL_SESSION the context owns one reference to; OpenSSL sessions may move between threads.
private struct KeptSession: @unchecked Sendable {
    let session: OpaquePointer
}

/// After OpenSSL's own chain checks, the peer's certificate must carry a node identity in our
/// trust domain. Refusing here (not after the handshake) sends the peer a TLS alert it can report.
private func verifyIdentity(_ preverifyOK: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverifyOK == 1, let store, X509_STORE_CTX_get_error_depth(store) == 0 else { return preverifyOK }
    guard let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let context = SSL_get_SSL_CTX(OpaquePointer(ssl)),
        let domain = SSL_CTX_get_ex_data(context, 0),
        let cert = X509_STORE_CTX_get_current_cert(store)
    else { return 0 }
    let trustDomain = String(cString: domain.assumingMemoryBound(to: CChar.self))
    let ok = Certificates.uriNames(cert).contains { PeerIdentity(uri: $0)?.trustDomain == trustDomain }
    if !ok { X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION) }
    return ok ? 1 : 0
}

/// The server accepts only "h2"; a client offering nothing else gets a no_application_protocol alert.
private func selectH2(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ input: UnsafePointer<UInt8>?,
    _ inputLength: UInt32,
    _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let input else { return SSL_TLSEXT_ERR_ALERT_FATAL }
    return select(Array("h2".utf8), from: input, inputLength, out, outLength)
}

/// The console speaks HTTP/2, and HTTP/1.1 for simpler clients: a client that offers protocols
/// must offer one of them.
private func selectConsole(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ input: UnsafePointer<UInt8>?,
    _ inputLength: UInt32,
    _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let input else { return SSL_TLSEXT_ERR_NOACK }
    let h2 = select(Array("h2".utf8), from: input, inputLength, out, outLength)
    return h2 == SSL_TLSEXT_ERR_OK ? h2 : select(Array("http/1.1".utf8), from: input, inputLength, out, outLength)
}

/// Picks `wanted` from the client's length-prefixed ALPN list, or refuses the handshake.
private func select(
    _ wanted: [UInt8],
    from input: UnsafePointer<UInt8>,
    _ inputLength: UInt32,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?
) -> Int32 {
    var i = 0
    while i < Int(inputLength) {
        let length = Int(input[i])
        if length == wanted.count, i + length < Int(inputLength),
            (0..<length).allSatisfy({ input[i + 1 + $0] == wanted[$0] })
        {
            out?.pointee = input + i + 1
            outLength?.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        }
        i += 1 + length
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL
}

/// OpenSSL's thread-local error queue, read as text.
package enum OpenSSLErrors {
    package static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            messages.append(describe(code))
        }
        return messages.isEmpty ? "no detail from OpenSSL" : messages.joined(separator: "; ")
    }

    /// The text of one OpenSSL error code (as libevent reports them).
    package static func describe(_ code: UInt) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
