import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import Logging
import Synchronization

/// Delivers what this node owes one peer, oldest first, one message at a time so that the
/// peer receives them in order. A message that fails in a way a retry can fix waits with
/// exponential backoff and jitter, for as long as it takes; one the peer refuses for good is
/// marked rejected with the peer's reason, and the next one goes.
final class DeliveryWorker: Sendable {
    let peer: DirectoryEntry
    private let channel: RPCChannel

    /// New trust material after a reload: the next connection to the peer uses it.
    func replaceTLS(_ tls: TLSContext) { channel.replaceTLS(tls) }
    private let tracker: CaseTracker
    private let settings: DeliverySettings
    private let logger: Logger
    private let readLimits: ProtoLimits
    private let doorbell = Doorbell()
    private let link = Mutex(PeerLink())

    struct PeerLink {
        var reachable = false
        var lastContactAtMs: Int64 = 0
        var lastError = ""
        /// When the peer first could not be reached since it last answered; 0 while it answers.
        var failingSinceMs: Int64 = 0
    }

    init(
        peer: DirectoryEntry,
        channel: RPCChannel,
        tracker: CaseTracker,
        settings: DeliverySettings,
        readLimits: ProtoLimits,
        logger: Logger
    ) {
        self.peer = peer
        self.readLimits = readLimits
        self.channel = channel
        self.tracker = tracker
        self.settings = settings
        self.logger = logger
    }

    /// Something new may be due (a commit queued a message, or the node is stopping).
    func nudge() { doorbell.ring() }

    var status: PeerLink { link.withLock { $0 } }

    /// The peer answered: reachable now, whatever it said.
    private func answered() { link.withLock { $0 = PeerLink(reachable: true, lastContactAtMs: Clock.nowMs()) } }

    /// Delivers until cancelled; meanwhile catches up with the peer (after a restore) beside it, so
    /// that taking back thousands of cases never holds a new request back.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.catchUpUntilDone() }
            group.addTask { await self.deliverUntilCancelled() }
        }
        channel.close()
    }

    private func catchUpUntilDone() async {
        while !Task.isCancelled {
            do {
                try await catchUp()
                // The peer answered: it is reachable, whatever the outbox holds for it.
                answered()
                return
            } catch {
                logger.info(
                    "catching up with a peer failed; trying again later",
                    metadata: ["peer": "\(peer.id)", "error": "\(error)"]
                )
                try? await Task.sleep(for: .seconds(30))
            }
        }
    }

    private func deliverUntilCancelled() async {
        while !Task.isCancelled {
            let head: OutboxRow?
            do {
                head = try tracker.store.read {
                    try $0.outboxNext(peer: peer.id, pendingStates: CaseTracker.pendingDeliveryStates)
                }
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
    }

    private func attempt(_ message: OutboxRow) async {
        do {
            var receiptStatus: CaseStatus? = nil
            let signed: SignedReceipt?
            if message.kind == CaseTracker.MessageKind.request.rawValue {
                let request = try ProtoCodec.decode(InterventionRequest.self, from: message.body)
                let receipt = try await channel.unary(
                    CaseExchange.submitRequest,
                    request,
                    timeout: settings.callTimeout
                )
                receiptStatus = receipt.status
                signed = receipt.signed
            } else {
                signed = try await push(try ProtoCodec.decode(CaseUpdate.self, from: message.body)).signed
            }
            answered()
            try await tracker.delivered(message, receiptStatus: receiptStatus)
            // Proof of what the peer acknowledged: kept apart from the delivery, which already counts.
            do { try await tracker.keepReceipt(signed, for: message) } catch {
                logger.error("a signed receipt could not be kept", metadata: ["message": "\(message.messageID)"])
            }
        } catch let error as RPCError {
            // An embassy that lacks a case it filed lost it (restored from a backup): it takes the case
            // back from NCCT when it catches up, and then this update applies.
            let lostCase =
                error.code == .notFound && tracker.me.role == .ncct
                && message.kind == CaseTracker.MessageKind.update.rawValue
            let retry = Self.isRetryable(error) || lostCase
            link.withLock { link in
                link.reachable = error.code != .unavailable && error.code != .deadlineExceeded
                if link.reachable {
                    link.lastContactAtMs = Clock.nowMs()
                    link.failingSinceMs = 0
                } else if link.failingSinceMs == 0 {
                    link.failingSinceMs = Clock.nowMs()
                }
                link.lastError = error.description
            }
            let next = retry ? Clock.nowMs() + backoff(attempt: message.attempts + 1) : 0
            logger.info(
                retry ? "delivery will be retried" : "delivery rejected by peer",
                metadata: [
                    "peer": "\(peer.id)", "message": "\(message.messageID)", "code": "\(error.code)",
                    "attempts": "\(message.attempts + 1)",
                ]
            )
            do { try await tracker.deliveryFailed(message, error: error, retryAtMs: retry ? next : nil) } catch {
                logger.error("delivery outcome not recorded", metadata: ["error": "\(error)"])
                await doorbell.wait(timeout: .seconds(1))
            }
        } catch {
            logger.error(
                "delivery failed",
                metadata: [
                    "peer": "\(peer.id)", "message": "\(message.messageID)",
                    "error-type": "\(type(of: error))",
                ]
            )
            await doorbell.wait(timeout: .seconds(1))
        }
    }

    /// Resynchronisation after a restore: takes from the peer what it delivered that this node no
    /// longer has (see `CaseTracker.catchUp`). Runs at start, and until it succeeds. It pages
    /// through the peer's list, so no number of changed cases is cut off, then looks once more at
    /// what the peer changed meanwhile (a case that moved to the front of the list while it paged).
    private func catchUp() async throws {
        let first = try await catchUpPass(since: try tracker.catchUpSince(peer: peer))
        let again = try await catchUpPass(since: first.newestMs)
        let (cases, entries) = (first.cases + again.cases, first.entries + again.entries)
        if entries > 0 {
            logger.notice(
                "caught up with a peer: took back what it had delivered and this node had lost",
                metadata: ["peer": "\(peer.id)", "cases": "\(cases)", "entries": "\(entries)"]
            )
        }
    }

    /// One walk through the cases the peer changed at or after `since`, a page at a time.
    private func catchUpPass(since: Int64) async throws -> (cases: Int, entries: Int, newestMs: Int64) {
        var list = ListCasesRequest()
        list.updatedSinceMs = since
        list.limit = settings.catchUpPage
        var (cases, entries, newestMs) = (0, 0, since)
        while !Task.isCancelled {
            var behind: [String] = []
            var last: CaseSummary?
            var listed = 0
            let stream = channel.streaming(CaseExchange.listCases, [list], timeout: settings.callTimeout * 4)
            for try await summary in stream {
                listed += 1
                last = summary
                newestMs = max(newestMs, summary.updatedAtMs)
                if try tracker.isBehind(summary, peer: peer) { behind.append(summary.caseID) }
            }
            for caseID in behind {
                var get = GetCaseRequest()
                get.caseID = caseID
                let bytes = try await channel.unaryEncoded(CaseExchange.getCase, get, timeout: settings.callTimeout)
                entries += try await tracker.catchUp(caseBytes: bytes, from: peer, limits: readLimits)
            }
            cases += behind.count
            // A short page is the last; so is a page that ends where the one before did (a peer that
            // does not know the cursor sends its first page again).
            guard listed == Int(settings.catchUpPage), let last, last.caseID != list.after?.caseID else { break }
            var cursor = ListCasesCursor()
            cursor.updatedAtMs = last.updatedAtMs
            cursor.caseID = last.caseID
            list.after = cursor
        }
        return (cases, entries, newestMs)
    }

    /// Pushes an update; if the peer lacks its case or earlier updates, first gives it what it
    /// lacks (once per attempt).
    private func push(_ update: CaseUpdate) async throws -> UpdateReceipt {
        do {
            return try await pushClosingGap(update)
        } catch let error as RPCError where error.code == .notFound && tracker.me.role == .embassy {
            try await resubmitRequest(of: update.caseID)
            return try await pushClosingGap(update)
        }
    }

    private func pushClosingGap(_ update: CaseUpdate) async throws -> UpdateReceipt {
        do {
            return try await channel.unary(CaseExchange.pushUpdate, update, timeout: settings.callTimeout)
        } catch let error as RPCError {
            guard let expected = Self.expectedSequence(error), expected < update.sequence else { throw error }
            var closed = update
            closed.skippedSequences = try await resend(update.caseID, sequences: expected...(update.sequence - 1))
            return try await channel.unary(CaseExchange.pushUpdate, closed, timeout: settings.callTimeout)
        }
    }

    /// Sends this node's earlier updates to the case again, in order, from its history; returns the
    /// trailing sequences it gave up on (rejected or cancelled), which the next update names as skipped.
    private func resend(_ caseID: String, sequences: ClosedRange<UInt64>) async throws -> [UInt64] {
        let earlier = try tracker.earlierUpdates(caseID, sequences: sequences, peer: peer.id)
        var skipped: [UInt64] = []
        for (entry, abandoned) in earlier {
            if abandoned {
                skipped.append(entry.sequence)
                continue
            }
            var update = try ProtoCodec.decode(CaseUpdate.self, from: entry.body)
            update.skippedSequences = skipped
            do {
                _ = try await channel.unary(CaseExchange.pushUpdate, update, timeout: settings.callTimeout)
                skipped = []
            } catch let error as RPCError where !Self.isRetryable(error) {
                // Refused for good: the peer took the number with its refusal, or never will.
                skipped.append(entry.sequence)
            }
            logger.info(
                "update sent again to a peer that lacked it",
                metadata: ["peer": "\(peer.id)", "message": "\(entry.updateID)", "sequence": "\(entry.sequence)"]
            )
        }
        return skipped
    }

    /// The peer's signed directory, over this worker's connection (NCCT's, for an embassy).
    func fetchDirectory(have version: Int64) async throws -> SignedDirectory {
        var request = GetDirectoryRequest()
        request.haveVersion = version
        return try await channel.unary(CaseExchange.getDirectory, request, timeout: settings.callTimeout)
    }

    /// Lodges this node's audit checkpoint with the peer, over this worker's connection.
    func lodgeCheckpoint(_ checkpoint: SignedCheckpoint) async throws -> LodgedCheckpoint {
        try await channel.unary(CaseExchange.lodgeCheckpoint, checkpoint, timeout: settings.callTimeout)
    }

    /// The peer no longer has a case this embassy filed (restored from an older backup): file it again.
    private func resubmitRequest(of caseID: String) async throws {
        guard let body = try tracker.store.read({ try $0.caseRow(caseID)?.request }) else {
            throw RPCError(.notFound, "no case \(caseID) here either")
        }
        let request = try ProtoCodec.decode(InterventionRequest.self, from: body)
        _ = try await channel.unary(CaseExchange.submitRequest, request, timeout: settings.callTimeout)
        logger.info(
            "request filed again with a peer that lacked it",
            metadata: ["peer": "\(peer.id)", "case": "\(caseID)"]
        )
    }

    static func expectedSequence(_ error: RPCError) -> UInt64? {
        guard error.code == .failedPrecondition else { return nil }
        return error.metadata["casebridge-expected-sequence"].flatMap { UInt64($0) }
    }

    /// Codes a later attempt may cure; a sequence gap is one (the earlier update will arrive).
    static func isRetryable(_ error: RPCError) -> Bool {
        switch error.code {
        case .unavailable, .deadlineExceeded, .aborted, .internal, .unknown, .cancelled: true
        case .failedPrecondition: error.metadata["casebridge-expected-sequence"] != nil
        default: false
        }
    }

    /// initial × multiplier^(attempt-1), at most maxBackoff, ± jitter.
    func backoff(attempt: Int) -> Int64 {
        let initial =
            Double(settings.initialBackoff.components.seconds) * 1000 + Double(
                settings.initialBackoff.components.attoseconds
            ) / 1e15
        let ceiling =
            Double(settings.maxBackoff.components.seconds) * 1000 + Double(settings.maxBackoff.components.attoseconds)
            / 1e15
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
        /// The wait whose time ran out before it began waiting: its alarm came first.
        var expired: UInt64?
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
            do { try await Task.sleep(for: timeout) } catch { return }  // cancelled: the wait has ended
            expire(generation)
        }
        await withCheckedContinuation { continuation in
            let ringNow = state.withLock { state -> Bool in
                if state.rung {
                    state.rung = false
                    return true
                }
                if state.expired == generation { return true }
                state.waiter = continuation
                return false
            }
            if ringNow { continuation.resume() }
        }
        alarm.cancel()
    }

    private func expire(_ generation: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation else { return nil }
            guard let waiter = state.waiter else {
                // The time ran out before the wait began (a short time, the alarm on another thread):
                // the wait ends as it begins, instead of sleeping until the next ring.
                state.expired = generation
                return nil
            }
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
            if receiptStatus != nil, let caseRow = try db.caseRow(message.caseID),
                caseRow.status == CaseStatus.submitted.rawValue
            {
                try db.updateCaseState(
                    caseRow.caseID,
                    status: CaseStatus.received.rawValue,
                    step: caseRow.step,
                    personCount: caseRow.personCount,
                    updatedAtMs: now
                )
            }
            try db.appendEvent(
                caseID: message.caseID,
                kind: CaseEventKind.delivery.rawValue,
                messageID: message.messageID,
                peerNode: message.peerNode,
                atMs: now
            )
            try db.appendAudit(
                event: "message.delivered",
                actor: message.peerNode,
                subject: message.messageID,
                outcome: "ok",
                detail: "case=\(message.caseID) attempts=\(row.attempts)",
                atMs: now
            )
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
            try db.appendEvent(
                caseID: message.caseID,
                kind: CaseEventKind.delivery.rawValue,
                messageID: message.messageID,
                peerNode: message.peerNode,
                atMs: now
            )
            if retryAtMs == nil {
                try db.appendAudit(
                    event: "message.rejected",
                    actor: message.peerNode,
                    subject: message.messageID,
                    outcome: error.code.description,
                    detail: error.message,
                    atMs: now
                )
            }
        }
        changes.notify()
    }

    /// This node's updates to the case with these sequences, each with whether it will never reach
    /// `peer` (its delivery was rejected or cancelled).
    func earlierUpdates(_ caseID: String, sequences: ClosedRange<UInt64>, peer: String) throws -> [(HistoryRow, Bool)] {
        try store.read { db in
            try db.historyEntries(caseID, actor: me.id, sequences: sequences).map { entry in
                let state = try db.outboxMessage(entry.updateID, peer: peer)?.state
                return (entry, state == DeliveryState.rejected.rawValue || state == DeliveryState.cancelled.rawValue)
            }
        }
    }

    /// An operator stops the retries of one message.
    public func cancelDelivery(_ request: CancelDeliveryRequest, by member: StaffMember) async throws -> Delivery {
        let row: OutboxRow = try await store.write { db in
            guard var row = try db.outboxMessage(request.messageID, peer: request.peerNode) else {
                throw RPCError(.notFound, "no message \(request.messageID) for \(request.peerNode)")
            }
            guard CaseTracker.pendingDeliveryStates.contains(row.state) else {
                throw RPCError(
                    .failedPrecondition,
                    "message \(request.messageID) is already \(DeliveryState(rawValue: row.state))"
                )
            }
            let now = Clock.nowMs()
            row.state = DeliveryState.cancelled.rawValue
            let by = "cancelled by \(member.displayName)"
            row.lastError = request.reason.isEmpty ? by : "\(by): \(request.reason)"
            try db.updateOutbox(row)
            try db.appendEvent(
                caseID: row.caseID,
                kind: CaseEventKind.delivery.rawValue,
                messageID: row.messageID,
                peerNode: row.peerNode,
                atMs: now
            )
            try db.appendAudit(
                event: "message.cancelled",
                actor: member.auditActor,
                subject: row.messageID,
                outcome: "ok",
                detail: "peer=\(row.peerNode)",
                atMs: now
            )
            return row
        }
        changes.notify()
        outboxChanged(request.peerNode)
        return Self.delivery(row)
    }
}
