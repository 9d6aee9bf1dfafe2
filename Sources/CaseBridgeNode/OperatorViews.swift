import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// What operators read and do beyond cases: the audit log, and retrying deliveries now.
extension CaseTracker {
    public func auditLog(_ request: ListAuditRequest) throws -> [AuditLogEntry] {
        let limit = request.limit == 0 ? 50 : Int(min(request.limit, 10_000))
        let before = try Validation.storedID(request.beforeSeq, field: "before_seq")
        var filter = Database.AuditFilter()
        filter.event = request.event
        filter.actor = request.actor
        filter.subject = request.subject
        filter.sinceMs = request.sinceMs
        filter.untilMs = request.untilMs
        return try store.read { db in
            try db.auditEntries(limit: limit, beforeSeq: before, filter: filter).map { row in
                var entry = AuditLogEntry()
                entry.seq = UInt64(row.seq)
                entry.atMs = row.atMs
                entry.event = row.event
                entry.actor = row.actor
                entry.subject = row.subject
                entry.outcome = row.outcome
                entry.detail = row.detail
                return entry
            }
        }
    }

    /// Every message waiting for a retry (to one peer, or all) is due now; the delivery workers
    /// are woken. An outage over, nobody waits for the next backoff (up to 5 minutes).
    public func deliverNow(_ request: DeliverNowRequest, by member: StaffMember) async throws -> DeliverNowReply {
        let peers = request.peerNode.isEmpty ? directory.nodes.map(\.id).filter { $0 != me.id } : [request.peerNode]
        guard request.peerNode.isEmpty || directory.node(request.peerNode) != nil else {
            throw RPCError(.notFound, "no node \(request.peerNode) in the directory")
        }
        let count: Int = try await store.write { db in
            let now = Clock.nowMs()
            var count = 0
            for peer in peers {
                count += try db.retryNow(peer: peer, waitingState: DeliveryState.retryWaiting.rawValue, atMs: now)
            }
            try db.appendAudit(
                event: "delivery.retry_now",
                actor: member.auditActor,
                subject: request.peerNode.isEmpty ? "all peers" : request.peerNode,
                outcome: "ok",
                detail: "messages=\(count)",
                atMs: now
            )
            return count
        }
        for peer in peers { outboxChanged(peer) }
        var reply = DeliverNowReply()
        reply.messages = UInt32(clamping: count)
        return reply
    }
}
