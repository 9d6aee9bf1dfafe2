/// The blind search index: per person, one row holding keyed hashes (HMAC-SHA-256 under a key
/// derived from the node's data key) of their normalised terms. Rows are appended (cheap to write:
/// no random-key index on the write path); a search scans them for a term's hash (fast enough for
/// staff searching hundreds of thousands of persons). Finds exact terms only; says nothing about a
/// person to whoever has the file without the key.
extension Database {
    public func addSearchTerms(_ terms: Set<String>, caseID: String, personRef: String) throws(StoreError) {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        guard !terms.isEmpty else { return }
        let hashes = terms.sorted().flatMap { sealer.indexTerm($0) }
        try query(
            "INSERT INTO search_terms (case_id, person_ref, terms) VALUES (?, ?, ?)",
            [.text(caseID), .text(personRef), .blob(hashes)]
        )
    }

    /// The persons (case id, person ref) that have every one of `terms`.
    public func searchPersons(
        allOf terms: [String],
        limit: Int
    ) throws(StoreError) -> [(caseID: String, personRef: String)] {
        guard let sealer, let first = terms.first else { return [] }
        let wanted = terms.map { sealer.indexTerm($0) }
        var found: [(String, String)] = []
        for row in try query(
            "SELECT case_id, person_ref, terms FROM search_terms WHERE instr(terms, ?) > 0",
            [.blob(sealer.indexTerm(first))]
        ) {
            let blob = row.blob(2)
            let held = Set(stride(from: 0, to: blob.count - 7, by: 8).map { Array(blob[$0..<($0 + 8)]) })
            guard wanted.allSatisfy(held.contains) else { continue }
            found.append((row.text(0), row.text(1)))
            if found.count >= limit { break }
        }
        return found
    }

    /// Terms a person is looked up by for duplicate detection, one indexed row per term: a lookup
    /// costs the same however many persons the node holds. A term more than `maxPersonsPerTerm`
    /// persons have already finds no one, so it is not written again: a common value costs nothing.
    public func addMatchTerms(
        _ terms: Set<String>,
        caseID: String,
        personRef: String,
        maxPersonsPerTerm: Int
    ) throws(StoreError) {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        // One statement a term (the count and the insert): each new person has a dozen terms.
        let insert = """
            INSERT OR IGNORE INTO match_terms (term, case_id, person_ref)
            SELECT ?1, ?2, ?3 WHERE (SELECT COUNT(*) FROM (SELECT 1 FROM match_terms WHERE term = ?1 LIMIT ?4)) <= ?5
            """
        for term in terms {
            try query(
                insert,
                [
                    .blob(sealer.indexTerm(term)), .text(caseID), .text(personRef), .int(Int64(maxPersonsPerTerm) + 1),
                    .int(Int64(maxPersonsPerTerm)),
                ]
            )
        }
    }

    /// Adds persons to what duplicate detection compares for the case: `record` (opaque here) is
    /// appended to what the case holds, sealed under the case's key.
    public func addMatchTraits(_ record: [UInt8], caseID: String) throws(StoreError) {
        guard !record.isEmpty else { return }
        let place = RecordSealer.matchTraits(caseID)
        var held: [UInt8] = []
        if let row = try first("SELECT match_traits FROM cases WHERE case_id = ?", [.text(caseID)]), !row.isNull(0) {
            held = try opened(row.blob(0), case: caseID, at: place)
        }
        try query(
            "UPDATE cases SET match_traits = ? WHERE case_id = ?",
            [.blob(try sealed(held + record, case: caseID, at: place)), .text(caseID)]
        )
    }

    /// What duplicate detection compares for the case's persons, read with the case's state in one
    /// lookup: nil when there is nothing to compare (no such case, a test case, purged personal data,
    /// not NCCT's node), or when `statuses` is given and the case's status is not among them (its
    /// persons are then not even opened).
    public func matchTraits(_ caseID: String, whenStatusIn statuses: Set<Int32>? = nil) throws(StoreError) -> [UInt8]? {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        guard
            let row = try first(
                "SELECT status, test, match_traits, data_key FROM cases WHERE case_id = ?",
                [.text(caseID)]
            ),
            statuses?.contains(Int32(truncatingIfNeeded: row.int(0))) ?? true, row.int(1) == 0, !row.isNull(2),
            !row.isNull(3)
        else { return nil }
        return try sealer.open(
            row.blob(2),
            wrappedKey: row.blob(3),
            caseID: caseID,
            row: RecordSealer.matchTraits(caseID)
        )
    }

    /// Takes a case's persons out of both indexes (its personal data is purged).
    func removeSearchTerms(caseID: String) throws(StoreError) {
        // The match terms are among each person's search terms: deleted by their key, no scan.
        for row in try query("SELECT terms FROM search_terms WHERE case_id = ?", [.text(caseID)]) {
            let blob = row.blob(0)
            for start in stride(from: 0, to: blob.count - 7, by: 8) {
                try query(
                    "DELETE FROM match_terms WHERE term = ? AND case_id = ?",
                    [.blob(Array(blob[start..<(start + 8)])), .text(caseID)]
                )
            }
        }
        try query("DELETE FROM search_terms WHERE case_id = ?", [.text(caseID)])
    }

    /// For each query (a set of terms), the persons of other cases than `caseID` that have at least
    /// one of its terms: candidates for a closer look (duplicate detection). A term more than
    /// `maxPersonsPerTerm` persons have (a shelter's phone, a hotline's) says nothing about who someone
    /// is and finds no one. Each term reads at most `maxPersonsPerTerm` + 1 index entries.
    public func searchPersons(
        anyOfEach queries: [Set<String>],
        excludingCase caseID: String,
        maxPersonsPerTerm: Int
    ) throws(StoreError) -> [[(caseID: String, personRef: String)]] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        var personsByTerm: [String: [(caseID: String, personRef: String)]] = [:]
        for term in Set(queries.flatMap { $0 }) {
            let persons = try query(
                "SELECT case_id, person_ref FROM match_terms WHERE term = ? AND case_id != ? LIMIT ?",
                [.blob(sealer.indexTerm(term)), .text(caseID), .int(Int64(maxPersonsPerTerm) + 1)]
            ).map { (caseID: $0.text(0), personRef: $0.text(1)) }
            personsByTerm[term] = persons.count > maxPersonsPerTerm ? [] : persons
        }
        return queries.map { terms in
            var seen = Set<String>()
            return terms.sorted().flatMap { personsByTerm[$0] ?? [] }.filter {
                seen.insert("\($0.caseID)\u{0}\($0.personRef)").inserted
            }
        }
    }

    /// Whether the index holds the current kinds of terms (version 2 added names in Latin letters and
    /// the pairs of date of birth and name word duplicate detection looks up).
    public func searchIndexBuilt() throws(StoreError) -> Bool {
        try first("SELECT value FROM store_meta WHERE name = 'search-index'")?.text(0) == Self.searchIndexVersion
    }

    public func markSearchIndexBuilt() throws(StoreError) {
        try query(
            "INSERT OR REPLACE INTO store_meta (name, value) VALUES ('search-index', ?)",
            [.text(Self.searchIndexVersion)]
        )
    }

    /// Empties the index before it is built again with the current kinds of terms.
    public func clearSearchIndex() throws(StoreError) {
        try query("DELETE FROM search_terms")
        try query("DELETE FROM match_terms")
        try query("UPDATE cases SET match_traits = NULL WHERE match_traits IS NOT NULL")
    }

    static let searchIndexVersion = "4"

    /// Every case whose personal data is kept (for building the index once).
    public func allCaseIDs() throws(StoreError) -> [String] {
        try query("SELECT case_id FROM cases WHERE purged_at_ms IS NULL").map { $0.text(0) }
    }
}
