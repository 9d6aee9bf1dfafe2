import Testing

@testable import CaseBridgeMatching

/// Plain ASCII names, documents and phones are read byte by byte; what comes out must be what
/// Unicode's rules give for the same text, or a person would be filed under other terms than the
/// ones they are looked up by.
@Suite("Plain text read byte by byte")
struct PlainTextTests {
    /// Every ASCII character, spaces, punctuation and line ends (CR LF is one character) included.
    static let alphabet = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) } + ["\r\n", " ", " ", "a", "E", "7"]

    static func randomText(_ generator: inout some RandomNumberGenerator) -> String {
        // Up to 300 characters: past the 128 compared, with more than 12 words.
        String((0..<Int.random(in: 0...300, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }

    @Test("words, digits and documents agree with the Unicode path on any ASCII text")
    func agreesWithUnicode() {
        var generator = SystemRandomNumberGenerator()
        let fixed = [
            "", "Sok Dara", "  NGUYEN  thi   Dao  ", "o'brien-smith", "A1B2 c3", "line\r\nbreak", "tab\there",
            String(repeating: "ab ", count: 60), String(repeating: "x", count: 200), "+855 (12) 345-678", "N-0123 4567",
        ]
        for text in fixed + (0..<2000).map({ _ in Self.randomText(&generator) }) {
            let words = PersonKey.words(text), unicodeWords = PersonKey.unicodeWords(text)
            #expect(words == unicodeWords, "words of \(text.debugDescription)")
            #expect(PersonKey.digits(text) == text.filter { $0.isASCII && $0.isNumber }, "\(text.debugDescription)")
            #expect(
                PersonKey.document(text) == text.uppercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber) },
                "\(text.debugDescription)"
            )
        }
        #expect(PersonKey.words("  NGUYEN  thi   Dao  ") == ["nguyen", "thi", "dao"])
        #expect(PersonKey.words(String(repeating: "ab ", count: 60)).count == PersonKey.maxNameWords)
        #expect(PersonKey.document("n-0123 4567") == "N01234567")
        #expect(PersonKey.digits("+855 (12) 345-678") == "85512345678")
    }

    @Test("text that is not plain ASCII keeps its Unicode path")
    func otherTextNotRead() {
        for text in ["Đặng Thị Hương", "王伟", "line\r\nbreak", "café"] {
            #expect(PlainText.words(text, maxCharacters: 128, maxWords: 12) == nil)
            #expect(PlainText.digits(text) == nil)
        }
        #expect(PersonKey.words("Đặng Thị Hương") == ["dang", "thi", "huong"])
    }
}
