import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import Foundation
import Logging
import Synchronization

/// The node's cases: what it received, what its staff did, what it owes its peers. Every change is
/// one store transaction holding the case, its history, the inbox entry, the outbox message, the
/// idempotency key, the event and the audit entry; callers hear back only after it committed.
public final class CaseTracker: Sendable {
    public let me: DirectoryEntry
    /// The federation as the directory file says now (a reload replaces it).
    public var directory: Directory { directoryState.withLock { $0 } }
    private let directoryState: Mutex<Directory>
    let store: CaseStore
    let logger: Logger
    let changes = Broadcast()
    /// How far the duplicate scan has read the events, and how far the store has that written
    /// (nil until the first scan reads it from the store).
    let duplicateScan = Mutex<(read: Int64, saved: Int64)?>(nil)
    /// Duplicate detection's index of persons by term (NCCT's node; used by the scan alone).
    let matchIndex: MatchIndex?
    /// Candidates' persons as the scan compared them (`limits.duplicate_compared_cases` cases at most).
    let comparedCases: Mutex<ComparedCases>
    /// Called after a commit that queued a message for this peer.
    let outboxChanged: @Sendable (String) -> Void
    /// The request ids taken for writing (NCCT's node), so that a new request is not read for.
    let knownRequests: KnownRequests?

    init(
        me: DirectoryEntry,
        directory: Directory,
        store: CaseStore,
        logger: Logger,
        matchIndexLimits: MatchIndex.Limits = MatchIndex.Limits(),
        maxComparedCases: Int = 40_000,
        outboxChanged: @escaping @Sendable (String) -> Void
    ) throws {
        self.me = me
        matchIndex =
            me.role == .ncct
            ? try MatchIndex(folder: Self.matchIndexFolder(store.folder), limits: matchIndexLimits) : nil
        comparedCases = Mutex(ComparedCases(maxCases: maxComparedCases))
        self.directoryState = Mutex(directory)
        self.store = store
        self.logger = logger
        self.outboxChanged = outboxChanged
        knownRequests = me.role == .ncct ? KnownRequests() : nil
    }

    static func matchIndexFolder(_ dataFolder: String) -> String {
        (dataFolder as NSString).appendingPathComponent("match-index")
    }

    var matchIndexFolder: String { Self.matchIndexFolder(store.folder) }

    /// A reloaded directory: who may call this node, and whom it delivers to, from now on.
    func replaceDirectory(_ directory: Directory) { directoryState.withLock { $0 = directory } }

    /// Who is looking at cases: the node's own staff, or a peer node.
    public enum Viewer: Sendable {
        case staff
        case peer(DirectoryEntry)

        /// Staff views leave conformance test cases out.
        var isStaff: Bool { if case .staff = self { true } else { false } }
    }

    enum MessageKind: Int32 { case request = 1, update = 2 }

    static let pendingDeliveryStates = [
        DeliveryState.queued.rawValue, DeliveryState.sent.rawValue, DeliveryState.retryWaiting.rawValue,
    ]

    // MARK: Received from peers

    /// What a read found for the request id that a request's bytes name, before they are decoded.
    enum RetryLookup: Equatable {
        /// The request committed before, byte for byte (a sender's retry): its receipt again.
        case retry(SubmitReceipt)
        /// No case had this request id at the read.
        case unseen(requestID: String)
        /// For the whole check, once the request is decoded.
        case undecided
    }

    /// A sender's retry is the bytes of the request committed, which were decoded and checked then.
    /// It is told by the digest kept with the case and answered without decoding them again. The id
    /// is read where encoders put it, first; its case's digest says whether these bytes are the
    /// request committed under it. Any doubt (no caller, the id elsewhere, another node's id, a read
    /// that failed) is left to `receiveRequest`, which refuses precisely.
    func lookUpRetry(_ bytes: [UInt8], from caller: DirectoryEntry?) -> RetryLookup {
        guard let caller, me.role == .ncct, caller.role == .embassy,
            let idField = try? RawFields.leading(Self.requestIDField, in: bytes, message: InterventionRequest.protoName)
        else { return .undecided }
        let requestID = String(decoding: idField, as: UTF8.self)
        guard Validation.isUUID(requestID) else { return .undecided }
        if let knownRequests, !knownRequests.mayHold(requestID) { return .unseen(requestID: requestID) }
        let found: CaseRow?
        do { found = try store.read { try $0.caseRow(requestID, withRequest: false) } } catch { return .undecided }
        guard let existing = found else { return .unseen(requestID: requestID) }
        guard existing.requestingNode == caller.id, existing.requestSHA256 == Digest.sha256(bytes) else {
            return .undecided
        }
        return .retry(Self.receiptAgain(existing, me: me))
    }

    // The field number of casebridge.v1.InterventionRequest's request_id.
    static let requestIDField = 1

    /// A request from an embassy (at the NCCT node): stored in the inbox and tracker as `received`.
    /// `bytes` are the message as it arrived; they are stored as they are, keeping fields this
    /// version skips. `looked` is what `lookUpRetry` found. `sign` makes the receipt's proof. A new
    /// request's statement (its id, status and time) is known before the write but for the
    /// millisecond, so a lone request's proof is made while its case commits.
    func receiveRequest(
        _ request: InterventionRequest,
        bytes body: [UInt8],
        looked: RetryLookup,
        from caller: DirectoryEntry,
        signedBy sign: (SubmitReceipt) throws -> SignedReceipt
    ) async throws -> SubmitReceipt {
        guard me.role == .ncct else {
            throw RPCError(.permissionDenied, "\(me.id) is an embassy node; requests go to NCCT")
        }
        guard caller.role == .embassy else { throw RPCError(.permissionDenied, "only embassy nodes submit requests") }
        guard request.originNode == caller.id else {
            throw RPCError(.permissionDenied, "origin_node \(request.originNode) is not the caller \(caller.id)")
        }
        try Validation.check(request)
        let received = Received(request: request, body: body, sha256: Digest.sha256(body), from: caller)
        // A sender's retry of a request already committed is answered from a read: the writer, and
        // the index terms worked out for it, are for new requests. The lookup's read counts when it
        // found no case under this id.
        let me = self.me
        func signed(_ receipt: SubmitReceipt, proof: SignedReceipt? = nil) throws -> SubmitReceipt {
            var receipt = receipt
            receipt.signed = try proof ?? sign(receipt)
            return receipt
        }
        if looked != .unseen(requestID: request.requestID),
            let receipt = try store.read({ try Self.receiptAgain(for: received, me: me, $0) })
        {
            return try signed(receipt)
        }
        let index = PersonIndex(request, keys: store.termKeys)
        // The receipt as it will most likely read: the writer takes the time again (times follow the
        // order of commits), usually within the same millisecond when it runs this write alone.
        let expected = SubmitReceipt.make(request.requestID, status: .received, atMs: Clock.nowMs(), receiver: me.id)
        knownRequests?.add(request.requestID)  // before the write: no retry after it is taken for new
        let (receipt, proof) = try await store.write(lane: caller.id, bytes: body.count) { db in
            // The same request may have been committed since the read (two retries at once).
            if let receipt = try Self.receiptAgain(for: received, me: me, db) {
                return receipt
            }
            let now = Clock.nowMs()
            try Self.insertCase(
                request,
                body: body,
                bodySHA256: received.sha256,
                requestingNode: caller.id,
                status: .received,
                db,
                atMs: now,
                index: index,
                matching: me.role == .ncct
            )
            try db.insertInbox(
                kind: InboxEntryKind.request.rawValue,
                messageID: request.requestID,
                caseID: request.requestID,
                fromNode: caller.id,
                atMs: now
            )
            try db.appendEvent(
                caseID: request.requestID,
                kind: CaseEventKind.opened.rawValue,
                messageID: request.requestID,
                atMs: now
            )
            try db.appendAudit(
                event: "request.received",
                actor: caller.id,
                subject: request.requestID,
                outcome: "ok",
                detail: "persons=\(request.persons.count) kind=\(request.kind)",
                atMs: now
            )
            return SubmitReceipt.make(request.requestID, status: .received, atMs: now, receiver: me.id)
        } meanwhile: {
            try sign(expected)
        }
        changes.notify()
        // Signed now behind other writes, when the millisecond changed, and for a retry committed
        // between the read and the write (its receipt is the first one's).
        return try signed(receipt, proof: receipt == expected ? proof : nil)
    }

    /// A request as it arrived from a peer, with the SHA-256 of its bytes.
    private struct Received {
        let request: InterventionRequest
        let body: [UInt8]
        let sha256: [UInt8]
        let from: DirectoryEntry
    }

    /// The receipt for a request whose id is already committed: the same request again (a retry)
    /// is answered as received; other content under the same id is refused.
    private static func receiptAgain(
        for received: Received,
        me: DirectoryEntry,
        _ db: Database
    ) throws -> SubmitReceipt? {
        let request = received.request
        guard let existing = try db.caseRow(request.requestID, withRequest: false) else { return nil }
        guard existing.requestingNode == received.from.id else {
            throw RPCError(.alreadyExists, "request_id is already used by another node")
        }
        // Byte for byte is the usual retry, told by the digest kept with the case without opening
        // the sealed request. Another encoding of the same content is one too, and a case kept
        // without a digest (before migration 15, or caught up) is compared by its request.
        let same =
            try existing.requestSHA256 == received.sha256
            || db.caseRow(request.requestID).map { stored in
                try stored.request == received.body
                    || ProtoCodec.decode(InterventionRequest.self, from: stored.request) == request
            } ?? false
        guard same else {
            throw RPCError(
                .alreadyExists,
                "request_id \(request.requestID) was already used for a request with other content"
            )
        }
        return receiptAgain(existing, me: me)
    }

    private static func receiptAgain(_ existing: CaseRow, me: DirectoryEntry) -> SubmitReceipt {
        var receipt = SubmitReceipt.make(
            existing.caseID,
            status: CaseStatus(rawValue: existing.status),
            atMs: existing.createdAtMs,
            receiver: me.id
        )
        receipt.alreadyReceived = true
        return receipt
    }

    /// An update from the peer that made it, taken in its sequence order. An update refused for
    /// good still takes its sequence (recorded with the refusal), so the actor's later updates
    /// apply: a conflict never blocks a case.
    func receiveUpdate(_ update: CaseUpdate, bytes: [UInt8]?, from caller: DirectoryEntry) async throws -> UpdateReceipt
    {
        guard update.actorNode == caller.id else {
            throw RPCError(.permissionDenied, "actor_node \(update.actorNode) is not the caller \(caller.id)")
        }
        guard Validation.isUUID(update.updateID) else {
            throw RPCError(.invalidArgument, "update_id: must be a lower-case UUID")
        }
        guard update.sequence >= 1 else { throw RPCError(.invalidArgument, "sequence: starts at 1") }
        guard update.skippedSequences.allSatisfy({ $0 >= 1 && $0 < update.sequence }) else {
            throw RPCError(.invalidArgument, "skipped_sequences: each must be at least 1 and below sequence")
        }
        let body = try bytes ?? ProtoCodec.encode(update)
        let tracker = self
        // A sender's retry of an update already taken is answered from a read, as a request's is.
        let taken = try store.read { db -> Result<UpdateReceipt, RPCError>? in
            guard let recorded = try db.historyEntry(updateID: update.updateID),
                let row = try db.caseRow(update.caseID, withRequest: false)
            else { return nil }
            _ = try tracker.actor(caller, for: row)
            return try Self.replay(update, recorded: recorded, caseStatus: CaseStatus(rawValue: row.status))
        }
        if let taken { return try taken.get() }
        let persons = PersonIndex(update, keys: store.termKeys)
        let outcome: Result<UpdateReceipt, RPCError> = try await store.write(lane: caller.id, bytes: body.count) { db in
            guard let row = try db.caseRow(update.caseID, withRequest: false) else {
                throw RPCError(.notFound, "no case \(update.caseID)")
            }
            let actor = try tracker.actor(caller, for: row)
            if let recorded = try db.historyEntry(updateID: update.updateID) {
                return try Self.replay(update, recorded: recorded, caseStatus: CaseStatus(rawValue: row.status))
            }
            // A change outside the caller's role is a faulty peer, not a conflict: refused, not recorded.
            if let change = update.change { try Authorization.check(change, by: actor) }
            let now = Clock.nowMs()
            try Self.takeSequence(update, caller: caller.id, db, atMs: now)
            // Person timestamps say when the change was made at the actor, so both trackers agree.
            let madeAt = update.occurredAtMs > 0 ? update.occurredAtMs : now
            let before = try tracker.state(row, db)
            // Applied or refused for good, the update takes its place in the history, the inbox and
            // the events alike.
            func record(refusal: RPCError?) throws {
                try db.appendHistory(
                    update.caseID,
                    actor: caller.id,
                    sequence: update.sequence,
                    updateID: update.updateID,
                    body: body,
                    atMs: now,
                    refusal: refusal.map { (Int32($0.code.rawValue), $0.message) }
                )
                try db.insertInbox(
                    kind: InboxEntryKind.update.rawValue,
                    messageID: update.updateID,
                    caseID: update.caseID,
                    fromNode: caller.id,
                    atMs: now
                )
                try db.appendEvent(
                    caseID: update.caseID,
                    kind: (refusal == nil ? CaseEventKind.updated : CaseEventKind.refused).rawValue,
                    messageID: update.updateID,
                    atMs: now
                )
            }
            let state: Lifecycle.CaseState
            do throws(RPCError) {
                state = try Lifecycle.apply(update.change, by: actor, to: before, atMs: madeAt)
            } catch {
                try record(refusal: error)
                return .failure(error)
            }
            try tracker.save(state, of: row, db, atMs: now, by: update.change, madeAt: madeAt)
            try Self.index(update, persons, db, matching: tracker.me.role == .ncct)
            try record(refusal: nil)
            try db.appendAudit(
                event: "update.applied",
                actor: caller.id,
                subject: update.caseID,
                outcome: "ok",
                detail: "update=\(update.updateID) seq=\(update.sequence) "
                    + "change=\(update.change?.kindName ?? "-") status=\(state.status)",
                atMs: now
            )
            return .success(UpdateReceipt.make(update, status: state.status, atMs: now))
        }
        changes.notify()
        return try outcome.get()
    }

    /// An update id seen before: the same answer as the first time, if it is the same update.
    static func replay(
        _ update: CaseUpdate,
        recorded: HistoryRow,
        caseStatus: CaseStatus
    ) throws -> Result<UpdateReceipt, RPCError> {
        guard recorded.actor == update.actorNode, recorded.caseID == update.caseID else {
            throw RPCError(.alreadyExists, "update_id \(update.updateID) is already used by another update")
        }
        var first = try ProtoCodec.decode(CaseUpdate.self, from: recorded.body), again = update
        first.skippedSequences = []
        again.skippedSequences = []
        guard first == again else {
            throw RPCError(
                .alreadyExists,
                "update_id \(update.updateID) was already used for an update with other content"
            )
        }
        guard recorded.isApplied else {
            return .failure(RPCError(RPCCode(rawValue: Int(recorded.refusalCode)), recorded.refusal))
        }
        var receipt = UpdateReceipt.make(update, status: caseStatus, atMs: recorded.atMs)
        receipt.alreadyApplied = true
        return .success(receipt)
    }

    /// Checks that the update's sequence is the actor's next one, once the numbers it says its
    /// sender skipped are recorded; a number already taken or a gap is refused.
    static func takeSequence(_ update: CaseUpdate, caller: String, _ db: Database, atMs now: Int64) throws {
        let last = try db.lastSequence(update.caseID, actor: caller)
        if update.sequence <= last {
            let holder = try db.historyEntries(
                update.caseID,
                actor: caller,
                sequences: update.sequence...update.sequence
            ).first
            throw RPCError(
                .alreadyExists,
                "sequence \(update.sequence) of \(caller) on this case is already taken"
                    + (holder.map { $0.isSkipped ? " (skipped)" : " by update \($0.updateID)" } ?? ""),
                metadata: ["casebridge-expected-sequence": String(last + 1)]
            )
        }
        let skipped = Set(update.skippedSequences)
        var missing = last + 1
        while missing < update.sequence, skipped.contains(missing) { missing += 1 }
        guard missing == update.sequence else {
            throw RPCError(
                .failedPrecondition,
                "sequence gap: expected \(missing) from \(caller), got \(update.sequence)",
                metadata: ["casebridge-expected-sequence": String(missing)]
            )
        }
        for sequence in (last + 1)..<update.sequence {
            try db.appendHistory(
                update.caseID,
                actor: caller,
                sequence: sequence,
                updateID: HistoryRow.skippedID(update.caseID, actor: caller, sequence: sequence),
                body: [],
                atMs: now,
                refusal: (HistoryRow.skippedCode, "the sender gave up delivering it")
            )
        }
    }

    // MARK: Made by the node's own staff

    /// Files a request (embassy node): committed with its outbox message to NCCT.
    public func submit(_ draft: InterventionRequest, by member: StaffMember) async throws -> SubmitReceipt {
        guard me.role == .embassy else { throw RPCError(.permissionDenied, "only embassy nodes file requests") }
        var prepared = draft
        if prepared.requestID.isEmpty { prepared.requestID = UUID().uuidString.lowercased() }
        prepared.originNode = me.id
        prepared.filedBy = member.displayName
        if prepared.createdAtMs == 0 { prepared.createdAtMs = Clock.nowMs() }
        let request = prepared
        try Validation.check(request)
        let body = try ProtoCodec.encode(request)
        let ncct = directory.ncct.id, index = PersonIndex(request, keys: store.termKeys)
        let receipt: SubmitReceipt = try await store.write { db in
            guard try db.caseRow(request.requestID) == nil else {
                throw RPCError(.alreadyExists, "request \(request.requestID) was already filed")
            }
            let now = Clock.nowMs()
            try Self.insertCase(
                request,
                body: body,
                requestingNode: request.originNode,
                status: .submitted,
                db,
                atMs: now,
                index: index,
                matching: false  // an embassy: it never looks for duplicates
            )
            try db.enqueue(
                OutboxRow(
                    messageID: request.requestID,
                    peerNode: ncct,
                    kind: MessageKind.request.rawValue,
                    caseID: request.requestID,
                    body: body,
                    state: DeliveryState.queued.rawValue,
                    queuedAtMs: now
                )
            )
            try db.appendEvent(
                caseID: request.requestID,
                kind: CaseEventKind.opened.rawValue,
                messageID: request.requestID,
                atMs: now
            )
            try db.appendAudit(
                event: "request.submitted",
                actor: member.auditActor,
                subject: request.requestID,
                outcome: "ok",
                detail: "persons=\(request.persons.count) kind=\(request.kind) to=\(ncct)",
                atMs: now
            )
            return SubmitReceipt.make(request.requestID, status: .submitted, atMs: now, receiver: request.originNode)
        }
        changes.notify()
        outboxChanged(ncct)
        return receipt
    }

    /// A change by this node's staff: checked, committed with its outbox message, then delivered.
    /// A change that alters nothing (acknowledging an acknowledged case) is answered as already
    /// applied; nothing is recorded or sent.
    public func applyChange(_ draft: CaseUpdate, by member: StaffMember) async throws -> UpdateReceipt {
        var prepared = draft
        if prepared.updateID.isEmpty { prepared.updateID = UUID().uuidString.lowercased() }
        guard Validation.isUUID(prepared.updateID) else {
            throw RPCError(.invalidArgument, "update_id: must be a lower-case UUID")
        }
        prepared.actorNode = me.id
        prepared.author = member.displayName
        prepared.skippedSequences = []
        let tracker = self, ready = prepared, persons = PersonIndex(prepared, keys: store.termKeys)
        let (receipt, peer): (UpdateReceipt, String?) = try await store.write { db in
            var update = ready
            guard let row = try db.caseRow(update.caseID, withRequest: false) else {
                throw RPCError(.notFound, "no case \(update.caseID)")
            }
            if try db.historyEntry(updateID: update.updateID) != nil {
                throw RPCError(.alreadyExists, "update \(update.updateID) was already made")
            }
            let actor: Lifecycle.Actor = tracker.me.role == .ncct ? .ncct : .requestingEmbassy
            let now = Clock.nowMs()
            let before = try tracker.state(row, db)
            if Lifecycle.isNoOp(update.change, on: before) {
                var receipt = UpdateReceipt.make(update, status: before.status, atMs: now)
                receipt.sequence = 0
                receipt.alreadyApplied = true
                return (receipt, nil)
            }
            let state = try Lifecycle.apply(update.change, by: actor, to: before, atMs: now)
            update.sequence = try db.lastSequence(update.caseID, actor: tracker.me.id) + 1
            update.occurredAtMs = now
            let body = try ProtoCodec.encode(update)
            try tracker.save(state, of: row, db, atMs: now, by: update.change, madeAt: now)
            try Self.index(update, persons, db, matching: tracker.me.role == .ncct)
            try db.appendHistory(
                update.caseID,
                actor: tracker.me.id,
                sequence: update.sequence,
                updateID: update.updateID,
                body: body,
                atMs: now
            )
            // NCCT's changes go to the embassy that opened the case; an embassy's go to NCCT.
            let peer = tracker.me.role == .ncct ? row.requestingNode : tracker.directory.ncct.id
            try db.enqueue(
                OutboxRow(
                    messageID: update.updateID,
                    peerNode: peer,
                    kind: MessageKind.update.rawValue,
                    caseID: update.caseID,
                    body: body,
                    state: DeliveryState.queued.rawValue,
                    queuedAtMs: now
                )
            )
            let receipt = UpdateReceipt.make(update, status: state.status, atMs: now)
            try db.appendEvent(
                caseID: update.caseID,
                kind: CaseEventKind.updated.rawValue,
                messageID: update.updateID,
                atMs: now
            )
            try db.appendAudit(
                event: "update.made",
                actor: member.auditActor,
                subject: update.caseID,
                outcome: "ok",
                detail: "update=\(update.updateID) seq=\(update.sequence) "
                    + "change=\(update.change?.kindName ?? "-") status=\(state.status)",
                atMs: now
            )
            return (receipt, peer)
        }
        guard let peer else { return receipt }
        changes.notify()
        outboxChanged(peer)
        return receipt
    }

    // MARK: Audit of refusals

    /// Records a refused call or connection; only the refusal is stored.
    func auditRefusal(event: String, actor: String, subject: String, error: RPCError) async {
        await audit(
            event: event,
            actor: actor,
            subject: subject,
            outcome: error.code.description,
            detail: error.message
        )
    }

    func audit(event: String, actor: String, subject: String, outcome: String, detail: String) async {
        do {
            try await store.write { db in
                try db.appendAudit(
                    event: event,
                    actor: actor,
                    subject: subject,
                    outcome: outcome,
                    detail: detail,
                    atMs: Clock.nowMs()
                )
            }
        } catch {
            logger.error("audit entry could not be written", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Helpers shared by the operations

    /// A new case from a request, with every person pending.
    /// `bodySHA256`: the digest of `body`, kept to recognize a retry (nil: none kept).
    static func insertCase(
        _ request: InterventionRequest,
        body: [UInt8],
        bodySHA256: [UInt8]? = nil,
        requestingNode: String,
        status: CaseStatus,
        _ db: Database,
        atMs now: Int64,
        index: PersonIndex,
        matching: Bool
    ) throws {
        var row = CaseRow(
            caseID: request.requestID,
            requestingNode: requestingNode,
            request: body,
            kind: request.kind.rawValue,
            urgency: request.urgency.rawValue,
            originReference: request.originReference,
            status: status.rawValue,
            step: 0,
            personCount: request.persons.count,
            createdAtMs: now,
            updatedAtMs: now,
            test: request.test
        )
        row.personCounts = Lifecycle.keptCounts([.pending: request.persons.count])
        row.clockStartedAtMs = DeadlineRule.filedAt(request.createdAtMs, recordedAt: now)
        row.requestSHA256 = bodySHA256
        try db.insertCase(row, matchTraits: matching ? index.traits : [])
        for (i, person) in request.persons.enumerated() {
            try db.upsertPerson(
                request.requestID,
                PersonRow(
                    personRef: person.personRef,
                    position: i,
                    status: PersonStatus.pending.rawValue,
                    note: "",
                    updatedAtMs: now
                )
            )
        }
        try index.writeTerms(caseID: request.requestID, db, matching: matching)
    }

    /// How the caller stands to the case: NCCT, or the embassy that opened it. Anyone else is refused.
    func actor(_ caller: DirectoryEntry, for row: CaseRow) throws(RPCError) -> Lifecycle.Actor {
        if caller.role == .ncct { return .ncct }
        guard caller.id == row.requestingNode else {
            throw RPCError(.permissionDenied, "case \(row.caseID) belongs to another embassy")
        }
        return .requestingEmbassy
    }

    func state(_ row: CaseRow, _ db: Database) throws -> Lifecycle.CaseState {
        let persons = try db.persons(row.caseID).map { person in
            var state = PersonState()
            state.personRef = person.personRef
            state.status = PersonStatus(rawValue: person.status)
            state.note = person.note
            state.updatedAtMs = person.updatedAtMs
            return state
        }
        return Lifecycle.CaseState(
            status: CaseStatus(rawValue: row.status),
            step: BusinessStep(rawValue: row.step),
            persons: persons,
            attachments: try db.attachmentCount(row.caseID)
        )
    }

    /// Writes a case's new state. `change`, made at `madeAt` by whoever made it, restarts the
    /// deadline clock as the README's "Deadlines" says; without one (a catch-up), a status that
    /// moved starts its clock now.
    func save(
        _ state: Lifecycle.CaseState,
        of row: CaseRow,
        _ db: Database,
        atMs: Int64,
        by change: CaseUpdate.Change? = nil,
        madeAt: Int64? = nil
    ) throws {
        let before = try self.state(row, db).persons
        for (position, person) in state.persons.enumerated()
        where position >= before.count || before[position] != person {
            try db.upsertPerson(
                row.caseID,
                PersonRow(
                    personRef: person.personRef,
                    position: position,
                    status: person.status.rawValue,
                    note: person.note,
                    updatedAtMs: person.updatedAtMs
                )
            )
        }
        try db.updateCaseState(
            row.caseID,
            status: state.status.rawValue,
            step: state.step.rawValue,
            personCount: state.persons.count,
            updatedAtMs: atMs,
            closed: Lifecycle.isTerminal(state.status),
            personCounts: Lifecycle.keptCounts(Dictionary(grouping: state.persons, by: \.status).mapValues(\.count)),
            clockStartedAtMs: DeadlineRule.restart(
                from: CaseStatus(rawValue: row.status),
                to: state.status,
                by: change,
                madeAt: madeAt.map { min($0, atMs) },
                atMs: atMs
            ),
            acknowledgedAtMs: Lifecycle.takesUp(from: CaseStatus(rawValue: row.status), to: state.status)
                ? (madeAt.map { min($0, atMs) } ?? atMs) : nil
        )
    }
}

extension SubmitReceipt {
    static func make(_ requestID: String, status: CaseStatus, atMs: Int64, receiver: String) -> SubmitReceipt {
        var receipt = SubmitReceipt()
        receipt.requestID = requestID
        receipt.caseID = requestID
        receipt.status = status
        receipt.receivedAtMs = atMs
        receipt.receiverNode = receiver
        return receipt
    }
}

extension UpdateReceipt {
    static func make(_ update: CaseUpdate, status: CaseStatus, atMs: Int64) -> UpdateReceipt {
        var receipt = UpdateReceipt()
        receipt.updateID = update.updateID
        receipt.caseID = update.caseID
        receipt.sequence = update.sequence
        receipt.appliedAtMs = atMs
        receipt.status = status
        return receipt
    }
}

enum Clock {
    static func nowMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }

    /// A time in UTC for a message to a person: "2026-11-23" or, with `minutes`, "2026-11-23 14:05".
    static func utc(ms: Int64, minutes: Bool) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = minutes ? "yyyy-MM-dd HH:mm" : "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}

/// Wakes everyone waiting for the next committed change (Watch streams).
final class Broadcast: Sendable {
    private let waiters = Mutex<[Int: AsyncStream<Void>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)

    func notify() {
        for waiter in waiters.withLock({ Array($0.values) }) { waiter.yield() }
    }

    func subscribe() -> AsyncStream<Void> {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.onTermination = { [self] _ in _ = waiters.withLock { $0.removeValue(forKey: id) } }
        waiters.withLock { $0[id] = continuation }
        return stream
    }
}
