import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import Logging
import Synchronization

/// Delivers what this node owes one peer, oldest first, one message at a time so that the
/// peer receives them in order. A message that fails in a way a retry can fix waits with
/// exponential backoff and jitter, for as long as it takes; one the peer refuses for good is
/// marked rejected with the peer's reason, and the next one goes.
final class DeliveryWorker: Sendable {
    let peer: DirectoryEntry
    private let channel: RPCChannel
    private let tracker: CaseTracker
    private let settings: DeliverySettings
    private let logger: Logger
    private let doorbell = Doorbell()
    private let link = Mutex(PeerLink())

    struct PeerLink {
        var reachable = false
        var lastContactAtMs: Int64 = 0
        var lastError = ""
    }

    init(peer: DirectoryEntry, channel: RPCChannel, tracker: CaseTracker, settings: DeliverySettings, logger: Logger) {
        self.peer = peer
        self.channel = channel
        self.tracker = tracker
        self.settings = settings
        self.logger = logger
    }

    /// Something new may be due (a commit queued a message, or the node is stopping).
    func nudge() { doorbell.ring() }

    var status: PeerLink { link.withLock { $0 } }

    func run() async {
        while !Task.isCancelled {
            let head: OutboxRow?
            do {
                head = try tracker.store.read { try $0.outboxHead(peer: peer.id, pendingStates: CaseTracker.pendingDeliveryStates) }
            } catch {
                logger.error("outbox unreadable", metadata: ["peer": "\(peer.id)", "error": "\(error)"])
                await doorbell.wait(timeout: .seconds(5))
                continue
            }
            guard let head else {
                await doorbell.wait(timeout: .seconds(60))
                continue
            }
            let wait = head.nextAttemptAtMs - Clock.nowMs()
            if wait > 0 {
                await doorbell.wait(timeout: .milliseconds(wait))
                continue
            }
            await attempt(head)
        }
        channel.close()
    }

    private func attempt(_ message: OutboxRow) async {
        do {
            var receiptStatus: CaseStatus? = nil
            if message.kind == CaseTracker.MessageKind.request.rawValue {
                let request = try ProtoCodec.decode(InterventionRequest.self, from: message.body)
                receiptStatus = try await channel.unary(CaseExchange.submitRequest, request, timeout: settings.callTimeout).status
            } else {
                let update = try ProtoCodec.decode(CaseUpdate.self, from: message.body)
                _ = try await channel.unary(CaseExchange.pushUpdate, update, timeout: settings.callTimeout)
            }
            link.withLock { $0 = PeerLink(reachable: true, lastContactAtMs: Clock.nowMs(), lastError: "") }
            try await tracker.delivered(message, receiptStatus: receiptStatus)
        } catch var error as RPCError {
            var retry = Self.isRetryable(error)
            // A gap the peer can never close (the missing update was rejected or cancelled) would
            // block this peer's whole queue forever; the later update is rejected too, and the queue moves on.
            if retry, let expected = error.metadata["casebridge-expected-sequence"].flatMap(UInt64.init),
               (try? tracker.isAbandoned(caseID: message.caseID, sequence: expected, peer: peer.id)) == true {
                retry = false
                error = RPCError(.failedPrecondition, "update \(expected) of case \(message.caseID) was rejected or cancelled, so this later one cannot apply")
            }
            link.withLock { link in
                link.reachable = error.code != .unavailable && error.code != .deadlineExceeded
                if link.reachable { link.lastContactAtMs = Clock.nowMs() }
                link.lastError = error.description
            }
            let next = retry ? Clock.nowMs() + backoff(attempt: message.attempts + 1) : 0
            logger.info(retry ? "delivery will be retried" : "delivery rejected by peer",
                        metadata: ["peer": "\(peer.id)", "message": "\(message.messageID)", "code": "\(error.code)", "attempts": "\(message.attempts + 1)"])
            do { try await tracker.deliveryFailed(message, error: error, retryAtMs: retry ? next : nil) } catch {
                logger.error("delivery outcome not recorded", metadata: ["error": "\(error)"])
                await doorbell.wait(timeout: .seconds(1))
            }
        } catch {
            logger.error("delivery failed", metadata: ["peer": "\(peer.id)", "message": "\(message.messageID)", "error-type": "\(type(of: error))"])
            await doorbell.wait(timeout: .seconds(1))
        }
    }

    /// Codes a later attempt may cure; a sequence gap is one (the earlier update will arrive).
    static func isRetryable(_ error: RPCError) -> Bool {
        switch error.code {
        case .unavailable, .deadlineExceeded, .resourceExhausted, .aborted, .internal, .unknown, .cancelled: true
        case .failedPrecondition: error.metadata["casebridge-expected-sequence"] != nil
        default: false
        }
    }

    /// initial × multiplier^(attempt-1), at most maxBackoff, ± jitter.
    func backoff(attempt: Int) -> Int64 {
        let initial = Double(settings.initialBackoff.components.seconds) * 1000 + Double(settings.initialBackoff.components.attoseconds) / 1e15
        let ceiling = Double(settings.maxBackoff.components.seconds) * 1000 + Double(settings.maxBackoff.components.attoseconds) / 1e15
        var delay = initial
        for _ in 1..<max(1, attempt) where delay < ceiling { delay *= settings.multiplier }
        delay = min(delay, ceiling) * Double.random(in: (1 - settings.jitter)...(1 + settings.jitter))
        return Int64(delay)
    }
}

/// Wakes one waiting task, or the next one to wait. A wait's time-out wakes only that wait, so a
/// late timer never rings for a later one.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when rung (now or earlier) or after `timeout`.
    func wait(timeout: Duration) async {
        let generation = state.withLock { state -> UInt64 in
            state.generation += 1
            return state.generation
        }
        let alarm = Task { [self] in
            try? await Task.sleep(for: timeout)
            expire(generation)
        }
        await withCheckedContinuation { continuation in
            let ringNow = state.withLock { state -> Bool in
                if state.rung {
                    state.rung = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if ringNow { continuation.resume() }
        }
        alarm.cancel()
    }

    private func expire(_ generation: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}

/// Outcomes of deliveries, recorded by the tracker.
extension CaseTracker {
    func delivered(_ message: OutboxRow, receiptStatus: CaseStatus?) async throws {
        try await store.write { db in
            let now = Clock.nowMs()
            var row = message
            row.state = DeliveryState.delivered.rawValue
            row.attempts += 1
            row.deliveredAtMs = now
            row.lastError = ""
            try db.updateOutbox(row)
            // The receipt of a request is how the embassy learns NCCT has it.
            if receiptStatus != nil, let caseRow = try db.caseRow(message.caseID), caseRow.status == CaseStatus.submitted.rawValue {
                try db.updateCaseState(caseRow.caseID, status: CaseStatus.received.rawValue, step: caseRow.step,
                                       personCount: caseRow.personCount, updatedAtMs: now)
            }
            try db.appendEvent(caseID: message.caseID, kind: CaseEventKind.delivery.rawValue, messageID: message.messageID,
                               peerNode: message.peerNode, atMs: now)
            try db.appendAudit(event: "message.delivered", actor: message.peerNode, subject: message.messageID, outcome: "ok",
                               detail: "case=\(message.caseID) attempts=\(row.attempts)", atMs: now)
        }
        changes.notify()
    }

    /// `retryAtMs` nil: the peer refused it for good.
    func deliveryFailed(_ message: OutboxRow, error: RPCError, retryAtMs: Int64?) async throws {
        try await store.write { db in
            let now = Clock.nowMs()
            var row = message
            row.attempts += 1
            row.lastError = error.description
            row.state = retryAtMs == nil ? DeliveryState.rejected.rawValue : DeliveryState.retryWaiting.rawValue
            row.nextAttemptAtMs = retryAtMs ?? 0
            try db.updateOutbox(row)
            try db.appendEvent(caseID: message.caseID, kind: CaseEventKind.delivery.rawValue, messageID: message.messageID,
                               peerNode: message.peerNode, atMs: now)
            if retryAtMs == nil {
                try db.appendAudit(event: "message.rejected", actor: message.peerNode, subject: message.messageID,
                                   outcome: error.code.description, detail: error.message, atMs: now)
            }
        }
        changes.notify()
    }

    /// Whether this node's update `sequence` to the case will never reach `peer` (rejected or cancelled).
    func isAbandoned(caseID: String, sequence: UInt64, peer: String) throws -> Bool {
        try store.read { db in
            guard let updateID = try db.historyUpdateID(caseID, actor: me.id, sequence: sequence),
                  let row = try db.outboxMessage(updateID, peer: peer) else { return false }
            return row.state == DeliveryState.rejected.rawValue || row.state == DeliveryState.cancelled.rawValue
        }
    }

    /// An operator stops the retries of one message.
    public func cancelDelivery(_ request: CancelDeliveryRequest) async throws -> Delivery {
        let row: OutboxRow = try await store.write { db in
            guard var row = try db.outboxMessage(request.messageID, peer: request.peerNode) else {
                throw RPCError(.notFound, "no message \(request.messageID) for \(request.peerNode)")
            }
            guard CaseTracker.pendingDeliveryStates.contains(row.state) else {
                throw RPCError(.failedPrecondition, "message \(request.messageID) is already \(DeliveryState(rawValue: row.state))")
            }
            let now = Clock.nowMs()
            row.state = DeliveryState.cancelled.rawValue
            row.lastError = request.reason.isEmpty ? "cancelled by an operator" : "cancelled by an operator: \(request.reason)"
            try db.updateOutbox(row)
            try db.appendEvent(caseID: row.caseID, kind: CaseEventKind.delivery.rawValue, messageID: row.messageID, peerNode: row.peerNode, atMs: now)
            try db.appendAudit(event: "message.cancelled", actor: "console", subject: row.messageID, outcome: "ok",
                               detail: "peer=\(row.peerNode)", atMs: now)
            return row
        }
        changes.notify()
        outboxChanged(request.peerNode)
        return Self.delivery(row)
    }
}
