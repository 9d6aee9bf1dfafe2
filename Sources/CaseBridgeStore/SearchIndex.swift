import CaseBridgeTLS

/// What the blind index keeps of a normalised term: a keyed hash (HMAC-SHA-256 under a key derived
/// from the node's data key), never the term; its first 8 bytes, as an integer (a false match needs
/// 2^64 tries; a found row is checked term by term anyway).
///
/// Worked out on the caller's thread: a call's worker hashes its persons' terms before the write,
/// so the store's one writer does not hash for every peer.
public struct TermKeys: Sendable {
    private let hash: KeyedHash

    init(_ hash: KeyedHash) { self.hash = hash }

    /// Each term's key, in the order given.
    public func callAsFunction(_ terms: some Sequence<String>) -> [Int64] {
        terms.map { Int64(bitPattern: hash.leading64($0)) }
    }

    /// The key of a term given in parts, as if they were joined (`KeyedHash.leading64(_:)`).
    public func key(_ parts: (_ part: (Substring) -> Void) -> Void) -> Int64 {
        Int64(bitPattern: hash.leading64(parts))
    }
}

/// The blind search index: per person, one row holding the keys (`TermKeys`) of their normalised
/// terms. Rows are appended (cheap to write: no random-key index on the write path); a search scans
/// them for a term's key (fast enough for staff searching hundreds of thousands of persons). Finds
/// exact terms only; says nothing about a person to whoever has the file without the key.
extension Database {
    /// The keys of a person's search terms, and of the terms duplicate detection looks them up by
    /// (appended to the log `MatchIndex` reads: one row a person, written in order, no page touched at
    /// random). A row holds its keys in the order of their values, which says nothing of the terms.
    public func addPersonTerms(
        search: [Int64],
        match: [Int64] = [],
        caseID: String,
        personRef: String
    ) throws(StoreError) {
        for (table, keys) in [("search_terms", search), ("match_log", match)] where !keys.isEmpty {
            try query(
                "INSERT INTO \(table) (case_id, person_ref, terms) VALUES (?, ?, ?)",
                [.text(caseID), .text(personRef), .blob(MatchIndex.blob(keys.sorted()))]
            )
        }
    }

    /// The keys of terms, for a connection opened with the data key.
    public func termKeys() throws(StoreError) -> TermKeys {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        return sealer.termKeys
    }

    /// The persons (case id, person ref) that have every one of `terms`.
    public func searchPersons(
        allOf terms: [String],
        limit: Int
    ) throws(StoreError) -> [(caseID: String, personRef: String)] {
        let wanted = try termKeys()(terms)
        guard let first = wanted.first else { return [] }
        var found: [(String, String)] = []
        for row in try query(
            "SELECT case_id, person_ref, terms FROM search_terms WHERE instr(terms, ?) > 0",
            [.blob(MatchIndex.blob([first]))]
        ) {
            let held = Set(MatchIndex.keys(row.blob(2)))
            guard wanted.allSatisfy(held.contains) else { continue }
            found.append((row.text(0), row.text(1)))
            if found.count >= limit { break }
        }
        return found
    }

    /// Adds persons to what duplicate detection compares for the case: `record` (opaque here) is
    /// appended to what the case holds, sealed under the case's key.
    public func addMatchTraits(_ record: [UInt8], caseID: String) throws(StoreError) {
        guard !record.isEmpty else { return }
        filedTraits?.forget(caseID)
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

    /// `matchTraits` for a case the duplicate scan reads for the first time (its opening event): as
    /// the write that filed it kept them, when it did (`FiledTraits`).
    public func newCaseMatchTraits(_ caseID: String) throws(StoreError) -> [UInt8]? {
        if let kept = filedTraits?.take(caseID) { return kept }
        return try matchTraits(caseID)
    }

    /// Takes a case's persons out of both indexes (its personal data is purged). `matched`: the case
    /// was in duplicate detection's index, which reads their removal from its log.
    func removeSearchTerms(caseID: String, matched: Bool) throws(StoreError) {
        if matched {
            // What the index has not read yet is deleted here. What it has read (in memory, in runs)
            // it deletes by key on reading this removal: a person's match terms are among their
            // search terms. It then deletes the removal too (`MatchIndex.writeRunsIfDue`).
            try query("DELETE FROM match_log WHERE case_id = ? AND removed = 0", [.text(caseID)])
            try query(
                """
                INSERT INTO match_log (case_id, person_ref, terms, removed)
                SELECT case_id, person_ref, terms, 1 FROM search_terms WHERE case_id = ?
                """,
                [.text(caseID)]
            )
        }
        try query("DELETE FROM search_terms WHERE case_id = ?", [.text(caseID)])
    }

    /// Whether the index holds the current kinds of terms (version 2 added names in Latin letters and
    /// the pairs of date of birth and name word duplicate detection looks up; version 6 pairs a date
    /// that gives only the year or month apart, so that a full date need not look up the whole year).
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
        try query("DELETE FROM match_log")
        try query("DELETE FROM match_runs")
        filedTraits?.forgetAll()
        // The duplicate index's files in use are dropped with the list (`MatchIndex.catchUp`).
        try query("INSERT OR REPLACE INTO store_meta (name, value) VALUES ('match-generation', hex(randomblob(8)))")
        try query("UPDATE cases SET match_traits = NULL WHERE match_traits IS NOT NULL")
    }

    static let searchIndexVersion = "6"

    /// Every case whose personal data is kept (for building the index once).
    public func allCaseIDs() throws(StoreError) -> [String] {
        try query("SELECT case_id FROM cases WHERE purged_at_ms IS NULL").map { $0.text(0) }
    }
}
