/// Base64 (RFC 4648): the standard form with padding, as proto3 JSON writes bytes, or the URL-safe
/// form without padding, for tokens that go into headers, cookies and file names.
public enum Base64 {
    public static func encode(_ bytes: [UInt8], urlSafe: Bool = false) -> String {
        let alphabet = Array(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + (urlSafe ? "-_" : "+/")
        )
        var out = ""
        var i = 0
        while i < bytes.count {
            let chunk = Array(bytes[i..<min(i + 3, bytes.count)])
            let n =
                (UInt32(chunk[0]) << 16) | (chunk.count > 1 ? UInt32(chunk[1]) << 8 : 0)
                | (chunk.count > 2 ? UInt32(chunk[2]) : 0)
            for k in 0...chunk.count { out.append(alphabet[Int((n >> UInt32(18 - 6 * k)) & 63)]) }
            if !urlSafe { out += String(repeating: "=", count: 3 - chunk.count) }
            i += 3
        }
        return out
    }
}
