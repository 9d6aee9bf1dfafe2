import Foundation
import Logging
import Testing
import TestSupport
@testable import CaseBridgeStore

@Suite("SQLite store")
struct CaseStoreTests {
    func withStore(_ body: (CaseStore, URL) async throws -> Void) async throws {
        let folder = try makeTemporaryFolder("store").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let store = try CaseStore(folder: folder.path, logger: Logger(label: "test"))
        try await body(store, folder)
        store.close()
    }

    func row(_ id: String) -> CaseRow {
        CaseRow(caseID: id, requestingNode: "embassy-id", request: [1, 2, 3], kind: 1, urgency: 2, originReference: "REF",
                status: 2, step: 0, personCount: 1, createdAtMs: 1, updatedAtMs: 1)
    }

    @Test("the data folder and database files are owner-only")
    func permissions() async throws {
        try await withStore { store, folder in
            try await store.write { try $0.insertCase(row("c1")) }
            func mode(_ path: String) throws -> Int? { try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int }
            #expect(try mode(folder.path) == 0o700)
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: store.path + suffix) {
                #expect(try mode(store.path + suffix) == 0o600, "\(suffix)")
            }
        }
    }

    @Test("many concurrent writes all commit, and a failing one leaves the others intact")
    func groupCommit() async throws {
        try await withStore { store, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<500 {
                    group.addTask { try await store.write { try $0.insertCase(row("c\(i)")) } }
                }
                try await group.waitForAll()
            }
            // A duplicate key fails alone; a write in the same batch still lands.
            let duplicate = Task { try await store.write { try $0.insertCase(row("c1")) } }
            let fresh = Task { try await store.write { try $0.insertCase(row("fresh")) } }
            await #expect(throws: StoreError.self) { try await duplicate.value }
            try await fresh.value
            let count = try store.read { try $0.first("SELECT COUNT(*) FROM cases")?.int(0) }
            #expect(count == 501)
        }
    }

    @Test("the audit chain verifies, and detects an edited or deleted entry")
    func auditChain() async throws {
        try await withStore { store, _ in
            for i in 1...5 {
                try await store.write { try $0.appendAudit(event: "test", actor: "ncct", subject: "s\(i)", outcome: "ok", detail: "", atMs: Int64(i)) }
            }
            #expect(try store.read { try $0.verifyAudit() } == AuditVerification(intact: true, entries: 5, firstBadSeq: 0, detail: ""))
            await #expect(throws: StoreError.self) {
                try await store.write { try $0.query("UPDATE audit SET detail = 'changed' WHERE seq = 2") }
            }
            // Someone with the file and the sqlite3 tool could drop the trigger; the chain still tells.
            let raw = try Database(path: store.path, readOnly: false)
            try raw.execute("DROP TRIGGER audit_is_append_only_update; UPDATE audit SET detail = 'changed' WHERE seq = 3")
            let edited = try store.read { try $0.verifyAudit() }
            #expect(!edited.intact)
            #expect(edited.firstBadSeq == 3)
            try raw.execute("DROP TRIGGER audit_is_append_only_delete; DELETE FROM audit WHERE seq = 1")
            #expect(try store.read { try $0.verifyAudit() }.firstBadSeq == 1)
        }
    }

    @Test("a write that audits and then fails leaves the chain as if it never happened")
    func auditAfterFailedWrite() async throws {
        try await withStore { store, _ in
            try await store.write { try $0.appendAudit(event: "a", actor: "n", subject: "1", outcome: "ok", detail: "", atMs: 1) }
            await #expect(throws: StoreError.self) {
                try await store.write { db in
                    try db.appendAudit(event: "b", actor: "n", subject: "2", outcome: "ok", detail: "", atMs: 2)
                    throw StoreError("the rest of this write failed")
                }
            }
            try await store.write { try $0.appendAudit(event: "c", actor: "n", subject: "3", outcome: "ok", detail: "", atMs: 3) }
            let verification = try store.read { try $0.verifyAudit() }
            #expect(verification.intact)
            #expect(try store.read { try $0.auditEntries(limit: 10).map(\.event) } == ["c", "a"])
        }
    }

    @Test("a database from a newer version is refused, not rewritten")
    func newerSchema() async throws {
        let folder = try makeTemporaryFolder("schema")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try CaseStore(folder: folder.path, logger: Logger(label: "test"))
        store.close()
        try Database(path: store.path, readOnly: false).execute("PRAGMA user_version = 99")
        #expect(throws: StoreError.self) { try CaseStore(folder: folder.path, logger: Logger(label: "test")) }
    }
}
