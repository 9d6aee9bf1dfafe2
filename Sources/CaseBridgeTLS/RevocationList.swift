internal import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// Certificate revocation lists: what the federation CA issues (`casebridge certs revoke` and
/// `certs crl`) and what a node reads of the one it is given (its next update, to warn before it
/// goes stale and every peer of the CA is refused).
public enum RevocationList {
    /// One revoked certificate, as the CA's index keeps it.
    public struct Entry: Sendable, Equatable, Codable {
        /// The certificate's serial number, hexadecimal.
        public var serial: String
        public var revokedAt: Int64
        /// RFC 5280 reason: "keyCompromise", "superseded", "cessationOfOperation", "unspecified".
        public var reason: String
        /// The identity the certificate named, for people reading the index.
        public var identity: String

        public init(serial: String, revokedAt: Int64, reason: String, identity: String) {
            self.serial = serial
            self.revokedAt = revokedAt
            self.reason = reason
            self.identity = identity
        }
    }

    public static let reasons = ["unspecified", "keyCompromise", "superseded", "cessationOfOperation"]

    /// A CRL signed by the CA, listing `entries`, valid until `days` from now.
    public static func issue(
        caCertificatePEM: String,
        caKeyPEM: String,
        entries: [Entry],
        number: Int,
        days: Int
    ) throws(TLSError) -> String {
        let (caCert, caKey) = try PEMObjects.authority(caCertificatePEM, caKeyPEM)
        defer {
            X509_free(caCert)
            EVP_PKEY_free(caKey)
        }
        guard let crl = X509_CRL_new() else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
        defer { X509_CRL_free(crl) }
        X509_CRL_set_version(crl, 1)
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(caCert))
        let now = time(nil)
        let last = ASN1_TIME_set(nil, now), next = ASN1_TIME_adj(nil, now, Int32(days), 0)
        defer {
            ASN1_TIME_free(last)
            ASN1_TIME_free(next)
        }
        X509_CRL_set1_lastUpdate(crl, last)
        X509_CRL_set1_nextUpdate(crl, next)
        for entry in entries {
            guard let revoked = X509_REVOKED_new() else { throw TLSError(.configuration, OpenSSLErrors.drain()) }
            var number: OpaquePointer? = nil
            guard BN_hex2bn(&number, entry.serial) > 0, let number else {
                X509_REVOKED_free(revoked)
                throw TLSError(.configuration, "serial \(entry.serial) is not hexadecimal")
            }
            let serial = BN_to_ASN1_INTEGER(number, nil)
            BN_free(number)
            X509_REVOKED_set_serialNumber(revoked, serial)
            ASN1_INTEGER_free(serial)
            let at = ASN1_TIME_set(nil, time_t(entry.revokedAt))
            X509_REVOKED_set_revocationDate(revoked, at)
            ASN1_TIME_free(at)
            if let code = reasons.firstIndex(of: entry.reason), code > 0 {
                let reason = ASN1_ENUMERATED_new()
                ASN1_ENUMERATED_set(reason, code == 3 ? 5 : code == 2 ? 4 : 1)
                X509_REVOKED_add1_ext_i2d(revoked, NID_crl_reason, reason, 0, 0)
                ASN1_ENUMERATED_free(reason)
            }
            X509_CRL_add0_revoked(crl, revoked)
        }
        let crlNumber = ASN1_INTEGER_new()
        ASN1_INTEGER_set(crlNumber, number)
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, crlNumber, 0, 0)
        ASN1_INTEGER_free(crlNumber)
        X509_CRL_sort(crl)
        guard X509_CRL_sign(crl, caKey, EVP_sha256()) > 0 else {
            throw TLSError(.configuration, "signing the CRL: \(OpenSSLErrors.drain())")
        }
        return try PEMObjects.pem { PEM_write_bio_X509_CRL($0, crl) }
    }

    /// When the CRL in `pem` must be replaced (its next update), as unix seconds.
    public static func nextUpdate(_ pem: String) throws(TLSError) -> Int64 {
        let crl = try PEMObjects.read(pem) { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
        defer { X509_CRL_free(crl) }
        guard let next = X509_CRL_get0_nextUpdate(crl), let seconds = Certificates.unixTime(next) else {
            throw TLSError(.configuration, "the CRL has no next-update time")
        }
        return seconds
    }

    /// The serial numbers a CRL lists, hexadecimal.
    public static func serials(_ pem: String) throws(TLSError) -> Set<String> {
        let crl = try PEMObjects.read(pem) { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
        defer { X509_CRL_free(crl) }
        guard let revoked = X509_CRL_get_REVOKED(crl) else { return [] }
        var serials = Set<String>()
        for i in 0..<cb_revoked_count(revoked) {
            if let entry = cb_revoked_value(revoked, i),
                let hex = Certificates.hex(X509_REVOKED_get0_serialNumber(entry))
            {
                serials.insert(hex)
            }
        }
        return serials
    }

    /// The serial number of a certificate, hexadecimal (upper case, as `openssl x509 -serial`).
    public static func serial(ofCertificate pem: String) throws(TLSError) -> String {
        let cert = try PEMObjects.certificate(pem)
        defer { X509_free(cert) }
        guard let hex = Certificates.hex(X509_get0_serialNumber(cert)) else {
            throw TLSError(.configuration, OpenSSLErrors.drain())
        }
        return hex
    }

    /// Whether the certificate in `pem` was signed by the CA certificate `caPEM`.
    public static func isIssued(_ pem: String, by caPEM: String) throws(TLSError) -> Bool {
        let cert = try PEMObjects.certificate(pem)
        defer { X509_free(cert) }
        let ca = try PEMObjects.certificate(caPEM)
        defer { X509_free(ca) }
        guard let key = X509_get0_pubkey(ca) else { return false }
        return X509_verify(cert, key) == 1
    }
}
