import CaseBridgeTLS
import Testing

/// The blind index keys every person's terms with `KeyedHash`: a key that changed would leave every
/// stored person unfindable, so it is pinned to RFC 4231's published values.
@Suite("Keyed hashes (HMAC-SHA-256)")
struct KeyedHashTests {
    /// The index's 8 bytes of an HMAC, as `leading64` gives them.
    static func leading64(_ mac: [UInt8]) -> UInt64 { mac.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }

    @Test("RFC 4231's test cases 2 and 6 (a key longer than a block), as the index's 8 bytes")
    func rfc4231() {
        let cases: [(key: [UInt8], data: String, mac: UInt64)] = [
            (Array("Jefe".utf8), "what do ya want for nothing?", 0x5bdc_c146_bf60_754e),
            (
                [UInt8](repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First",
                0x60e4_3159_1ee0_b67f
            ),
        ]
        for (key, data, mac) in cases {
            #expect(KeyedHash(key: key).leading64(data) == mac)
            #expect(Self.leading64(Digest.hmacSHA256(key: key, Array(data.utf8))) == mac)
            // Given in parts (a term's kind, date and word), as if joined; an empty part changes nothing.
            let words = data.split(separator: " ", omittingEmptySubsequences: false)
            let parts = KeyedHash(key: key).leading64 { part in
                for (index, word) in words.enumerated() {
                    if index > 0 { part(" ") }
                    part(word)
                    part("")
                }
            }
            #expect(parts == mac)
        }
    }

    @Test("the same value gives OpenSSL's one-shot HMAC on four threads at once, and another value another key")
    func concurrent() async {
        let key = Array("casebridge".utf8)
        let hash = KeyedHash(key: key)
        let terms = (0..<500).map { "name:person-\($0)" }
        let expected = terms.map { Self.leading64(Digest.hmacSHA256(key: key, Array($0.utf8))) }
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask { terms.map { hash.leading64($0) } == expected }
            }
            for await agreed in group { #expect(agreed) }
        }
        #expect(Set(terms.map(hash.leading64)).count == terms.count)
    }
}
