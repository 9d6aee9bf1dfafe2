@testable import CaseBridgeMatching
@testable import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
@testable import CaseBridgeStore
import CaseBridgeTLS
import Foundation
import TestSupport
import Testing

@Suite("Duplicate detection at NCCT")
struct DuplicateTests {
    static func person(
        _ ref: String,
        _ name: String,
        born: String = "",
        document: String = "",
        phone: String = "",
        native: String = ""
    ) -> Person {
        var person = Person()
        person.personRef = ref
        person.fullName = name
        person.nativeName = native
        person.nationality = "VN"
        person.dateOfBirth = born
        person.phone = phone
        if !document.isEmpty {
            var passport = TravelDocument()
            passport.number = document
            person.travelDocument = passport
        }
        return person
    }

    @Test("likeness: variants of one person match; namesakes born on another day with another passport do not")
    func likeness() {
        func score(_ a: PersonTraits, _ b: PersonTraits) -> Likeness { Likeness(PersonKey(a), PersonKey(b)) }
        let huong = PersonTraits(names: ["Nguyễn Thị Hương"], dateOfBirth: "1998-04-12", document: "C1234567")
        // Order, diacritics, a typo, a transliteration, a phone written two ways.
        #expect(score(huong, PersonTraits(names: ["Huong Thi Nguyen"], dateOfBirth: "1998-04-12")).isLikely)
        #expect(score(huong, PersonTraits(names: ["Nguyen Thi Houng"], dateOfBirth: "1998-04-12")).isLikely)
        #expect(score(huong, PersonTraits(names: ["Nguyen Thihuong"], document: "C 123-4567")).isLikely)
        #expect(
            score(
                PersonTraits(names: ["王伟"], dateOfBirth: "1985-03-03"),
                PersonTraits(names: ["Wang Wei"], dateOfBirth: "1985-03-03")
            ).isLikely
        )
        #expect(
            score(
                PersonTraits(names: ["Budi Santoso"], phone: "+62 812 3456 7890"),
                PersonTraits(names: ["Budi Santosa"], phone: "0812-3456-7890")
            ).agreeing == [.name, .phone]
        )
        // Namesakes: the same name, another date of birth and passport.
        let other = PersonTraits(names: ["Nguyen Thi Huong"], dateOfBirth: "1991-11-02", document: "C7654321")
        let namesake = score(huong, other)
        #expect(!namesake.isLikely)
        #expect(namesake.conflicting == [.dateOfBirth, .document])
        // A name alone is not enough: names repeat.
        #expect(!score(huong, PersonTraits(names: ["Nguyen Thi Huong"])).isLikely)
        #expect(!score(huong, PersonTraits(names: ["Tran Van Nam"], dateOfBirth: "1998-04-12")).isLikely)
    }

    @Test("Jaro-Winkler gives the published values, for words of up to 64 bytes and for longer ones")
    func jaroWinklerValues() {
        // Winkler's examples (1990), as every implementation is checked against them.
        let published: [(String, String, Double)] = [
            ("martha", "marhta", 0.9611), ("dwayne", "duane", 0.84), ("dixon", "dicksonx", 0.8133),
            ("huong", "huong", 1), ("huong", "", 0), ("abc", "xyz", 0),
        ]
        for (a, b, expected) in published {
            #expect(abs(Likeness.jaroWinkler(a, b) - expected) < 0.0001, "\(a) ~ \(b)")
            #expect(abs(Likeness.jaroWinkler(b, a) - expected) < 0.0001, "\(b) ~ \(a)")
        }
        // Past 64 bytes the matched bytes are kept another way; the value is the same formula's:
        // 69 of 70 bytes match, none transposed, four of the prefix agree.
        let long = String(repeating: "a", count: 70), other = String(repeating: "a", count: 69) + "b"
        func expected(_ matching: Double, of count: Double) -> Double {
            let jaro = (matching / count + matching / count + 1) / 3
            return jaro + 0.4 * (1 - jaro)
        }
        #expect(abs(Likeness.jaroWinkler(long, other) - expected(69, of: 70)) < 1e-12)
        let longest = (String(long.prefix(64)), String(other.suffix(64)))  // still kept as bits
        #expect(abs(Likeness.jaroWinkler(longest.0, longest.1) - expected(63, of: 64)) < 1e-12)
        #expect(Likeness.jaroWinkler(long, long) == 1)
    }

    @Test("the check before names never rules out a likely match, and rules out a namesake born another day")
    func checkBeforeNames() {
        let births = ["", "1998", "1998-04", "1998-04-12", "1998-04-13", "1991-11-02"]
        let documents = ["", "C1234567", "C7654321"]
        let phones = ["", "+84912345678", "+84900000000"]
        let names = [["Nguyen Thi Huong"], ["Huong Thi Nguyen"], ["Nguyen Thi Houng"], ["Tran Van Nam"], []]
        var people: [PersonTraits] = []
        for name in names {
            for born in births {
                for document in documents {
                    for phone in phones {
                        people.append(PersonTraits(names: name, dateOfBirth: born, document: document, phone: phone))
                    }
                }
            }
        }
        let keys = people.map(PersonKey.init), facts = people.map(PersonKey.withoutNames)
        var ruledOut = 0
        for a in keys.indices.prefix(90) {
            for b in keys.indices {
                let could = Likeness.couldBeLikely(keys[a], facts[b])
                #expect(could || !Likeness(keys[a], keys[b]).isLikely, "\(people[a]) ~ \(people[b])")
                if !could { ruledOut += 1 }
            }
        }
        #expect(ruledOut > 0)
        // The usual candidate found by year of birth and a name word: the same name, born another day.
        let huong = PersonKey(PersonTraits(names: ["Nguyen Thi Huong"], dateOfBirth: "1998-04-12"))
        let namesake = PersonTraits(names: ["Nguyen Thi Huong"], dateOfBirth: "1998-07-30")
        #expect(!Likeness.couldBeLikely(huong, PersonKey.withoutNames(namesake)))
    }

    @Test("the lookup finds every likely match, and by name and date only those whose date of birth agrees")
    func lookupByDate() {
        let births = ["", "1998", "1998-04", "1998-05", "1998-04-12", "1998-04-13", "1991-11-02"]
        let names = [["Nguyen Thi Huong"], ["Huong Thi Nguyen"], ["Nguyen Thi Houng"], ["Tran Van Nam"], []]
        var people: [PersonTraits] = []
        for name in names {
            for born in births {
                for document in ["", "C1234567", "C7654321"] {
                    for phone in ["", "+84912345678"] {
                        people.append(PersonTraits(names: name, dateOfBirth: born, document: document, phone: phone))
                    }
                }
            }
        }
        let found = people.map(DuplicateCandidates.foundBy)
        let lookups = people.map(DuplicateCandidates.lookedUpBy)
        let keys = people.map(PersonKey.init)
        var likely = 0
        for a in people.indices {
            for b in people.indices where a != b {
                let shared = lookups[a].intersection(found[b])
                if Likeness(keys[a], keys[b]).isLikely {
                    likely += 1
                    #expect(!shared.isEmpty, "\(people[a]) misses \(people[b])")
                }
                // Found by a name and a full date: the dates agree, one beginning the other. A year or
                // a month looks up the whole year.
                if shared.contains(where: { $0.hasPrefix("born") }) {
                    let (x, y) = (keys[a].dateOfBirth, keys[b].dateOfBirth)
                    let agree = x.count == 10 ? x.hasPrefix(y) || y.hasPrefix(x) : x.prefix(4) == y.prefix(4)
                    #expect(agree, "\(people[a]) finds \(people[b])")
                }
            }
        }
        #expect(likely > 100)
        // The usual namesake: the same name, born another day of the same year, is not looked up at all.
        let huong = DuplicateCandidates.lookedUpBy(PersonTraits(names: ["Nguyen Thi Huong"], dateOfBirth: "1998-04-12"))
        let namesake = PersonTraits(names: ["Nguyen Thi Huong"], dateOfBirth: "1998-07-30")
        #expect(huong.isDisjoint(with: DuplicateCandidates.foundBy(namesake)))
    }

    /// The terms persons are kept under, and looked up by. Rows hold the terms' keys, so a change to
    /// a term's text would lose every person filed before it: these are the texts the index has
    /// always written (the date of birth with each word, the document and phone as compared).
    @Test("a person's terms and their keys are those every database already holds")
    func termsAsKept() {
        var huong = Self.person(
            "p1",
            "Nguyen Thi Huong",
            born: "1998-04-12",
            document: "c 1234-567",
            phone: "+84 912 345 678",
            native: "Nguyễn Thị Hương"
        )
        huong.otherNames = ["Huong"]
        let kept: [(Person, reference: String, found: [String], lookedUp: [String])] = [
            (
                huong, " ID-Ref-1 ",
                [
                    "name:nguyen", "name:thi", "name:huong", "fullname:huong nguyen thi", "fullname:huong",
                    "dob:1998-04-12", "born-named:1998|nguyen", "born-named:1998|thi", "born-named:1998|huong",
                    "born-named:1998-04-12|nguyen", "born-named:1998-04-12|thi", "born-named:1998-04-12|huong",
                    "doc:C1234567", "phone:84912345678", "ref:id-ref-1",
                ],
                [
                    "born-named:1998-04-12|nguyen", "born-named:1998-04-12|thi", "born-named:1998-04-12|huong",
                    "born-vague-named:1998|nguyen", "born-vague-named:1998|thi", "born-vague-named:1998|huong",
                    "born-vague-named:1998-04|nguyen", "born-vague-named:1998-04|thi",
                    "born-vague-named:1998-04|huong", "doc:C1234567", "phone:84912345678",
                ]
            ),
            (
                Self.person("p2", "王伟", born: "1990-07"), "",
                [
                    "name:王伟", "name:wang", "name:wei", "fullname:王伟", "dob:1990-07", "born-named:1990|wang",
                    "born-named:1990|wei", "born-vague-named:1990-07|wang", "born-vague-named:1990-07|wei",
                ],
                ["born-named:1990|wang", "born-named:1990|wei"]
            ),
            (
                Self.person("p3", "Đặng Văn Nam", born: "1985", phone: "012-345"), "Đà",
                [
                    "name:dang", "name:van", "name:nam", "fullname:dang nam van", "dob:1985", "born-named:1985|dang",
                    "born-named:1985|van", "born-named:1985|nam", "born-vague-named:1985|dang",
                    "born-vague-named:1985|van", "born-vague-named:1985|nam", "phone:012345", "ref:da",
                ],
                ["born-named:1985|dang", "born-named:1985|van", "born-named:1985|nam", "phone:012345"]
            ),
            (Self.person("p4", ""), "", [], []),
        ]
        let keys = TermKeys(KeyedHash(key: Array(repeating: 7, count: 32)))
        let matchKinds = ["doc:", "phone:", "born-named:", "born-vague-named:"]
        for (person, reference, found, lookedUp) in kept {
            let traits = PersonTraits(person)
            #expect(Set(SearchTerms.terms(traits, reference: reference).map(\.text)) == Set(found))
            #expect(DuplicateCandidates.lookedUpBy(traits) == Set(lookedUp))
            // What the writer keeps: each term's key once, in order, hashed from its parts as from its
            // text; those duplicate detection finds the person by apart.
            let entry = PersonIndex([person], reference: reference, keys: keys).entries[0]
            #expect(entry.searchKeys == keys(found).sorted())
            let findsDuplicates = found.filter { term in matchKinds.contains { term.hasPrefix($0) } }
            #expect(entry.matchKeys == keys(findsDuplicates).sorted())
            #expect(keys(SearchTerms.lookupTerms(traits)) == keys(lookedUp).sorted())
        }
    }

    @Test("a name of thousands of words is indexed and compared by its first words, as a real name is")
    func boundedNames() {
        let padding = String(repeating: " x", count: 5_000)
        let hostile = PersonTraits(
            names: Array(repeating: "Nguyen Thi Huong" + padding, count: 50),
            dateOfBirth: "1998-04-12"
        )
        let key = PersonKey(hostile)
        #expect(key.names.count == PersonKey.maxNames)
        #expect(key.names.allSatisfy { $0.count <= PersonKey.maxNameWords })
        #expect(key.names[0].prefix(3) == ["nguyen", "thi", "huong"])

        var person = Person()
        person.personRef = "p1"
        person.fullName = "Nguyen Thi Huong" + padding
        person.otherNames = Array(repeating: String(repeating: "y", count: 100_000), count: 50)
        person.dateOfBirth = "1998-04-12"
        let terms = SearchTerms.terms(PersonTraits(person), reference: "").map(\.text)
        #expect(terms.contains("name:huong"))
        #expect(terms.count < 100)
        #expect(terms.allSatisfy { $0.utf8.count <= 200 })
    }

    @Test("two embassies report the same persons: NCCT lists likely matches, and each embassy learns only of a link")
    func acrossEmbassies() async throws {
        // The index writes its terms out as runs every few persons (and merges them): read from files.
        let federation = try TestFederation(
            nodes: ["ncct", "embassy-id", "embassy-cn"],
            limits: ["duplicate_index_memory_terms": 3]
        )
        for node in federation.nodes { try await federation.start(node) }
        let ncct = federation.console("ncct")
        let indonesia = federation.console("embassy-id")
        let china = federation.console("embassy-cn")
        defer { [ncct, indonesia, china].forEach { $0.close() } }

        var first = Make.request(persons: 0)
        first.originReference = "ID-DUP-1"
        first.persons = [
            Self.person("P1", "Nguyễn Thị Hương", born: "1998-04-12", phone: "+84912345678"),
            Self.person("P2", "Wang Wei", born: "1985-03-03"),
            Self.person("P3", "Trần Văn Nam", born: "1990-01-01", document: "B1111111"),
        ]
        let firstCase = try await indonesia.unary(Console.submit, first).caseID
        var second = Make.request(persons: 0)
        second.originReference = "CN-DUP-1"
        second.persons = [
            Self.person("A", "Huong Thi Nguyen", born: "1998-04-12"),
            Self.person("B", "", born: "1985-03-03", native: "王伟"),
            // A namesake: born another year, another passport.
            Self.person("C", "Tran Van Nam", born: "1992-07-07", document: "B7654321"),
        ]
        let secondCase = try await china.unary(Console.submit, second).caseID

        var open = ListMatchesRequest()
        open.caseID = secondCase
        var page = MatchPage()
        #expect(
            try await federation.eventually {
                page = try await ncct.unary(Console.listMatches, open)
                return page.total == 2
            },
            "\(page.matches.map { "\($0.personRef)~\($0.otherPersonRef)" })"
        )
        let pairs = Set(page.matches.map { "\($0.caseID)/\($0.personRef)~\($0.otherCaseID)/\($0.otherPersonRef)" })
        #expect(pairs == ["\(secondCase)/A~\(firstCase)/P1", "\(secondCase)/B~\(firstCase)/P2"])
        let huong = try #require(page.matches.first { $0.personRef == "A" })
        #expect(huong.agreeingFields == ["name", "date_of_birth"])
        #expect(huong.score >= 700 && huong.state == .open)
        #expect(huong.person?.fullName == "Huong Thi Nguyen" && huong.otherPerson?.fullName == "Nguyễn Thị Hương")
        #expect(huong.otherCaseSummary?.requestingNode == "embassy-id")

        // Embassies have no such list; NCCT's auditors may read it but not decide.
        await #expect(throws: RPCError.self) { try await indonesia.unary(Console.listMatches, open) }
        var decide = DecideMatchRequest()
        decide.matchID = huong.matchID
        decide.decision = .confirmed
        let confirmed = try await ncct.unary(Console.decideMatch, decide)
        #expect(confirmed.state == .confirmed && !confirmed.decidedBy.isEmpty)
        do {
            _ = try await ncct.unary(Console.decideMatch, decide)
            Issue.record("a match was decided twice")
        } catch let error as RPCError {
            #expect(error.code == .failedPrecondition)
        }
        let wang = try #require(page.matches.first { $0.personRef == "B" })
        decide.matchID = wang.matchID
        decide.decision = .dismissed
        #expect(try await ncct.unary(Console.decideMatch, decide).state == .dismissed)

        // Each embassy hears, on its own case, that one of its persons was linked: nothing of the other.
        func notes(_ console: RPCChannel, _ caseID: String) async throws -> [String] {
            var lookup = GetCaseRequest()
            lookup.caseID = caseID
            return try await console.unary(Console.getCase, lookup).history.compactMap {
                if case .note(let note)? = $0.change { note.text } else { nil }
            }
        }
        var heard: [String] = []
        #expect(
            try await federation.eventually {
                heard = try await notes(indonesia, firstCase) + notes(china, secondCase)
                return heard.count == 2
            }
        )
        #expect(heard.contains { $0.contains("linked person P1 of this case") })
        #expect(heard.contains { $0.contains("linked person A of this case") })
        #expect(!heard.joined().contains(firstCase) && !heard.joined().contains(secondCase))
        #expect(!heard.joined().contains("embassy-"))

        // The decisions are on the record, with a name; the command line lists them.
        #expect(
            try federation.sql("ncct", "SELECT event FROM audit WHERE event LIKE 'duplicate.%' ORDER BY seq") == [
                "duplicate.confirmed", "duplicate.dismissed",
            ]
        )
        let listed = try federation.cli(["duplicates", "--all"], node: "ncct")
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("confirmed by") && listed.stdout.contains("Matches 1–2 of 2"))
        let waiting = try federation.cli(["duplicates"], node: "ncct")
        #expect(waiting.stdout.contains("No likely duplicates waiting"))
        let atEmbassy = try federation.cli(["duplicates"], node: "embassy-id")
        #expect(atEmbassy.status != 0 && atEmbassy.stderr.contains("runs at NCCT's node"))
        federation.stopAll()
    }

    @Test("the traits kept per case read back as written, appended records too; cut or bent bytes are refused")
    func traitsRecord() throws {
        let first = [
            TraitsRecord.Person(
                personRef: "P1",
                traits: PersonTraits(
                    names: ["Nguyễn Thị Hương", "", "Huong"],
                    dateOfBirth: "1998-04",
                    document: "B1111111",
                    phone: "+84912345678"
                )
            ),
            TraitsRecord.Person(
                personRef: "P2",
                traits: PersonTraits(names: ["王伟" + String(repeating: "x", count: 300)])
            ),
        ]
        let added = [TraitsRecord.Person(personRef: "P3", traits: PersonTraits(names: []))]
        let bytes = TraitsRecord.encode(first)
        #expect(try TraitsRecord.decode(bytes) == first)
        #expect(try TraitsRecord.decode(bytes + TraitsRecord.encode(added)) == first + added)
        #expect(try TraitsRecord.decode([]) == [])
        // Cut anywhere but between persons, the bytes are refused.
        let boundary = TraitsRecord.encode([first[0]]).count
        for cut in [1, 5, boundary - 1, boundary + 1, bytes.count - 1] {
            #expect(throws: ProtoError.self) { try TraitsRecord.decode(Array(bytes.prefix(cut))) }
        }
        // A field a later version adds to a person is skipped; a field of another wire type is refused.
        var later = TraitsRecord.encode([added[0]])
        later[1] += 4
        later += [0x32, 2, 0x41, 0x42]  // field 6, two bytes
        #expect(try TraitsRecord.decode(later) == added)
        #expect(throws: ProtoError.self) { try TraitsRecord.decode([0x0B]) }
        // A length far past the end (2^34) is refused, not allocated.
        #expect(throws: ProtoError.self) { try TraitsRecord.decode([0x0A, 0x80, 0x80, 0x80, 0x80, 0x40]) }
    }

    @Test("NCCT killed while its index writes and merges runs: after a restart every person filed is still found")
    func killedWhileWritingRuns() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"], limits: ["duplicate_index_memory_terms": 3])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        // Forty persons, each with a document of their own; NCCT is killed while they arrive.
        func person(_ i: Int) -> Person {
            Self.person(
                "P",
                "Sokha Chan\(String(repeating: "a", count: i % 7)) Meas",
                born: "19\(50 + i)-03-0\(1 + i % 9)",
                document: "K\(100_000 + i)"
            )
        }
        var filed: [String] = []
        for i in 0..<40 {
            var request = Make.request(persons: 0)
            request.persons = [person(i)]
            filed.append(try await embassy.unary(Console.submit, request).caseID)
            if i == 25 { federation.kill("ncct") }
            if i == 30 { try await federation.start("ncct") }
        }
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["40"]
            }
        )
        // Each of them reported again: every one is found in the index, wherever it was when killed.
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        for i in [0, 12, 24, 25, 26, 39] {
            var again = Make.request(persons: 0)
            again.persons = [person(i)]
            again.persons[0].personRef = "Q"
            let caseID = try await embassy.unary(Console.submit, again).caseID
            var open = ListMatchesRequest()
            open.caseID = caseID
            var found: [String] = []
            #expect(
                try await federation.eventually {
                    found = try await ncct.unary(Console.listMatches, open).matches.map {
                        "\($0.personRef)~\($0.otherCaseID)/\($0.otherPersonRef)"
                    }
                    return !found.isEmpty
                },
                "person \(i)"
            )
            #expect(found == ["Q~\(filed[i])/P"], "person \(i)")
        }
        // Only listed runs are on disk (a run cut short by the kill was deleted).
        federation.stop("ncct")
        let runs = try FileManager.default.contentsOfDirectory(
            atPath: federation.folder.appendingPathComponent("ncct/data/match-index").path
        )
        #expect(!runs.isEmpty)
        #expect(try federation.sql("ncct", "SELECT file FROM match_runs ORDER BY file") == runs.sorted())
    }

    @Test("a person added to a case later is compared too, and so are the cases of a database from before")
    func addedLaterAndUpgraded() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"], limits: ["duplicate_index_memory_terms": 3])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }

        var first = Make.request(persons: 0)
        // P1's report gives only a year of birth, which a full date finds apart from those born another day.
        first.persons = [Self.person("P1", "Nguyễn Thị Hương", born: "1998", phone: "+84912345678")]
        let firstCase = try await embassy.unary(Console.submit, first).caseID
        var provided = InformationProvided()
        provided.text = "her brother was taken with her"
        provided.addedPersons = [Self.person("P2", "Trần Văn Nam", born: "1990-01-01", document: "B1111111")]
        _ = try await embassy.unary(Console.applyChange, Make.update(firstCase, .informationProvided(provided)))
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT COUNT(*) FROM persons WHERE case_id = '\(firstCase)'") == ["2"]
            }
        )

        func matches(of caseID: String) async throws -> [String] {
            let ncct = federation.console("ncct")
            defer { ncct.close() }
            var open = ListMatchesRequest()
            open.caseID = caseID
            return try await ncct.unary(Console.listMatches, open).matches.map {
                "\($0.personRef)~\($0.otherCaseID)/\($0.otherPersonRef)"
            }
        }
        var second = Make.request(persons: 0)
        second.persons = [Self.person("B", "Tran Van Nam", born: "1990", document: "B-1111111")]
        let secondCase = try await embassy.unary(Console.submit, second).caseID
        var found: [String] = []
        #expect(
            try await federation.eventually {
                found = try await matches(of: secondCase)
                return !found.isEmpty
            }
        )
        #expect(found == ["B~\(firstCase)/P2"])

        // A database from before the traits were kept: NCCT rebuilds them at start, so the persons
        // filed before are still compared with every case that arrives after.
        federation.stop("ncct")
        let downgrade = try run(
            "python3",
            [
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                    + "c.execute('UPDATE cases SET match_traits = NULL'); "
                    + "c.execute(\"UPDATE store_meta SET value = '3' WHERE name = 'search-index'\"); c.commit()",
                federation.database("ncct"),
            ]
        )
        #expect(downgrade.status == 0, "\(downgrade.stderr)")
        try await federation.start("ncct")
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE match_traits IS NULL") == ["0"])
        var third = Make.request(persons: 0)
        third.persons = [Self.person("C", "Huong Thi Nguyen", born: "1998-04-12")]
        let thirdCase = try await embassy.unary(Console.submit, third).caseID
        #expect(
            try await federation.eventually {
                found = try await matches(of: thirdCase)
                return !found.isEmpty
            }
        )
        #expect(found == ["C~\(firstCase)/P1"])

        // A database restored where the duplicate index's files are not: NCCT builds it again at start.
        federation.stop("ncct")
        let index = federation.folder.appendingPathComponent("ncct/data/match-index")
        #expect(try FileManager.default.contentsOfDirectory(atPath: index.path).count > 1)
        try FileManager.default.removeItem(at: index)
        try await federation.start("ncct")
        var fourth = Make.request(persons: 0)
        fourth.persons = [Self.person("D", "Nam Van Tran", born: "1990-01-01", document: "B1111111")]
        let fourthCase = try await embassy.unary(Console.submit, fourth).caseID
        #expect(
            try await federation.eventually {
                found = try await matches(of: fourthCase)
                return found.count == 2
            }
        )
        #expect(found.sorted() == ["D~\(firstCase)/P2", "D~\(secondCase)/B"].sorted())
        // Only NCCT compares persons: the embassy keeps no traits.
        #expect(try federation.sql("embassy-id", "SELECT COUNT(*) FROM cases WHERE match_traits IS NOT NULL") == ["0"])
        federation.stopAll()
    }

    @Test("a candidate kept is not read again; past the limit all are forgotten; one forgotten is read again")
    func comparedCasesKept() throws {
        var compared = CaseTracker.ComparedCases(maxCases: 2)
        var reads: [String] = []
        let key = PersonKey(PersonTraits(names: ["Nguyen Thi Huong"], dateOfBirth: "1998-04-12"))
        func compare(_ caseID: String) throws -> PersonKey? {
            try compared.key(of: MatchIndex.Posting(caseID: caseID, personRef: "P1"), ifCouldBeLike: key) {
                reads.append(caseID)
                let huong = PersonTraits(names: ["Huong Nguyen"], dateOfBirth: "1998-04-12")
                return [TraitsRecord.Person(personRef: "P1", traits: huong)]
            }
        }
        for caseID in ["a", "b", "a", "b"] { #expect(try compare(caseID)?.names == [["huong", "nguyen"]]) }
        #expect(reads == ["a", "b"])
        _ = try compare("c")  // a third case: the two kept are forgotten
        _ = try compare("a")
        _ = try compare("c")
        #expect(reads == ["a", "b", "c", "a"])
        compared.forget("c")
        _ = try compare("c")
        #expect(reads == ["a", "b", "c", "a", "c"])
    }

    @Test("a case compared before is compared as it is now: with the persons added since, and not once closed")
    func comparedAsItIsNow() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        defer { [embassy, ncct].forEach { $0.close() } }
        func submit(_ persons: [Person]) async throws -> String {
            var request = Make.request(persons: 0)
            request.persons = persons
            return try await embassy.unary(Console.submit, request).caseID
        }
        // Waits for the scan to have compared the case (its matches are written together). Seen from
        // the case: two cases the scan reads at once are recorded from the first one's side.
        func matches(of caseID: String) async throws -> [String] {
            var open = ListMatchesRequest()
            open.caseID = caseID
            var found: [String] = []
            _ = try await federation.eventually {
                found = try await ncct.unary(Console.listMatches, open).matches.map {
                    $0.caseID == caseID
                        ? "\($0.personRef)~\($0.otherCaseID)/\($0.otherPersonRef)"
                        : "\($0.otherPersonRef)~\($0.caseID)/\($0.personRef)"
                }
                return !found.isEmpty
            }
            return found.sorted()
        }

        let huong = Self.person("X", "Nguyễn Thị Hương", born: "1998-04-12", phone: "+84912345678")
        let first = try await submit([huong])
        let second = try await submit([Self.person("X2", "Nguyen Thi Huong", born: "1998-04-12")])
        #expect(try await matches(of: second) == ["X2~\(first)/X"])

        // The first case, compared once already, gains a person.
        var provided = InformationProvided()
        provided.addedPersons = [Self.person("Y", "Trần Văn Nam", born: "1990-01-01", document: "B1111111")]
        _ = try await embassy.unary(Console.applyChange, Make.update(first, .informationProvided(provided)))
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT COUNT(*) FROM persons WHERE case_id = '\(first)'") == ["2"]
            }
        )
        let third = try await submit([Self.person("Y2", "Tran Van Nam", born: "1990-01-01", document: "B1111111")])
        #expect(try await matches(of: third) == ["Y2~\(first)/Y"])

        // Then it is closed: its persons are no longer anyone's likely match.
        _ = try await ncct.unary(Console.applyChange, Make.status(first, .enteredInError))
        let fourth = try await submit([Self.person("X3", "Huong Nguyen Thi", born: "1998-04-12")])
        #expect(try await matches(of: fourth) == ["X3~\(second)/X2"])
        federation.stopAll()
    }
}
