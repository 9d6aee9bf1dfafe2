import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// The access log: every time a staff account is shown a case's personal data, who, which case,
/// when, what and through what. Written before the data is sent, so nothing is shown unrecorded.
extension CaseTracker {
    func recordAccess(_ caseIDs: [String], what: String, by member: StaffMember) async throws {
        guard member.seesPersonalData, !caseIDs.isEmpty else { return }
        try await store.write { db in
            let now = Clock.nowMs()
            for caseID in caseIDs {
                try db.appendAccess(staffID: member.staffID, caseID: caseID, what: what, via: member.via, atMs: now)
            }
        }
    }

    public func accessLog(_ request: ListAccessRequest) throws -> [AccessLogEntry] {
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 10_000))
        let before = try Validation.storedID(request.beforeID, field: "before_id")
        return try store.read { db in
            try db.accessLog(
                login: request.login,
                caseID: request.caseID,
                sinceMs: request.sinceMs,
                untilMs: request.untilMs,
                beforeID: before,
                limit: limit
            ).map { row in
                var entry = AccessLogEntry()
                entry.id = UInt64(row.id)
                entry.atMs = row.atMs
                entry.login = row.login
                entry.displayName = row.displayName
                entry.caseID = row.caseID
                entry.what = row.what
                entry.via = row.via
                return entry
            }
        }
    }
}
