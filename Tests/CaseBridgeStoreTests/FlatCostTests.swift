import Foundation
import Logging
import Testing
import TestSupport

@testable import CaseBridgeStore

/// What a fixed-size view costs must not grow with the history behind it. Measured as SQLite's
/// own count of virtual-machine steps (the same on every run), never as a time.
@Suite("Costs that do not grow with history")
struct FlatCostTests {
    /// Cases with four updates, four delivered messages, an inbox entry and two audit entries each.
    func fill(_ store: CaseStore, from first: Int, to last: Int) async throws {
        for start in stride(from: first, to: last, by: 500) {
            try await store.write { db in
                for i in start..<min(start + 500, last) {
                    let id = "case-\(i)"
                    var row = CaseStoreTests().row(id)
                    row.originReference = "REF-\(i)"
                    // Most cases are still "received": the work queue's largest list.
                    row.status = i % 10 == 0 ? 7 : 2
                    row.createdAtMs = Int64(i)
                    row.updatedAtMs = Int64(i)
                    try db.insertCase(row)
                    for n in 1...4 {
                        try db.appendHistory(
                            id,
                            actor: "ncct",
                            sequence: UInt64(n),
                            updateID: "\(id)-u\(n)",
                            body: [8, 1],
                            atMs: Int64(i)
                        )
                        try db.enqueue(
                            OutboxRow(
                                messageID: "\(id)-u\(n)",
                                peerNode: "embassy-id",
                                kind: 2,
                                caseID: id,
                                body: [8, 1],
                                state: 3,
                                queuedAtMs: Int64(i)
                            )
                        )
                    }
                    try db.insertInbox(kind: 1, messageID: "\(id)-r", caseID: id, fromNode: "embassy-id", atMs: 1)
                    for event in ["request.received", "update.sent"] {
                        try db.appendAudit(
                            event: event,
                            actor: "node:embassy-id",
                            subject: id,
                            outcome: "ok",
                            detail: "",
                            atMs: Int64(i)
                        )
                    }
                }
            }
        }
    }

    /// The work of one status screen, one case, one inbox page and the work queue's lists for an
    /// account that read everything but the latest 30 entries.
    func viewSteps(_ store: CaseStore, caseID: String) throws -> Int {
        try store.read { db in
            let before = db.stepsRun
            _ = try db.inbox(unreadOnly: false, limit: 50, staffID: 1)
            _ = try db.unreadCount(staffID: 1)
            _ = try db.backlog(pendingStates: [1, 2, 4])
            _ = try db.caseRow(caseID)
            _ = try db.outbox(caseID: caseID)
            _ = try db.history(caseID)
            _ = try db.lastSequence(caseID, actor: "ncct")
            var received = CaseFilter()
            received.statuses = [2]
            let page = try db.casePage(received, order: .urgency, offset: 0, limit: 5)
            #expect(page.rows.count == 5 && page.total > 0)
            return db.stepsRun - before
        }
    }

    @Test("an inbox page, a case, the status and the work queue cost the same at 1,000 and 6,000 cases")
    func flatViews() async throws {
        let folder = try makeTemporaryFolder("flat").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        defer { store.close() }

        func recentWork(_ tag: String) async throws {
            try await store.write { db in
                _ = try db.markRead([], upTo: Int64.max, staffID: 1, atMs: 1)
                for n in 0..<30 {
                    try db.insertInbox(kind: 1, messageID: "\(tag)-new-\(n)", caseID: "case-1", fromNode: "e", atMs: 2)
                }
                for n in 0..<5 {
                    try db.enqueue(
                        OutboxRow(
                            messageID: "\(tag)-pending-\(n)",
                            peerNode: "embassy-id",
                            kind: 2,
                            caseID: "case-\(n)",
                            body: [8],
                            state: 4,
                            queuedAtMs: 3
                        )
                    )
                }
            }
        }
        try await fill(store, from: 0, to: 1_000)
        try await recentWork("small")
        let small = try viewSteps(store, caseID: "case-500")
        try await fill(store, from: 1_000, to: 6_000)
        try await recentWork("large")
        let large = try viewSteps(store, caseID: "case-500")
        #expect(small > 0)
        #expect(Double(large) <= Double(small) * 1.2, "steps at 1,000 cases: \(small); at 6,000: \(large)")

        // The audit walk in chunks gives the same answer as in one go, in constant memory.
        let whole = try store.read { try $0.verifyAudit() }
        var walk = AuditWalk()
        var chunks = 0
        while try store.read({ try $0.continueAudit(&walk, entries: 1_000) }) { chunks += 1 }
        #expect(whole.intact && whole.entries == 12_000 && walk.result == whole && chunks == 12)

        // The kept counts agree with a count of the cases, after changes of status too.
        try await store.write { db in
            _ = try db.query("UPDATE cases SET status = 3 WHERE case_id IN ('case-1', 'case-2', 'case-3')")
        }
        var received = CaseFilter()
        received.statuses = [2]
        let kept = try store.read { try $0.casePage(received, order: .updatedNewest, offset: 0, limit: 1).total }
        let counted = try store.read { try $0.first("SELECT COUNT(*) FROM cases WHERE status = 2")?.int(0) ?? 0 }
        #expect(kept == Int(counted) && kept == 5_397)
    }
}
