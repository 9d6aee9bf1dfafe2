import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// Reading cases, as staff or a peer may see them.
extension CaseTracker {
    /// NCCT's staff and node see every case; an embassy sees only the cases it opened.
    func mayRead(_ row: CaseRow, _ viewer: Viewer) -> Bool {
        switch viewer {
        case .staff: true
        case .peer(let peer): peer.role == .ncct || peer.id == row.requestingNode
        }
    }

    /// The case as `GetCase` returns it, encoded: the request and every update exactly as this
    /// node stored them (fields a newer sender added included) around the state it keeps.
    public func caseBytes(_ caseID: String, for viewer: Viewer) throws -> [UInt8] {
        try store.read { db in
            guard let row = try db.caseRow(caseID) else { throw RPCError(.notFound, "no case \(caseID)") }
            guard mayRead(row, viewer) else {
                throw RPCError(.permissionDenied, "case \(caseID) belongs to another embassy")
            }
            var view = Case()
            view.caseID = row.caseID
            view.status = CaseStatus(rawValue: row.status)
            view.step = BusinessStep(rawValue: row.step)
            view.persons = try state(row, db).persons
            view.outcomeCounts = Lifecycle.outcomeCounts(view.persons)
            view.deliveries = try db.outbox(caseID: caseID).map(Self.delivery)
            view.requestingNode = row.requestingNode
            view.createdAtMs = row.createdAtMs
            view.updatedAtMs = row.updatedAtMs
            // After retention, the request and the updates' contents are gone; what they did remains.
            view.personalDataPurgedAtMs = row.purgedAtMs ?? 0
            let kept = row.purgedAtMs == nil
            var bytes = try ProtoCodec.encode(view)
            if kept { RawFields.append(Self.caseRequestField, row.request, to: &bytes) }
            let history = try db.history(caseID)
            for entry in history where entry.isApplied && kept {
                RawFields.append(Self.caseHistoryField, entry.body, to: &bytes)
            }
            for entry in history where !entry.isApplied {
                var refused = try ProtoCodec.encode(Self.refusedUpdate(entry))
                if !entry.isSkipped && kept { RawFields.append(Self.refusedUpdateField, entry.body, to: &refused) }
                RawFields.append(Self.caseRefusedField, refused, to: &bytes)
            }
            return bytes
        }
    }

    // Field numbers of casebridge.v1.Case and RefusedUpdate that carry stored bytes.
    static let caseRequestField = 2, caseHistoryField = 7, caseRefusedField = 12, refusedUpdateField = 7

    /// A refused (or skipped) entry, without the update itself.
    static func refusedUpdate(_ entry: HistoryRow) -> RefusedUpdate {
        var refused = RefusedUpdate()
        refused.actorNode = entry.actor
        refused.sequence = entry.sequence
        refused.refusedAtMs = entry.atMs
        refused.reason = entry.refusal
        refused.code = entry.isSkipped ? "SKIPPED" : RPCCode(rawValue: Int(entry.refusalCode)).description
        if !entry.isSkipped { refused.updateID = entry.updateID }
        return refused
    }

    public func summaries(_ request: ListCasesRequest, for viewer: Viewer) throws -> [CaseSummary] {
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 10_000))
        let after = try request.after.map { cursor throws(RPCError) in
            guard Validation.isUUID(cursor.caseID) else {
                throw RPCError(.invalidArgument, "after.case_id is not a case id; give the last summary of a page")
            }
            return (updatedAtMs: cursor.updatedAtMs, caseID: cursor.caseID)
        }
        let requester: String? = if case .peer(let peer) = viewer, peer.role == .embassy { peer.id } else { nil }
        return try store.read { db in
            try db.cases(
                statuses: request.statuses.map(\.rawValue),
                updatedSinceMs: request.updatedSinceMs,
                after: after,
                requestingNode: requester,
                limit: limit,
                includeTests: !viewer.isStaff
            )
            .map { try summary($0, db) }
        }
    }

    /// One page of a staff list screen, with the number of cases that match in all.
    public func casePage(_ request: FindCasesRequest) throws -> CasePage {
        var filter = CaseFilter()
        filter.statuses = request.statuses.map(\.rawValue)
        filter.steps = request.steps.map(\.rawValue)
        filter.kinds = request.kinds.map(\.rawValue)
        filter.urgencies = request.urgencies.map(\.rawValue)
        filter.requestingNode = request.requestingNode.isEmpty ? nil : request.requestingNode
        filter.createdSinceMs = request.createdSinceMs
        filter.createdUntilMs = request.createdUntilMs
        filter.updatedSinceMs = request.updatedSinceMs
        filter.updatedUntilMs = request.updatedUntilMs
        filter.includeTests = request.includeTests
        let order: CaseFilter.Order =
            switch request.order {
            case .updatedOldest: .updatedOldest
            case .createdNewest: .createdNewest
            case .createdOldest: .createdOldest
            case .urgency: .urgency
            default: .updatedNewest
            }
        let limit = request.limit == 0 ? 50 : Int(min(request.limit, 500))
        return try store.read { db in
            let found = try db.casePage(filter, order: order, offset: Int(request.offset), limit: limit)
            var page = CasePage()
            page.cases = try found.rows.map { try summary($0, db) }
            page.total = UInt32(clamping: found.total)
            page.offset = request.offset
            return page
        }
    }

    func summary(_ row: CaseRow, _ db: Database) throws -> CaseSummary {
        var summary = CaseSummary()
        summary.caseID = row.caseID
        summary.requestingNode = row.requestingNode
        summary.kind = RequestKind(rawValue: row.kind)
        summary.urgency = Urgency(rawValue: row.urgency)
        summary.status = CaseStatus(rawValue: row.status)
        summary.step = BusinessStep(rawValue: row.step)
        summary.personCount = UInt32(row.personCount)
        // Kept with the case: a list never counts a 5,000-person case's persons again.
        let counts =
            try row.personCounts.map(Lifecycle.counts(kept:))
            ?? db.personStatusCounts(row.caseID).map { (PersonStatus(rawValue: $0), $1) }
        summary.outcomeCounts = Lifecycle.outcomeCounts(Dictionary(uniqueKeysWithValues: counts))
        summary.createdAtMs = row.createdAtMs
        summary.updatedAtMs = row.updatedAtMs
        summary.originReference = row.originReference
        summary.test = row.test
        summary.ncctSequence = try db.lastSequence(row.caseID, actor: directory.ncct.id)
        summary.embassySequence = try db.lastSequence(row.caseID, actor: row.requestingNode)
        return summary
    }

    /// The inbox as one staff account sees it: "read" means read by that account.
    public func inbox(_ request: ListInboxRequest, for member: StaffMember) throws -> [InboxEntry] {
        let limit = request.limit == 0 ? 100 : Int(min(request.limit, 10_000))
        return try store.read { db in
            try db.inbox(
                unreadOnly: request.unreadOnly,
                limit: limit,
                offset: Int(min(request.offset, 100_000)),
                staffID: member.staffID
            ).map { row in
                var entry = InboxEntry()
                entry.entryID = UInt64(row.entryID)
                entry.kind = InboxEntryKind(rawValue: row.kind)
                entry.messageID = row.messageID
                entry.caseID = row.caseID
                entry.fromNode = row.fromNode
                entry.receivedAtMs = row.receivedAtMs
                entry.read = row.readAtMs != nil
                entry.readBy = row.readBy
                if let caseRow = try db.caseRow(row.caseID, withRequest: false) {
                    entry.summary = try summary(caseRow, db)
                }
                if entry.kind == .update, let recorded = try db.historyEntry(updateID: row.messageID) {
                    entry.update = try ProtoCodec.decode(CaseUpdate.self, from: recorded.body)
                    if !recorded.isApplied {
                        entry.refusal = "\(RPCCode(rawValue: Int(recorded.refusalCode))): \(recorded.refusal)"
                    }
                }
                return entry
            }
        }
    }

    /// Marks entries read for one staff account: those named, every one up to an id, or all.
    public func markRead(_ request: MarkReadRequest, by member: StaffMember) async throws -> MarkReadReply {
        var ids: [Int64] = []
        for (i, id) in request.entryIDs.enumerated() {
            ids.append(try Validation.storedID(id, field: "entry_ids[\(i)]"))
        }
        let upTo = request.all ? Int64.max : try Validation.storedID(request.upToEntryID, field: "up_to_entry_id")
        let marked = try await store.write { [ids] db in
            try db.markRead(ids, upTo: upTo, staffID: member.staffID, atMs: Clock.nowMs())
        }
        var reply = MarkReadReply()
        reply.marked = UInt32(marked)
        return reply
    }

    /// Events after `eventID` that `viewer` may see, with the case as it is now.
    func events(after eventID: Int64, for viewer: Viewer) throws -> (events: [CaseEvent], last: Int64) {
        try store.read { db in
            let rows = try db.events(after: eventID, limit: 500)
            var events: [CaseEvent] = []
            for row in rows {
                guard let caseRow = try db.caseRow(row.caseID, withRequest: false), mayRead(caseRow, viewer),
                    !(caseRow.test && viewer.isStaff)
                else {
                    continue
                }
                var event = CaseEvent()
                event.eventID = UInt64(row.eventID)
                event.kind = CaseEventKind(rawValue: row.kind)
                event.caseID = row.caseID
                event.summary = try summary(caseRow, db)
                event.occurredAtMs = row.atMs
                if [.updated, .refused].contains(event.kind), let body = try db.historyBody(updateID: row.messageID) {
                    event.update = try ProtoCodec.decode(CaseUpdate.self, from: body)
                }
                if event.kind == .delivery, let delivery = try db.outboxMessage(row.messageID, peer: row.peerNode) {
                    event.delivery = Self.delivery(delivery)
                }
                if event.kind == .deadline { event.deadline = deadline(marker: row.messageID, caseRow) }
                events.append(event)
            }
            return (events, rows.last?.eventID ?? eventID)
        }
    }

    func lastEventID() throws -> Int64 { try store.read { try $0.lastEventID() } }

    static func delivery(_ row: OutboxRow) -> Delivery {
        var delivery = Delivery()
        delivery.messageID = row.messageID
        delivery.peerNode = row.peerNode
        delivery.state = DeliveryState(rawValue: row.state)
        delivery.attempts = UInt32(row.attempts)
        delivery.lastError = row.lastError
        delivery.queuedAtMs = row.queuedAtMs
        delivery.nextAttemptAtMs = row.nextAttemptAtMs
        delivery.deliveredAtMs = row.deliveredAtMs
        return delivery
    }

    public func verifyAudit() throws -> CaseBridgeProto.AuditVerification {
        // In chunks, each in its own read transaction: checkpoints go on during a long walk.
        var walk = AuditWalk()
        while try store.read({ try $0.continueAudit(&walk) }) {}
        let result = walk.result
        var verification = CaseBridgeProto.AuditVerification()
        verification.intact = result.intact
        verification.entries = UInt64(result.entries)
        verification.firstBadEntry = UInt64(result.firstBadSeq)
        verification.detail = result.detail
        return verification
    }
}
