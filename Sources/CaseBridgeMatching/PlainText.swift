/// Plain ASCII text (most names, documents and phones) read byte by byte: the results Unicode's
/// rules give for it, without looking up each character's properties, which cost most of the time a
/// worker spent on a person's search terms.
///
/// Each function returns nil for any other text, which keeps its Unicode path.
public enum PlainText {
    /// Every character one byte: ASCII without a carriage return (a CR and the LF after it are one
    /// character, so counting bytes would count one more).
    static func isPlain(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 && $0 != 0x0D } }

    /// The lower-case words (runs of letters and digits) of the first `maxCharacters` characters,
    /// at most `maxWords` of them.
    public static func words(_ text: String, maxCharacters: Int, maxWords: Int) -> [String]? {
        guard isPlain(text) else { return nil }
        var words: [String] = []
        var word: [UInt8] = []
        for byte in text.utf8.prefix(maxCharacters) + [0x20] where words.count < maxWords {
            if isLetterOrDigit(byte) {
                word.append(byte | (isLetter(byte) ? 0x20 : 0))  // lower case
            } else if !word.isEmpty {
                words.append(String(decoding: word, as: UTF8.self))
                word.removeAll(keepingCapacity: true)
            }
        }
        return words
    }

    /// The digits, in order.
    public static func digits(_ text: String) -> String? {
        guard isPlain(text) else { return nil }
        return String(decoding: text.utf8.filter { (0x30...0x39).contains($0) }, as: UTF8.self)
    }

    /// The letters, in upper case, and digits, in order.
    public static func upperLettersAndDigits(_ text: String) -> String? {
        guard isPlain(text) else { return nil }
        let kept = text.utf8.filter(isLetterOrDigit).map { isLetter($0) ? $0 & ~0x20 : $0 }
        return String(decoding: kept, as: UTF8.self)
    }

    /// A-Z and a-z: the two differ only in the bit 0x20.
    private static func isLetter(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte | 0x20) }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool { isLetter(byte) || (0x30...0x39).contains(byte) }
}
