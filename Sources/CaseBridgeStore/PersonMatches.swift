/// A person of one case who resembles a person of another (duplicate detection at NCCT).
public struct MatchRow: Sendable, Equatable {
    public enum State: Int64, Sendable {
        case open = 0, confirmed = 1, dismissed = 2
    }

    public var matchID: Int64 = 0
    public var caseID: String
    public var personRef: String
    public var otherCaseID: String
    public var otherPersonRef: String
    public var score: Double
    /// Names of the fields that agree and that disagree ("name", "date_of_birth", …), never values.
    public var agreeing: [String]
    public var conflicting: [String]
    public var state: State = .open
    public var foundAtMs: Int64
    public var decidedBy = ""
    public var decidedAtMs: Int64 = 0

    public init(
        caseID: String,
        personRef: String,
        otherCaseID: String,
        otherPersonRef: String,
        score: Double,
        agreeing: [String],
        conflicting: [String],
        foundAtMs: Int64
    ) {
        self.caseID = caseID
        self.personRef = personRef
        self.otherCaseID = otherCaseID
        self.otherPersonRef = otherPersonRef
        self.score = score
        self.agreeing = agreeing
        self.conflicting = conflicting
        self.foundAtMs = foundAtMs
    }
}

extension Database {
    private static let matchColumns = """
        match_id, case_id, person_ref, other_case_id, other_person_ref, score, agreeing, conflicting, state,
        found_at_ms, decided_by, decided_at_ms
        """

    /// Records a likeness once: the same pair found again, either way round, changes nothing (a case
    /// scanned after a later one arrived, or scanned again after a restart, finds it from its side).
    public func insertMatch(_ match: MatchRow) throws(StoreError) {
        try query(
            """
            INSERT OR IGNORE INTO person_matches (case_id, person_ref, other_case_id, other_person_ref, score,
                                                  agreeing, conflicting, found_at_ms)
            SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE NOT EXISTS (SELECT 1 FROM person_matches
                WHERE case_id = ?3 AND person_ref = ?4 AND other_case_id = ?1 AND other_person_ref = ?2)
            """,
            [
                .text(match.caseID), .text(match.personRef), .text(match.otherCaseID), .text(match.otherPersonRef),
                .int(Int64((match.score * 1000).rounded())), .text(match.agreeing.joined(separator: ",")),
                .text(match.conflicting.joined(separator: ",")), .int(match.foundAtMs),
            ]
        )
    }

    /// A page of matches in one state (all states when nil), newest first, and how many there are.
    public func matches(
        state: MatchRow.State?,
        caseID: String? = nil,
        limit: Int,
        offset: Int
    ) throws(StoreError) -> (rows: [MatchRow], total: Int) {
        var conditions: [String] = []
        var values: [SQLValue] = []
        if let state {
            conditions.append("state = ?")
            values.append(.int(state.rawValue))
        }
        if let caseID {
            conditions.append("(case_id = ? OR other_case_id = ?)")
            values += [.text(caseID), .text(caseID)]
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let total = Int(try first("SELECT COUNT(*) FROM person_matches" + filter, values)?.int(0) ?? 0)
        let rows = try query(
            "SELECT \(Self.matchColumns) FROM person_matches\(filter) ORDER BY match_id DESC LIMIT ? OFFSET ?",
            values + [.int(Int64(limit)), .int(Int64(offset))]
        ).map(Self.matchRow)
        return (rows, total)
    }

    public func match(_ matchID: Int64) throws(StoreError) -> MatchRow? {
        try query("SELECT \(Self.matchColumns) FROM person_matches WHERE match_id = ?", [.int(matchID)])
            .first.map(Self.matchRow)
    }

    public func decideMatch(_ matchID: Int64, _ state: MatchRow.State, by: String, atMs: Int64) throws(StoreError) {
        try query(
            "UPDATE person_matches SET state = ?, decided_by = ?, decided_at_ms = ? WHERE match_id = ?",
            [.int(state.rawValue), .text(by), .int(atMs), .int(matchID)]
        )
    }

    private static func matchRow(_ r: Row) -> MatchRow {
        var row = MatchRow(
            caseID: r.text(1),
            personRef: r.text(2),
            otherCaseID: r.text(3),
            otherPersonRef: r.text(4),
            score: Double(r.int(5)) / 1000,
            agreeing: r.text(6).split(separator: ",").map(String.init),
            conflicting: r.text(7).split(separator: ",").map(String.init),
            foundAtMs: r.int(9)
        )
        row.matchID = r.int(0)
        row.state = MatchRow.State(rawValue: r.int(8)) ?? .open
        row.decidedBy = r.text(10)
        row.decidedAtMs = r.int(11)
        return row
    }

    /// How far the duplicate scan has read the events (it resumes there after a restart).
    public func duplicatesScannedThrough() throws(StoreError) -> Int64 {
        Int64(try first("SELECT value FROM store_meta WHERE name = 'duplicates-through'")?.text(0) ?? "") ?? 0
    }

    public func setDuplicatesScannedThrough(_ eventID: Int64) throws(StoreError) {
        try query(
            "INSERT OR REPLACE INTO store_meta (name, value) VALUES ('duplicates-through', ?)",
            [.text(String(eventID))]
        )
    }
}
