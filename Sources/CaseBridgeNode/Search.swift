import CaseBridgeMatching
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import Foundation

/// Search on sealed data: the normalised words of every person (names, date of birth, document
/// number, phone, the case's reference) go into a blind index (see `Database.addPersonTerms`); a
/// query is normalised the same way and looked up word by word.
enum SearchTerms {
    /// Lower case, without diacritics (Vietnamese đ and the like included).
    static func fold(_ text: String) -> String {
        // Most text is plain ASCII: lower case is all it needs (Foundation's folding costs ~8 µs).
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        let special: [Character: String] = [
            "đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "ß": "ss",
            "æ": "ae", "Æ": "ae", "œ": "oe", "ı": "i",
        ]
        let replaced = text.map { special[$0] ?? String($0) }.joined()
        return replaced.folding(options: [.diacriticInsensitive, .caseInsensitive, .widthInsensitive], locale: nil)
    }

    /// The words of a name or a query, as far as a person is found by them (`PersonKey`'s bounds).
    static func words(_ text: String) -> [String] {
        PlainText.words(text, maxCharacters: PersonKey.maxNameCharacters, maxWords: PersonKey.maxNameWords)
            ?? fold(String(text.prefix(PersonKey.maxNameCharacters))).split { !$0.isLetter && !$0.isNumber }
            .prefix(PersonKey.maxNameWords).map(String.init)
    }

    /// The words of a name in Latin letters (ICU's transliteration: 王伟 → wang, wei), so that a name
    /// written in another script is found, and compared, by how it is spelt in Latin.
    static func latinWords(_ text: String) -> [String] { PersonKey.words(text) }

    /// The terms duplicate detection looks up the candidates for `person` by. A likely match always
    /// agrees on more than a name: the same document, the same phone, or a name word and a date of
    /// birth that agrees. A full date agrees with itself and with a year or month it begins with, so
    /// it looks up those born that day and those reported by year or month only ("born-vague"): not
    /// the hundreds born another day of the year, who cannot be likely (`Likeness.couldBeLikely`).
    static func lookupTerms(_ person: PersonTraits) -> [Term] {
        let born = person.dateOfBirth[...]
        let words = latinWords(of: person.names)
        var terms: [Term] = []
        if born.count == 10 {
            for word in words {
                terms.append(Term(.bornNamed, born, word))
                terms.append(Term(.bornVagueNamed, born.prefix(4), word))
                terms.append(Term(.bornVagueNamed, born.prefix(7), word))
            }
        } else if born.count >= 4 {
            // A year or a month: everyone born that year. Those born another month are few and are
            // ruled out before their names are compared.
            terms += words.map { Term(.bornNamed, born.prefix(4), $0) }
        }
        return terms + documentAndPhone(person)
    }

    /// The document and phone terms: alike in what a person is found by and what is looked up.
    private static func documentAndPhone(_ person: PersonTraits) -> [Term] {
        let document = PersonKey.document(person.document), phone = PersonKey.digits(person.phone)
        return (document.isEmpty ? [] : [Term(.document, document)])
            + (phone.isEmpty ? [] : [Term(.phone, phone)])
    }

    /// The words of the names a person is compared by, in Latin letters, each once.
    private static func latinWords(of names: [String]) -> [String] {
        var words: [String] = []
        for name in names.prefix(PersonKey.maxNames) { addOnce(latinWords(name), to: &words) }
        return words
    }

    private static func addOnce(_ words: [String], to list: inout [String]) {
        for word in words where !list.contains(word) { list.append(word) }
    }

    /// Everything one person can be found by. A term may come twice (a word of two names): its key,
    /// not its text, is what is kept, once (`TermKeys.callAsFunction(_:)`).
    static func terms(_ person: PersonTraits, reference: String) -> [Term] {
        var terms: [Term] = []
        var latinNames: [String] = []  // `latinWords(of:)`, gathered on the way: each name's words made once
        for name in person.names.prefix(PersonKey.maxNames) where !name.isEmpty {
            let words = words(name), latin = latinWords(name)
            terms += words.map { Term(.name, $0) }
            if latin != words { terms += latin.map { Term(.name, $0) } }
            terms.append(Term(.fullName, words.sorted().joined(separator: " ")))
            addOnce(latin, to: &latinNames)
        }
        let born = person.dateOfBirth[...]
        if !born.isEmpty { terms.append(Term(.dateOfBirth, born)) }
        // Duplicate detection finds persons by a word of the name with the year of birth (looked up
        // from a year or a month), and with the full date, or the year or month a report gives
        // instead ("born-vague", looked up from a full date): see `lookupTerms`.
        if born.count >= 4 {
            let exact: Term.Kind = born.count == 10 ? .bornNamed : .bornVagueNamed
            for word in latinNames {
                terms.append(Term(.bornNamed, born.prefix(4), word))
                terms.append(Term(exact, born, word))
            }
        }
        terms += documentAndPhone(person)
        if !reference.isEmpty { terms.append(Term(.reference, fold(reference).trimmingCharacters(in: .whitespaces))) }
        return terms
    }

    /// What a query may mean: each alternative is a set of terms a person must all have.
    static func alternatives(_ query: String) -> [[Term]] {
        let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
        var alternatives: [[Term]] = [[Term(.reference, fold(text))]]
        if Validation.isPartialDate(text) { alternatives.append([Term(.dateOfBirth, text)]) }
        let digits = PersonKey.digits(text), document = PersonKey.document(text)
        if digits.count >= 6 { alternatives.append([Term(.phone, digits)]) }
        if !document.isEmpty, !text.contains(" ") { alternatives.append([Term(.document, document)]) }
        let words = words(text)
        if !words.isEmpty { alternatives.append(words.map { Term(.name, $0) }) }
        let latin = latinWords(text)
        if !latin.isEmpty, latin != words { alternatives.append(latin.map { Term(.name, $0) }) }
        return alternatives
    }
}

/// One term of the blind index: its kind, and its text in parts (the kind's prefix, a body, and "|"
/// and a word when it pairs a date with a word). Its key is hashed from the parts
/// (`TermKeys.key(_:)`), without a string made for each of the dozens of terms of every person.
struct Term: Sendable {
    enum Kind: String, Sendable {
        case name = "name:", fullName = "fullname:", dateOfBirth = "dob:", document = "doc:", phone = "phone:"
        case reference = "ref:", bornNamed = "born-named:", bornVagueNamed = "born-vague-named:"

        /// Duplicate detection finds a person by these (`SearchTerms.lookupTerms` looks them up).
        var findsDuplicates: Bool { [.document, .phone, .bornNamed, .bornVagueNamed].contains(self) }
    }

    let kind: Kind
    let body: Substring
    let word: Substring

    init(_ kind: Kind, _ body: Substring, _ word: String = "") {
        self.kind = kind
        self.body = body
        self.word = word[...]
    }

    init(_ kind: Kind, _ body: String) { self.init(kind, body[...]) }

    /// Gives the text's parts in order; joined, they are `text`.
    func parts(_ part: (Substring) -> Void) {
        part(kind.rawValue[...])
        part(body)
        if !word.isEmpty {
            part("|")
            part(word)
        }
    }

    var text: String {
        var text = ""
        parts { text += $0 }
        return text
    }
}

extension TermKeys {
    /// The keys of `terms`, each once, in order of value (a term twice is one key, as it was one term).
    func callAsFunction(_ terms: [Term]) -> [Int64] { Self.once(terms.map { key($0.parts) }) }

    /// `keys` in order of value, each once.
    static func once(_ keys: [Int64]) -> [Int64] {
        var once: [Int64] = []
        once.reserveCapacity(keys.count)
        for key in keys.sorted() where key != once.last { once.append(key) }
        return once
    }
}

/// Duplicate detection's candidate rule, for measuring it against every pair (`casebridge-bench
/// duplicates`): a person is a candidate for another when a term looked up for the one is among the
/// terms the other is found by.
public enum DuplicateCandidates {
    public static func foundBy(_ person: PersonTraits) -> Set<String> {
        Set(SearchTerms.terms(person, reference: "").filter(\.kind.findsDuplicates).map(\.text))
    }

    public static func lookedUpBy(_ person: PersonTraits) -> Set<String> {
        Set(SearchTerms.lookupTerms(person).map(\.text))
    }
}

extension PersonTraits {
    /// What a report says of a person that tells whether two reports are of one person. Names past
    /// what `PersonKey` compares are left out: they would change nothing, only cost room where kept.
    init(_ person: Person) {
        self.init(
            names: ([person.fullName, person.nativeName] + person.otherNames).prefix(PersonKey.maxNames)
                .map { String($0.prefix(PersonKey.maxNameCharacters)) },
            dateOfBirth: person.dateOfBirth,
            document: person.travelDocument?.number ?? "",
            phone: person.phone
        )
    }
}

/// The terms persons are found by, worked out and keyed before the write that stores them. The store
/// has one writer: a request of 5,000 persons should cost its sender's worker lane the CPU, not every
/// peer waiting on the writer.
struct PersonIndex: Sendable {
    struct Entry: Sendable {
        let person: TraitsRecord.Person
        /// The keys of everything the person is found by (`SearchTerms.terms`), each once.
        let searchKeys: [Int64]
        /// Those of them duplicate detection finds the person by (`Term.Kind.findsDuplicates`).
        let matchKeys: [Int64]
    }
    let entries: [Entry]
    /// What duplicate detection compares for these persons (`TraitsRecord`), encoded before the write.
    let traits: [UInt8]

    init(_ persons: [Person], reference: String = "", keys: TermKeys) {
        entries = persons.map { person in
            let traits = PersonTraits(person)
            let terms = SearchTerms.terms(traits, reference: reference)
            let termKeys = terms.map { keys.key($0.parts) }  // each term hashed once, for both lists
            return Entry(
                person: TraitsRecord.Person(personRef: person.personRef, traits: traits),
                searchKeys: TermKeys.once(termKeys),
                matchKeys: TermKeys.once(zip(terms, termKeys).filter(\.0.kind.findsDuplicates).map(\.1))
            )
        }
        traits = TraitsRecord.encode(entries.map(\.person))
    }

    /// The persons a request names (at filing, on receipt, when a case is taken back).
    init(_ request: InterventionRequest, keys: TermKeys) {
        self.init(request.persons, reference: request.originReference, keys: keys)
    }

    /// The persons an update adds (information provided); none for any other change.
    init(_ update: CaseUpdate, keys: TermKeys) {
        guard case .informationProvided(let provided)? = update.change else {
            self.init([], keys: keys)
            return
        }
        self.init(provided.addedPersons, keys: keys)
    }

    /// Writes the search terms and, with `matching` (NCCT's node, the only one that looks for
    /// duplicates), the terms duplicate detection looks up by (indexed by term) and what it compares.
    func write(caseID: String, _ db: Database, matching: Bool) throws {
        try writeTerms(caseID: caseID, db, matching: matching)
        if matching { try db.addMatchTraits(traits, caseID: caseID) }
    }

    /// `write` without the traits, for a new case, whose row is inserted with them.
    func writeTerms(caseID: String, _ db: Database, matching: Bool) throws {
        for entry in entries {
            try db.addPersonTerms(
                search: entry.searchKeys,
                match: matching ? entry.matchKeys : [],
                caseID: caseID,
                personRef: entry.person.personRef
            )
        }
    }
}

extension CaseTracker {
    /// Records what an applied update adds to the indexes: its persons (`persons`, worked out before
    /// the write) and an attachment's count.
    static func index(_ update: CaseUpdate, _ persons: PersonIndex, _ db: Database, matching: Bool) throws {
        if case .attachment(let attachment)? = update.change {
            try db.recordAttachment(
                caseID: update.caseID,
                updateID: update.updateID,
                contentType: attachment.contentType,
                size: attachment.data.count
            )
        }
        try persons.write(caseID: update.caseID, db, matching: matching)
    }

    /// Builds the index once for what a database held before the index existed.
    func buildSearchIndexIfNeeded() async throws {
        let matchIndexFolder = self.matchIndexFolder
        guard
            try !store.read({
                try $0.searchIndexBuilt() && MatchIndex.runsPresent($0, folder: matchIndexFolder)
            })
        else { return }
        let matching = me.role == .ncct, keys = store.termKeys
        try await store.write { db in
            try db.clearSearchIndex()
            for caseID in try db.allCaseIDs() {
                guard let row = try db.caseRow(caseID) else { continue }
                let request = try ProtoCodec.decode(InterventionRequest.self, from: row.request)
                try PersonIndex(request, keys: keys).write(caseID: caseID, db, matching: matching)
                for entry in try db.history(caseID) where entry.isApplied && !entry.body.isEmpty {
                    let update = try ProtoCodec.decode(CaseUpdate.self, from: entry.body)
                    try Self.index(update, PersonIndex(update, keys: keys), db, matching: matching)
                }
            }
            try db.markSearchIndexBuilt()
        }
    }

    /// Staff search: persons matching every word of one meaning of the query, test cases left out.
    public func search(_ request: SearchRequest, by member: StaffMember) async throws -> [SearchHit] {
        let limit = request.limit == 0 ? 50 : Int(min(request.limit, 1_000))
        guard !request.query.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw RPCError(.invalidArgument, "query: empty")
        }
        let hits: [SearchHit] = try store.read { db in
            var found: [String] = []  // "case/ref", in order of discovery
            for alternative in SearchTerms.alternatives(request.query) {
                let matches = try db.searchPersons(allOf: alternative.map(\.text), limit: 10_000).map {
                    "\($0.caseID)/\($0.personRef)"
                }
                for match in matches.sorted() where !found.contains(match) { found.append(match) }
            }
            return try found.prefix(limit).compactMap { match -> SearchHit? in
                let parts = match.split(separator: "/", maxSplits: 1).map(String.init)
                guard let row = try db.caseRow(parts[0]), !row.test else { return nil }
                return try hit(row, personRef: parts[1], db)
            }
        }
        await audit(event: "search", actor: member.auditActor, subject: "", outcome: "ok", detail: "hits=\(hits.count)")
        try await recordAccess(Set(hits.compactMap { $0.summary?.caseID }).sorted(), what: "search result", by: member)
        return hits
    }

    /// Everyone a case names: the request's persons and those an answer added.
    static func persons(of row: CaseRow, _ db: Database) throws -> [Person] {
        var persons = try ProtoCodec.decode(InterventionRequest.self, from: row.request).persons
        for entry in try db.history(row.caseID) where entry.isApplied && !entry.body.isEmpty {
            if case .informationProvided(let provided)? = try ProtoCodec.decode(CaseUpdate.self, from: entry.body)
                .change
            {
                persons += provided.addedPersons
            }
        }
        return persons
    }

    private func hit(_ row: CaseRow, personRef: String, _ db: Database) throws -> SearchHit {
        var hit = SearchHit()
        hit.summary = try summary(row, db)
        hit.personRef = personRef
        hit.status =
            try db.persons(row.caseID).first { $0.personRef == personRef }.map { PersonStatus(rawValue: $0.status) }
            ?? .unspecified
        let persons = try Self.persons(of: row, db)
        if let person = persons.first(where: { $0.personRef == personRef }) {
            hit.fullName = person.fullName
            hit.dateOfBirth = person.dateOfBirth
        }
        return hit
    }
}
