/// Rows of the node's tables, as the node layer reads and writes them. Protobuf messages are kept
/// as the bytes that were received or sent; statuses are the proto enums' numbers.
public struct CaseRow: Sendable, Equatable {
    public var caseID: String
    public var requestingNode: String
    public var request: [UInt8]
    public var kind: Int32
    public var urgency: Int32
    public var originReference: String
    public var status: Int32
    public var step: Int32
    public var personCount: Int
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
    /// A conformance test case: kept out of staff views.
    public var test: Bool
    /// When retention destroyed the case's personal data; nil while it is kept.
    public var purgedAtMs: Int64? = nil
    /// Persons per status, kept with the case as "status:count;..." (nil: not kept yet).
    public var personCounts: String? = nil
    /// When the deadline clock the case runs now started (filing, NCCT's question, the latest
    /// update: see the README's "Deadlines"); 0: not known, the case's creation.
    public var clockStartedAtMs: Int64 = 0
    /// The SHA-256 of `request` as received (a retry is recognized by it); nil if not kept.
    public var requestSHA256: [UInt8]? = nil

    public init(
        caseID: String,
        requestingNode: String,
        request: [UInt8],
        kind: Int32,
        urgency: Int32,
        originReference: String,
        status: Int32,
        step: Int32,
        personCount: Int,
        createdAtMs: Int64,
        updatedAtMs: Int64,
        test: Bool = false
    ) {
        self.caseID = caseID
        self.requestingNode = requestingNode
        self.request = request
        self.kind = kind
        self.urgency = urgency
        self.originReference = originReference
        self.status = status
        self.step = step
        self.personCount = personCount
        self.createdAtMs = createdAtMs
        self.updatedAtMs = updatedAtMs
        self.test = test
    }
}

public struct PersonRow: Sendable, Equatable {
    public var personRef: String
    public var position: Int
    public var status: Int32
    public var note: String
    public var updatedAtMs: Int64
    public init(personRef: String, position: Int, status: Int32, note: String, updatedAtMs: Int64) {
        self.personRef = personRef
        self.position = position
        self.status = status
        self.note = note
        self.updatedAtMs = updatedAtMs
    }
}

public struct InboxRow: Sendable, Equatable {
    public var entryID: Int64
    public var kind: Int32
    public var messageID: String
    public var caseID: String
    public var fromNode: String
    public var receivedAtMs: Int64
    public var readAtMs: Int64?
    public var readBy: String
}

public struct OutboxRow: Sendable, Equatable {
    public var position: Int64
    public var messageID: String
    public var peerNode: String
    /// 1: an InterventionRequest; 2: a CaseUpdate.
    public var kind: Int32
    public var caseID: String
    public var body: [UInt8]
    public var state: Int32
    public var attempts: Int
    public var lastError: String
    public var queuedAtMs: Int64
    public var nextAttemptAtMs: Int64
    public var deliveredAtMs: Int64

    public init(
        messageID: String,
        peerNode: String,
        kind: Int32,
        caseID: String,
        body: [UInt8],
        state: Int32,
        queuedAtMs: Int64
    ) {
        self.position = 0
        self.messageID = messageID
        self.peerNode = peerNode
        self.kind = kind
        self.caseID = caseID
        self.body = body
        self.state = state
        self.attempts = 0
        self.lastError = ""
        self.queuedAtMs = queuedAtMs
        self.nextAttemptAtMs = queuedAtMs
        self.deliveredAtMs = 0
    }
}

/// One entry of a case's history: an update applied, or refused for good (its sequence is taken
/// either way), or a sequence its sender gave up on (empty body).
public struct HistoryRow: Sendable, Equatable {
    public var caseID: String
    public var actor: String
    public var sequence: UInt64
    public var updateID: String
    public var body: [UInt8]
    public var atMs: Int64
    /// The gRPC status code of the refusal; 0 when applied.
    public var refusalCode: Int32
    public var refusal: String

    public var isApplied: Bool { refusalCode == 0 }
    public var isSkipped: Bool { refusalCode == Self.skippedCode }

    /// The refusal code of a skipped sequence (not a gRPC code).
    public static let skippedCode: Int32 = -1

    /// The key a skipped sequence is stored under (update ids are UUIDs, so it never collides).
    public static func skippedID(_ caseID: String, actor: String, sequence: UInt64) -> String {
        "skipped/\(caseID)/\(actor)/\(sequence)"
    }
}

public struct EventRow: Sendable, Equatable {
    public var eventID: Int64
    public var caseID: String
    public var kind: Int32
    public var messageID: String
    public var peerNode: String
    public var atMs: Int64
}

/// What is owed to one peer.
public struct PeerBacklog: Sendable, Equatable {
    public var depth: Int
    public var oldestQueuedAtMs: Int64
    public var lastError: String
}

extension Database {
    // MARK: Cases and persons

    /// One case; `withRequest: false` leaves the request body (up to the message limit) unread,
    /// for views that show only the case's state.
    public func caseRow(_ caseID: String, withRequest: Bool = true) throws(StoreError) -> CaseRow? {
        try first(
            """
            SELECT case_id, requesting_node, \(withRequest ? "request" : "X''"), kind, urgency, origin_reference,
                   status, step, person_count, created_at_ms, updated_at_ms, test, purged_at_ms, person_counts,
                   clock_started_at_ms, request_sha256
            FROM cases WHERE case_id = ?
            """,
            [.text(caseID)]
        ).map { row throws(StoreError) in
            var found = Self.caseRow(row)
            found.purgedAtMs = row.isNull(12) ? nil : row.int(12)
            found.personCounts = row.isNull(13) ? nil : row.text(13)
            found.clockStartedAtMs = row.int(14)
            found.requestSHA256 = row.isNull(15) ? nil : row.blob(15)
            if withRequest { found.request = try opened(found.request, case: caseID, at: RecordSealer.request(caseID)) }
            return found
        }
    }

    /// The ids of the cases after `caseID`, in order, `limit` of them (every case the file holds, a
    /// page at a time).
    public func caseIDs(after caseID: String, limit: Int) throws(StoreError) -> [String] {
        try query(
            "SELECT case_id FROM cases WHERE case_id > ? ORDER BY case_id LIMIT ?",
            [.text(caseID), .int(Int64(limit))]
        ).map { $0.text(0) }
    }

    /// `matchTraits` (NCCT's node): what duplicate detection compares for the case's persons (see
    /// `addMatchTraits`), sealed with the request so that the row is written once.
    public func insertCase(_ row: CaseRow, matchTraits: [UInt8] = []) throws(StoreError) {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        let sealed = try sealer.sealNewCase(row.caseID, request: row.request, matchTraits: matchTraits)
        try query(
            """
            INSERT INTO cases (case_id, requesting_node, request, kind, urgency, origin_reference, status, step,
                               person_count, created_at_ms, updated_at_ms, test, data_key, person_counts,
                               clock_started_at_ms, match_traits, request_sha256)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(row.caseID), .text(row.requestingNode), .blob(sealed.request), .int(Int64(row.kind)),
                .int(Int64(row.urgency)),
                .text(row.originReference), .int(Int64(row.status)), .int(Int64(row.step)),
                .int(Int64(row.personCount)),
                .int(row.createdAtMs), .int(row.updatedAtMs), .int(row.test ? 1 : 0), .blob(sealed.wrappedKey),
                row.personCounts.map { .text($0) } ?? .null,
                .int(row.clockStartedAtMs == 0 ? row.createdAtMs : row.clockStartedAtMs),
                sealed.matchTraits.map { .blob($0) } ?? .null,
                row.requestSHA256.map { .blob($0) } ?? .null,
            ]
        )
        // As the row holds them for the scan: a test case's persons are not compared.
        if row.test || matchTraits.isEmpty {
            filedTraits?.forget(row.caseID)
        } else {
            filedTraits?.keep(matchTraits, caseID: row.caseID)
        }
    }

    /// `closed`: the status is terminal; the first time it is, the case's retention clock starts.
    public func updateCaseState(
        _ caseID: String,
        status: Int32,
        step: Int32,
        personCount: Int,
        updatedAtMs: Int64,
        closed: Bool = false,
        personCounts: String? = nil,
        clockStartedAtMs: Int64? = nil,
        acknowledgedAtMs: Int64? = nil
    ) throws(StoreError) {
        try query(
            """
            UPDATE cases SET status = ?, step = ?, person_count = ?, updated_at_ms = ?,
                   closed_at_ms = CASE WHEN ? THEN COALESCE(closed_at_ms, ?) ELSE NULL END,
                   person_counts = COALESCE(?, person_counts),
                   clock_started_at_ms = COALESCE(?, clock_started_at_ms),
                   acknowledged_at_ms = COALESCE(acknowledged_at_ms, ?) WHERE case_id = ?
            """,
            [
                .int(Int64(status)), .int(Int64(step)), .int(Int64(personCount)), .int(updatedAtMs),
                .int(closed ? 1 : 0), .int(updatedAtMs), personCounts.map { .text($0) } ?? .null,
                clockStartedAtMs.map { .int($0) } ?? .null, acknowledgedAtMs.map { .int($0) } ?? .null,
                .text(caseID),
            ]
        )
    }

    /// Cases, most recently updated first; `requestingNode` limits them to one embassy's. The
    /// request bodies are not read (a list shows states, and bodies can be megabytes each).
    /// Cases changed at or after `updatedSinceMs`, most recent first (then by case id), after the
    /// case `after` (the last of the previous page) when given; `includeTests` false leaves
    /// conformance test cases out (staff views).
    public func cases(
        statuses: [Int32],
        updatedSinceMs: Int64,
        after: (updatedAtMs: Int64, caseID: String)? = nil,
        requestingNode: String?,
        limit: Int,
        includeTests: Bool = true
    ) throws(StoreError) -> [CaseRow] {
        var sql = """
            SELECT \(Self.listedColumns) FROM cases WHERE updated_at_ms >= ?
            """
        if !includeTests { sql += " AND test = 0" }
        var values: [SQLValue] = [.int(updatedSinceMs)]
        if let after {
            sql += " AND (updated_at_ms < ? OR (updated_at_ms = ? AND case_id > ?))"
            values += [.int(after.updatedAtMs), .int(after.updatedAtMs), .text(after.caseID)]
        }
        if let requestingNode {
            sql += " AND requesting_node = ?"
            values.append(.text(requestingNode))
        }
        if !statuses.isEmpty { sql += " AND status IN (\(statuses.map { String($0) }.joined(separator: ",")))" }
        sql += " ORDER BY updated_at_ms DESC, case_id LIMIT ?"
        values.append(.int(Int64(limit)))
        return try query(sql, values).map(Self.listedRow)
    }

    /// One page of the cases that pass `filter`, in `order`, and how many pass in all.
    public func casePage(
        _ filter: CaseFilter,
        order: CaseFilter.Order,
        offset: Int,
        limit: Int
    ) throws(StoreError)
        -> (rows: [CaseRow], total: Int)
    {
        var conditions: [String] = []
        var values: [SQLValue] = []
        func within(_ column: String, _ numbers: [Int32]) {
            // Enum numbers only (never text from the wire), so they can be written into the query.
            if !numbers.isEmpty {
                conditions.append("\(column) IN (\(numbers.map(String.init).joined(separator: ",")))")
            }
        }
        within("status", filter.statuses)
        within("step", filter.steps)
        within("kind", filter.kinds)
        within("urgency", filter.urgencies)
        if let node = filter.requestingNode {
            conditions.append("requesting_node = ?")
            values.append(.text(node))
        }
        for (column, bound, comparison) in [
            ("created_at_ms", filter.createdSinceMs, ">="), ("created_at_ms", filter.createdUntilMs, "<"),
            ("updated_at_ms", filter.updatedSinceMs, ">="), ("updated_at_ms", filter.updatedUntilMs, "<"),
        ] where bound != 0 {
            conditions.append("\(column) \(comparison) ?")
            values.append(.int(bound))
        }
        if !filter.includeTests { conditions.append("test = 0") }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        var total = try caseCount(filter) ?? -1
        if total < 0 { total = try first("SELECT COUNT(*) FROM cases" + whereClause, values)?.int(0) ?? 0 }
        let sql = """
            SELECT \(Self.listedColumns) FROM cases\(whereClause)
             ORDER BY \(order.sql), case_id LIMIT ? OFFSET ?
            """
        let rows = try query(sql, values + [.int(Int64(limit)), .int(Int64(offset))]).map(Self.listedRow)
        return (rows, Int(total))
    }

    /// The number of cases that pass a filter of statuses alone, from the counts the triggers keep
    /// (no walk over the cases); nil for any other filter.
    private func caseCount(_ filter: CaseFilter) throws(StoreError) -> Int64? {
        guard filter.steps.isEmpty, filter.kinds.isEmpty, filter.urgencies.isEmpty, filter.requestingNode == nil,
            filter.createdSinceMs == 0, filter.createdUntilMs == 0, filter.updatedSinceMs == 0,
            filter.updatedUntilMs == 0
        else { return nil }
        var sql = "SELECT COALESCE(SUM(n), 0) FROM case_counts WHERE 1"
        if !filter.statuses.isEmpty {
            sql += " AND status IN (\(filter.statuses.map(String.init).joined(separator: ",")))"
        }
        if !filter.includeTests { sql += " AND test = 0" }
        return try first(sql)?.int(0)
    }

    /// When the latest-changed case that `requestingNode` opened last changed; nil without cases.
    public func latestUpdate(requestingNode: String) throws(StoreError) -> Int64? {
        guard
            let row = try first(
                "SELECT MAX(updated_at_ms) FROM cases WHERE requesting_node = ?",
                [.text(requestingNode)]
            ),
            !row.isNull(0)
        else { return nil }
        return row.int(0)
    }

    private static func caseRow(_ r: Row) -> CaseRow {
        CaseRow(
            caseID: r.text(0),
            requestingNode: r.text(1),
            request: r.blob(2),
            kind: Int32(r.int(3)),
            urgency: Int32(r.int(4)),
            originReference: r.text(5),
            status: Int32(r.int(6)),
            step: Int32(r.int(7)),
            personCount: Int(r.int(8)),
            createdAtMs: r.int(9),
            updatedAtMs: r.int(10),
            test: r.int(11) != 0
        )
    }

    /// A case's columns for lists (``listedRow``): everything but the request.
    private static let listedColumns = """
        case_id, requesting_node, X'', kind, urgency, origin_reference, status, step, person_count,
               created_at_ms, updated_at_ms, test, person_counts, clock_started_at_ms
        """

    /// A row read with ``listedColumns``: the kept persons-per-status (column 12) and the clock.
    private static func listedRow(_ r: Row) -> CaseRow {
        var row = caseRow(r)
        row.personCounts = r.isNull(12) ? nil : r.text(12)
        row.clockStartedAtMs = r.int(13)
        return row
    }

    /// Open cases in `statuses` whose clock started at or before `startedBy`: those at or past a
    /// share of their deadline (an index finds them; the others are never read).
    public func clockedCases(
        statuses: [Int32],
        urgency: Int32?,
        startedBy: Int64,
        limit: Int
    ) throws(StoreError)
        -> [CaseRow]
    {
        let (condition, values) = Self.clocked(statuses, urgency, startedBy)
        return try query(
            "SELECT \(Self.listedColumns) FROM cases WHERE \(condition) ORDER BY clock_started_at_ms LIMIT ?",
            values + [.int(Int64(limit))]
        ).map(Self.listedRow)
    }

    /// How many cases ``clockedCases`` would find, however many.
    public func clockedCount(statuses: [Int32], urgency: Int32?, startedBy: Int64) throws(StoreError) -> Int {
        let (condition, values) = Self.clocked(statuses, urgency, startedBy)
        return Int(try first("SELECT COUNT(*) FROM cases WHERE \(condition)", values)?.int(0) ?? 0)
    }

    private static func clocked(_ statuses: [Int32], _ urgency: Int32?, _ startedBy: Int64) -> (String, [SQLValue]) {
        var condition = """
            status IN (\(statuses.map(String.init).joined(separator: ","))) AND clock_started_at_ms <= ? AND test = 0
            """
        var values: [SQLValue] = [.int(startedBy)]
        if let urgency {
            condition += " AND urgency = ?"
            values.append(.int(Int64(urgency)))
        }
        return (condition, values)
    }

    /// Where a case's persons are (migration 14): their key begins with the time the case was filed,
    /// so that a new case's persons are appended. Binds the case id as `?1`.
    static let personsOfCase = "filed_at_ms = (SELECT created_at_ms FROM cases WHERE case_id = ?1) AND case_id = ?1"

    public func persons(_ caseID: String) throws(StoreError) -> [PersonRow] {
        try query(
            """
            SELECT person_ref, position, status, note, updated_at_ms FROM persons WHERE \(Self.personsOfCase)
            ORDER BY position
            """,
            [.text(caseID)]
        ).map { row throws(StoreError) in
            let note = try opened(row.blob(3), case: caseID, at: RecordSealer.note(caseID, row.text(0)))
            return PersonRow(
                personRef: row.text(0),
                position: Int(row.int(1)),
                status: Int32(row.int(2)),
                note: String(decoding: note, as: UTF8.self),
                updatedAtMs: row.int(4)
            )
        }
    }

    /// Persons of a case per status: what a summary shows, without reading each person.
    public func personStatusCounts(_ caseID: String) throws(StoreError) -> [Int32: Int] {
        var counts: [Int32: Int] = [:]
        let rows = try query(
            "SELECT status, COUNT(*) FROM persons WHERE \(Self.personsOfCase) GROUP BY status",
            [.text(caseID)]
        )
        for row in rows {
            counts[Int32(truncatingIfNeeded: row.int(0))] = Int(row.int(1))
        }
        return counts
    }

    public func upsertPerson(_ caseID: String, _ person: PersonRow) throws(StoreError) {
        try query(
            """
            INSERT OR REPLACE INTO persons (filed_at_ms, case_id, person_ref, position, status, note, updated_at_ms)
            SELECT created_at_ms, ?1, ?2, ?3, ?4, ?5, ?6 FROM cases WHERE case_id = ?1
            """,
            [
                .text(caseID), .text(person.personRef), .int(Int64(person.position)), .int(Int64(person.status)),
                .blob(
                    try sealed(Array(person.note.utf8), case: caseID, at: RecordSealer.note(caseID, person.personRef))
                ),
                .int(person.updatedAtMs),
            ]
        )
        guard changes == 1 else { throw StoreError("no case \(caseID) to file person \(person.personRef) under") }
    }

    /// SQLite integers are signed: a wire number past Int64.max is refused, never trapped on.
    static func column(_ value: UInt64, _ name: String) throws(StoreError) -> Int64 {
        guard let signed = Int64(exactly: value) else { throw StoreError("\(name) \(value) is out of range") }
        return signed
    }

    // MARK: History

    /// The highest sequence taken by `actor` on the case, applied, refused or skipped (0 when none).
    public func lastSequence(_ caseID: String, actor: String) throws(StoreError) -> UInt64 {
        UInt64(
            try first(
                "SELECT COALESCE(MAX(sequence), 0) FROM case_history WHERE case_id = ? AND actor_node = ?",
                [.text(caseID), .text(actor)]
            )?.int(0) ?? 0
        )
    }

    /// Every entry of `actor` on the case with a sequence in `range`, in sequence order.
    public func historyEntries(
        _ caseID: String,
        actor: String,
        sequences range: ClosedRange<UInt64>
    )
        throws(StoreError) -> [HistoryRow]
    {
        try query(
            "SELECT \(Self.historyColumns) FROM case_history"
                + " WHERE case_id = ? AND actor_node = ? AND sequence BETWEEN ? AND ?"
                + " ORDER BY sequence",
            [
                .text(caseID), .text(actor), .int(try Self.column(range.lowerBound, "sequence")),
                .int(try Self.column(range.upperBound, "sequence")),
            ]
        ).map(historyRow)
    }

    /// Records an update: applied when `refusal` is nil, else refused for good with that status.
    public func appendHistory(
        _ caseID: String,
        actor: String,
        sequence: UInt64,
        updateID: String,
        body: [UInt8],
        atMs: Int64,
        refusal: (code: Int32, message: String)? = nil
    ) throws(StoreError) {
        try query(
            """
            INSERT INTO case_history (case_id, actor_node, sequence, update_id, body, applied_at_ms, refusal_code,
                                      refusal)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(caseID), .text(actor), .int(try Self.column(sequence, "sequence")), .text(updateID),
                .blob(try sealed(body, case: caseID, at: RecordSealer.history(caseID, updateID))),
                .int(atMs), .int(Int64(refusal?.code ?? 0)), .text(refusal?.message ?? ""),
            ]
        )
    }

    /// The update that made this entry (applied or refused).
    public func historyBody(updateID: String) throws(StoreError) -> [UInt8]? {
        try historyEntry(updateID: updateID)?.body
    }

    /// Every entry of the case, in the order this node recorded them.
    public func history(_ caseID: String) throws(StoreError) -> [HistoryRow] {
        try query(
            "SELECT \(Self.historyColumns) FROM case_history WHERE case_id = ? ORDER BY position",
            [.text(caseID)]
        )
        .map(historyRow)
    }

    /// Where an update was recorded, if it was: the idempotency check for updates.
    public func historyEntry(updateID: String) throws(StoreError) -> HistoryRow? {
        try first("SELECT \(Self.historyColumns) FROM case_history WHERE update_id = ?", [.text(updateID)])
            .map(historyRow)
    }

    private static let historyColumns =
        "case_id, actor_node, sequence, update_id, body, applied_at_ms, refusal_code, refusal"

    private func historyRow(_ r: Row) throws(StoreError) -> HistoryRow {
        HistoryRow(
            caseID: r.text(0),
            actor: r.text(1),
            sequence: UInt64(r.int(2)),
            updateID: r.text(3),
            body: try opened(r.blob(4), case: r.text(0), at: RecordSealer.history(r.text(0), r.text(3))),
            atMs: r.int(5),
            refusalCode: Int32(r.int(6)),
            refusal: r.text(7)
        )
    }

    // MARK: Inbox

    @discardableResult
    public func insertInbox(
        kind: Int32,
        messageID: String,
        caseID: String,
        fromNode: String,
        atMs: Int64
    ) throws(StoreError) -> Int64 {
        try query(
            "INSERT INTO inbox (kind, message_id, case_id, from_node, received_at_ms) VALUES (?, ?, ?, ?, ?)",
            [
                .int(Int64(kind)), .text(messageID), .text(caseID), .text(fromNode), .int(atMs),
            ]
        )
        return lastInsertRowID
    }

    /// Entries about conformance test cases are not staff's business.
    private static let notATest = "NOT EXISTS (SELECT 1 FROM cases c WHERE c.case_id = inbox.case_id AND c.test = 1)"

    /// For one staff account: entries it has not read first, newest first within each group;
    /// conformance test cases left out. `readBy` names every account that read the entry.
    ///
    /// Unread entries are looked for only after the account's read-through mark (set when it marks
    /// everything, or everything up to an entry, read), so a page costs the same however long the
    /// history it has read.
    /// A page of the inbox as one account sees it: unread first, then newest first; `offset` skips.
    public func inbox(unreadOnly: Bool, limit: Int, offset: Int = 0, staffID: Int64) throws(StoreError) -> [InboxRow] {
        try inbox(unreadOnly: unreadOnly, first: limit + offset, staffID: staffID).dropFirst(offset).map { $0 }
    }

    private func inbox(unreadOnly: Bool, first limit: Int, staffID: Int64) throws(StoreError) -> [InboxRow] {
        let through = try readThrough(staffID)
        let columns = """
            SELECT inbox.entry_id, kind, message_id, case_id, from_node, received_at_ms,
                (SELECT read_at_ms FROM inbox_reads r WHERE r.entry_id = inbox.entry_id AND r.staff_id = ?1),
                (SELECT group_concat(display_name, ', ') FROM (SELECT s.display_name FROM inbox_reads x
                    JOIN staff s ON s.staff_id = x.staff_id WHERE x.entry_id = inbox.entry_id ORDER BY x.read_at_ms))
            FROM inbox
            """
        let unreadRows = try query(
            """
            \(columns) WHERE inbox.entry_id > ?2 AND \(Self.unreadBy) AND \(Self.notATest)
            ORDER BY inbox.entry_id DESC LIMIT ?3
            """,
            [.int(staffID), .int(through), .int(Int64(limit))]
        )
        var rows = unreadRows
        if !unreadOnly && rows.count < limit {
            rows += try query(
                """
                \(columns) WHERE (inbox.entry_id <= ?2 OR NOT \(Self.unreadBy)) AND \(Self.notATest)
                ORDER BY inbox.entry_id DESC LIMIT ?3
                """,
                [.int(staffID), .int(through), .int(Int64(limit - rows.count))]
            )
        }
        return rows.map {
            InboxRow(
                entryID: $0.int(0),
                kind: Int32($0.int(1)),
                messageID: $0.text(2),
                caseID: $0.text(3),
                fromNode: $0.text(4),
                receivedAtMs: $0.int(5),
                // Read through the mark without a row of its own: read, at no time in particular.
                readAtMs: $0.isNull(6) ? ($0.int(0) <= through ? 0 : nil) : $0.int(6),
                readBy: $0.text(7)
            )
        }
    }

    /// No read row of the account (parameter 1) for the entry.
    private static let unreadBy =
        "NOT EXISTS (SELECT 1 FROM inbox_reads r WHERE r.staff_id = ?1 AND r.entry_id = inbox.entry_id)"

    /// The entry up to which the account has read everything (0: none).
    private func readThrough(_ staffID: Int64) throws(StoreError) -> Int64 {
        try first("SELECT entry_id FROM inbox_read_through WHERE staff_id = ?", [.int(staffID)])?.int(0) ?? 0
    }

    /// Entries one staff account has not read.
    public func unreadCount(staffID: Int64) throws(StoreError) -> Int {
        let unread = """
            SELECT COUNT(*) FROM inbox WHERE inbox.entry_id > ?2 AND \(Self.unreadBy) AND \(Self.notATest)
            """
        return Int(try first(unread, [.int(staffID), .int(try readThrough(staffID))])?.int(0) ?? 0)
    }

    /// Marks entries read for one account: those named, and every entry up to `upTo` (0: none).
    /// Returns how many were unread for it.
    public func markRead(_ entryIDs: [Int64], upTo: Int64, staffID: Int64, atMs: Int64) throws(StoreError) -> Int {
        var marked = 0
        let insert =
            "INSERT OR IGNORE INTO inbox_reads (staff_id, entry_id, read_at_ms) SELECT ?, entry_id, ? FROM inbox"
        for id in entryIDs {
            try query(insert + " WHERE entry_id = ?", [.int(staffID), .int(atMs), .int(id)])
            marked += changes
        }
        if upTo > 0 {
            // Only entries after the mark can be unread; those up to it are read already.
            let through = try readThrough(staffID)
            try query(
                insert + " WHERE entry_id > ? AND entry_id <= ?",
                [.int(staffID), .int(atMs), .int(through), .int(upTo)]
            )
            marked += changes
            let last = try first("SELECT MAX(entry_id) FROM inbox WHERE entry_id <= ?", [.int(upTo)])?.int(0) ?? 0
            try query(
                """
                INSERT INTO inbox_read_through (staff_id, entry_id) VALUES (?, ?)
                ON CONFLICT (staff_id) DO UPDATE SET entry_id = MAX(entry_id, excluded.entry_id)
                """,
                [.int(staffID), .int(last)]
            )
        }
        return marked
    }

    // MARK: Reports

    /// Counts of the cases filed in [sinceMs, untilMs) (0: no bound), optionally of one embassy,
    /// conformance test cases left out, grouped by `column` ("requesting_node", "kind", "urgency",
    /// "status"): key, cases, persons.
    public func reportCounts(
        _ scope: ReportScope,
        by column: ReportScope.Column
    ) throws(StoreError)
        -> [(key: String, cases: Int, persons: Int)]
    {
        let (condition, values) = scope.sql
        return try query(
            """
            SELECT \(column.rawValue), COUNT(*), SUM(person_count) FROM cases WHERE \(condition)
            GROUP BY \(column.rawValue) ORDER BY COUNT(*) DESC, \(column.rawValue)
            """,
            values
        ).map { row in
            let key =
                switch row.values[0] {
                case .int(let number): String(number)
                case .text(let text): text
                default: ""
                }
            return (key, Int(row.int(1)), Int(row.int(2)))
        }
    }

    /// The ids of the scope's cases, oldest first.
    public func caseIDs(_ scope: ReportScope) throws(StoreError) -> [String] {
        let (condition, values) = scope.sql
        return try query("SELECT case_id FROM cases WHERE \(condition) ORDER BY created_at_ms, case_id", values)
            .map { $0.text(0) }
    }

    /// Persons of the scope's cases per status.
    public func reportPersonStatuses(_ scope: ReportScope) throws(StoreError) -> [(status: Int32, count: Int)] {
        let (condition, values) = scope.sql
        return try query(
            """
            SELECT p.status, COUNT(*)
            FROM cases JOIN persons p ON p.filed_at_ms = created_at_ms AND p.case_id = cases.case_id
            WHERE \(condition)
            GROUP BY p.status ORDER BY p.status
            """,
            values
        ).map { (Int32($0.int(0)), Int($0.int(1))) }
    }

    /// For each of the scope's cases NCCT took up, and each it completed: how long it took from
    /// this node's record of the case, in milliseconds.
    public func reportDurations(
        _ scope: ReportScope,
        completedStatus: Int32
    ) throws(StoreError)
        -> (acknowledged: [Int64], completed: [Int64])
    {
        let (condition, values) = scope.sql
        var acknowledged: [Int64] = []
        var completed: [Int64] = []
        try forEach(
            """
            SELECT acknowledged_at_ms - created_at_ms, CASE WHEN status = ? THEN closed_at_ms - created_at_ms END
            FROM cases WHERE \(condition)
            """,
            [.int(Int64(completedStatus))] + values
        ) { row in
            if !row.isNull(0) { acknowledged.append(max(0, row.int(0))) }
            if !row.isNull(1) { completed.append(max(0, row.int(1))) }
        }
        return (acknowledged, completed)
    }

    // MARK: Deadlines

    /// The reason a supervisor gave for missing one run of a case's clock, and who gave it.
    public func breachReason(
        _ caseID: String,
        clock: Int32,
        startedAtMs: Int64
    ) throws(StoreError)
        -> (reason: String, by: String)?
    {
        guard
            let row = try first(
                "SELECT reason, by FROM deadline_breaches WHERE case_id = ? AND clock = ? AND started_at_ms = ?",
                [.text(caseID), .int(Int64(clock)), .int(startedAtMs)]
            )
        else { return nil }
        let reason = try opened(row.blob(0), case: caseID, at: RecordSealer.breach(caseID, clock, startedAtMs))
        return (String(decoding: reason, as: UTF8.self), row.text(1))
    }

    /// Keeps a supervisor's reason for missing one run of a case's clock, sealed under the case's key.
    public func recordBreachReason(
        _ caseID: String,
        clock: Int32,
        startedAtMs: Int64,
        reason: String,
        by: String,
        atMs: Int64
    ) throws(StoreError) {
        let sealedReason = try sealed(
            Array(reason.utf8),
            case: caseID,
            at: RecordSealer.breach(caseID, clock, startedAtMs)
        )
        try query(
            """
            INSERT INTO deadline_breaches (case_id, clock, started_at_ms, reason, by, at_ms) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (case_id, clock, started_at_ms) DO UPDATE SET reason = excluded.reason, by = excluded.by,
                at_ms = excluded.at_ms
            """,
            [.text(caseID), .int(Int64(clock)), .int(startedAtMs), .blob(sealedReason), .text(by), .int(atMs)]
        )
    }

    // MARK: Outbox

    public func enqueue(_ row: OutboxRow) throws(StoreError) {
        try query(
            """
            INSERT INTO outbox (message_id, peer_node, kind, case_id, body, state, queued_at_ms, next_attempt_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(row.messageID), .text(row.peerNode), .int(Int64(row.kind)), .text(row.caseID),
                .blob(
                    try sealed(
                        row.body,
                        case: row.caseID,
                        at: RecordSealer.outbox(row.caseID, row.messageID, row.peerNode)
                    )
                ),
                .int(Int64(row.state)), .int(row.queuedAtMs), .int(row.nextAttemptAtMs),
            ]
        )
    }

    /// The message owed to `peer` that is due first among the oldest pending message of each case
    /// (states given by the caller), whether due or not: cases keep their order, and one waiting
    /// case never holds up another.
    public func outboxNext(peer: String, pendingStates: [Int32]) throws(StoreError) -> OutboxRow? {
        let pending = pendingStates.map { String($0) }.joined(separator: ",")
        return try first(
            """
            SELECT \(Self.outboxColumns) FROM outbox AS o WHERE peer_node = ? AND state IN (\(pending))
            AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.peer_node = o.peer_node AND e.case_id = o.case_id
                            AND e.state IN (\(pending)) AND e.position < o.position)
            ORDER BY next_attempt_at_ms, position LIMIT 1
            """,
            [.text(peer)]
        ).map(outboxRow)
    }

    /// Messages to `peer` waiting for a retry become due now; returns how many.
    public func retryNow(peer: String, waitingState: Int32, atMs: Int64) throws(StoreError) -> Int {
        try query(
            "UPDATE outbox SET next_attempt_at_ms = ? WHERE peer_node = ? AND state = ? AND next_attempt_at_ms > ?",
            [.int(atMs), .text(peer), .int(Int64(waitingState)), .int(atMs)]
        )
        return changes
    }

    public func outbox(caseID: String) throws(StoreError) -> [OutboxRow] {
        try query("SELECT \(Self.outboxColumns) FROM outbox WHERE case_id = ? ORDER BY position", [.text(caseID)]).map(
            outboxRow
        )
    }

    public func outboxMessage(_ messageID: String, peer: String) throws(StoreError) -> OutboxRow? {
        try first(
            "SELECT \(Self.outboxColumns) FROM outbox WHERE message_id = ? AND peer_node = ?",
            [.text(messageID), .text(peer)]
        ).map(outboxRow)
    }

    public func updateOutbox(_ row: OutboxRow) throws(StoreError) {
        try query(
            """
            UPDATE outbox SET state = ?, attempts = ?, last_error = ?, next_attempt_at_ms = ?, delivered_at_ms = ?
            WHERE position = ?
            """,
            [
                .int(Int64(row.state)), .int(Int64(row.attempts)), .text(row.lastError), .int(row.nextAttemptAtMs),
                .int(row.deliveredAtMs), .int(row.position),
            ]
        )
    }

    /// Per peer: messages in `pendingStates`, the oldest one's queue time, the latest error.
    public func backlog(pendingStates: [Int32]) throws(StoreError) -> [String: PeerBacklog] {
        // Pending messages only (a partial index holds them): delivered history is never walked.
        let pending = pendingStates.map { String($0) }.joined(separator: ",")
        let rows = try query(
            """
            SELECT peer_node, COUNT(*), MIN(queued_at_ms),
                   (SELECT last_error FROM outbox o2 WHERE o2.peer_node = outbox.peer_node AND o2.state IN (\(pending))
                    AND last_error != '' ORDER BY position DESC LIMIT 1)
            FROM outbox WHERE state IN (\(pending)) GROUP BY peer_node
            """
        )
        return Dictionary(
            uniqueKeysWithValues: rows.map {
                ($0.text(0), PeerBacklog(depth: Int($0.int(1)), oldestQueuedAtMs: $0.int(2), lastError: $0.text(3)))
            }
        )
    }

    private static let outboxColumns = """
        position, message_id, peer_node, kind, case_id, body, state, attempts, last_error, queued_at_ms,
        next_attempt_at_ms, delivered_at_ms
        """

    private func outboxRow(_ r: Row) throws(StoreError) -> OutboxRow {
        let body = try opened(r.blob(5), case: r.text(4), at: RecordSealer.outbox(r.text(4), r.text(1), r.text(2)))
        var row = OutboxRow(
            messageID: r.text(1),
            peerNode: r.text(2),
            kind: Int32(r.int(3)),
            caseID: r.text(4),
            body: body,
            state: Int32(r.int(6)),
            queuedAtMs: r.int(9)
        )
        row.position = r.int(0)
        row.attempts = Int(r.int(7))
        row.lastError = r.text(8)
        row.nextAttemptAtMs = r.int(10)
        row.deliveredAtMs = r.int(11)
        return row
    }

    // MARK: Events

    @discardableResult
    public func appendEvent(
        caseID: String,
        kind: Int32,
        messageID: String = "",
        peerNode: String = "",
        atMs: Int64
    ) throws(StoreError) -> Int64 {
        try query(
            "INSERT INTO events (case_id, kind, message_id, peer_node, at_ms) VALUES (?, ?, ?, ?, ?)",
            [.text(caseID), .int(Int64(kind)), .text(messageID), .text(peerNode), .int(atMs)]
        )
        return lastInsertRowID
    }

    public func events(after eventID: Int64, limit: Int) throws(StoreError) -> [EventRow] {
        try query(
            "SELECT event_id, case_id, kind, message_id, peer_node, at_ms FROM events"
                + " WHERE event_id > ? ORDER BY event_id LIMIT ?",
            [.int(eventID), .int(Int64(limit))]
        ).map {
            EventRow(
                eventID: $0.int(0),
                caseID: $0.text(1),
                kind: Int32($0.int(2)),
                messageID: $0.text(3),
                peerNode: $0.text(4),
                atMs: $0.int(5)
            )
        }
    }

    public func lastEventID() throws(StoreError) -> Int64 {
        try first("SELECT COALESCE(MAX(event_id), 0) FROM events")?.int(0) ?? 0
    }
}

/// Which cases a list screen shows: each list empty or each bound 0 means any.
public struct CaseFilter: Sendable {
    public var statuses: [Int32] = []
    public var steps: [Int32] = []
    public var kinds: [Int32] = []
    public var urgencies: [Int32] = []
    public var requestingNode: String?
    public var createdSinceMs: Int64 = 0
    public var createdUntilMs: Int64 = 0
    public var updatedSinceMs: Int64 = 0
    public var updatedUntilMs: Int64 = 0
    public var includeTests = false
    public init() {}

    public enum Order: Sendable {
        case updatedNewest, updatedOldest, createdNewest, createdOldest, urgency

        var sql: String {
            switch self {
            case .updatedNewest: "updated_at_ms DESC"
            case .updatedOldest: "updated_at_ms ASC"
            case .createdNewest: "created_at_ms DESC"
            case .createdOldest: "created_at_ms ASC"
            case .urgency: "urgency DESC, updated_at_ms DESC"
            }
        }
    }
}

/// Which cases a report covers: filed in [sinceMs, untilMs) (0: no bound), of one embassy or all,
/// conformance test cases left out.
public struct ReportScope: Sendable {
    public var sinceMs: Int64 = 0
    public var untilMs: Int64 = 0
    public var requestingNode: String?
    public init() {}

    public enum Column: String, Sendable {
        case embassy = "requesting_node", kind, urgency, status
    }

    var sql: (String, [SQLValue]) {
        var conditions = ["test = 0"]
        var values: [SQLValue] = []
        if sinceMs != 0 {
            conditions.append("created_at_ms >= ?")
            values.append(.int(sinceMs))
        }
        if untilMs != 0 {
            conditions.append("created_at_ms < ?")
            values.append(.int(untilMs))
        }
        if let requestingNode {
            conditions.append("requesting_node = ?")
            values.append(.text(requestingNode))
        }
        return (conditions.joined(separator: " AND "), values)
    }
}

extension Database {
    /// The highest deadline level an event was raised for in this run of the case's clock; 0 if none.
    public func deadlineLevelRaised(_ caseID: String, clock: Int32, startedAtMs: Int64) throws(StoreError) -> Int32 {
        Int32(
            try first(
                "SELECT level FROM deadline_levels WHERE case_id = ? AND clock = ? AND started_at_ms = ?",
                [.text(caseID), .int(Int64(clock)), .int(startedAtMs)]
            )?.int(0) ?? 0
        )
    }

    public func recordDeadlineLevel(
        _ caseID: String,
        clock: Int32,
        startedAtMs: Int64,
        level: Int32
    ) throws(StoreError) {
        try query(
            "INSERT OR REPLACE INTO deadline_levels (case_id, clock, started_at_ms, level) VALUES (?, ?, ?, ?)",
            [.text(caseID), .int(Int64(clock)), .int(startedAtMs), .int(Int64(level))]
        )
    }
}
