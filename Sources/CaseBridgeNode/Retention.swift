import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeText

/// Retention with crypto-shredding: when a closed case's time is up (and no one holds it), its data
/// key is deleted and what it sealed emptied. The case keeps its statuses, counts and audit. The
/// rule runs at start (so a restored old backup is brought back under it) and every interval.
extension CaseTracker {
    /// Purges what is due now; returns the number of cases purged.
    @discardableResult
    func purgeDue(_ settings: RetentionSettings) async throws -> Int {
        var purged = 0
        while true {
            let batch: Int = try await store.write { db in
                let now = Clock.nowMs()
                let due = try db.duePurges(
                    closedBeforeMs: now - settings.keepMs,
                    pendingStates: Self.pendingDeliveryStates,
                    limit: 100
                )
                for caseID in due {
                    try db.purgePersonalData(caseID, atMs: now)
                    try db.appendAudit(
                        event: "case.purged",
                        actor: "retention",
                        subject: caseID,
                        outcome: "ok",
                        detail: "personal data destroyed \(settings.daysAfterClosed) days after closing",
                        atMs: now
                    )
                }
                return due.count
            }
            purged += batch
            if batch < 100 { break }
        }
        if purged > 0 {
            changes.notify()  // the duplicate scan takes the persons out of its index
            Transliteration.forgetRemembered()  // names transliterated lately, the purged ones' among them
            forgetComparedCases()
            try store.checkpoint()
            logger.notice("retention: personal data of closed cases destroyed", metadata: ["cases": "\(purged)"])
        }
        return purged
    }

    public func retention(_ request: ListRetentionRequest, settings: RetentionSettings) throws -> [RetentionEntry] {
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 10_000))
        return try store.read { db in try db.retentionRows(limit: limit).map { Self.entry($0, settings) } }
    }

    public func holdRetention(
        _ request: HoldRetentionRequest,
        settings: RetentionSettings,
        by member: StaffMember
    ) async throws -> RetentionEntry {
        let reason = request.reason.trimmingCharacters(in: .whitespaces)
        guard !request.hold || !reason.isEmpty else {
            throw RPCError(.invalidArgument, "reason: say why the case is held (e.g. a court case number)")
        }
        try await store.write { db in
            guard let row = try db.caseRow(request.caseID, withRequest: false) else {
                throw RPCError(.notFound, "no case \(request.caseID)")
            }
            guard row.purgedAtMs == nil else {
                throw RPCError(.failedPrecondition, "the personal data of case \(request.caseID) is already destroyed")
            }
            let now = Clock.nowMs()
            try db.setRetentionHold(
                request.caseID,
                reason: request.hold ? reason : nil,
                by: member.displayName,
                atMs: now
            )
            try db.appendAudit(
                event: request.hold ? "retention.held" : "retention.released",
                actor: member.auditActor,
                subject: request.caseID,
                outcome: "ok",
                detail: request.hold ? "held" : "released",
                atMs: now
            )
        }
        guard let row = try store.read({ try $0.retentionRow(request.caseID) }) else {
            throw RPCError(.notFound, "no case \(request.caseID)")
        }
        return Self.entry(row, settings)
    }

    static func entry(_ row: RetentionRow, _ settings: RetentionSettings) -> RetentionEntry {
        var entry = RetentionEntry()
        entry.caseID = row.caseID
        entry.status = CaseStatus(rawValue: row.status)
        entry.closedAtMs = row.closedAtMs
        entry.dueAtMs = row.closedAtMs > 0 ? row.closedAtMs + settings.keepMs : 0
        entry.purgedAtMs = row.purgedAtMs ?? 0
        entry.held = row.holdReason != nil
        entry.holdReason = row.holdReason ?? ""
        entry.heldBy = row.heldBy
        entry.heldAtMs = row.heldAtMs
        return entry
    }
}
