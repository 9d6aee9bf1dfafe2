import ArgumentParser
import CaseBridgeMatching
import CaseBridgeNode
import Foundation

/// Precision and recall of duplicate detection on a generated set: persons in open cases, then new
/// reports that are the same persons written differently (order, diacritics, script, typos, missing
/// fields), unrelated persons, and namesakes (same name, other birth date and document).
struct DuplicateSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duplicates",
        abstract: "Precision and recall of duplicate detection on a generated, seeded test set."
    )
    @Option var open = 3_000
    @Option var same = 400
    @Option var unrelated = 400
    @Option var namesakes = 200
    @Option var seed: UInt64 = 20_261_206

    func run() throws {
        var random = SeededRandom(seed)
        let base = (0..<open).map { _ in Generated.person(&random) }
        var reports: [(traits: PersonTraits, truth: Int?)] = []
        for _ in 0..<same {
            let index = Int.random(in: 0..<base.count, using: &random)
            reports.append((Generated.variant(of: base[index], &random), index))
        }
        for _ in 0..<unrelated { reports.append((Generated.person(&random).traits, nil)) }
        for _ in 0..<namesakes {
            let index = Int.random(in: 0..<base.count, using: &random)
            reports.append((Generated.namesake(of: base[index], &random), nil))
        }
        // The node's own candidate rule (the blind index's terms), worked out before the comparisons are timed.
        let foundBy = base.map { DuplicateCandidates.foundBy($0.traits) }
        let isCandidate = reports.map { report in
            let lookup = DuplicateCandidates.lookedUpBy(report.traits)
            return foundBy.map { !lookup.isDisjoint(with: $0) }
        }
        let started = ContinuousClock.now
        let baseKeys = base.map { PersonKey($0.traits) }
        let reportKeys = reports.map { PersonKey($0.traits) }
        var scored: [(score: Double, candidate: Bool, truth: Bool)] = []
        var namesakesFlagged = 0
        var candidates = 0  // pairs the index finds: what the node reads and compares
        let firstNamesake = same + unrelated
        for (number, (report, key)) in zip(reports, reportKeys).enumerated() {
            for (index, other) in baseKeys.enumerated() {
                let truth = report.truth == index
                let candidate = isCandidate[number][index]
                if candidate { candidates += 1 }
                let likeness = Likeness(key, other)
                if number >= firstNamesake, likeness.isLikely, candidate { namesakesFlagged += 1 }
                // SHOW_MISSES=1: the true pairs scored below the threshold, for tuning.
                if truth, !likeness.isLikely, ProcessInfo.processInfo.environment["SHOW_MISSES"] != nil {
                    let line = "miss \(likeness.score): \(report.traits) ~ \(base[index].traits)\n"
                    FileHandle.standardError.write(Data(line.utf8))
                }
                // Pairs nothing links (no candidate, score 0) and that are not true pairs count only as negatives.
                if truth || likeness.score > 0 { scored.append((likeness.score, candidate, truth)) }
            }
        }
        let elapsed = ContinuousClock.now - started
        let comparisons = reports.count * base.count
        var rows: [[String: Any]] = []
        for threshold in [0.5, 0.6, 0.7, 0.8] {
            for throughIndex in [false, true] {
                let flagged = scored.filter { $0.score >= threshold && (!throughIndex || $0.candidate) }
                let truePositives = flagged.filter(\.truth).count
                let row: [String: Any] = [
                    "threshold": threshold, "through_index": throughIndex,
                    "precision": Double(truePositives) / Double(max(1, flagged.count)),
                    "recall": Double(truePositives) / Double(max(1, same)),
                    "flagged": flagged.count, "true_positives": truePositives,
                ]
                rows.append(row)
            }
        }
        let result: [String: Any] = [
            "workload": "duplicates", "open_persons": open, "same": same, "unrelated": unrelated,
            "namesakes": namesakes, "namesakes_flagged": namesakesFlagged, "seed": seed, "comparisons": comparisons,
            "candidates": candidates,
            "us_per_comparison": elapsed.seconds * 1e6 / Double(comparisons), "by_threshold": rows,
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// A small deterministic generator (SplitMix64), so the set is the same on every machine.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Generated {
    struct Person {
        var words: [String]  // as the first report writes them
        var latin: [String]  // the same name in Latin letters (for a variant in another script)
        var traits: PersonTraits
    }

    static let vietnamese = (
        family: ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Ngô"],
        middle: ["Thị", "Văn", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quốc"],
        given: ["Hương", "Lan", "Anh", "Dũng", "Hùng", "Nam", "Phương", "Thảo", "Tuấn", "Linh", "Đào", "Hạnh", "Sơn"]
    )
    static let chinese: (family: [(String, String)], given: [(String, String)]) = (
        [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("黄", "Huang")],
        [("伟", "Wei"), ("芳", "Fang"), ("娜", "Na"), ("敏", "Min"), ("静", "Jing"), ("强", "Qiang"), ("磊", "Lei")]
    )
    static let indonesian = (
        given: ["Budi", "Siti", "Agus", "Dewi", "Sri", "Rina", "Andi", "Putri", "Eko", "Wahyu", "Yusuf", "Indah"],
        family: ["Santoso", "Wijaya", "Saputra", "Hidayat", "Lestari", "Pratama", "Kurniawan", "Setiawan"]
    )

    static func pick<T>(_ options: [T], _ random: inout SeededRandom) -> T {
        options[Int.random(in: 0..<options.count, using: &random)]
    }

    static func chance(_ p: Double, _ random: inout SeededRandom) -> Bool {
        Double.random(in: 0..<1, using: &random) < p
    }

    static func person(_ random: inout SeededRandom) -> Person {
        var words: [String]
        var latin: [String]
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            words = [
                pick(vietnamese.family, &random), pick(vietnamese.middle, &random), pick(vietnamese.given, &random),
            ]
            latin = words
        case 1:
            let family = pick(chinese.family, &random)
            let given = (0..<Int.random(in: 1...2, using: &random)).map { _ in pick(chinese.given, &random) }
            words = [family.0 + given.map(\.0).joined()]
            latin = [family.1, given.map(\.1).joined()]
        default:
            words = [pick(indonesian.given, &random)]
            if chance(0.7, &random) { words.append(pick(indonesian.family, &random)) }
            latin = words
        }
        let year = Int.random(in: 1970...2006, using: &random)
        let born: String =
            switch Double.random(in: 0..<1, using: &random) {
            case ..<0.85:
                String(
                    format: "%04d-%02d-%02d",
                    year,
                    Int.random(in: 1...12, using: &random),
                    Int.random(in: 1...28, using: &random)
                )
            case ..<0.95: String(year)
            default: ""
            }
        let document = chance(0.6, &random) ? "C\(Int.random(in: 1_000_000...9_999_999, using: &random))" : ""
        let phone = chance(0.5, &random) ? "+84\(Int.random(in: 900_000_000...999_999_999, using: &random))" : ""
        return Person(
            words: words,
            latin: latin,
            traits: PersonTraits(
                names: [words.joined(separator: " ")],
                dateOfBirth: born,
                document: document,
                phone: phone
            )
        )
    }

    /// The same person as another agency writes them.
    static func variant(of person: Person, _ random: inout SeededRandom) -> PersonTraits {
        var words = chance(0.5, &random) ? person.latin : person.words
        if chance(0.5, &random) { words = words.map(stripped) }
        if words.count > 2, chance(0.15, &random) { words.remove(at: 1) }
        if chance(0.3, &random) { words.reverse() }
        if chance(0.3, &random), let index = words.indices.randomElement(using: &random) {
            words[index] = typo(words[index], &random)
        }
        var traits = person.traits
        traits.names = [words.joined(separator: " ")]
        switch Double.random(in: 0..<1, using: &random) {
        case ..<0.15: traits.dateOfBirth = ""
        case ..<0.25: traits.dateOfBirth = String(traits.dateOfBirth.prefix(4))
        default: break
        }
        if chance(0.5, &random) { traits.document = "" }
        if chance(0.4, &random) { traits.phone = "" }
        return traits
    }

    /// Another person with the same name: born another day, holding another document.
    static func namesake(of person: Person, _ random: inout SeededRandom) -> PersonTraits {
        var traits = person.traits
        traits.dateOfBirth = String(format: "%04d-%02d-%02d", Int.random(in: 1970...2006, using: &random), 6, 15)
        traits.document = "C\(Int.random(in: 1_000_000...9_999_999, using: &random))"
        traits.phone = ""
        return traits
    }

    static func stripped(_ word: String) -> String {
        String(
            word.replacingOccurrences(of: "đ", with: "d").replacingOccurrences(of: "Đ", with: "D")
                .decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                    $0.properties.generalCategory != .nonspacingMark
                }
                .map(Character.init)
        )
    }

    /// One slip of the keyboard: a letter changed, dropped or swapped with the next.
    static func typo(_ word: String, _ random: inout SeededRandom) -> String {
        var letters = Array(word)
        guard letters.count > 3 else { return word }
        let at = Int.random(in: 1..<(letters.count - 1), using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: letters[at] = pick(Array("aeiouhnt"), &random)
        case 1: letters.remove(at: at)
        default: letters.swapAt(at, at + 1)
        }
        return String(letters)
    }
}
