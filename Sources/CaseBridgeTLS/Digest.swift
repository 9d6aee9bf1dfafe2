internal import COpenSSL

/// Message digests from libcrypto.
public enum Digest {
    /// SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        return digest
    }
}

extension Digest {
    /// HMAC-SHA-256 of `bytes` under `key` (32 bytes): keyed, so only the key's holder can compute it.
    public static func hmacSHA256(key: [UInt8], _ bytes: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { keyBuffer in
            bytes.withUnsafeBytes { data in
                HMAC(EVP_sha256(), keyBuffer.baseAddress, Int32(keyBuffer.count),
                     data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, &mac, &length)
            }
        }
        return mac
    }
}
