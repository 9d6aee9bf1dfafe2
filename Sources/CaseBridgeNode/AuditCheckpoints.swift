import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import CaseBridgeTLS
import Foundation
import Synchronization

/// Signed checkpoints of the audit chain. The chain alone can be recomputed by whoever can write
/// the database; a checkpoint (the chain's length and the hash of its last entry, signed with the
/// node's federation key) cannot. The node keeps its own, and lodges them with its peers, who keep
/// them and hand back the one they held before: a log cut short or rewritten no longer matches,
/// here (`audit verify`, `doctor`) and at every peer holding a checkpoint.
final class AuditCheckpoints: Sendable {
    let tracker: CaseTracker
    private let signer: ReceiptSigner
    private let crew: DeliveryCrew
    private let caPath: String
    private let crlPath: String?
    /// Per peer: how many entries the newest checkpoint it took from this node covers.
    private let lodged = Mutex<[String: Int64]>([:])
    /// Per peer: what the last comparison with its checkpoint found wrong (shown in status).
    private let alarms = Mutex<[String: String]>([:])

    init(tracker: CaseTracker, signer: ReceiptSigner, crew: DeliveryCrew, caPath: String, crlPath: String?) {
        (self.tracker, self.signer, self.crew, self.caPath, self.crlPath) = (tracker, signer, crew, caPath, crlPath)
    }

    var warnings: [String] { alarms.withLock { all in all.keys.sorted().compactMap { all[$0] } } }

    /// Checkpoints and lodges every `interval` while the chain moves.
    func run(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            do {
                for peer in crew.peers.sorted() { _ = try await lodge(with: peer, force: false) }
            } catch {
                tracker.logger.error("audit checkpoint could not be made", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The checkpoint of the chain as it stands, signed now unless the newest one already covers it.
    func current() async throws -> SignedCheckpoint? {
        let (entries, hash) = try tracker.store.read { try $0.auditHead() }
        guard entries > 0 else { return nil }
        if let newest = try tracker.store.read({ try $0.ownCheckpoints(after: entries - 1, limit: 1) }).first {
            return SignedCheckpoint(newest.checkpoint, signature: newest.signature)
        }
        var checkpoint = AuditCheckpoint()
        checkpoint.node = tracker.me.id
        checkpoint.entries = UInt64(entries)
        checkpoint.headSha256 = Digest.hex(hash)
        checkpoint.atMs = Clock.nowMs()
        let encoded = try ProtoCodec.encode(checkpoint)
        let (atMs, made) = (checkpoint.atMs, SignedCheckpoint(encoded, signature: try signer.sign(encoded)))
        try await tracker.store.write { db in
            try db.keepOwnCheckpoint(
                entries: entries,
                atMs: atMs,
                checkpoint: made.checkpoint,
                signature: made.signature
            )
        }
        return made
    }

    /// Lodges the current checkpoint with `peer` (unless it holds it already and `force` is off) and
    /// compares the one it held before with the log.
    func lodge(with peer: String, force: Bool) async throws -> CheckpointCheck {
        var check = CheckpointCheck()
        check.node = peer
        guard let worker = crew.worker(peer) else {
            check.detail = "no longer a peer of this node"
            return check
        }
        guard let signed = try await current() else {
            (check.reached, check.matches, check.detail) = (true, true, "the log is empty: nothing to check yet")
            return check
        }
        let entries = Int64(try ProtoCodec.decode(AuditCheckpoint.self, from: signed.checkpoint).entries)
        if !force, lodged.withLock({ $0[peer] }) == entries { return check }
        let reply: LodgedCheckpoint
        do {
            reply = try await worker.lodgeCheckpoint(signed)
        } catch let error as RPCError where error.code == .failedPrecondition {
            check.reached = true
            check.detail = "\(peer) refused this log's checkpoint: \(error.message)"
            raise(check.detail, peer: peer)
            return check
        } catch {
            check.detail = "\(peer) could not be asked: \(error)"
            return check
        }
        check.reached = true
        lodged.withLock { $0[peer] = entries }
        guard let previous = reply.previous else {
            check.matches = true
            return check
        }
        check.held = try ProtoCodec.decode(AuditCheckpoint.self, from: previous.checkpoint)
        if let problem = try compare(previous, holder: peer) {
            check.detail = problem
            raise(problem, peer: peer)
        } else {
            check.matches = true
            alarms.withLock { $0[peer] = nil }
        }
        return check
    }

    private func raise(_ problem: String, peer: String) {
        let first = alarms.withLock { alarms in
            defer { alarms[peer] = "audit log: \(problem)" }
            return alarms[peer] == nil
        }
        tracker.logger.critical("the audit log does not match a signed checkpoint", metadata: ["problem": "\(problem)"])
        guard first else { return }
        Task {
            await tracker.audit(
                event: "audit.checkpoint.mismatch",
                actor: peer,
                subject: tracker.me.id,
                outcome: "DATA_LOSS",
                detail: problem
            )
        }
    }

    /// Why a checkpoint of this node's log no longer matches the log; nil when it does.
    func compare(_ signed: SignedCheckpoint, holder: String) throws -> String? {
        let ca = try String(contentsOfFile: caPath, encoding: .utf8)
        return try Self.compare(signed, node: tracker.me.id, holder: holder, caPEM: ca, in: tracker.store)
    }

    static func compare(
        _ signed: SignedCheckpoint,
        node: String,
        holder: String,
        caPEM: String,
        in store: CaseStore
    ) throws -> String? {
        let checkpoint = try ProtoCodec.decode(AuditCheckpoint.self, from: signed.checkpoint)
        let signedAt = Clock.utc(ms: checkpoint.atMs, minutes: true)
        let made = "a checkpoint of \(checkpoint.entries) entries signed \(signedAt) UTC"
        let signers = try? Signatures.verify(signed.signature, content: signed.checkpoint, caPEM: caPEM)
        guard checkpoint.node == node, let signers, signers.compactMap({ PeerIdentity(uri: $0)?.nodeID }) == [node]
        else { return "\(holder) holds \(made) that this node did not sign" }
        guard checkpoint.entries <= UInt64(Int64.max) else { return "\(holder) holds \(made): out of range" }
        let seq = Int64(checkpoint.entries)
        let (entries, hash) = try store.read { db in (try db.auditHead().entries, try db.auditHash(at: seq)) }
        guard let hash else {
            return "\(holder) holds \(made); the log has only \(entries): entries were removed"
        }
        guard Digest.hex(hash) == checkpoint.headSha256 else {
            return "\(holder) holds \(made); entry \(checkpoint.entries) no longer has that hash: the log was rewritten"
        }
        return nil
    }

    /// This node's own checkpoints against its log, in pages: how many matched, or the first problem.
    static func checkOwn(
        _ store: CaseStore,
        node: String,
        caPEM: String
    ) throws -> (checked: Int, problem: String?, at: Int64) {
        var (checked, after): (Int, Int64) = (0, 0)
        while true {
            let page = try store.read { try $0.ownCheckpoints(after: after, limit: 500) }
            guard let last = page.last else { return (checked, nil, 0) }
            for row in page {
                let signed = SignedCheckpoint(row.checkpoint, signature: row.signature)
                let problem = try compare(signed, node: node, holder: "this node", caPEM: caPEM, in: store)
                if let problem { return (checked, problem, row.entries) }
                checked += 1
            }
            after = last.entries
        }
    }

    /// The walk of the chain, this node's own checkpoints, and each peer's newest (lodging the
    /// current one with it): what `casebridge audit verify` reports.
    func verify() async throws -> CaseBridgeProto.AuditVerification {
        var verification = try tracker.verifyAudit()
        let own = try Self.checkOwn(
            tracker.store,
            node: tracker.me.id,
            caPEM: try String(contentsOfFile: caPath, encoding: .utf8)
        )
        verification.checkpointsChecked = UInt32(own.checked)
        if verification.intact, let problem = own.problem {
            verification.intact = false
            verification.firstBadEntry = UInt64(own.at)
            verification.detail = problem
        }
        for peer in crew.peers.sorted() {
            let check = try await lodge(with: peer, force: true)
            verification.peers.append(check)
            if verification.intact, check.reached, !check.matches {
                verification.intact = false
                verification.firstBadEntry = check.held?.entries ?? 0
                verification.detail = check.detail
            }
        }
        return verification
    }

    /// A peer's checkpoint of its own log: kept if it signed it and it does not go back on one
    /// held; the one held before goes back to it.
    func receive(_ signed: SignedCheckpoint, from caller: DirectoryEntry) async throws -> LodgedCheckpoint {
        let checkpoint = try ProtoCodec.decode(AuditCheckpoint.self, from: signed.checkpoint)
        guard checkpoint.node == caller.id else {
            throw RPCError(.permissionDenied, "a checkpoint of \(checkpoint.node)'s audit log; lodge your own")
        }
        let signers = try Signatures.verify(
            signed.signature,
            content: signed.checkpoint,
            caPEM: try String(contentsOfFile: caPath, encoding: .utf8),
            crlPEM: try crlPath.map { try String(contentsOfFile: $0, encoding: .utf8) }
        )
        guard signers.compactMap({ PeerIdentity(uri: $0)?.nodeID }) == [caller.id] else {
            throw RPCError(.permissionDenied, "the checkpoint's signature is not \(caller.id)'s")
        }
        guard checkpoint.entries > 0, checkpoint.entries <= UInt64(Int64.max),
            checkpoint.headSha256.utf8.count == 64,
            checkpoint.headSha256.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { throw RPCError(.invalidArgument, "entries must be 1 to 2^63-1 and head_sha256 64 hex digits") }
        let entries = Int64(checkpoint.entries)
        let held = try tracker.store.read { try $0.newestPeerCheckpoint(caller.id) }
        if let held, entries < held.entries || (entries == held.entries && checkpoint.headSha256 != held.head) {
            let signedAt = Clock.utc(ms: held.atMs, minutes: true)
            let problem =
                entries < held.entries
                ? "this node holds your signed checkpoint of \(held.entries) entries (signed \(signedAt) UTC); "
                    + "this one has \(entries): your audit log was cut short"
                : "this node holds your signed checkpoint of \(held.entries) entries with another head hash: "
                    + "your audit log was rewritten"
            tracker.logger.critical(
                "a peer's audit log went back on its signed checkpoint",
                metadata: ["peer": "\(caller.id)", "problem": "\(problem)"]
            )
            throw RPCError(.failedPrecondition, problem)
        }
        try await tracker.store.write { db in
            try db.keepPeerCheckpoint(
                Database.PeerCheckpoint(
                    node: caller.id,
                    entries: entries,
                    head: checkpoint.headSha256,
                    atMs: checkpoint.atMs,
                    checkpoint: signed.checkpoint,
                    signature: signed.signature
                ),
                receivedAtMs: Clock.nowMs()
            )
        }
        var reply = LodgedCheckpoint()
        if let held { reply.previous = SignedCheckpoint(held.checkpoint, signature: held.signature) }
        return reply
    }
}

extension SignedCheckpoint {
    init(_ checkpoint: [UInt8], signature: [UInt8]) {
        self.init()
        (self.checkpoint, self.signature) = (checkpoint, signature)
    }
}
