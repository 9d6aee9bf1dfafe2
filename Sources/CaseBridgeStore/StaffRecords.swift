import CaseBridgeTLS

/// One staff account as stored. Secrets stay in the store: callers get hashes to compare and the
/// TOTP secret opened only when they ask for it.
public struct StaffRow: Sendable, Equatable {
    public var staffID: Int64
    public var login: String
    public var displayName: String
    public var role: Int32
    public var disabled: Bool
    public var passwordHash: String?
    public var totpLastStep: Int64
    public var enrolmentHash: [UInt8]?
    public var enrolmentExpiresAtMs: Int64
    public var failedLogins: Int
    public var lockedUntilMs: Int64
    public var createdAtMs: Int64
    public var lastLoginAtMs: Int64

    /// Enrolled: a password chosen and a second factor proven.
    public var enrolled: Bool { passwordHash != nil }
}

/// A live session's account, as found by its token's hash.
public struct SessionRow: Sendable, Equatable {
    public var staff: StaffRow
    public var client: String
    public var createdAtMs: Int64
    public var lastSeenAtMs: Int64
}

public struct AccessRow: Sendable, Equatable {
    public var id: Int64
    public var atMs: Int64
    public var login: String
    public var displayName: String
    public var caseID: String
    public var what: String
    public var via: String
}

extension Database {
    private static let staffColumns = """
        staff_id, login, display_name, role, disabled, password_hash, totp_last_step, enrolment_hash,
        enrolment_expires_at_ms, failed_logins, locked_until_ms, created_at_ms, last_login_at_ms
        """

    private static func staffRow(_ row: Row, from i: Int = 0) -> StaffRow {
        StaffRow(
            staffID: row.int(i),
            login: row.text(i + 1),
            displayName: row.text(i + 2),
            role: Int32(truncatingIfNeeded: row.int(i + 3)),
            disabled: row.int(i + 4) != 0,
            passwordHash: row.isNull(i + 5) ? nil : row.text(i + 5),
            totpLastStep: row.int(i + 6),
            enrolmentHash: row.isNull(i + 7) ? nil : row.blob(i + 7),
            enrolmentExpiresAtMs: row.int(i + 8),
            failedLogins: Int(row.int(i + 9)),
            lockedUntilMs: row.int(i + 10),
            createdAtMs: row.int(i + 11),
            lastLoginAtMs: row.int(i + 12)
        )
    }

    public func staffCount() throws(StoreError) -> Int {
        Int(try first("SELECT COUNT(*) FROM staff")?.int(0) ?? 0)
    }

    public func staff(login: String) throws(StoreError) -> StaffRow? {
        try first("SELECT \(Self.staffColumns) FROM staff WHERE login = ?", [.text(login)]).map { Self.staffRow($0) }
    }

    public func allStaff() throws(StoreError) -> [StaffRow] {
        try query("SELECT \(Self.staffColumns) FROM staff ORDER BY login").map { Self.staffRow($0) }
    }

    /// A new account without a password: its owner enrols with the one-time code whose hash is given.
    public func addStaff(
        login: String,
        displayName: String,
        role: Int32,
        enrolmentHash: [UInt8],
        enrolmentExpiresAtMs: Int64,
        atMs: Int64
    ) throws(StoreError) -> StaffRow {
        try query(
            """
            INSERT INTO staff (login, display_name, role, enrolment_hash, enrolment_expires_at_ms, created_at_ms)
            VALUES (?, ?, ?, ?, ?, ?)
            """,
            [
                .text(login), .text(displayName), .int(Int64(role)), .blob(enrolmentHash), .int(enrolmentExpiresAtMs),
                .int(atMs),
            ]
        )
        guard let row = try staff(login: login) else { throw StoreError("account \(login) was not stored") }
        return row
    }

    /// Clears the password and second factor and ends every session: the owner enrols again.
    public func resetStaff(_ staffID: Int64, enrolmentHash: [UInt8], expiresAtMs: Int64, atMs: Int64) throws(StoreError)
    {
        try query(
            """
            UPDATE staff SET password_hash = NULL, totp_secret = NULL, totp_last_step = 0, enrolment_hash = ?,
                enrolment_expires_at_ms = ?, failed_logins = 0, locked_until_ms = 0 WHERE staff_id = ?
            """,
            [.blob(enrolmentHash), .int(expiresAtMs), .int(staffID)]
        )
        try query("DELETE FROM staff_recovery_codes WHERE staff_id = ?", [.int(staffID)])
        try endSessions(of: staffID, atMs: atMs)
    }

    /// The TOTP secret chosen for enrolment (sealed under the node's key), before it is confirmed.
    public func setTOTPSecret(_ staffID: Int64, _ secret: [UInt8]) throws(StoreError) {
        try query(
            "UPDATE staff SET totp_secret = ? WHERE staff_id = ?",
            [.blob(try sealedStaffSecret(secret, staffID: staffID)), .int(staffID)]
        )
    }

    public func totpSecret(_ staffID: Int64) throws(StoreError) -> [UInt8]? {
        guard let row = try first("SELECT totp_secret FROM staff WHERE staff_id = ?", [.int(staffID)]),
            !row.isNull(0)
        else { return nil }
        return try openedStaffSecret(row.blob(0), staffID: staffID)
    }

    /// Enrolment done: the password's hash, the recovery codes' hashes; the one-time code is spent.
    public func completeEnrolment(
        _ staffID: Int64,
        passwordHash: String,
        totpStep: Int64,
        recoveryCodeHashes: [[UInt8]]
    ) throws(StoreError) {
        try query(
            """
            UPDATE staff SET password_hash = ?, totp_last_step = ?, enrolment_hash = NULL, enrolment_expires_at_ms = 0,
                failed_logins = 0, locked_until_ms = 0 WHERE staff_id = ?
            """,
            [.text(passwordHash), .int(totpStep), .int(staffID)]
        )
        try query("DELETE FROM staff_recovery_codes WHERE staff_id = ?", [.int(staffID)])
        for hash in recoveryCodeHashes {
            try query(
                "INSERT INTO staff_recovery_codes (staff_id, code_hash) VALUES (?, ?)",
                [.int(staffID), .blob(hash)]
            )
        }
    }

    public func setStaffDisabled(_ staffID: Int64, _ disabled: Bool, atMs: Int64) throws(StoreError) {
        try query("UPDATE staff SET disabled = ? WHERE staff_id = ?", [.int(disabled ? 1 : 0), .int(staffID)])
        if disabled { try endSessions(of: staffID, atMs: atMs) }
    }

    public func setStaffRole(_ staffID: Int64, _ role: Int32, atMs: Int64) throws(StoreError) {
        try query("UPDATE staff SET role = ? WHERE staff_id = ?", [.int(Int64(role)), .int(staffID)])
        // A session carries what its role allowed when it began: a new role starts from a new sign-in.
        try endSessions(of: staffID, atMs: atMs)
    }

    /// A failed sign-in: counted; at `limit` failures the account locks until `lockUntilMs`.
    public func recordFailedLogin(_ staffID: Int64, limit: Int, lockUntilMs: Int64) throws(StoreError) -> Bool {
        try query("UPDATE staff SET failed_logins = failed_logins + 1 WHERE staff_id = ?", [.int(staffID)])
        let failures = try first("SELECT failed_logins FROM staff WHERE staff_id = ?", [.int(staffID)])?.int(0) ?? 0
        guard failures >= limit else { return false }
        try query(
            "UPDATE staff SET locked_until_ms = ?, failed_logins = 0 WHERE staff_id = ?",
            [.int(lockUntilMs), .int(staffID)]
        )
        return true
    }

    /// A successful sign-in: failures forgotten, the TOTP step used (so the code cannot be replayed).
    public func recordLogin(_ staffID: Int64, totpStep: Int64?, atMs: Int64) throws(StoreError) {
        try query(
            """
            UPDATE staff SET failed_logins = 0, locked_until_ms = 0, last_login_at_ms = ?,
                totp_last_step = MAX(totp_last_step, ?) WHERE staff_id = ?
            """,
            [.int(atMs), .int(totpStep ?? 0), .int(staffID)]
        )
    }

    /// Spends a recovery code; false if it is not one of the account's unused codes.
    public func useRecoveryCode(_ staffID: Int64, hash: [UInt8], atMs: Int64) throws(StoreError) -> Bool {
        try query(
            """
            UPDATE staff_recovery_codes SET used_at_ms = ?
            WHERE staff_id = ? AND code_hash = ? AND used_at_ms IS NULL
            """,
            [.int(atMs), .int(staffID), .blob(hash)]
        )
        return changes == 1
    }

    public func recoveryCodesLeft(_ staffID: Int64) throws(StoreError) -> Int {
        Int(
            try first(
                "SELECT COUNT(*) FROM staff_recovery_codes WHERE staff_id = ? AND used_at_ms IS NULL",
                [.int(staffID)]
            )?.int(0) ?? 0
        )
    }

    // MARK: Sessions

    public func startSession(tokenHash: [UInt8], staffID: Int64, client: String, atMs: Int64) throws(StoreError) {
        try query(
            """
            INSERT INTO staff_sessions (token_hash, staff_id, client, created_at_ms, last_seen_at_ms)
            VALUES (?, ?, ?, ?, ?)
            """,
            [.blob(tokenHash), .int(staffID), .text(client), .int(atMs), .int(atMs)]
        )
    }

    /// The session with this token hash, if it has not ended (time-outs are the caller's to judge).
    public func session(tokenHash: [UInt8]) throws(StoreError) -> SessionRow? {
        let columns = Self.staffColumns.split(separator: ",").map {
            "s.\($0.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        guard
            let row = try first(
                """
                SELECT \(columns.joined(separator: ", ")), x.client, x.created_at_ms, x.last_seen_at_ms
                FROM staff_sessions x JOIN staff s ON s.staff_id = x.staff_id
                WHERE x.token_hash = ? AND x.ended_at_ms IS NULL
                """,
                [.blob(tokenHash)]
            )
        else { return nil }
        return SessionRow(
            staff: Self.staffRow(row),
            client: row.text(13),
            createdAtMs: row.int(14),
            lastSeenAtMs: row.int(15)
        )
    }

    public func touchSession(tokenHash: [UInt8], atMs: Int64) throws(StoreError) {
        try query("UPDATE staff_sessions SET last_seen_at_ms = ? WHERE token_hash = ?", [.int(atMs), .blob(tokenHash)])
    }

    public func endSession(tokenHash: [UInt8], atMs: Int64) throws(StoreError) {
        try query(
            "UPDATE staff_sessions SET ended_at_ms = ? WHERE token_hash = ? AND ended_at_ms IS NULL",
            [.int(atMs), .blob(tokenHash)]
        )
    }

    public func endSessions(of staffID: Int64, atMs: Int64) throws(StoreError) {
        try query(
            "UPDATE staff_sessions SET ended_at_ms = ? WHERE staff_id = ? AND ended_at_ms IS NULL",
            [.int(atMs), .int(staffID)]
        )
    }

    // MARK: Access log

    public func appendAccess(staffID: Int64, caseID: String, what: String, via: String, atMs: Int64) throws(StoreError)
    {
        try query(
            "INSERT INTO access_log (at_ms, staff_id, case_id, what, via) VALUES (?, ?, ?, ?, ?)",
            [.int(atMs), .int(staffID), .text(caseID), .text(what), .text(via)]
        )
    }

    /// Newest first, filtered by account login, case, time range; `beforeID` pages back.
    public func accessLog(
        login: String,
        caseID: String,
        sinceMs: Int64,
        untilMs: Int64,
        beforeID: Int64,
        limit: Int
    ) throws(StoreError) -> [AccessRow] {
        var conditions = Conditions()
        conditions.add("s.login = ?", .text(login), when: !login.isEmpty)
        conditions.add("a.case_id = ?", .text(caseID), when: !caseID.isEmpty)
        conditions.add("a.at_ms >= ?", .int(sinceMs), when: sinceMs > 0)
        conditions.add("a.at_ms < ?", .int(untilMs), when: untilMs > 0)
        conditions.add("a.id < ?", .int(beforeID), when: beforeID > 0)
        return try query(
            """
            SELECT a.id, a.at_ms, s.login, s.display_name, a.case_id, a.what, a.via
            FROM access_log a JOIN staff s ON s.staff_id = a.staff_id \(conditions.whereClause)
            ORDER BY a.id DESC LIMIT ?
            """,
            conditions.values + [.int(Int64(limit))]
        ).map {
            AccessRow(
                id: $0.int(0),
                atMs: $0.int(1),
                login: $0.text(2),
                displayName: $0.text(3),
                caseID: $0.text(4),
                what: $0.text(5),
                via: $0.text(6)
            )
        }
    }

    // MARK: Secrets under the node's key

    private func sealedStaffSecret(_ plain: [UInt8], staffID: Int64) throws(StoreError) -> [UInt8] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        return try sealer.sealStaffSecret(plain, staffID: staffID)
    }

    private func openedStaffSecret(_ sealed: [UInt8], staffID: Int64) throws(StoreError) -> [UInt8] {
        guard let sealer else { throw StoreError("this connection was opened without the data key") }
        return try sealer.openStaffSecret(sealed, staffID: staffID)
    }
}

extension RecordSealer {
    static func staffSecret(_ staffID: Int64) -> [UInt8] { Array("staff-totp/\(staffID)".utf8) }

    func sealStaffSecret(_ plain: [UInt8], staffID: Int64) throws(StoreError) -> [UInt8] {
        do { return try Sealing.seal(plain, key: keyEncryptionKey, context: Self.staffSecret(staffID)) } catch {
            throw StoreError("\(error)")
        }
    }

    func openStaffSecret(_ sealed: [UInt8], staffID: Int64) throws(StoreError) -> [UInt8] {
        do { return try Sealing.open(sealed, key: keyEncryptionKey, context: Self.staffSecret(staffID)) } catch {
            throw StoreError("a staff account's second-factor secret does not open: is this the node's data key file?")
        }
    }

    /// Every account's TOTP secret sealed under `next` instead (the data key is rotating).
    func resealStaffSecrets(to next: RecordSealer, _ db: Database) throws(StoreError) {
        for row in try db.query("SELECT staff_id, totp_secret FROM staff WHERE totp_secret IS NOT NULL") {
            let plain = try openStaffSecret(row.blob(1), staffID: row.int(0))
            try db.query(
                "UPDATE staff SET totp_secret = ? WHERE staff_id = ?",
                [.blob(try next.sealStaffSecret(plain, staffID: row.int(0))), .int(row.int(0))]
            )
        }
    }
}
