import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore

/// Resynchronisation, the receiving side: a node restored from a backup lacks what its peers
/// delivered after the backup was taken. At start it compares the cases a peer changed lately
/// with its own and takes what it lacks from the peer's copy of each case (the request and every
/// update as stored there), replaying them in the peer's order so both trackers agree.
extension CaseTracker {
    /// Cases changed after this instant may hold something this node lost: a day before the latest
    /// change it knows of in a case it shares with `peer` (clocks differ; a day is generous).
    func catchUpSince(peer: DirectoryEntry) throws -> Int64 {
        let requester = me.role == .ncct ? peer.id : me.id
        guard let latest = try store.read({ try $0.latestUpdate(requestingNode: requester) }) else { return 0 }
        return max(0, latest - 24 * 3600 * 1000)
    }

    /// Whether the peer's summary shows updates (or a case) this node lacks.
    func isBehind(_ summary: CaseSummary, peer: DirectoryEntry) throws -> Bool {
        guard sharesCase(requestingNode: summary.requestingNode, with: peer) else { return false }
        return try store.read { db in
            guard try db.caseRow(summary.caseID, withRequest: false) != nil else { return true }
            return try summary.ncctSequence > db.lastSequence(summary.caseID, actor: directory.ncct.id)
                || summary.embassySequence > db.lastSequence(summary.caseID, actor: summary.requestingNode)
        }
    }

    /// An embassy shares its own cases with NCCT; NCCT shares each embassy's with that embassy.
    func sharesCase(requestingNode: String, with peer: DirectoryEntry) -> Bool {
        me.role == .ncct ? requestingNode == peer.id : (peer.role == .ncct && requestingNode == me.id)
    }

    /// Takes from the peer's copy of a case (GetCase's encoded response) what this node lacks.
    /// Returns the number of history entries added; 0 when this node holds something the peer
    /// does not (its own undelivered updates), which ordinary delivery then settles.
    func catchUp(caseBytes: [UInt8], from peer: DirectoryEntry, limits: ProtoLimits) async throws -> Int {
        let copy = try PeerCaseCopy(caseBytes, limits: limits)
        // A case whose personal data the peer destroyed at the end of its retention has nothing to take.
        guard copy.view.personalDataPurgedAtMs == 0 else { return 0 }
        guard sharesCase(requestingNode: copy.view.requestingNode, with: peer),
            copy.request.requestID == copy.view.caseID, copy.request.originNode == copy.view.requestingNode
        else {
            throw RPCError(.permissionDenied, "\(peer.id) sent a case it does not share with \(me.id)")
        }
        let tracker = self, keys = store.termKeys, index = PersonIndex(copy.request, keys: keys)
        let added: Int = try await store.write(lane: peer.id, bytes: caseBytes.count) { db in
            let now = Clock.nowMs()
            let caseID = copy.view.caseID
            let lost = try db.caseRow(caseID, withRequest: false) == nil
            if lost {
                try Self.insertCase(
                    copy.request,
                    body: copy.requestBytes,
                    requestingNode: copy.view.requestingNode,
                    status: .received,
                    db,
                    atMs: now,
                    index: index,
                    matching: tracker.me.role == .ncct
                )
                if tracker.me.role == .ncct {
                    try db.insertInbox(
                        kind: InboxEntryKind.request.rawValue,
                        messageID: caseID,
                        caseID: caseID,
                        fromNode: peer.id,
                        atMs: now
                    )
                }
                try db.appendEvent(caseID: caseID, kind: CaseEventKind.opened.rawValue, messageID: caseID, atMs: now)
            }
            guard let row = try db.caseRow(caseID, withRequest: false) else { return 0 }
            let held = try db.history(caseID)
            // Every entry this node holds must be in the peer's copy, and applied there as here: an update
            // of ours the peer refused (a crossing, not a loss) is for ordinary delivery and staff to settle.
            let theirs = Dictionary(
                copy.entries.map { ($0.key, "\($0.updateID) \($0.refusal == nil)") },
                uniquingKeysWith: { first, _ in first }
            )
            guard held.allSatisfy({ theirs["\($0.actor)/\($0.sequence)"] == "\($0.updateID) \($0.isApplied)" }) else {
                return 0
            }
            let known = Set(held.map { "\($0.actor)/\($0.sequence)" })

            // The peer's applied updates, replayed in its order from the request: the same state.
            var state = Lifecycle.CaseState(
                status: .received,
                step: .unspecified,
                persons: copy.request.persons.map {
                    PersonState.pending($0.personRef, atMs: row.createdAtMs)
                }
            )
            var added = 0
            for entry in copy.entries {
                if let update = entry.update, entry.refusal == nil {
                    let actor: Lifecycle.Actor =
                        update.actorNode == tracker.directory.ncct.id ? .ncct : .requestingEmbassy
                    state = try Lifecycle.apply(
                        update.change,
                        by: actor,
                        to: state,
                        atMs: update.occurredAtMs > 0 ? update.occurredAtMs : now
                    )
                }
                guard !known.contains(entry.key) else { continue }
                try db.appendHistory(
                    caseID,
                    actor: entry.actor,
                    sequence: entry.sequence,
                    updateID: entry.updateID,
                    body: entry.body,
                    atMs: now,
                    refusal: entry.refusal
                )
                if let update = entry.update, entry.refusal == nil {
                    try Self.index(update, PersonIndex(update, keys: keys), db, matching: tracker.me.role == .ncct)
                }
                if entry.actor != tracker.me.id, entry.refusal == nil {
                    try db.insertInbox(
                        kind: InboxEntryKind.update.rawValue,
                        messageID: entry.updateID,
                        caseID: caseID,
                        fromNode: entry.actor,
                        atMs: now
                    )
                    try db.appendEvent(
                        caseID: caseID,
                        kind: CaseEventKind.updated.rawValue,
                        messageID: entry.updateID,
                        atMs: now
                    )
                }
                added += 1
            }
            guard added > 0 || lost else { return 0 }
            try tracker.save(state, of: row, db, atMs: now)
            try db.appendAudit(
                event: "case.caught_up",
                actor: peer.id,
                subject: caseID,
                outcome: "ok",
                detail: "case=\(lost ? "taken back" : "kept") entries=\(added) status=\(state.status)",
                atMs: now
            )
            return added
        }
        if added > 0 { changes.notify() }
        return added
    }
}

/// A peer's copy of a case, with the parts it stored byte for byte taken out as bytes.
struct PeerCaseCopy {
    struct Entry {
        var actor: String
        var sequence: UInt64
        var updateID: String
        var body: [UInt8]
        var update: CaseUpdate?
        var refusal: (code: Int32, message: String)?
        var key: String { "\(actor)/\(sequence)" }
    }

    let view: Case
    let request: InterventionRequest
    let requestBytes: [UInt8]
    /// Applied updates in the peer's order, then refused and skipped ones.
    let entries: [Entry]

    init(_ bytes: [UInt8], limits: ProtoLimits) throws {
        view = try ProtoCodec.decode(Case.self, from: bytes, limits: limits)
        guard view.personalDataPurgedAtMs == 0 else {
            (request, requestBytes, entries) = (InterventionRequest(), [], [])
            return
        }
        let name = Case.protoName
        guard let requestBytes = try RawFields.last(CaseTracker.caseRequestField, in: bytes, message: name),
            let request = view.request
        else { throw RPCError(.invalidArgument, "the peer's case has no request") }
        self.requestBytes = requestBytes
        self.request = request
        let applied = try RawFields.extract(CaseTracker.caseHistoryField, from: bytes, message: name)
        let refused = try RawFields.extract(CaseTracker.caseRefusedField, from: bytes, message: name)
        guard applied.count == view.history.count, refused.count == view.refusedUpdates.count else {
            throw RPCError(.invalidArgument, "the peer's case could not be taken apart")
        }
        var entries = zip(view.history, applied).map { update, body in
            Entry(
                actor: update.actorNode,
                sequence: update.sequence,
                updateID: update.updateID,
                body: body,
                update: update
            )
        }
        for (entry, part) in zip(view.refusedUpdates, refused) {
            let skipped = entry.code == "SKIPPED"
            let body =
                skipped
                ? []
                : try RawFields.extract(
                    CaseTracker.refusedUpdateField,
                    from: part,
                    message: RefusedUpdate.protoName
                ).last ?? []
            entries.append(
                Entry(
                    actor: entry.actorNode,
                    sequence: entry.sequence,
                    updateID: skipped
                        ? HistoryRow.skippedID(view.caseID, actor: entry.actorNode, sequence: entry.sequence)
                        : entry.updateID,
                    body: body,
                    update: entry.update,
                    refusal: (
                        skipped ? HistoryRow.skippedCode : Int32(RPCCode.named(entry.code)?.rawValue ?? 2), entry.reason
                    )
                )
            )
        }
        self.entries = entries
    }
}
