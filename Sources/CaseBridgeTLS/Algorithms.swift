internal import COpenSSL

/// The algorithms sealing, digests and signatures use on every request, fetched from OpenSSL's
/// providers once. `EVP_aes_256_gcm()` and `EVP_sha256()` make OpenSSL 3.0 fetch the algorithm again
/// (a lock on its method store and a lookup) in each init: 44 fetches for each case duplicate
/// detection compares, which opens two sealed values for every candidate.
enum Algorithms {
    /// Fetched algorithms are immutable and reference-counted; OpenSSL allows sharing them between
    /// threads. They live as long as the process.
    nonisolated(unsafe) static let aes256GCM: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)
    nonisolated(unsafe) static let sha256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)
}
