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

    /// For each query (a set of terms), the persons of other cases than `caseID` that have at least
    /// one of its terms: candidates for a closer look (duplicate detection). A term more than
    /// `maxPersonsPerTerm` persons have (a shelter's phone, a hotline's) says nothing about who someone
    /// is and finds no one. One pass over the index for all the queries.
    public func searchPersons(
        anyOfEach queries: [Set<String>],
        excludingCase caseID: String,
        maxPersonsPerTerm: Int
    ) throws(StoreError) -> [[(caseID: String, personRef: String)]] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        var termIDs: [[UInt8]: Int] = [:]  // hash → term number
        var askedBy: [[Int]] = []  // term number → the queries that have it
        for (query, terms) in queries.enumerated() {
            for term in terms {
                let hash = sealer.indexTerm(term)
                if let id = termIDs[hash] {
                    askedBy[id].append(query)
                } else {
                    termIDs[hash] = askedBy.count
                    askedBy.append([query])
                }
            }
        }
        var found = Array(repeating: [(caseID: String, personRef: String)](), count: queries.count)
        guard !askedBy.isEmpty else { return found }
        var persons = [Int](repeating: 0, count: askedBy.count)
        var rows: [(caseID: String, personRef: String, terms: [Int])] = []
        let sql = "SELECT case_id, person_ref, terms FROM search_terms WHERE case_id != ?"
        for row in try query(sql, [.text(caseID)]) {
            let blob = row.blob(2)
            var terms: [Int] = []
            for start in stride(from: 0, to: blob.count - 7, by: 8) {
                if let id = termIDs[Array(blob[start..<(start + 8)])] { terms.append(id) }
            }
            guard !terms.isEmpty else { continue }
            for id in terms { persons[id] += 1 }
            rows.append((row.text(0), row.text(1), terms))
        }
        for row in rows {
            let queries = Set(row.terms.filter { persons[$0] <= maxPersonsPerTerm }.flatMap { askedBy[$0] })
            for query in queries { found[query].append((row.caseID, row.personRef)) }
        }
        return found
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
    public func clearSearchIndex() throws(StoreError) { try query("DELETE FROM search_terms") }

    static let searchIndexVersion = "2"

    /// Every case whose personal data is kept (for building the index once).
    public func allCaseIDs() throws(StoreError) -> [String] {
        try query("SELECT case_id FROM cases WHERE purged_at_ms IS NULL").map { $0.text(0) }
    }
}
