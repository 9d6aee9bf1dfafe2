internal import COpenSSL

/// AES-256-GCM from libcrypto: how personal data is sealed at rest. A sealed value is
/// `version (1) | nonce (12) | ciphertext | tag (16)`; `context` is authenticated with it, so a
/// value moved to another row (another context) no longer opens.
public enum Sealing {
    public static let keyBytes = 32
    static let version: UInt8 = 1
    static let nonceBytes = 12, tagBytes = 16

    /// What a sealed value adds to its plaintext.
    public static let overhead = 1 + nonceBytes + tagBytes

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Bytes from OpenSSL's random generator (keys, nonces).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let status = bytes.withUnsafeMutableBytes {
            RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count))
        }
        precondition(status == 1, "OpenSSL could not produce random bytes")
        return bytes
    }

    public static func seal(_ plain: [UInt8], key: [UInt8], context: [UInt8]) throws(Failure) -> [UInt8] {
        guard key.count == keyBytes else { throw Failure(description: "a sealing key is \(keyBytes) bytes") }
        let nonce = randomBytes(nonceBytes)
        var out = [UInt8](repeating: 0, count: overhead + plain.count)
        out[0] = version
        out.replaceSubrange(1...nonceBytes, with: nonce)
        guard let cipherContext = EVP_CIPHER_CTX_new() else { throw Failure(description: "no cipher context") }
        defer { EVP_CIPHER_CTX_free(cipherContext) }
        var length: Int32 = 0
        let sealed = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            let body = buffer.baseAddress! + 1 + nonceBytes
            guard EVP_EncryptInit_ex(cipherContext, Algorithms.aes256GCM, nil, key, nonce) == 1,
                context.withUnsafeBufferPointer({
                    EVP_EncryptUpdate(cipherContext, nil, &length, $0.baseAddress, Int32($0.count)) == 1
                }),
                plain.withUnsafeBufferPointer({
                    EVP_EncryptUpdate(cipherContext, body, &length, $0.baseAddress, Int32($0.count)) == 1
                }),
                EVP_EncryptFinal_ex(cipherContext, body + Int(length), &length) == 1
            else { return false }
            return EVP_CIPHER_CTX_ctrl(cipherContext, EVP_CTRL_GCM_GET_TAG, Int32(tagBytes), body + plain.count) == 1
        }
        guard sealed else { throw Failure(description: "AES-256-GCM sealing failed") }
        return out
    }

    public static func open(_ sealed: [UInt8], key: [UInt8], context: [UInt8]) throws(Failure) -> [UInt8] {
        guard key.count == keyBytes else { throw Failure(description: "a sealing key is \(keyBytes) bytes") }
        guard sealed.count >= overhead, sealed[0] == version else { throw Failure(description: "not a sealed value") }
        let nonce = Array(sealed[1...nonceBytes])
        let cipherText = Array(sealed[(1 + nonceBytes)..<(sealed.count - tagBytes)])
        var tag = Array(sealed[(sealed.count - tagBytes)...])
        // Room past the end, so that even an empty value has an address for the final step.
        var plain = [UInt8](repeating: 0, count: cipherText.count + tagBytes)
        guard let cipherContext = EVP_CIPHER_CTX_new() else { throw Failure(description: "no cipher context") }
        defer { EVP_CIPHER_CTX_free(cipherContext) }
        var length: Int32 = 0
        let opened = plain.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard EVP_DecryptInit_ex(cipherContext, Algorithms.aes256GCM, nil, key, nonce) == 1,
                EVP_CIPHER_CTX_ctrl(cipherContext, EVP_CTRL_GCM_SET_TAG, Int32(tagBytes), &tag) == 1,
                context.withUnsafeBufferPointer({
                    EVP_DecryptUpdate(cipherContext, nil, &length, $0.baseAddress, Int32($0.count)) == 1
                }),
                cipherText.withUnsafeBufferPointer({
                    EVP_DecryptUpdate(cipherContext, buffer.baseAddress, &length, $0.baseAddress, Int32($0.count)) == 1
                })
            else { return false }
            return EVP_DecryptFinal_ex(cipherContext, buffer.baseAddress! + Int(length), &length) == 1
        }
        guard opened else {
            throw Failure(description: "a sealed value does not open with this key here (wrong key, or moved)")
        }
        return Array(plain.prefix(cipherText.count))
    }
}
