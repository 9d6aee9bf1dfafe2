internal import CArgon2

/// Staff passwords, hashed with Argon2id (libargon2). The encoded form
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) carries its parameters, so raising them later
/// leaves older hashes verifiable.
public enum PasswordHash {
    /// OWASP's first Argon2id setting: 19 MiB of memory, 2 passes, 1 lane (~50 ms here).
    public static let memoryKiB: UInt32 = 19_456
    public static let passes: UInt32 = 2
    public static let lanes: UInt32 = 1
    static let saltBytes = 16, hashBytes = 32

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The encoded Argon2id hash of `password` under a new random salt.
    public static func make(_ password: String, salt: [UInt8]) throws(Failure) -> String {
        guard salt.count == saltBytes else { throw Failure(description: "a password salt is \(saltBytes) bytes") }
        let plain = Array(password.utf8)
        let length = argon2_encodedlen(passes, memoryKiB, lanes, UInt32(saltBytes), UInt32(hashBytes), Argon2_id)
        var encoded = [CChar](repeating: 0, count: length)
        let status = plain.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBuffer in
                argon2id_hash_encoded(
                    passes,
                    memoryKiB,
                    lanes,
                    passwordBytes.baseAddress,
                    passwordBytes.count,
                    saltBuffer.baseAddress,
                    saltBuffer.count,
                    hashBytes,
                    &encoded,
                    length
                )
            }
        }
        guard status == ARGON2_OK.rawValue else {
            throw Failure(description: "Argon2id failed: \(String(cString: argon2_error_message(status)))")
        }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `password` matches `encoded` (constant time in libargon2). A malformed hash is no match.
    public static func verify(_ password: String, against encoded: String) -> Bool {
        guard encoded.hasPrefix("$argon2id$"), encoded.utf8.count < 512 else { return false }
        let plain = Array(password.utf8)
        return plain.withUnsafeBytes { passwordBytes in
            argon2id_verify(encoded, passwordBytes.baseAddress, passwordBytes.count) == ARGON2_OK.rawValue
        }
    }
}
