import CaseBridgeTLS

/// One audit entry. Never personal data: ids, node names, codes and counts only.
public struct AuditEntry: Sendable, Equatable {
    public var seq: Int64
    public var atMs: Int64
    /// What happened: "request.received", "update.applied", "call.refused", "tls.refused", ...
    public var event: String
    /// Who: a node id, "console", or a network address for refused connections.
    public var actor: String
    /// What about: a case id or message id.
    public var subject: String
    /// "ok", or the gRPC status name of a refusal.
    public var outcome: String
    public var detail: String
}

public struct AuditVerification: Sendable, Equatable {
    public var intact: Bool
    public var entries: Int
    /// The first entry whose hash does not match, when not intact.
    public var firstBadSeq: Int64
    public var detail: String
}

/// Where a verification of the audit chain has got to: the hash and number it expects next.
public struct AuditWalk: Sendable {
    var previous = Database.genesis
    var expectedSeq: Int64 = 1
    var count = 0
    var failure: AuditVerification?

    public init() {}

    public var result: AuditVerification {
        failure ?? AuditVerification(intact: true, entries: count, firstBadSeq: 0, detail: "")
    }

    /// Verifies up to `entries` entries from where the walk stands; false once it is done.
    mutating func step(_ database: Database, entries: Int) throws(StoreError) -> Bool {
        guard failure == nil else { return false }
        var seen = 0
        try database.forEach(
            """
            SELECT seq, at_ms, event, actor, subject, outcome, detail, prev_hash, hash FROM audit
            WHERE seq >= ? ORDER BY seq LIMIT ?
            """,
            [.int(expectedSeq), .int(Int64(min(entries, Int(Int64.max))))]
        ) { row throws(StoreError) in
            seen += 1
            guard failure == nil else { return }
            let entry = AuditEntry(
                seq: row.int(0),
                atMs: row.int(1),
                event: row.text(2),
                actor: row.text(3),
                subject: row.text(4),
                outcome: row.text(5),
                detail: row.text(6)
            )
            guard entry.seq == expectedSeq else {
                failure = AuditVerification(
                    intact: false,
                    entries: count,
                    firstBadSeq: expectedSeq,
                    detail: "entry \(expectedSeq) is missing"
                )
                return
            }
            guard row.blob(7) == previous, row.blob(8) == Database.hash(entry, previous: previous) else {
                failure = AuditVerification(
                    intact: false,
                    entries: count,
                    firstBadSeq: entry.seq,
                    detail: "entry \(entry.seq) does not match its hash"
                )
                return
            }
            previous = row.blob(8)
            count += 1
            expectedSeq += 1
        }
        return failure == nil && seen == entries
    }
}

extension Database {
    /// Appends an entry whose hash covers the previous entry's hash: changing or removing any entry
    /// breaks every hash after it. Triggers also refuse UPDATE and DELETE on the table.
    public func appendAudit(
        event: String,
        actor: String,
        subject: String,
        outcome: String,
        detail: String,
        atMs: Int64
    ) throws(StoreError) {
        if auditTail == nil {
            let previous = try first("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            auditTail = ((previous?.int(0) ?? 0), previous?.blob(1) ?? Self.genesis)
        }
        let (lastSeq, prevHash) = auditTail!
        let entry = AuditEntry(
            seq: lastSeq + 1,
            atMs: atMs,
            event: event,
            actor: actor,
            subject: subject,
            outcome: outcome,
            detail: detail
        )
        let hash = Self.hash(entry, previous: prevHash)
        try query(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .int(entry.seq), .int(atMs), .text(event), .text(actor), .text(subject), .text(outcome), .text(detail),
                .blob(prevHash), .blob(hash),
            ]
        )
        auditTail = (entry.seq, hash)
    }

    /// Walks the chain from the first entry, recomputing every hash, in one read transaction.
    public func verifyAudit() throws(StoreError) -> AuditVerification {
        var walk = AuditWalk()
        while try walk.step(self, entries: .max) {}
        return walk.result
    }

    /// Entries to verify in one read transaction: short enough that a walk over millions of entries
    /// never holds the WAL back from a checkpoint for long.
    public static let auditWalkChunk = 20_000

    /// Carries on an audit walk for at most `entries` entries; false once it has finished (the
    /// chain ended or broke). The log is append-only, so a walk in several transactions checks the
    /// same chain as one.
    public func continueAudit(_ walk: inout AuditWalk, entries: Int = auditWalkChunk) throws(StoreError) -> Bool {
        try walk.step(self, entries: entries)
    }
    /// What to look for in the audit log; empty fields match everything.
    public struct AuditFilter: Sendable {
        /// An event name, or its start ("staff." for every staff event).
        public var event = ""
        public var actor = ""
        public var subject = ""
        public var sinceMs: Int64 = 0
        public var untilMs: Int64 = 0
        public init() {}
    }

    /// The latest entries first; `beforeSeq` > 0 pages back from there.
    public func auditEntries(
        limit: Int,
        beforeSeq: Int64 = 0,
        filter: AuditFilter = AuditFilter()
    ) throws(StoreError) -> [AuditEntry] {
        var conditions = Conditions()
        conditions.add("seq < ?", .int(beforeSeq > 0 ? beforeSeq : Int64.max))
        // A prefix, with LIKE's own wildcards taken literally.
        conditions.add(
            "substr(event, 1, ?) = ?",
            .int(Int64(filter.event.utf8.count)),
            .text(filter.event),
            when: !filter.event.isEmpty
        )
        conditions.add("actor = ?", .text(filter.actor), when: !filter.actor.isEmpty)
        conditions.add("subject = ?", .text(filter.subject), when: !filter.subject.isEmpty)
        conditions.add("at_ms >= ?", .int(filter.sinceMs), when: filter.sinceMs > 0)
        conditions.add("at_ms < ?", .int(filter.untilMs), when: filter.untilMs > 0)
        return try query(
            """
            SELECT seq, at_ms, event, actor, subject, outcome, detail FROM audit
            \(conditions.whereClause) ORDER BY seq DESC LIMIT ?
            """,
            conditions.values + [.int(Int64(limit))]
        ).map {
            AuditEntry(
                seq: $0.int(0),
                atMs: $0.int(1),
                event: $0.text(2),
                actor: $0.text(3),
                subject: $0.text(4),
                outcome: $0.text(5),
                detail: $0.text(6)
            )
        }
    }

    /// How many entries the chain holds and the hash of the last one (genesis for an empty log).
    public func auditHead() throws(StoreError) -> (entries: Int64, hash: [UInt8]) {
        let last = try first("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return (last?.int(0) ?? 0, last?.blob(1) ?? Self.genesis)
    }

    /// The chain hash of entry `seq`, if the log holds it.
    public func auditHash(at seq: Int64) throws(StoreError) -> [UInt8]? {
        try first("SELECT hash FROM audit WHERE seq = ?", [.int(seq)])?.blob(0)
    }

    /// A signed checkpoint of this node's own chain.
    public func keepOwnCheckpoint(
        entries: Int64,
        atMs: Int64,
        checkpoint: [UInt8],
        signature: [UInt8]
    ) throws(StoreError) {
        try query(
            "INSERT OR IGNORE INTO audit_checkpoints VALUES (?, ?, ?, ?)",
            [.int(entries), .int(atMs), .blob(checkpoint), .blob(signature)]
        )
    }

    /// This node's own checkpoints after `entries`, oldest first.
    public func ownCheckpoints(
        after entries: Int64,
        limit: Int
    ) throws(StoreError) -> [(entries: Int64, checkpoint: [UInt8], signature: [UInt8])] {
        try query(
            "SELECT entries, checkpoint, signature FROM audit_checkpoints WHERE entries > ? ORDER BY entries LIMIT ?",
            [.int(entries), .int(Int64(limit))]
        ).map { ($0.int(0), $0.blob(1), $0.blob(2)) }
    }

    /// A checkpoint a peer lodged of its own chain.
    public struct PeerCheckpoint: Sendable {
        public var node: String
        public var entries: Int64
        public var head: String
        public var atMs: Int64
        public var checkpoint: [UInt8]
        public var signature: [UInt8]
        public init(node: String, entries: Int64, head: String, atMs: Int64, checkpoint: [UInt8], signature: [UInt8]) {
            (self.node, self.entries, self.head, self.atMs) = (node, entries, head, atMs)
            (self.checkpoint, self.signature) = (checkpoint, signature)
        }
    }

    /// The newest checkpoint `node` lodged here.
    public func newestPeerCheckpoint(_ node: String) throws(StoreError) -> PeerCheckpoint? {
        try first(
            """
            SELECT entries, head, at_ms, checkpoint, signature FROM peer_checkpoints WHERE node = ?
            ORDER BY entries DESC LIMIT 1
            """,
            [.text(node)]
        ).map {
            PeerCheckpoint(
                node: node,
                entries: $0.int(0),
                head: $0.text(1),
                atMs: $0.int(2),
                checkpoint: $0.blob(3),
                signature: $0.blob(4)
            )
        }
    }

    public func keepPeerCheckpoint(_ lodged: PeerCheckpoint, receivedAtMs: Int64) throws(StoreError) {
        try query(
            "INSERT OR IGNORE INTO peer_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                .text(lodged.node), .int(lodged.entries), .text(lodged.head), .int(lodged.atMs), .int(receivedAtMs),
                .blob(lodged.checkpoint), .blob(lodged.signature),
            ]
        )
    }

    static let genesis = [UInt8](repeating: 0, count: 32)

    /// SHA-256 over the previous hash and each field, length-prefixed so that fields cannot run together.
    static func hash(_ e: AuditEntry, previous: [UInt8]) -> [UInt8] {
        var bytes = previous
        for field in ["\(e.seq)", "\(e.atMs)", e.event, e.actor, e.subject, e.outcome, e.detail] {
            let utf8 = Array(field.utf8)
            let n = UInt32(utf8.count)
            bytes += [
                UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
                UInt8(truncatingIfNeeded: n),
            ]
            bytes += utf8
        }
        return Digest.sha256(bytes)
    }
}
