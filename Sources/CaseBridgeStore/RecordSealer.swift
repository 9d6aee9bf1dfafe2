import CaseBridgeTLS

/// Personal data at rest: request and update bodies, outbox bodies, notes about persons and the
/// traits duplicate detection compares are sealed with AES-256-GCM under a data key of their case,
/// which is stored wrapped by the node's key-encryption key (kept outside the database). Each value
/// is bound to its row (the context), so values swapped between rows do not open. Ids, statuses,
/// times, counts and person refs stay in clear; none of them says anything about a person.
public final class RecordSealer: Sendable {
    let keyEncryptionKey: [UInt8]
    /// Keys the blind search index: derived from the data key, separate from it.
    let termKeys: TermKeys

    public init(keyEncryptionKey: [UInt8]) throws(StoreError) {
        guard keyEncryptionKey.count == Sealing.keyBytes else {
            throw StoreError("the data key must be \(Sealing.keyBytes) bytes")
        }
        self.keyEncryptionKey = keyEncryptionKey
        let indexKey = Digest.hmacSHA256(key: keyEncryptionKey, Array("casebridge/search-index/v1".utf8))
        termKeys = TermKeys(KeyedHash(key: indexKey))
    }

    /// The case's data key, made (and stored wrapped in the case's row) on first use when `create`.
    func dataKey(_ caseID: String, _ db: Database, create: Bool) throws(StoreError) -> [UInt8]? {
        if let row = try db.first("SELECT data_key FROM cases WHERE case_id = ?", [.text(caseID)]), !row.isNull(0) {
            return try unwrap(row.blob(0), caseID: caseID)
        }
        guard create else { return nil }
        let (key, wrapped) = try newCaseKey(caseID)
        try db.query("UPDATE cases SET data_key = ? WHERE case_id = ?", [.blob(wrapped), .text(caseID)])
        guard db.changes == 1 else { throw StoreError("no case \(caseID) to hold a data key") }
        return key
    }

    /// A new data key for a case, and the same key wrapped for its row.
    func newCaseKey(_ caseID: String) throws(StoreError) -> (key: [UInt8], wrapped: [UInt8]) {
        let key = Sealing.randomBytes(Sealing.keyBytes)
        return (key, try wrap(key, caseID: caseID))
    }

    private func unwrap(_ wrapped: [UInt8], caseID: String) throws(StoreError) -> [UInt8] {
        do { return try Sealing.open(wrapped, key: keyEncryptionKey, context: Array("case-key/\(caseID)".utf8)) } catch
        {
            throw StoreError("the data key of a case does not open: is this the node's data key file?")
        }
    }

    /// A new case's request and match traits (nil when there are none), sealed under a new key, and
    /// that key wrapped: what its row holds.
    func sealNewCase(
        _ caseID: String,
        request: [UInt8],
        matchTraits: [UInt8]
    ) throws(StoreError) -> (wrappedKey: [UInt8], request: [UInt8], matchTraits: [UInt8]?) {
        let (key, wrapped) = try newCaseKey(caseID)
        do {
            let request = try Sealing.seal(request, key: key, context: Array(Self.request(caseID).utf8))
            guard !matchTraits.isEmpty else { return (wrapped, request, nil) }
            let traits = try Sealing.seal(matchTraits, key: key, context: Array(Self.matchTraits(caseID).utf8))
            return (wrapped, request, traits)
        } catch { throw StoreError("\(error)") }
    }

    /// `row` names the value's place (table and row identity). Empty values stay empty.
    func seal(_ plain: [UInt8], caseID: String, row: String, _ db: Database) throws(StoreError) -> [UInt8] {
        guard !plain.isEmpty, let key = try dataKey(caseID, db, create: true) else { return plain }
        do { return try Sealing.seal(plain, key: key, context: Array(row.utf8)) } catch { throw StoreError("\(error)") }
    }

    func open(_ sealed: [UInt8], caseID: String, row: String, _ db: Database) throws(StoreError) -> [UInt8] {
        guard !sealed.isEmpty else { return sealed }
        guard let key = try dataKey(caseID, db, create: false) else {
            throw StoreError("case \(caseID) has no data key: its personal data was purged")
        }
        return try open(sealed, key: key, caseID: caseID, row: row)
    }

    /// `open` with the case's wrapped key already read (from the same row as the value).
    func open(_ sealed: [UInt8], wrappedKey: [UInt8], caseID: String, row: String) throws(StoreError) -> [UInt8] {
        guard !sealed.isEmpty else { return sealed }
        return try open(sealed, key: try unwrap(wrappedKey, caseID: caseID), caseID: caseID, row: row)
    }

    private func open(_ sealed: [UInt8], key: [UInt8], caseID: String, row: String) throws(StoreError) -> [UInt8] {
        do { return try Sealing.open(sealed, key: key, context: Array(row.utf8)) } catch {
            throw StoreError(
                "a sealed value of case \(caseID) does not open (\(row.split(separator: "/").first ?? ""))"
            )
        }
    }

    // Where each kind of value lives: its context.
    static func request(_ caseID: String) -> String { "request/\(caseID)" }
    static func history(_ caseID: String, _ updateID: String) -> String { "history/\(caseID)/\(updateID)" }
    static func outbox(_ caseID: String, _ messageID: String, _ peer: String) -> String {
        "outbox/\(caseID)/\(messageID)/\(peer)"
    }
    static func note(_ caseID: String, _ personRef: String) -> String { "note/\(caseID)/\(personRef)" }
    static func matchTraits(_ caseID: String) -> String { "match-traits/\(caseID)" }
    static func breach(_ caseID: String, _ clock: Int32, _ startedAtMs: Int64) -> String {
        "breach/\(caseID)/\(clock)/\(startedAtMs)"
    }

    /// Seals every value a database from before sealing holds in clear, in one transaction, once.
    func sealExisting(_ db: Database) throws(StoreError) {
        guard try db.first("SELECT value FROM store_meta WHERE name = 'sealed'")?.text(0) != "1" else { return }
        for row in try db.query("SELECT case_id, request FROM cases") {
            let caseID = row.text(0)
            try db.query(
                "UPDATE cases SET request = ? WHERE case_id = ?",
                [.blob(try seal(row.blob(1), caseID: caseID, row: Self.request(caseID), db)), .text(caseID)]
            )
        }
        for row in try db.query("SELECT position, case_id, update_id, body FROM case_history") {
            let sealed = try seal(row.blob(3), caseID: row.text(1), row: Self.history(row.text(1), row.text(2)), db)
            try db.query("UPDATE case_history SET body = ? WHERE position = ?", [.blob(sealed), .int(row.int(0))])
        }
        for row in try db.query("SELECT position, case_id, message_id, peer_node, body FROM outbox") {
            let sealed = try seal(
                row.blob(4),
                caseID: row.text(1),
                row: Self.outbox(row.text(1), row.text(2), row.text(3)),
                db
            )
            try db.query("UPDATE outbox SET body = ? WHERE position = ?", [.blob(sealed), .int(row.int(0))])
        }
        for row in try db.query("SELECT case_id, person_ref, note, filed_at_ms FROM persons WHERE note != ''") {
            let sealed = try seal(
                Array(row.text(2).utf8),
                caseID: row.text(0),
                row: Self.note(row.text(0), row.text(1)),
                db
            )
            try db.query(
                "UPDATE persons SET note = ? WHERE filed_at_ms = ? AND case_id = ? AND person_ref = ?",
                [.blob(sealed), .int(row.int(3)), .text(row.text(0)), .text(row.text(1))]
            )
        }
        try db.query("INSERT OR REPLACE INTO store_meta (name, value) VALUES ('sealed', '1')")
    }
}

extension Database {
    /// `plain` sealed for its place `row` in case `caseID` (see `RecordSealer`).
    func sealed(_ plain: [UInt8], case caseID: String, at row: String) throws(StoreError) -> [UInt8] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        return try sealer.seal(plain, caseID: caseID, row: row, self)
    }

    func opened(_ sealed: [UInt8], case caseID: String, at row: String) throws(StoreError) -> [UInt8] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        return try sealer.open(sealed, caseID: caseID, row: row, self)
    }
}

extension Database {
    /// Whether this connection's data key opens the case keys stored here (checks the first one).
    public func dataKeysOpen() throws(StoreError) -> Bool {
        guard let sealer,
            let caseID = try first("SELECT case_id FROM cases WHERE data_key IS NOT NULL LIMIT 1")?.text(0)
        else { return true }
        do { return try sealer.dataKey(caseID, self, create: false) != nil } catch { return false }
    }
}

extension CaseStore {
    /// Wraps every case's data key under `newKey` instead, in one transaction, and drops the search
    /// index (its key derives from the data key; the node rebuilds it at its next start).
    public func rotateDataKey(to newKey: [UInt8]) async throws {
        let next = try RecordSealer(keyEncryptionKey: newKey)
        try await write { db in
            guard let current = db.sealer else { throw StoreError("this connection was opened without the data key") }
            for row in try db.query("SELECT case_id FROM cases WHERE data_key IS NOT NULL") {
                let caseID = row.text(0)
                guard let key = try current.dataKey(caseID, db, create: false) else { continue }
                let wrapped = try next.wrap(key, caseID: caseID)
                try db.query("UPDATE cases SET data_key = ? WHERE case_id = ?", [.blob(wrapped), .text(caseID)])
            }
            try current.resealStaffSecrets(to: next, db)
            try db.clearSearchIndex()
            try db.query("DELETE FROM store_meta WHERE name = 'search-index'")
        }
    }
}

extension RecordSealer {
    func wrap(_ key: [UInt8], caseID: String) throws(StoreError) -> [UInt8] {
        do { return try Sealing.seal(key, key: keyEncryptionKey, context: Array("case-key/\(caseID)".utf8)) } catch {
            throw StoreError("\(error)")
        }
    }
}
