internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Making federation certificates: a CA, node certificates whose URI SAN is the node's identity,
/// and signing requests for a CA that runs elsewhere. EC P-256 keys, SHA-256 signatures.
public enum CertificateAuthority {
    /// A new key pair, as PEM.
    public static func newKey() throws(TLSError) -> String {
        let key = try generateKey()
        defer { EVP_PKEY_free(key) }
        return try PEMObjects.pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    }

    /// A self-signed CA certificate for `key`.
    public static func caCertificate(commonName: String, keyPEM: String, days: Int) throws(TLSError) -> String {
        let key = try PEMObjects.key(keyPEM)
        defer { EVP_PKEY_free(key) }
        let cert = try newCertificate(commonName: commonName, publicKey: key, lifetime: .seconds(days * 86_400))
        defer { X509_free(cert) }
        X509_set_issuer_name(cert, X509_get_subject_name(cert))
        try addExtensions(
            cert,
            issuer: cert,
            [
                (NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ]
        )
        guard X509_sign(cert, key, EVP_sha256()) > 0 else {
            throw TLSError(.configuration, "signing: \(OpenSSLErrors.drain())")
        }
        return try PEMObjects.pem { PEM_write_bio_X509($0, cert) }
    }

    /// A node certificate for `spiffe://<trustDomain>/node/<nodeID>`, signed by the CA, for the
    /// public key of `keyPEM` or of the signing request `csrPEM`, valid from now for `lifetime`.
    public static func nodeCertificate(
        nodeID: String,
        trustDomain: String,
        caCertificatePEM: String,
        caKeyPEM: String,
        keyPEM: String? = nil,
        csrPEM: String? = nil,
        validFor lifetime: Duration
    ) throws(TLSError) -> String {
        let identity = PeerIdentity(trustDomain: trustDomain, nodeID: nodeID)
        guard PeerIdentity(uri: identity.uri) == identity else {
            throw TLSError(.configuration, "\(identity.uri) is not a valid node identity")
        }
        let (caCert, caKey) = try PEMObjects.authority(caCertificatePEM, caKeyPEM)
        defer {
            X509_free(caCert)
            EVP_PKEY_free(caKey)
        }
        let subjectKey: OpaquePointer
        if let csrPEM {
            let request = try PEMObjects.read(csrPEM) { PEM_read_bio_X509_REQ($0, nil, nil, nil) }
            defer { X509_REQ_free(request) }
            guard let key = X509_REQ_get_pubkey(request), X509_REQ_verify(request, key) == 1 else {
                throw TLSError(.configuration, "the signing request's signature does not verify")
            }
            subjectKey = key
        } else if let keyPEM {
            subjectKey = try PEMObjects.key(keyPEM)
        } else {
            throw TLSError(.configuration, "give a key or a signing request")
        }
        defer { EVP_PKEY_free(subjectKey) }
        let cert = try newCertificate(commonName: nodeID, publicKey: subjectKey, lifetime: lifetime)
        defer { X509_free(cert) }
        X509_set_issuer_name(cert, X509_get_subject_name(caCert))
        // The identity is what the CA decides, not what the request asks for.
        try addExtensions(
            cert,
            issuer: caCert,
            [
                (NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "serverAuth,clientAuth"),
                (NID_subject_alt_name, "URI:\(identity.uri),DNS:\(nodeID).\(trustDomain)"),
                (NID_subject_key_identifier, "hash"), (NID_authority_key_identifier, "keyid"),
            ]
        )
        guard X509_sign(cert, caKey, EVP_sha256()) > 0 else {
            throw TLSError(.configuration, "signing: \(OpenSSLErrors.drain())")
        }
        return try PEMObjects.pem { PEM_write_bio_X509($0, cert) }
    }

    /// A signing request for a node key, to send to a CA that runs elsewhere.
    public static func signingRequest(nodeID: String, trustDomain: String, keyPEM: String) throws(TLSError) -> String {
        let key = try PEMObjects.key(keyPEM)
        defer { EVP_PKEY_free(key) }
        guard let request = X509_REQ_new() else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
        defer { X509_REQ_free(request) }
        X509_REQ_set_version(request, 0)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(request), "CN", MBSTRING_UTF8, nodeID, -1, -1, 0)
        X509_REQ_set_pubkey(request, key)
        guard X509_REQ_sign(request, key, EVP_sha256()) > 0 else {
            throw TLSError(.configuration, "signing: \(OpenSSLErrors.drain())")
        }
        return try PEMObjects.pem { PEM_write_bio_X509_REQ($0, request) }
    }

    /// What a certificate says about itself.
    public struct Description: Sendable {
        public let subject: String
        public let issuer: String
        public let identities: [String]
        public let notBefore: Int64
        public let notAfter: Int64
        public let isCA: Bool
    }

    public static func describe(certificatePEM: String) throws(TLSError) -> Description {
        let cert = try PEMObjects.certificate(certificatePEM)
        defer { X509_free(cert) }
        func name(_ name: OpaquePointer?) -> String {
            guard let name, let text = X509_NAME_oneline(name, nil, 0) else { return "" }
            defer { cb_OPENSSL_free(text) }
            return String(cString: text)
        }
        return Description(
            subject: name(X509_get_subject_name(cert)),
            issuer: name(X509_get_issuer_name(cert)),
            identities: Certificates.uriNames(cert),
            notBefore: Certificates.unixTime(X509_get0_notBefore(cert)) ?? 0,
            notAfter: Certificates.unixTime(X509_get0_notAfter(cert)) ?? 0,
            isCA: X509_check_ca(cert) != 0
        )
    }

    // MARK: OpenSSL plumbing

    private static func generateKey() throws(TLSError) -> OpaquePointer {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else {
            throw TLSError(.configuration, OpenSSLErrors.drain())
        }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1,
            EVP_PKEY_CTX_set_ec_paramgen_curve_nid(context, NID_X9_62_prime256v1) == 1,
            EVP_PKEY_keygen(context, &key) == 1, let key
        else {
            throw TLSError(.configuration, "key generation: \(OpenSSLErrors.drain())")
        }
        return key
    }

    private static func newCertificate(
        commonName: String,
        publicKey: OpaquePointer,
        lifetime: Duration
    ) throws(TLSError) -> OpaquePointer {
        guard let cert = X509_new() else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
        X509_set_version(cert, 2)
        var serial = [UInt8](repeating: 0, count: 16)
        RAND_bytes(&serial, Int32(serial.count))
        serial[0] &= 0x7f  // positive
        let number = BN_bin2bn(serial, Int32(serial.count), nil)
        BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert))
        BN_free(number)
        X509_gmtime_adj(X509_getm_notBefore(cert), -300)  // tolerate small clock differences
        X509_gmtime_adj(X509_getm_notAfter(cert), Int(lifetime.components.seconds))
        X509_set_pubkey(cert, publicKey)
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8, commonName, -1, -1, 0)
        return cert
    }

    private static func addExtensions(
        _ cert: OpaquePointer,
        issuer: OpaquePointer,
        _ extensions: [(Int32, String)]
    ) throws(TLSError) {
        var context = v3_ext_ctx()
        X509V3_set_ctx(&context, issuer, cert, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw TLSError(.configuration, "extension \(value): \(OpenSSLErrors.drain())")
            }
            X509_add_ext(cert, ext, -1)
            X509_EXTENSION_free(ext)
        }
    }
}

/// OpenSSL objects to and from PEM text.
enum PEMObjects {
    /// The CA's certificate and key, which must belong together. The caller frees both.
    static func authority(_ certificatePEM: String, _ keyPEM: String) throws(TLSError) -> (OpaquePointer, OpaquePointer)
    {
        let key = try self.key(keyPEM)
        let cert: OpaquePointer
        do { cert = try certificate(certificatePEM) } catch {
            EVP_PKEY_free(key)
            throw error
        }
        guard X509_check_private_key(cert, key) == 1 else {
            X509_free(cert)
            EVP_PKEY_free(key)
            throw TLSError(.configuration, "the CA key does not match the CA certificate")
        }
        return (cert, key)
    }

    static func key(_ pem: String) throws(TLSError) -> OpaquePointer {
        try read(pem) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
    }

    static func certificate(_ pem: String) throws(TLSError) -> OpaquePointer {
        try read(pem) { PEM_read_bio_X509($0, nil, nil, nil) }
    }

    static func read(
        _ pem: String,
        _ read: (OpaquePointer) -> OpaquePointer?
    ) throws(TLSError) -> OpaquePointer {
        let bytes = Array(pem.utf8)
        guard let bio = BIO_new_mem_buf(bytes, Int32(bytes.count)) else {
            throw TLSError(.configuration, OpenSSLErrors.drain())
        }
        defer { BIO_free(bio) }
        guard let object = read(bio) else {
            throw TLSError(.configuration, "not readable PEM: \(OpenSSLErrors.drain())")
        }
        return object
    }

    static func pem(_ write: (OpaquePointer) -> Int32) throws(TLSError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw TLSError(.configuration, "PEM: \(OpenSSLErrors.drain())") }
        var data: UnsafeMutablePointer<CChar>?
        let length = cb_BIO_get_mem_data(bio, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}
