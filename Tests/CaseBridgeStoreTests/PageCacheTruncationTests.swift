import Foundation
import Testing
import TestSupport

@testable import CaseBridgeStore

@Suite("SQLite's page cache, wrapped")
struct PageCacheTruncationTests {
    /// Random keys split pages (the swap through the lock-byte page); a growth rolled back to its
    /// savepoint, a vacuum that shrinks the file and a growth into the page numbers given back must all
    /// read back exactly what was committed, through the same connection and through a fresh one.
    @Test("a commit's truncation is skipped only when no page past the end is held; nothing stale is read")
    func truncationSkippedSafely() throws {
        #expect(PageCacheTruncation.installed)
        let folder = try makeTemporaryFolder("pcache")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.sqlite3").path
        let db = try Database(path: path, readOnly: false)
        try db.execute(
            """
            PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA cache_size = -4096;
            CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
            """
        )
        var model: [String: [UInt8]] = [:]
        func insert(_ count: Int, tag: UInt8) throws {
            for _ in 0..<count {
                let key = UUID().uuidString, value = [UInt8](repeating: tag, count: Int.random(in: 50...400))
                try db.query("INSERT INTO t (k, v) VALUES (?, ?)", [.text(key), .blob(value)])
                model[key] = value
            }
        }
        func check(_ connection: Database) throws {
            #expect(try connection.first("PRAGMA integrity_check")?.text(0) == "ok")
            var read: [String: [UInt8]] = [:]
            for row in try connection.query("SELECT k, v FROM t") { read[row.text(0)] = row.blob(1) }
            #expect(read == model)
        }
        let skippedBefore = PageCacheTruncation.skipped.load(ordering: .relaxed)
        for _ in 0..<30 {
            try db.execute("BEGIN IMMEDIATE")
            try insert(100, tag: 1)
            try db.execute("COMMIT")
        }
        // The counts are the process's (scripts/test runs one test at a time): each commit skipped its walk.
        #expect(PageCacheTruncation.skipped.load(ordering: .relaxed) - skippedBefore >= 30)

        // One write of a group fails and its savepoint is rolled back, as the writer does: the pages it
        // added (about 600 KiB) are past the end at the commit, and must leave the cache then.
        let runBefore = PageCacheTruncation.run.load(ordering: .relaxed)
        try db.execute("BEGIN IMMEDIATE")
        try insert(100, tag: 2)
        let saved = model
        try db.execute("SAVEPOINT job")
        try insert(2_000, tag: 3)
        let grown = db.pageCacheBytes
        try db.execute("ROLLBACK TO job")
        try db.execute("RELEASE job")
        model = saved
        try db.execute("COMMIT")
        #expect(PageCacheTruncation.run.load(ordering: .relaxed) > runBefore)
        #expect(db.pageCacheBytes < grown - 400 * 1024, "\(db.pageCacheBytes) of \(grown) bytes still cached")
        try db.execute("BEGIN IMMEDIATE")
        try insert(1_500, tag: 4)
        try db.execute("COMMIT")
        try check(db)

        // More new pages in one transaction than a cache keeps track of: the truncation runs.
        let runBeforeMany = PageCacheTruncation.run.load(ordering: .relaxed)
        try db.execute("BEGIN IMMEDIATE")
        try insert(20_000, tag: 6)
        try db.execute("COMMIT")
        #expect(PageCacheTruncation.run.load(ordering: .relaxed) > runBeforeMany)

        // The file shrinks, then grows again into the page numbers it gave back.
        try db.execute("DELETE FROM t WHERE k IN (SELECT k FROM t ORDER BY k LIMIT 20000)")
        let kept = model.sorted { $0.key < $1.key }.dropFirst(20_000)
        model = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        try db.execute("VACUUM")
        try check(db)
        try db.execute("BEGIN IMMEDIATE")
        try insert(2_000, tag: 5)
        try db.execute("COMMIT")
        try check(db)
        try check(try Database(path: path, readOnly: true))
    }
}
