internal import COpenSSL

/// Message digests from libcrypto.
public enum Digest {
    /// SHA-256 of `bytes` (32 bytes).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, Algorithms.sha256, nil) }
        return digest
    }

    /// SHA-256 of `bytes` as lower-case hex, as the contract writes it (attachments, receipts).
    public static func sha256Hex(_ bytes: [UInt8]) -> String { hex(sha256(bytes)) }

    /// Lower-case hex of a digest.
    public static func hex(_ digest: [UInt8]) -> String {
        // As bytes, then one string: every receipt and audit entry makes one (Characters cost ten times more).
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(digest.count * 2)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension Digest {
    /// HMAC-SHA-256 of `bytes` under `key` (32 bytes): keyed, so only the key's holder can compute it.
    public static func hmacSHA256(key: [UInt8], _ bytes: [UInt8]) -> [UInt8] { hmac(Algorithms.sha256, 32, key, bytes) }

    /// HMAC-SHA-1 (20 bytes): only for TOTP (RFC 6238), whose authenticator apps compute it.
    public static func hmacSHA1(key: [UInt8], _ bytes: [UInt8]) -> [UInt8] { hmac(EVP_sha1(), 20, key, bytes) }

    private static func hmac(_ md: OpaquePointer?, _ size: Int, _ key: [UInt8], _ bytes: [UInt8]) -> [UInt8] {
        var mac = [UInt8](repeating: 0, count: size)
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { keyBuffer in
            bytes.withUnsafeBytes { data in
                HMAC(
                    md,
                    keyBuffer.baseAddress,
                    Int32(keyBuffer.count),
                    data.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    data.count,
                    &mac,
                    &length
                )
            }
        }
        return mac
    }
}

/// HMAC-SHA-256 under one key, for many short messages: the keyed inner and outer SHA-256 states
/// are computed once and copied, by value, for each message (the one-shot HMAC sets the key up
/// every time, and an EVP context allocates for each copy).
public final class KeyedHash: Sendable {
    private let inner: SHA256_CTX
    private let outer: SHA256_CTX

    public init(key: [UInt8]) {
        var block = key.count > 64 ? Digest.sha256(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        var inner = SHA256_CTX(), outer = SHA256_CTX()
        cb_sha256_init(&inner)
        cb_sha256_init(&outer)
        cb_sha256_update(&inner, block.map { $0 ^ 0x36 }, 64)
        cb_sha256_update(&outer, block.map { $0 ^ 0x5c }, 64)
        self.inner = inner
        self.outer = outer
    }

    /// The first 8 bytes of the HMAC-SHA-256 of `text`'s UTF-8, as a big-endian integer: for values
    /// keyed by the thousand (the blind index's terms), without an array made for each (the arrays
    /// were a quarter of a term's cost). Safe from any thread: the keyed states are only copied.
    public func leading64(_ text: String) -> UInt64 { leading64 { part in part(text[...]) } }

    /// `leading64` of a text given in parts, as if they were joined: a term made of a kind, a date
    /// and a word is hashed without a string made for it.
    public func leading64(_ parts: (_ part: (Substring) -> Void) -> Void) -> UInt64 {
        var work = inner
        parts { part in
            var part = part
            part.withUTF8 { bytes in cb_sha256_update(&work, bytes.baseAddress, bytes.count) }
        }
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &digest) { digest in
            let bytes = digest.baseAddress!.assumingMemoryBound(to: UInt8.self)
            cb_sha256_final(bytes, &work)
            work = outer
            cb_sha256_update(&work, bytes, 32)
            cb_sha256_final(bytes, &work)
            return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
    }
}
