import Foundation
import Logging
import Testing
import TestSupport
@testable import CaseBridgeStore

let testKey = [UInt8](repeating: 7, count: 32)

@Suite("SQLite store")
struct CaseStoreTests {
    func withStore(_ body: (CaseStore, URL) async throws -> Void) async throws {
        let folder = try makeTemporaryFolder("store").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        try await body(store, folder)
        store.close()
    }

    func row(_ id: String) -> CaseRow {
        CaseRow(
            caseID: id,
            requestingNode: "embassy-id",
            request: [1, 2, 3],
            kind: 1,
            urgency: 2,
            originReference: "REF",
            status: 2,
            step: 0,
            personCount: 1,
            createdAtMs: 1,
            updatedAtMs: 1
        )
    }

    @Test("the data folder and database files are owner-only")
    func permissions() async throws {
        try await withStore { store, folder in
            try await store.write { try $0.insertCase(row("c1")) }
            func mode(_ path: String) throws -> Int? {
                try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            }
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

    @Test("work done meanwhile runs beside writes that come one at a time, and its error comes after the commit")
    func meanwhile() async throws {
        try await withStore { store, _ in
            func write(_ id: String) async throws -> String? {
                let written = try await store.write {
                    try $0.insertCase(row(id))
                } meanwhile: {
                    "signed"
                }
                return written.meanwhile
            }
            #expect(try await write("alone") == "signed")

            // Behind a write the writer holds, the caller's thread is not kept: nothing runs meanwhile.
            let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
            let held = Task {
                try await store.write { _ in
                    holding.signal(); release.wait()
                }
            }
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    holding.wait(); continuation.resume()
                }
            }
            async let behind = withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<5 { group.addTask { try await write("behind-\(i)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await Task.sleep(for: .milliseconds(200))
            release.signal()
            try await held.value
            #expect(try await behind == [nil, nil, nil, nil, nil])
            // The writer is idle again, but its last group held five writes: still under load.
            #expect(try await write("after-group") == nil)

            struct Refused: Error {}
            await #expect(throws: Refused.self) {
                _ = try await store.write {
                    try $0.insertCase(row("committed"))
                } meanwhile: {
                    throw Refused()
                }
            }
            let count = try store.read { try $0.first("SELECT COUNT(*) FROM cases")?.int(0) }
            #expect(count == 8)
        }
    }

    @Test("the audit chain verifies, and detects an edited or deleted entry")
    func auditChain() async throws {
        try await withStore { store, _ in
            for i in 1...5 {
                try await store.write {
                    try $0.appendAudit(
                        event: "test",
                        actor: "ncct",
                        subject: "s\(i)",
                        outcome: "ok",
                        detail: "",
                        atMs: Int64(i)
                    )
                }
            }
            #expect(
                try store.read { try $0.verifyAudit() }
                    == AuditVerification(intact: true, entries: 5, firstBadSeq: 0, detail: "")
            )
            await #expect(throws: StoreError.self) {
                try await store.write { try $0.query("UPDATE audit SET detail = 'changed' WHERE seq = 2") }
            }
            // Someone with the file and the sqlite3 tool could drop the trigger; the chain still tells.
            let raw = try Database(path: store.path, readOnly: false)
            try raw.execute(
                "DROP TRIGGER audit_is_append_only_update; UPDATE audit SET detail = 'changed' WHERE seq = 3"
            )
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
            try await store.write {
                try $0.appendAudit(event: "a", actor: "n", subject: "1", outcome: "ok", detail: "", atMs: 1)
            }
            await #expect(throws: StoreError.self) {
                try await store.write { db in
                    try db.appendAudit(event: "b", actor: "n", subject: "2", outcome: "ok", detail: "", atMs: 2)
                    throw StoreError("the rest of this write failed")
                }
            }
            try await store.write {
                try $0.appendAudit(event: "c", actor: "n", subject: "3", outcome: "ok", detail: "", atMs: 3)
            }
            let verification = try store.read { try $0.verifyAudit() }
            #expect(verification.intact)
            #expect(try store.read { try $0.auditEntries(limit: 10).map(\.event) } == ["c", "a"])
        }
    }

    @Test("a database from a newer version is refused, not rewritten")
    func newerSchema() async throws {
        let folder = try makeTemporaryFolder("schema")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        store.close()
        try Database(path: store.path, readOnly: false).execute("PRAGMA user_version = 99")
        #expect(throws: StoreError.self) {
            try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        }
    }

    /// Every byte of the database and its WAL, as someone with a copy of the folder would read them.
    static func files(_ store: CaseStore) -> Data {
        ["", "-wal"].reduce(into: Data()) {
            $0.append((try? Data(contentsOf: URL(fileURLWithPath: store.path + $1))) ?? Data())
        }
    }

    @Test("personal data is sealed in the files, bound to its row, and readable only with the node's key")
    func sealedAtRest() async throws {
        let folder = try makeTemporaryFolder("sealed").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        let secret = Array("Siti Rahma Secretname +6281299990000".utf8)
        var store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        try await store.write { db in
            var first = row("c1")
            first.request = secret
            try db.insertCase(first)
            try db.insertCase(row("c2"))
            try db.upsertPerson(
                "c1",
                PersonRow(personRef: "P1", position: 0, status: 1, note: "seen with Secretname", updatedAtMs: 1)
            )
            try db.appendHistory("c1", actor: "ncct", sequence: 1, updateID: "u1", body: secret, atMs: 1)
            try db.appendHistory("c2", actor: "ncct", sequence: 1, updateID: "u2", body: [9, 9], atMs: 1)
            try db.enqueue(
                OutboxRow(
                    messageID: "u1",
                    peerNode: "embassy-id",
                    kind: 2,
                    caseID: "c1",
                    body: secret,
                    state: 1,
                    queuedAtMs: 1
                )
            )
        }
        // Read back in clear through the store...
        #expect(try store.read { try $0.caseRow("c1")?.request } == secret)
        #expect(try store.read { try $0.persons("c1").first?.note } == "seen with Secretname")
        #expect(try store.read { try $0.historyBody(updateID: "u1") } == secret)
        #expect(try store.read { try $0.outboxMessage("u1", peer: "embassy-id")?.body } == secret)
        // ...and nowhere in the files.
        let bytes = Self.files(store)
        #expect(!bytes.isEmpty)
        #expect(bytes.range(of: Data("Secretname".utf8)) == nil)
        #expect(bytes.range(of: Data("6281299990000".utf8)) == nil)

        // A body moved to another row does not open there.
        _ = try await store.write { db in
            try db.query(
                "UPDATE case_history SET body = (SELECT body FROM case_history WHERE update_id = 'u1')"
                    + " WHERE update_id = 'u2'"
            )
        }
        #expect(throws: StoreError.self) { try store.read { try $0.historyBody(updateID: "u2") } }
        store.close()

        // Another key opens nothing.
        store = try CaseStore(
            folder: folder.path,
            dataKey: [UInt8](repeating: 8, count: 32),
            logger: Logger(label: "test")
        )
        let wrongKey = #expect(throws: StoreError.self) { try store.read { try $0.caseRow("c1") } }
        #expect(wrongKey?.message.contains("data key") == true, "\(String(describing: wrongKey))")
        store.close()
    }

    @Test("a database from before sealing is sealed once at start, and its clear text is gone from the files")
    func sealsExistingData() async throws {
        let folder = try makeTemporaryFolder("upgrade").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        var store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        store.close()
        // As an older version left it: values in clear, not yet marked sealed.
        let raw = try Database(path: store.path, readOnly: false)
        try raw.execute(
            """
            DELETE FROM store_meta;
            INSERT INTO cases (case_id, requesting_node, request, kind, urgency, origin_reference, status, step,
                               person_count, created_at_ms, updated_at_ms)
                VALUES ('old', 'embassy-id', CAST('Oldclear Personname' AS BLOB),
                               1, 1, '', 2, 0, 1, 1, 1);
            INSERT INTO persons VALUES (1, 'old', 'P1', 0, 1, 'note about Oldclear', 1);
            INSERT INTO case_history (case_id, actor_node, sequence, update_id, body, applied_at_ms)
                VALUES ('old', 'ncct', 1, 'u-old', CAST('update naming Oldclear' AS BLOB), 1);
            PRAGMA wal_checkpoint(TRUNCATE);
            """
        )
        #expect(Self.files(store).range(of: Data("Oldclear".utf8)) != nil)
        store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        #expect(try store.read { try $0.caseRow("old")?.request } == Array("Oldclear Personname".utf8))
        #expect(try store.read { try $0.persons("old").first?.note } == "note about Oldclear")
        #expect(try store.read { try $0.historyBody(updateID: "u-old") } == Array("update naming Oldclear".utf8))
        #expect(Self.files(store).range(of: Data("Oldclear".utf8)) == nil)
        store.close()
    }

    @Test("persons filed before version 14 move into their cases' order, with statuses and sealed notes")
    func personsMovedIntoFilingOrder() async throws {
        let folder = try makeTemporaryFolder("filing-order").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: folder.deletingLastPathComponent()) }
        @Sendable func person(_ ref: String, _ status: Int32, _ note: String) -> PersonRow {
            PersonRow(personRef: ref, position: ref == "P1" ? 0 : 1, status: status, note: note, updatedAtMs: 1)
        }
        var store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        try await store.write { db in
            // Filed in the order opposite to their ids': only a key led by the filing time sorts them so.
            for (id, filedAt) in [("alpha-later", Int64(20)), ("bravo-earlier", 10)] {
                var filed = row(id)
                filed.createdAtMs = filedAt
                try db.insertCase(filed)
                try db.upsertPerson(id, person("P2", 2, "second of \(id)"))
                try db.upsertPerson(id, person("P1", 1, "first of \(id)"))
            }
        }
        store.close()
        // As version 13 left it: persons keyed by their case's id, and no request digests (15).
        try Database(path: store.path, readOnly: false).execute(
            """
            ALTER TABLE cases DROP COLUMN request_sha256;
            CREATE TABLE persons_v13 (case_id TEXT NOT NULL REFERENCES cases(case_id), person_ref TEXT NOT NULL,
                position INTEGER NOT NULL, status INTEGER NOT NULL, note TEXT NOT NULL DEFAULT '',
                updated_at_ms INTEGER NOT NULL, PRIMARY KEY (case_id, person_ref)) WITHOUT ROWID;
            INSERT INTO persons_v13 SELECT case_id, person_ref, position, status, note, updated_at_ms FROM persons;
            DROP TABLE persons;
            ALTER TABLE persons_v13 RENAME TO persons;
            PRAGMA user_version = 13;
            """
        )
        store = try CaseStore(folder: folder.path, dataKey: testKey, logger: Logger(label: "test"))
        defer { store.close() }
        for id in ["bravo-earlier", "alpha-later"] {
            let persons = try store.read { try $0.persons(id) }
            #expect(persons.map(\.personRef) == ["P1", "P2"])
            #expect(persons.map(\.status) == [1, 2])
            #expect(persons.map(\.note) == ["first of \(id)", "second of \(id)"])
        }
        let filed = try store.read { db in
            try db.query("SELECT filed_at_ms, case_id, person_ref FROM persons").map {
                "\($0.int(0)) \($0.text(1)) \($0.text(2))"
            }
        }
        #expect(filed == ["10 bravo-earlier P1", "10 bravo-earlier P2", "20 alpha-later P1", "20 alpha-later P2"])

        // A person changed after the move replaces its row; a person for no case is refused.
        try await store.write { try $0.upsertPerson("alpha-later", person("P1", 3, "found")) }
        #expect(try store.read { try $0.personStatusCounts("alpha-later") } == [2: 1, 3: 1])
        #expect(try store.read { try $0.persons("alpha-later").first?.note } == "found")
        await #expect(throws: StoreError.self) {
            try await store.write { try $0.upsertPerson("missing", person("P1", 1, "")) }
        }
    }

    @Test("a likeness found again, either way round, is recorded once")
    func matchRecordedOnce() async throws {
        try await withStore { store, _ in
            let found = MatchRow(
                caseID: "case-b",
                personRef: "A",
                otherCaseID: "case-a",
                otherPersonRef: "P1",
                score: 0.9,
                agreeing: ["name"],
                conflicting: [],
                foundAtMs: 1
            )
            var reversed = found
            (reversed.caseID, reversed.personRef) = (found.otherCaseID, found.otherPersonRef)
            (reversed.otherCaseID, reversed.otherPersonRef) = (found.caseID, found.personRef)
            var another = found
            another.otherPersonRef = "P2"
            let all = [found, found, reversed, another]
            try await store.write { db in
                for match in all { try db.insertMatch(match) }
            }
            let rows = try store.read { try $0.matches(state: nil, limit: 10, offset: 0) }
            #expect(rows.total == 2)
            #expect(
                Set(rows.rows.map { "\($0.caseID)/\($0.personRef)~\($0.otherCaseID)/\($0.otherPersonRef)" }) == [
                    "case-b/A~case-a/P1", "case-b/A~case-a/P2",
                ]
            )
        }
    }
}
