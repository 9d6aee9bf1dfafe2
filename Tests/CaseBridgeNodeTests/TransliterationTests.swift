import Testing

@testable import CaseBridgeText

/// Names in other scripts are transliterated by ICU once, then remembered for a while: duplicate
/// detection meets the same candidates' names again and again.
@Suite("Names transliterated once", .serialized)
struct TransliterationTests {
    @Test("a name comes out the same when remembered, and is forgotten when personal data is purged")
    func remembered() {
        // Unique to this test: other suites transliterate names meanwhile.
        let name = "Đặng Thị Quỳnh \(UInt64.random(in: 0...UInt64.max))"
        let first = Transliteration.toLatinASCII(name)
        #expect(first?.hasPrefix("dang thi quynh ") == true)
        #expect(Transliteration.isRemembered(name))
        #expect(Transliteration.toLatinASCII(name) == first)
        Transliteration.forgetRemembered()
        #expect(!Transliteration.isRemembered(name))
        #expect(Transliteration.toLatinASCII(name) == first)
        // Plain ASCII never goes through ICU, and is not kept.
        #expect(Transliteration.toLatinASCII("Sok Dara") == "sok dara")
        #expect(!Transliteration.isRemembered("Sok Dara"))
    }

    @Test("no more than a bounded number of names are kept, however many are transliterated")
    func bounded() {
        for number in 0..<(Transliteration.maxRemembered + 10) {
            #expect(Transliteration.toLatinASCII("Lê \(number)") == "le \(number)")
            #expect(Transliteration.rememberedCount <= Transliteration.maxRemembered)
        }
        #expect(Transliteration.isRemembered("Lê \(Transliteration.maxRemembered + 9)"))
        let long = String(repeating: "Lê ", count: 400)
        _ = Transliteration.toLatinASCII(long)
        #expect(!Transliteration.isRemembered(long))
    }
}
