internal import COpenSSL

/// What a finished (or failed) handshake says about the peer. Called on the
/// connection's own thread, right after the handshake event.
package enum TLSInspection {
    /// The serial number of the peer's certificate, hexadecimal (for revocation on a reload).
    package static func peerSerial(_ ssl: OpaquePointer) -> String? {
        SSL_get0_peer_certificate(ssl).flatMap { Certificates.hex(X509_get0_serialNumber($0)) }
    }

    /// Whether the handshake resumed an earlier session (a TLS 1.3 ticket) instead of a full one.
    package static func resumed(_ ssl: OpaquePointer) -> Bool { SSL_session_reused(ssl) == 1 }

    /// The application protocol the handshake agreed ("h2", "http/1.1"), or nil.
    package static func negotiatedProtocol(_ ssl: OpaquePointer) -> String? {
        var alpn: UnsafePointer<UInt8>? = nil
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        guard let alpn, alpnLength > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: alpn, count: Int(alpnLength)), as: UTF8.self)
    }

    /// The peer's verified identity, after checking ALPN and trust domain.
    /// OpenSSL has already verified the chain (SSL_VERIFY_PEER); this adds CaseBridge's rules.
    package static func verifiedPeer(_ ssl: OpaquePointer, trustDomain: String) -> Result<PeerIdentity, TLSError> {
        var alpn: UnsafePointer<UInt8>? = nil
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        guard let alpn, alpnLength == 2, alpn[0] == 0x68, alpn[1] == 0x32 else {
            return .failure(TLSError(.noALPN, "no application protocol agreed"))
        }
        guard SSL_get_verify_result(ssl) == X509_V_OK else {
            return .failure(verifyFailure(ssl))
        }
        guard let cert = SSL_get0_peer_certificate(ssl) else {
            return .failure(TLSError(.noPeerCertificate, "peer presented no certificate"))
        }
        // A resumed session was verified when it began, by this same context (a reload makes a new
        // one, with an empty session cache, so its CRL and CA applied). Only time has moved on since.
        if resumed(ssl), X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0 {
            return .failure(TLSError(.expiredCertificate, "the certificate expired since the session began"))
        }
        let uris = Certificates.uriNames(cert)
        guard let identity = uris.lazy.compactMap(PeerIdentity.init(uri:)).first else {
            return .failure(
                TLSError(
                    .wrongIdentity,
                    "certificate has no spiffe://<domain>/node/<id> URI (has: \(uris.joined(separator: ", ")))"
                )
            )
        }
        guard identity.trustDomain == trustDomain else {
            return .failure(TLSError(.wrongIdentity, "\(identity) is not in trust domain \(trustDomain)"))
        }
        return .success(identity)
    }

    /// Why a handshake failed, from the local verify result or the alert the peer sent.
    package static func failure(_ ssl: OpaquePointer?, errorQueue: String) -> TLSError {
        if let ssl, SSL_get_verify_result(ssl) != X509_V_OK {
            return verifyFailure(ssl)
        }
        let text = errorQueue.lowercased()
        let rules: [(String, TLSError.Code, String)] = [
            ("certificate expired", .expiredCertificate, "the peer refused our certificate as expired"),
            ("certificate revoked", .revokedCertificate, "the peer refused our certificate as revoked"),
            ("certificate unknown", .wrongIdentity, "the peer refused our certificate's identity"),
            ("unknown ca", .untrustedCertificate, "the peer does not trust our certificate's CA"),
            ("certificate required", .noPeerCertificate, "the peer requires a certificate"),
            ("peer did not return a certificate", .noPeerCertificate, "the peer presented no certificate"),
            ("no application protocol", .noALPN, "no common application protocol (h2)"),
            ("protocol version", .protocolVersion, "no common TLS version (TLS 1.3 only)"),
            ("unsupported protocol", .protocolVersion, "no common TLS version (TLS 1.3 only)"),
            ("bad certificate", .untrustedCertificate, "the peer refused our certificate"),
            ("decrypt error", .untrustedCertificate, "the peer refused our certificate"),
            (
                "unexpected eof", .handshake,
                "the peer closed the connection during the TLS handshake "
                    + "(at its connection limit, or not a CaseBridge node)"
            ),
        ]
        for (needle, code, message) in rules where text.contains(needle) {
            return TLSError(code, "\(message) (\(errorQueue))")
        }
        return TLSError(.handshake, errorQueue)
    }

    package static func hasVerifyFailure(_ ssl: OpaquePointer) -> Bool {
        SSL_get_verify_result(ssl) != X509_V_OK
    }

    private static func verifyFailure(_ ssl: OpaquePointer) -> TLSError {
        let result = Int32(SSL_get_verify_result(ssl))
        let reason = String(cString: X509_verify_cert_error_string(Int(result)))
        switch result {
        case X509_V_ERR_CERT_HAS_EXPIRED: return TLSError(.expiredCertificate, reason)
        case X509_V_ERR_CERT_NOT_YET_VALID: return TLSError(.notYetValidCertificate, reason)
        case X509_V_ERR_CERT_REVOKED: return TLSError(.revokedCertificate, reason)
        case X509_V_ERR_APPLICATION_VERIFICATION:
            return TLSError(
                .wrongIdentity,
                "certificate has no spiffe://<trust-domain>/node/<id> identity in our trust domain"
            )
        default: return TLSError(.untrustedCertificate, reason)
        }
    }
}

/// Reading X.509 certificates.
package enum Certificates {
    /// A serial number in hexadecimal, upper case (as `openssl x509 -serial` prints it).
    static func hex(_ serial: UnsafePointer<ASN1_INTEGER>?) -> String? {
        guard let number = ASN1_INTEGER_to_BN(serial, nil) else { return nil }
        defer { BN_free(number) }
        guard let hex = BN_bn2hex(number) else { return nil }
        defer { cb_OPENSSL_free(hex) }
        return String(cString: hex)
    }

    /// The certificates of an OpenSSL stack (borrowed: valid while the stack is).
    static func list(_ stack: OpaquePointer) -> [OpaquePointer] {
        (0..<cb_x509_stack_count(stack)).compactMap { cb_x509_stack_value(stack, $0) }
    }

    /// Every URI in the certificate's subjectAltName.
    package static func uriNames(_ cert: OpaquePointer) -> [String] {
        guard let names = X509_get_ext_d2i(cert, NID_subject_alt_name, nil, nil) else { return [] }
        let generalNames = OpaquePointer(names)
        defer { cb_general_names_free(generalNames) }
        var uris: [String] = []
        for i in 0..<cb_general_names_count(generalNames) {
            guard let uri = cb_general_name_uri(cb_general_names_value(generalNames, i)),
                let data = ASN1_STRING_get0_data(uri)
            else { continue }
            let bytes = UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(uri)))
            uris.append(String(decoding: bytes, as: UTF8.self))
        }
        return uris
    }

    static func unixTime(_ time: UnsafePointer<ASN1_TIME>?) -> Int64? {
        guard let time else { return nil }
        var tm = tm()
        guard ASN1_TIME_to_tm(time, &tm) == 1 else { return nil }
        return Int64(timegm(&tm))
    }
}
