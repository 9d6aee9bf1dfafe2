import Foundation
import Testing
import TestSupport

@testable import CaseBridgeStore

@Suite("The writer's WAL writes, gathered")
struct WALWriteGatheringTests {
    /// The writer's connection (the gathering VFS, synchronous FULL as the store sets it) and a reader
    /// on SQLite's own files, which must see each commit as soon as it returns, and nothing else.
    @Test("a commit is one write to the WAL, or a few; readers see every commit whole, spills and rollbacks too")
    func gatheredWritesAreSafe() throws {
        let name = try #require(WALWriteGathering.vfsName)
        // Registering initialises SQLite: the page cache's wrapper must be in place before that.
        #expect(PageCacheTruncation.installed)
        let folder = try makeTemporaryFolder("wal-gathering")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("t.sqlite3").path
        let writer = try Database(path: path, readOnly: false, vfs: name)
        try writer.execute(
            """
            PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
            CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
            """
        )
        let reader = try Database(path: path, readOnly: true)
        var model: [String: [UInt8]] = [:]
        func insert(_ count: Int, size: ClosedRange<Int> = 50...400) throws -> [String: [UInt8]] {
            var added: [String: [UInt8]] = [:]
            for _ in 0..<count {
                let key = UUID().uuidString
                let value = (0..<Int.random(in: size)).map { _ in UInt8.random(in: 0...255) }
                try writer.query("INSERT INTO t (k, v) VALUES (?, ?)", [.text(key), .blob(value)])
                added[key] = value
            }
            return added
        }
        func committed(_ added: [String: [UInt8]]) { model.merge(added) { $1 } }
        /// A commit of 20 rows at random keys, which the reader must then see.
        func smallCommit() throws {
            try writer.execute("BEGIN IMMEDIATE")
            let added = try insert(20)
            try writer.execute("COMMIT")
            committed(added)
            try check(reader)
        }
        func check(_ connection: Database) throws {
            var read: [String: [UInt8]] = [:]
            for row in try connection.query("SELECT k, v FROM t") { read[row.text(0)] = row.blob(1) }
            #expect(read == model)
        }

        // Small commits at random keys: dozens of frames each, gathered into one write per commit.
        let gatheredBefore = WALWriteGathering.gathered.load(ordering: .relaxed)
        let writtenBefore = WALWriteGathering.written.load(ordering: .relaxed)
        for _ in 0..<40 { try smallCommit() }
        // The counts are the process's (scripts/test runs one test at a time).
        let gathered = WALWriteGathering.gathered.load(ordering: .relaxed) - gatheredBefore
        let written = WALWriteGathering.written.load(ordering: .relaxed) - writtenBefore
        // One write a commit, two for the few past 64 KiB; SQLite's own file took two for every frame.
        #expect(written >= 40 && written <= 50, "\(written) writes for 40 commits")
        #expect(gathered >= 40 * 20, "\(gathered) frame writes gathered")

        // A commit of more than a megabyte (a group of large requests): written in pieces SQLite's own
        // file takes whole (it takes less than 128 KiB at a time).
        try writer.execute("PRAGMA cache_size = -65536")
        try writer.execute("BEGIN IMMEDIATE")
        let group = try insert(2_000, size: 200...900)
        try writer.execute("COMMIT")
        committed(group)
        try check(reader)

        // A transaction larger than the cache and than what is held: pages spill into the WAL before
        // the commit, and some of them are written again (SQLite rewrites a spilled frame in place).
        try writer.execute("PRAGMA cache_size = -256")
        try writer.execute("BEGIN IMMEDIATE")
        var large = try insert(3_000, size: 200...900)
        for key in large.keys.prefix(500) {
            let value = [UInt8](repeating: 7, count: 300)
            try writer.query("UPDATE t SET v = ? WHERE k = ?", [.blob(value), .text(key)])
            large[key] = value
        }
        try check(reader)  // nothing of it yet
        try writer.execute("COMMIT")
        committed(large)
        try check(reader)

        // A spilled transaction rolled back: its frames are in the file, never in the index.
        try writer.execute("BEGIN IMMEDIATE")
        _ = try insert(3_000, size: 200...900)
        try writer.execute("ROLLBACK")
        try check(reader)
        try check(writer)

        // The WAL starts over after a full checkpoint: its header is written at the start again.
        try writer.execute("PRAGMA cache_size = -4096")
        _ = try writer.first("PRAGMA wal_checkpoint(TRUNCATE)")
        for _ in 0..<5 { try smallCommit() }
        #expect(try reader.first("PRAGMA integrity_check")?.text(0) == "ok")

        // What a fresh connection on SQLite's own files reads after the writer is gone.
        let fresh = try Database(path: path, readOnly: true)
        try check(fresh)
    }
}
