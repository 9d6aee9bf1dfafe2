import CaseBridgeText

/// What two reports say of a person, as far as telling whether they are the same person goes.
public struct PersonTraits: Sendable, Equatable {
    /// Full, native and other names, in any script.
    public var names: [String]
    /// "YYYY", "YYYY-MM" or "YYYY-MM-DD"; empty when unknown.
    public var dateOfBirth: String
    public var document: String
    public var phone: String

    public init(names: [String], dateOfBirth: String = "", document: String = "", phone: String = "") {
        self.names = names
        self.dateOfBirth = dateOfBirth
        self.document = document
        self.phone = phone
    }
}

/// The traits brought to comparable form once: names transliterated to ASCII and split into words,
/// the document number without spaces or dashes, the phone number as its last nine digits (so that
/// "+855 12 345 678" and "012 345 678" agree).
public struct PersonKey: Sendable, Equatable {
    public let names: [[String]]
    public let dateOfBirth: String
    public let document: String
    public let phone: String

    /// A person is compared (and found) by the first names, characters and words of each name only.
    /// Real names fit well within these; a hostile one of thousands must not cost thousands of times
    /// more (transliteration, Jaro-Winkler) in every comparison with it.
    public static let maxNames = 8
    public static let maxNameCharacters = 128
    public static let maxNameWords = 12

    public init(_ traits: PersonTraits) { self.init(traits, names: true) }

    /// A key without names: enough for `Likeness.couldBeLikely`, which rules most candidates out
    /// before their names are transliterated and compared (the costly part).
    public static func withoutNames(_ traits: PersonTraits) -> PersonKey { PersonKey(traits, names: false) }

    private init(_ traits: PersonTraits, names withNames: Bool) {
        names = withNames ? traits.names.prefix(Self.maxNames).map(Self.words).filter { !$0.isEmpty } : []
        dateOfBirth = traits.dateOfBirth.trimmingCharacters(in: " ")
        document = Self.document(traits.document)
        let digits = Self.digits(traits.phone)
        phone = digits.count >= 7 ? String(digits.suffix(9)) : ""
    }

    /// Lower-case ASCII words of a name in any script ("Đặng Thị Hương" → dang, thi, huong).
    public static func words(_ name: String) -> [String] {
        PlainText.words(name, maxCharacters: maxNameCharacters, maxWords: maxNameWords) ?? unicodeWords(name)
    }

    static func unicodeWords(_ name: String) -> [String] {
        let name = String(name.prefix(maxNameCharacters))
        let latin = Transliteration.toLatinASCII(name) ?? name.lowercased()
        return latin.split { !($0.isLetter || $0.isNumber) }.prefix(maxNameWords).map(String.init)
    }

    /// A travel document's number as compared and found: its ASCII letters in upper case and digits.
    public static func document(_ text: String) -> String {
        PlainText.upperLettersAndDigits(text) ?? text.uppercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    /// A phone number's ASCII digits.
    public static func digits(_ text: String) -> String {
        PlainText.digits(text) ?? text.filter { $0.isASCII && $0.isNumber }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        // Most values have nothing to trim; rebuilding a string through reversed views is slow.
        guard first == set || last == set else { return self }
        return String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

/// How alike two persons are, and on what.
public struct Likeness: Sendable, Equatable {
    public enum Field: String, Sendable, CaseIterable {
        case name, dateOfBirth = "date_of_birth", document, phone
    }

    /// 0 (nothing alike, or contradicting) to 1.
    public var score: Double
    /// The fields that agree.
    public var agreeing: [Field]
    /// The fields both reports give and that disagree.
    public var conflicting: [Field]

    /// A likely match, shown to NCCT staff to confirm or dismiss.
    public var isLikely: Bool { score >= Self.threshold }

    /// Chosen on the generated test set of `casebridge-bench duplicates` (see Benchmarks/README.md).
    public static let threshold = 0.7

    /// Weighs each field as evidence: a name alone is not enough (names repeat), a name with the
    /// same date of birth or document is; a different date of birth counts strongly against.
    public init(_ a: PersonKey, _ b: PersonKey) {
        var score = 0.0
        var agreeing: [Field] = []
        var conflicting: [Field] = []
        let names = Self.nameSimilarity(a.names, b.names)
        if names >= 0.85 {
            score += Self.nameWeight * names
            agreeing.append(.name)
        }
        Self.weigh(a, b, &score, &agreeing, &conflicting)
        self.score = min(1, max(0, score))
        self.agreeing = agreeing
        self.conflicting = conflicting
    }

    /// What names that agree fully add to the score (a name's likeness is at most 1).
    static let nameWeight = 0.6

    /// Whether `a` and `b` could be a likely match were their names the same: the date of birth,
    /// document and phone alone decide that for most candidates (the same year, another day).
    public static func couldBeLikely(_ a: PersonKey, _ b: PersonKey) -> Bool {
        var score = nameWeight, agreeing: [Field] = [], conflicting: [Field] = []
        weigh(a, b, &score, &agreeing, &conflicting)
        return min(1, score) >= threshold
    }

    /// The evidence of the fields other than names, added in this order.
    private static func weigh(
        _ a: PersonKey,
        _ b: PersonKey,
        _ score: inout Double,
        _ agreeing: inout [Field],
        _ conflicting: inout [Field]
    ) {
        if !a.dateOfBirth.isEmpty, !b.dateOfBirth.isEmpty {
            if a.dateOfBirth == b.dateOfBirth {
                score += a.dateOfBirth.count == 10 ? 0.25 : 0.1
                agreeing.append(.dateOfBirth)
            } else if a.dateOfBirth.hasPrefix(b.dateOfBirth) || b.dateOfBirth.hasPrefix(a.dateOfBirth) {
                score += 0.1
                agreeing.append(.dateOfBirth)
            } else {
                score -= 0.5
                conflicting.append(.dateOfBirth)
            }
        }
        if !a.document.isEmpty, !b.document.isEmpty {
            if a.document == b.document {
                score += 0.5
                agreeing.append(.document)
            } else {
                // People hold more than one document; a different one counts against, less strongly.
                score -= 0.2
                conflicting.append(.document)
            }
        }
        if !a.phone.isEmpty, a.phone == b.phone {
            score += 0.3
            agreeing.append(.phone)
        }
    }

    /// The best likeness of any name of one person to any name of the other: words paired up
    /// regardless of order, each pair scored by Jaro-Winkler (typos and transliteration variants
    /// score high), the whole by the mean of Dice's coefficient and the overlap coefficient (a
    /// missing middle name costs a little, not the match). Adjacent words are also tried run
    /// together ("Thi Huong" and "Thihuong", "Wei Lei" and "Weilei").
    static func nameSimilarity(_ a: [[String]], _ b: [[String]]) -> Double {
        var best = 0.0
        let others = b.flatMap(joinings)
        for x in a.flatMap(joinings) {
            for y in others { best = max(best, wordsSimilarity(x, y)) }
        }
        return best
    }

    /// A name's words as written, and with each pair of neighbours run together (never all of a
    /// long name into one word: Jaro-Winkler forgives too much over a long string).
    static func joinings(_ words: [String]) -> [[String]] {
        guard words.count > 1, words.count <= 5 else { return [words] }
        var all = [words]
        for i in 0..<(words.count - 1) {
            all.append(Array(words[..<i]) + [words[i] + words[i + 1]] + Array(words[(i + 2)...]))
        }
        return all
    }

    static func wordsSimilarity(_ x: [String], _ y: [String]) -> Double {
        guard !x.isEmpty, !y.isEmpty else { return 0 }
        var unused = y
        var total = 0.0
        for word in x {
            var bestIndex = -1
            var bestScore = 0.0
            for (index, other) in unused.enumerated() {
                let s = jaroWinkler(word, other)
                if s > bestScore { (bestIndex, bestScore) = (index, s) }
            }
            guard bestIndex >= 0, bestScore >= 0.85 else { continue }
            total += bestScore
            unused.remove(at: bestIndex)
        }
        let dice = 2 * total / Double(x.count + y.count)
        let overlap = total / Double(min(x.count, y.count))
        // One shared word of a one-word name is no evidence on its own ("Budi" and "Budi Santoso").
        guard min(x.count, y.count) > 1 || x.count == y.count else { return dice }
        return (dice + overlap) / 2
    }

    /// Jaro-Winkler similarity of two words, 0 to 1.
    static func jaroWinkler(_ s: String, _ t: String) -> Double {
        // A scan compares thousands of words a case: read in place, with the matched bytes as bits
        // (words of up to 64 bytes), it allocates nothing.
        let (a, b) = (s.utf8.span, t.utf8.span)
        return a.count <= 64 && b.count <= 64
            ? jaroWinkler(a, b, matched: BitFlags.self) : jaroWinkler(a, b, matched: [Bool].self)
    }

    private static func jaroWinkler<Flags: MatchedFlags>(
        _ a: Span<UInt8>,
        _ b: Span<UInt8>,
        matched: Flags.Type
    ) -> Double {
        if a.count == b.count, (0..<a.count).allSatisfy({ a[$0] == b[$0] }) { return 1 }
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        let window = max(0, max(a.count, b.count) / 2 - 1)
        var aMatched = Flags(count: a.count)
        var bMatched = Flags(count: b.count)
        var matches = 0
        for i in 0..<a.count {
            let low = max(0, i - window)
            let high = min(b.count - 1, i + window)
            guard low <= high else { continue }
            for j in low...high where !bMatched[j] && a[i] == b[j] {
                aMatched[i] = true
                bMatched[j] = true
                matches += 1
                break
            }
        }
        guard matches > 0 else { return 0 }
        var transpositions = 0
        var j = 0
        for i in 0..<a.count where aMatched[i] {
            while !bMatched[j] { j += 1 }
            if a[i] != b[j] { transpositions += 1 }
            j += 1
        }
        let m = Double(matches)
        let jaro = (m / Double(a.count) + m / Double(b.count) + (m - Double(transpositions) / 2) / m) / 3
        var prefix = 0
        while prefix < min(4, a.count, b.count), a[prefix] == b[prefix] { prefix += 1 }
        return jaro + Double(prefix) * 0.1 * (1 - jaro)
    }
}

/// Which bytes of a word Jaro-Winkler has matched.
private protocol MatchedFlags {
    init(count: Int)
    subscript(_ index: Int) -> Bool { get set }
}

/// Up to 64 bytes, as the bits of one integer.
private struct BitFlags: MatchedFlags {
    private var bits: UInt64 = 0
    init(count: Int) { precondition(count <= 64) }
    subscript(_ index: Int) -> Bool {
        get { bits & (1 << UInt64(index)) != 0 }
        set { bits = newValue ? bits | (1 << UInt64(index)) : bits & ~(1 << UInt64(index)) }
    }
}

extension [Bool]: MatchedFlags {
    fileprivate init(count: Int) { self.init(repeating: false, count: count) }
}
