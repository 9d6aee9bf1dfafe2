/// Retention: how long a closed case keeps its personal data, and crypto-shredding when that ends.
public struct RetentionRow: Sendable, Equatable {
    public var caseID: String
    public var status: Int32
    public var closedAtMs: Int64
    public var purgedAtMs: Int64?
    public var holdReason: String?
    public var heldBy: String
    public var heldAtMs: Int64
}

extension Database {
    /// Closed (or held) cases, still holding personal data first (oldest closing first), then purged ones.
    public func retentionRows(limit: Int) throws(StoreError) -> [RetentionRow] {
        try retentionQuery("(c.closed_at_ms IS NOT NULL OR h.case_id IS NOT NULL) AND c.test = 0", [], limit: limit)
    }

    /// One case's retention, closed or not.
    public func retentionRow(_ caseID: String) throws(StoreError) -> RetentionRow? {
        try retentionQuery("c.case_id = ?", [.text(caseID)], limit: 1).first
    }

    private func retentionQuery(
        _ condition: String,
        _ values: [SQLValue],
        limit: Int
    ) throws(StoreError) -> [RetentionRow] {
        try query(
            """
            SELECT c.case_id, c.status, COALESCE(c.closed_at_ms, 0), c.purged_at_ms, h.reason, COALESCE(h.held_by, ''),
                   COALESCE(h.held_at_ms, 0)
            FROM cases c LEFT JOIN retention_holds h ON h.case_id = c.case_id WHERE \(condition)
            ORDER BY c.purged_at_ms IS NOT NULL, c.closed_at_ms IS NULL, c.closed_at_ms LIMIT ?
            """,
            values + [.int(Int64(limit))]
        ).map {
            RetentionRow(
                caseID: $0.text(0),
                status: Int32($0.int(1)),
                closedAtMs: $0.int(2),
                purgedAtMs: $0.isNull(3) ? nil : $0.int(3),
                holdReason: $0.isNull(4) ? nil : $0.text(4),
                heldBy: $0.text(5),
                heldAtMs: $0.int(6)
            )
        }
    }

    /// Cases closed at or before `closedBeforeMs` whose personal data is due to go: not held, and
    /// with nothing left to deliver (a message still owed is sent first).
    public func duePurges(closedBeforeMs: Int64, pendingStates: [Int32], limit: Int) throws(StoreError) -> [String] {
        let pending = pendingStates.map { String($0) }.joined(separator: ",")
        return try query(
            """
            SELECT case_id FROM cases c WHERE closed_at_ms IS NOT NULL AND purged_at_ms IS NULL AND closed_at_ms <= ?
            AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.case_id = c.case_id)
            AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.case_id = c.case_id AND o.state IN (\(pending)))
            ORDER BY closed_at_ms LIMIT ?
            """,
            [.int(closedBeforeMs), .int(Int64(limit))]
        ).map { $0.text(0) }
    }

    /// Crypto-shredding: the case's data key is deleted and every value it sealed emptied (with
    /// secure_delete, overwritten in the file). Ids, statuses, person refs and counts remain.
    public func purgePersonalData(_ caseID: String, atMs: Int64) throws(StoreError) {
        filedTraits?.forget(caseID)
        let matched = try first("SELECT match_traits IS NOT NULL FROM cases WHERE case_id = ?", [.text(caseID)])
        try query(
            """
            UPDATE cases SET data_key = NULL, request = X'', request_sha256 = NULL, match_traits = NULL,
                             purged_at_ms = ?
            WHERE case_id = ?
            """,
            [.int(atMs), .text(caseID)]
        )
        try query("UPDATE case_history SET body = X'' WHERE case_id = ?", [.text(caseID)])
        try query("UPDATE outbox SET body = X'' WHERE case_id = ?", [.text(caseID)])
        try query("UPDATE persons SET note = '' WHERE \(Self.personsOfCase)", [.text(caseID)])
        try removeSearchTerms(caseID: caseID, matched: matched?.int(0) == 1)
        // A likeness to a person whose data is gone can be neither shown nor confirmed.
        try query("DELETE FROM person_matches WHERE case_id = ?1 OR other_case_id = ?1", [.text(caseID)])
    }

    /// Keeps (or, with `reason` nil, releases) a case's personal data past its retention.
    public func setRetentionHold(_ caseID: String, reason: String?, by: String, atMs: Int64) throws(StoreError) {
        if let reason {
            try query(
                "INSERT OR REPLACE INTO retention_holds (case_id, reason, held_by, held_at_ms) VALUES (?, ?, ?, ?)",
                [.text(caseID), .text(reason), .text(by), .int(atMs)]
            )
        } else {
            try query("DELETE FROM retention_holds WHERE case_id = ?", [.text(caseID)])
        }
    }
}

extension CaseStore {
    /// Moves the WAL into the database and empties it, so that what a purge overwrote is not left
    /// in old WAL frames. Best effort: readers in the middle of a snapshot may keep some frames.
    public func checkpoint() throws(StoreError) {
        let database = try Database(path: path, readOnly: false)
        try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}
