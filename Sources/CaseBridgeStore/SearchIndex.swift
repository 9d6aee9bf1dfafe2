/// The blind search index: keyed hashes (HMAC-SHA-256 under a key derived from the node's data
/// key) of normalised terms, each pointing to a person of a case. Finds exact terms only; says
/// nothing about a person to whoever has the file without the key.
extension Database {
    public func addSearchTerms(_ terms: Set<String>, caseID: String, personRef: String) throws(StoreError) {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        for term in terms {
            try query("INSERT OR IGNORE INTO search_index (term, case_id, person_ref) VALUES (?, ?, ?)",
                      [.blob(sealer.indexTerm(term)), .text(caseID), .text(personRef)])
        }
    }

    /// The persons (case id, person ref) one normalised term points to.
    public func searchTerm(_ term: String, limit: Int) throws(StoreError) -> [(caseID: String, personRef: String)] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        return try query("SELECT case_id, person_ref FROM search_index WHERE term = ? LIMIT ?",
                         [.blob(sealer.indexTerm(term)), .int(Int64(limit))]).map { ($0.text(0), $0.text(1)) }
    }

    /// Whether the index was built for what the database held before it existed.
    public func searchIndexBuilt() throws(StoreError) -> Bool {
        try first("SELECT value FROM store_meta WHERE name = 'search-index'")?.text(0) == "1"
    }

    public func markSearchIndexBuilt() throws(StoreError) {
        try query("INSERT OR REPLACE INTO store_meta (name, value) VALUES ('search-index', '1')")
    }

    /// Every case id with its request (for building the index once).
    public func allCaseIDs() throws(StoreError) -> [String] {
        try query("SELECT case_id FROM cases WHERE purged_at_ms IS NULL").map { $0.text(0) }
    }
}
