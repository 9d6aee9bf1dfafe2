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

    /// The persons (case id, person ref) that have one of `strong` terms or two of `weak` ones:
    /// candidates for a closer look (duplicate detection). One pass over the index.
    public func searchPersons(
        anyOf strong: Set<String>,
        twoOf weak: Set<String>
    ) throws(StoreError) -> [(caseID: String, personRef: String)] {
        guard let sealer, !(strong.isEmpty && weak.isEmpty) else { return [] }
        let strongHashes = Set(strong.map { sealer.indexTerm($0) })
        let weakHashes = Set(weak.map { sealer.indexTerm($0) })
        var found: [(String, String)] = []
        for row in try query("SELECT case_id, person_ref, terms FROM search_terms") {
            let blob = row.blob(2)
            var weakHits = 0
            for start in stride(from: 0, to: blob.count - 7, by: 8) {
                let hash = Array(blob[start..<(start + 8)])
                if strongHashes.contains(hash) {
                    weakHits = 2
                    break
                }
                if weakHashes.contains(hash) { weakHits += 1 }
            }
            if weakHits >= 2 { found.append((row.text(0), row.text(1))) }
        }
        return found
    }

    /// Whether the index was built for what the database held before it existed.
    public func searchIndexBuilt() throws(StoreError) -> Bool {
        try first("SELECT value FROM store_meta WHERE name = 'search-index'")?.text(0) == "1"
    }

    public func markSearchIndexBuilt() throws(StoreError) {
        try query("INSERT OR REPLACE INTO store_meta (name, value) VALUES ('search-index', '1')")
    }

    /// Every case whose personal data is kept (for building the index once).
    public func allCaseIDs() throws(StoreError) -> [String] {
        try query("SELECT case_id FROM cases WHERE purged_at_ms IS NULL").map { $0.text(0) }
    }
}
