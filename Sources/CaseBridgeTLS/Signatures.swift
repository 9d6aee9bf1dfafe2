internal import COpenSSL

/// Detached CMS signatures (DER) with a node's federation key: what makes a receipt provable to
/// anyone holding the federation CA certificate, with this code or with
/// `openssl cms -verify -binary -inform DER -in SIG -content STATEMENT -CAfile ca.pem -purpose any`.
public enum Signatures {
    /// A node's certificate and key, read once: signing a receipt then costs the signature alone.
    public final class Signer: @unchecked Sendable {
        // Read-only after init; OpenSSL's signing with them is safe from several threads.
        private let cert: OpaquePointer
        private let key: OpaquePointer

        public init(certificatePEM: String, keyPEM: String) throws(TLSError) {
            cert = try PEMObjects.certificate(certificatePEM)
            do { key = try PEMObjects.key(keyPEM) } catch {
                X509_free(cert)
                throw error
            }
        }

        deinit {
            X509_free(cert)
            EVP_PKEY_free(key)
        }

        /// Signs `content`; the certificate goes inside the signature.
        public func sign(_ content: [UInt8]) throws(TLSError) -> [UInt8] {
            guard let input = BIO_new_mem_buf(content, Int32(content.count)) else {
                throw TLSError(.configuration, OpenSSLErrors.drain())
            }
            defer { BIO_free(input) }
            let flags = UInt32(CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP)
            guard let cms = CMS_sign(cert, key, nil, input, flags) else {
                throw TLSError(.configuration, "signing failed: \(OpenSSLErrors.drain())")
            }
            defer { CMS_ContentInfo_free(cms) }
            let length = i2d_CMS_ContentInfo(cms, nil)
            guard length > 0 else { throw TLSError(.configuration, "signature encoding failed") }
            var der = [UInt8](repeating: 0, count: Int(length))
            let written = der.withUnsafeMutableBufferPointer { buffer -> Int32 in
                var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
                return i2d_CMS_ContentInfo(cms, &cursor)
            }
            guard written == length else { throw TLSError(.configuration, "signature encoding failed") }
            return der
        }
    }

    /// A document the federation CA itself signs (the directory): a CMS in PEM with the content
    /// inside, so one file travels, and
    /// `openssl cms -verify -inform PEM -in FILE -CAfile ca.pem -purpose any` prints it.
    public static func signByAuthority(_ content: [UInt8], caPEM: String, keyPEM: String) throws(TLSError) -> String {
        let (cert, key) = try PEMObjects.authority(caPEM, keyPEM)
        defer {
            X509_free(cert)
            EVP_PKEY_free(key)
        }
        guard let input = BIO_new_mem_buf(content, Int32(content.count)), let output = BIO_new(BIO_s_mem()) else {
            throw TLSError(.configuration, OpenSSLErrors.drain())
        }
        defer {
            BIO_free(input)
            BIO_free(output)
        }
        guard let cms = CMS_sign(cert, key, nil, input, UInt32(CMS_BINARY | CMS_NOSMIMECAP)) else {
            throw TLSError(.configuration, "signing failed: \(OpenSSLErrors.drain())")
        }
        defer { CMS_ContentInfo_free(cms) }
        guard PEM_write_bio_CMS(output, cms) == 1 else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
        var data: UnsafeMutablePointer<CChar>? = nil
        let length = cb_BIO_get_mem_data(output, &data)
        guard let data, length > 0 else { throw TLSError(.configuration, "signature encoding failed") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// The content of a document signed by the federation CA itself; throws when the signature
    /// does not hold or another certificate (a node's, even one the CA issued) signed it.
    public static func openSignedByAuthority(_ pem: [UInt8], caPEM: String) throws(TLSError) -> [UInt8] {
        let cms = try PEMObjects.read(String(decoding: pem, as: UTF8.self)) { PEM_read_bio_CMS($0, nil, nil, nil) }
        defer { CMS_ContentInfo_free(cms) }
        let ca = try PEMObjects.certificate(caPEM)
        defer { X509_free(ca) }
        guard let store = X509_STORE_new(), let output = BIO_new(BIO_s_mem()) else {
            throw TLSError(.configuration, OpenSSLErrors.drain())
        }
        defer {
            X509_STORE_free(store)
            BIO_free(output)
        }
        X509_STORE_add_cert(store, ca)
        X509_STORE_set_purpose(store, X509_PURPOSE_ANY)
        guard CMS_verify(cms, nil, store, nil, output, UInt32(CMS_BINARY)) == 1 else {
            throw TLSError(.handshake, "the signature does not hold: \(OpenSSLErrors.drain())")
        }
        guard let signers = CMS_get0_signers(cms) else { throw TLSError(.handshake, "the signature names no signer") }
        defer { cb_x509_stack_free(signers) }
        let byAuthority = (0..<cb_x509_stack_count(signers)).allSatisfy { index in
            cb_x509_stack_value(signers, index).map { X509_cmp($0, ca) == 0 } ?? false
        }
        guard byAuthority, cb_x509_stack_count(signers) > 0 else {
            throw TLSError(.handshake, "signed by a certificate other than the federation CA's own")
        }
        var data: UnsafeMutablePointer<CChar>? = nil
        let length = cb_BIO_get_mem_data(output, &data)
        guard let data, length > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: data, count: length))
    }

    /// Checks a detached signature over `content` against the CA (and the CRL, when given);
    /// returns the signer certificate's URI identities.
    public static func verify(
        _ signature: [UInt8],
        content: [UInt8],
        caPEM: String,
        crlPEM: String? = nil
    ) throws(TLSError) -> [String] {
        var cursor: UnsafePointer<UInt8>? = nil
        let cms: OpaquePointer? = signature.withUnsafeBufferPointer { buffer in
            cursor = buffer.baseAddress
            return d2i_CMS_ContentInfo(nil, &cursor, buffer.count)
        }
        guard let cms else { throw TLSError(.handshake, "not a CMS signature") }
        defer { CMS_ContentInfo_free(cms) }
        guard let store = X509_STORE_new() else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
        defer { X509_STORE_free(store) }
        let ca = try PEMObjects.certificate(caPEM)
        defer { X509_free(ca) }
        X509_STORE_add_cert(store, ca)
        // Node certificates are for TLS; a receipt's signature is checked for the chain alone.
        X509_STORE_set_purpose(store, X509_PURPOSE_ANY)
        if let crlPEM {
            let crl = try PEMObjects.read(crlPEM) { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
            defer { X509_CRL_free(crl) }
            X509_STORE_add_crl(store, crl)
            X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK))
        }
        guard let input = BIO_new_mem_buf(content, Int32(content.count)) else {
            throw TLSError(.configuration, OpenSSLErrors.drain())
        }
        defer { BIO_free(input) }
        guard CMS_verify(cms, nil, store, input, nil, UInt32(CMS_BINARY)) == 1 else {
            throw TLSError(.handshake, "the signature does not hold: \(OpenSSLErrors.drain())")
        }
        guard let signers = CMS_get0_signers(cms) else { return [] }
        defer { cb_x509_stack_free(signers) }
        return (0..<cb_x509_stack_count(signers)).flatMap { index in
            cb_x509_stack_value(signers, index).map { Certificates.uriNames($0) } ?? []
        }
    }
}
