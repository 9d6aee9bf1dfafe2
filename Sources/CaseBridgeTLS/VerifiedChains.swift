internal import COpenSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Certificate chains one TLS context has verified, so that a peer that connects again with the
/// same chain is not verified again: a full handshake spent a third of its CPU in X509_verify_cert
/// (the chain's signature, and the CRL's signature, checked again on every connection).
///
/// What a verification depends on is fixed for the context (its CA, its CRLs, its rules: a reload
/// makes a new context, so a new cache), except the time. So an entry holds until the earliest
/// expiry among the chain's certificates and the CRLs, for at most `maxAge`, and only while the
/// clock has not gone back. Only successes are kept; a chain that fails is verified in full each
/// time, as before.
final class VerifiedChains: Sendable {
    /// A federation has a few dozen nodes, each with one certificate at a time (two while renewing).
    static let capacity = 256
    static let maxAge: Int64 = 600

    private struct Entry {
        var verifiedAt: Int64
        var validUntil: Int64
    }
    private struct State {
        var byChain: [[UInt8]: Entry] = [:]
        var order: [[UInt8]] = []
        var verified = 0
        var reused = 0
    }
    private let state = Mutex(State())
    /// The earliest next update among the context's CRLs (none: no limit).
    private let revocationListsValidUntil = Atomic<Int64>(.max)

    /// A CRL the context loaded: past its next update, verification fails, so no entry outlives it.
    func revocationList(nextUpdate: Int64) {
        _ = revocationListsValidUntil.min(nextUpdate, ordering: .relaxed)
    }

    /// How many chains were verified in full, and how many connections reused a verification.
    var verifications: (verified: Int, reused: Int) { state.withLock { ($0.verified, $0.reused) } }

    /// Verifies the chain `store` holds (as OpenSSL's X509_verify_cert would), or finds it verified.
    func verify(_ store: OpaquePointer) -> Int32 {
        let now = Int64(time(nil))
        guard let key = Self.key(store) else { return X509_verify_cert(store) }
        let reused = state.withLock { state in
            guard let entry = state.byChain[key], entry.verifiedAt <= now, now < entry.validUntil else { return false }
            state.reused += 1
            return true
        }
        if reused { return 1 }
        let result = X509_verify_cert(store)
        let validUntil = min(
            Self.earliestExpiry(store) ?? now,
            revocationListsValidUntil.load(ordering: .relaxed),
            now + Self.maxAge
        )
        state.withLock { state in
            state.verified += 1
            guard result == 1 else { return }
            if state.byChain.updateValue(Entry(verifiedAt: now, validUntil: validUntil), forKey: key) == nil {
                state.order.append(key)
            }
            if state.order.count > Self.capacity { state.byChain[state.order.removeFirst()] = nil }
        }
        return result
    }

    /// SHA-256 over the DER of the peer's certificate and every certificate it sent with it.
    private static func key(_ store: OpaquePointer) -> [UInt8]? {
        guard let leaf = X509_STORE_CTX_get0_cert(store) else { return nil }
        let sent = X509_STORE_CTX_get0_untrusted(store).map(Certificates.list) ?? []
        var der: [UInt8] = []
        for certificate in [leaf] + sent {
            guard let encoded = DER.encoded({ i2d_X509(certificate, $0) }) else { return nil }
            der += encoded
        }
        return Digest.sha256(der)
    }

    /// The earliest notAfter among the certificates of the chain just verified (trust anchor included).
    private static func earliestExpiry(_ store: OpaquePointer) -> Int64? {
        guard let chain = X509_STORE_CTX_get0_chain(store) else { return nil }
        let expiries = Certificates.list(chain).map { Certificates.unixTime(X509_get0_notAfter($0)) }
        guard !expiries.isEmpty, !expiries.contains(nil) else { return nil }
        return expiries.compactMap { $0 }.min()
    }
}

/// OpenSSL calls this instead of X509_verify_cert for every certificate chain a peer presents.
func verifyChain(_ store: OpaquePointer?, _ chains: UnsafeMutableRawPointer?) -> Int32 {
    guard let store else { return 0 }
    guard let chains else { return X509_verify_cert(store) }
    return Unmanaged<VerifiedChains>.fromOpaque(chains).takeUnretainedValue().verify(store)
}
