import CaseBridgeTLS

/// Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 30-second steps, six digits), what every
/// authenticator app computes, and the other codes staff type: enrolment and recovery codes.
public enum TOTP {
    public static let stepSeconds: Int64 = 30
    static let secretBytes = 20

    /// The step a time falls in.
    public static func step(atMs: Int64) -> Int64 { atMs / 1000 / stepSeconds }

    /// The six-digit code of a secret at a step (RFC 4226's dynamic truncation).
    public static func code(secret: [UInt8], step: Int64) -> String {
        let counter = (0..<8).reversed().map { UInt8(truncatingIfNeeded: UInt64(bitPattern: step) >> (8 * $0)) }
        let mac = Digest.hmacSHA1(key: secret, counter)
        let offset = Int(mac[19] & 0x0f)
        let value =
            (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8)
            | UInt32(mac[offset + 3])
        let digits = String(value % 1_000_000)
        return String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// The step whose code `typed` is, within one step either side of now (clocks drift), and after
    /// `lastUsed` (a code works once); nil if none.
    public static func matchingStep(_ typed: String, secret: [UInt8], atMs: Int64, lastUsed: Int64) -> Int64? {
        let digits = typed.filter { !$0.isWhitespace }
        guard digits.count == 6, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let now = step(atMs: atMs)
        return [now - 1, now, now + 1].first {
            $0 > lastUsed && constantTimeEqual(code(secret: secret, step: $0), digits)
        }
    }

    /// The otpauth:// URI an authenticator app reads from a QR code.
    public static func uri(secret: [UInt8], issuer: String, account: String) -> String {
        let label = percentEncoded("\(issuer):\(account)")
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret))&issuer=\(percentEncoded(issuer))"
            + "&algorithm=SHA1&digits=6&period=\(stepSeconds)"
    }

    static func newSecret() -> [UInt8] { Sealing.randomBytes(secretBytes) }

    private static func percentEncoded(_ text: String) -> String {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        return text.utf8.map { unreserved.contains($0) ? String(UnicodeScalar($0)) : String(format: "%%%02X", $0) }
            .joined()
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// RFC 4648 base32 (upper case, no padding): how authenticator apps take a secret by hand.
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = "", buffer: UInt32 = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return out
    }

    /// nil for a character outside the alphabet (spaces, hyphens and '=' are skipped; case ignored).
    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = [], buffer: UInt32 = 0, bits = 0
        for character in text.uppercased() where !" -=".contains(character) {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits - 8)))
                bits -= 8
            }
        }
        return out
    }
}

/// Codes a person types once (enrolment and recovery codes): random, base32 in groups of five,
/// compared by the SHA-256 of their normalised form (the node stores only that).
enum TypedCode {
    static func make(groups: Int) -> String {
        let characters = Base32.encode(Sealing.randomBytes(groups * 5))
        return stride(from: 0, to: groups * 5, by: 5).map { start in
            String(characters.dropFirst(start).prefix(5))
        }.joined(separator: "-")
    }

    static func hash(_ typed: String) -> [UInt8] {
        Digest.sha256(Array(typed.uppercased().filter { $0.isLetter || $0.isNumber }.utf8))
    }

    /// Whether a typed code looks like one of these (and not like a six-digit TOTP code).
    static func looksLikeTypedCode(_ typed: String) -> Bool { typed.filter { $0.isLetter || $0.isNumber }.count >= 10 }
}
