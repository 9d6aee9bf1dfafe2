import CaseBridgeTLS
import Testing

/// The blind index keys every person's terms with `KeyedHash`: a key that changed would leave every
/// stored person unfindable, so it is pinned to RFC 4231's published values.
@Suite("Keyed hashes (HMAC-SHA-256)")
struct KeyedHashTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("RFC 4231's test cases 2 and 6 (a key longer than a block), whole and as the index's 8 bytes")
    func rfc4231() {
        let cases: [(key: [UInt8], data: String, mac: String)] = [
            (
                Array("Jefe".utf8), "what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            ),
            (
                [UInt8](repeating: 0xaa, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
            ),
        ]
        for (key, data, mac) in cases {
            let hash = KeyedHash(key: key)
            #expect(Self.hex(hash.mac(Array(data.utf8))) == mac)
            #expect(String(hash.leading64(data), radix: 16).leftPadded(to: 16) == String(mac.prefix(16)))
        }
    }

    @Test("the same value gives the same key on four threads at once, and another value another key")
    func concurrent() async {
        let hash = KeyedHash(key: Array("casebridge".utf8))
        let terms = (0..<500).map { "name:person-\($0)" }
        let expected = terms.map { hash.mac(Array($0.utf8)) }
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    terms.map { hash.leading64($0) } == expected.map { $0.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }
                }
            }
            for await agreed in group { #expect(agreed) }
        }
        #expect(Set(terms.map(hash.leading64)).count == terms.count)
    }
}

extension String {
    fileprivate func leftPadded(to count: Int) -> String {
        String(repeating: "0", count: max(0, count - self.count)) + self
    }
}
