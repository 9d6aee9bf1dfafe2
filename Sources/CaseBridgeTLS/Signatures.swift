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
        /// For an EC key: the parts of the SignedData that are the same in every signature (the
        /// certificate, the signer's issuer and serial number), encoded once; and a signing context
        /// set up for the key once and copied for each signature (setting one up fetches the
        /// algorithms again, by name, under the provider store's lock: a fifth of a signature's cost).
        private let ecdsa: (template: DetachedSignedData, keyed: OpaquePointer)?

        public init(certificatePEM: String, keyPEM: String) throws(TLSError) {
            cert = try PEMObjects.certificate(certificatePEM)
            do { key = try PEMObjects.key(keyPEM) } catch {
                X509_free(cert)
                throw error
            }
            guard EVP_PKEY_get_base_id(key) == EVP_PKEY_EC, let template = DetachedSignedData(cert) else {
                ecdsa = nil
                return
            }
            let keyed = EVP_MD_CTX_new()
            guard let keyed, EVP_DigestSignInit(keyed, nil, Algorithms.sha256, nil, key) == 1 else {
                EVP_MD_CTX_free(keyed)
                X509_free(cert)
                EVP_PKEY_free(key)
                throw TLSError(.configuration, "the signing key cannot sign: \(OpenSSLErrors.drain())")
            }
            ecdsa = (template, keyed)
        }

        deinit {
            EVP_MD_CTX_free(ecdsa?.keyed)
            X509_free(cert)
            EVP_PKEY_free(key)
        }

        /// Signs `content`; the certificate goes inside the signature.
        public func sign(_ content: [UInt8]) throws(TLSError) -> [UInt8] {
            if let (template, keyed) = ecdsa {
                // The same DER as CMS_sign's, without its general machinery: that cost as much as the
                // ECDSA signature itself, once per receipt.
                guard let attributes = template.signedAttributes(digest: Digest.sha256(content), at: time(nil)) else {
                    throw TLSError(.configuration, "signing time encoding failed")
                }
                return template.encode(attributes: attributes, signature: try ecdsaSignature(over: attributes, keyed))
            }
            return try cmsSign(content)
        }

        /// ECDSA with SHA-256 over the signed attributes, DER-encoded as a SET (RFC 5652, 5.4).
        private func ecdsaSignature(over attributes: [UInt8], _ keyed: OpaquePointer) throws(TLSError) -> [UInt8] {
            let signed = DER.element(0x31, attributes)
            guard let context = EVP_MD_CTX_new() else { throw TLSError(.configuration, "no digest context") }
            defer { EVP_MD_CTX_free(context) }
            var signature = [UInt8](repeating: 0, count: Int(EVP_PKEY_get_size(key)))
            var length = signature.count
            guard EVP_MD_CTX_copy_ex(context, keyed) == 1 else {
                throw TLSError(.configuration, "signing failed: \(OpenSSLErrors.drain())")
            }
            // Final (the copy is used once): the last step signs in place instead of on a copy.
            EVP_MD_CTX_set_flags(context, EVP_MD_CTX_FLAG_FINALISE)
            guard EVP_DigestSignUpdate(context, signed, signed.count) == 1,
                EVP_DigestSignFinal(context, &signature, &length) == 1
            else { throw TLSError(.configuration, "signing failed: \(OpenSSLErrors.drain())") }
            return Array(signature.prefix(length))
        }

        private func cmsSign(_ content: [UInt8]) throws(TLSError) -> [UInt8] {
            guard let input = BIO_new_mem_buf(content, Int32(content.count)) else {
                throw TLSError(.configuration, OpenSSLErrors.drain())
            }
            defer { BIO_free(input) }
            let flags = UInt32(CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP)
            guard let cms = CMS_sign(cert, key, nil, input, flags) else {
                throw TLSError(.configuration, "signing failed: \(OpenSSLErrors.drain())")
            }
            defer { CMS_ContentInfo_free(cms) }
            guard let der = DER.encoded({ i2d_CMS_ContentInfo(cms, $0) }) else {
                throw TLSError(.configuration, "signature encoding failed")
            }
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
        let certificates = Certificates.list(signers)
        guard !certificates.isEmpty, certificates.allSatisfy({ X509_cmp($0, ca) == 0 }) else {
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
        return Certificates.list(signers).flatMap(Certificates.uriNames)
    }
}

/// A detached CMS SignedData (RFC 5652) by one signer with an EC key, as CMS_sign makes it with
/// CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP: SHA-256, ecdsa-with-SHA256, the certificate inside,
/// the signed attributes content type (data), signing time and message digest.
struct DetachedSignedData {
    static let signedData: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02]
    static let data: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01]
    static let contentType: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03]
    static let messageDigest: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04]
    static let signingTime: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05]
    static let sha256: [UInt8] = DER.element(
        0x30,
        [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]
    )
    static let ecdsaWithSHA256: [UInt8] = DER.element(
        0x30,
        [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]
    )
    static let version1: [UInt8] = [0x02, 0x01, 0x01]

    let certificate: [UInt8]
    let issuerAndSerialNumber: [UInt8]

    init?(_ cert: OpaquePointer) {
        guard let certificate = DER.encoded({ i2d_X509(cert, $0) }),
            let issuer = DER.encoded({ i2d_X509_NAME(X509_get_issuer_name(cert), $0) }),
            let serial = DER.encoded({ i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), $0) })
        else { return nil }
        self.certificate = certificate
        issuerAndSerialNumber = DER.element(0x30, issuer + serial)
    }

    /// The signed attributes' contents, in DER's order for a SET OF (by their encodings); nil when
    /// OpenSSL cannot encode the time.
    func signedAttributes(digest: [UInt8], at seconds: time_t) -> [UInt8]? {
        // OpenSSL's time: UTCTime for 1950-2049, GeneralizedTime otherwise, as RFC 5652 wants.
        guard let stamp = ASN1_TIME_set(nil, seconds) else { return nil }
        defer { ASN1_TIME_free(stamp) }
        guard let time = DER.encoded({ i2d_ASN1_TIME(stamp, $0) }) else { return nil }
        let values = [
            (Self.contentType, Self.data), (Self.signingTime, time), (Self.messageDigest, DER.element(0x04, digest)),
        ]
        let attributes = values.map { type, value in
            var attribute = DER.Writer(capacity: 80)
            attribute.element(0x30) { sequence in
                sequence.append(type)
                sequence.element(0x31) { $0.append(value) }
            }
            return attribute.bytes
        }
        return attributes.sorted { $0.lexicographicallyPrecedes($1) }.flatMap { $0 }
    }

    /// The whole SignedData in one buffer: the certificate is copied once, not once per level.
    func encode(attributes: [UInt8], signature: [UInt8]) -> [UInt8] {
        var der = DER.Writer(capacity: certificate.count + issuerAndSerialNumber.count + attributes.count + 256)
        der.element(0x30) { contentInfo in
            contentInfo.append(Self.signedData)
            contentInfo.element(0xA0) { explicit in
                explicit.element(0x30) { signedData in
                    signedData.append(Self.version1)
                    signedData.element(0x31) { $0.append(Self.sha256) }
                    signedData.element(0x30) { $0.append(Self.data) }
                    signedData.element(0xA0) { $0.append(certificate) }
                    signedData.element(0x31) { signerInfos in
                        signerInfos.element(0x30) { signerInfo in
                            signerInfo.append(Self.version1)
                            signerInfo.append(issuerAndSerialNumber)
                            signerInfo.append(Self.sha256)
                            signerInfo.element(0xA0) { $0.append(attributes) }
                            signerInfo.append(Self.ecdsaWithSHA256)
                            signerInfo.element(0x04) { $0.append(signature) }
                        }
                    }
                }
            }
        }
        return der.bytes
    }
}

/// Just enough DER to write the structures above.
enum DER {
    static func element(_ tag: UInt8, _ contents: [UInt8]) -> [UInt8] {
        var der = Writer(capacity: contents.count + 4)
        der.element(tag) { $0.append(contents) }
        return der.bytes
    }

    /// Nested elements written into one buffer: an element's length is filled in once its contents
    /// are written (moving them along when it takes more than one byte).
    struct Writer {
        private(set) var bytes: [UInt8] = []

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func append(_ raw: [UInt8]) { bytes += raw }

        mutating func element(_ tag: UInt8, _ contents: (inout Writer) -> Void) {
            bytes.append(tag)
            bytes.append(0)
            let start = bytes.count
            contents(&self)
            let count = bytes.count - start
            guard count >= 0x80 else {
                bytes[start - 1] = UInt8(count)
                return
            }
            let length = withUnsafeBytes(of: UInt64(count).bigEndian) { Array($0.drop { $0 == 0 }) }
            bytes[start - 1] = 0x80 | UInt8(length.count)
            bytes.insert(contentsOf: length, at: start)
        }
    }

    /// The DER an OpenSSL i2d function writes, or nil when it fails.
    static func encoded(_ write: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) -> [UInt8]? {
        let length = write(nil)
        guard length > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        let written = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return write(&cursor)
        }
        return written == length ? bytes : nil
    }
}
