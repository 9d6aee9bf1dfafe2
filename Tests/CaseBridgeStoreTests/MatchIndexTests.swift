import Foundation
import Logging
import Testing
import TestSupport
@testable import CaseBridgeStore

@Suite("Duplicate detection's index")
struct MatchIndexTests {
    /// A store and an index that writes a run every 4 terms and merges every 2 runs of one size.
    struct Fixture {
        let store: CaseStore
        let folder: String
        var index: MatchIndex

        init(_ data: URL) throws {
            store = try CaseStore(folder: data.path, dataKey: testKey, logger: Logger(label: "test"))
            folder = data.appendingPathComponent("match-index").path
            index = try Self.index(folder)
        }

        static func index(_ folder: String, bufferRows: Int = 4) throws -> MatchIndex {
            var limits = MatchIndex.Limits()
            limits.bufferRows = bufferRows
            limits.runsPerTier = 2
            return try MatchIndex(folder: folder, limits: limits)
        }

        func add(_ caseID: String, _ terms: Set<String>) async throws {
            try await store.write { db in
                try db.insertCase(CaseStoreTests().row(caseID))
                // As `PersonIndex.write` does: a person's match terms are among their search terms.
                let keys = try db.termKeys()
                try db.addPersonTerms(
                    search: keys(terms.union(["name:sok"])),
                    match: keys(terms),
                    caseID: caseID,
                    personRef: "P1"
                )
                try db.addMatchTraits([1, 2, 3], caseID: caseID)
            }
        }

        /// What the scan does after reading: catch up, then write runs when due.
        func catchUp() async throws {
            _ = try store.read { try index.catchUp($0) }
            try await index.writeRunsIfDue { change in try await store.write(change) }
        }

        func found(_ term: String) throws -> [String] {
            try store.read { db in
                try index.searchPersons(
                    anyOfEach: [db.termKeys()([term])],
                    excludingCase: "none",
                    maxPersonsPerTerm: 3
                )
            }[0].map(\.caseID)
        }

        func count(_ sql: String) throws -> Int64 { try store.read { try $0.first(sql)?.int(0) ?? -1 } }

        var files: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() }

        /// How many postings of `caseID` the run files hold, read from the files themselves.
        func rowsInFiles(_ caseID: String) throws -> Int {
            try files.reduce(0) { total, file in
                var cursor = RunFile.Cursor(try RunFile(path: folder + "/" + file), from: 0, windowBytes: 4096)
                var rows = 0
                while try cursor.nextKept() {
                    if cursor.caseID.elementsEqual(caseID.utf8) { rows += 1 }
                }
                return total + rows
            }
        }

        /// Whether any run file holds these bytes anywhere (removed postings among them).
        func filesHold(_ text: String) throws -> Bool {
            try files.contains { file in
                holds([UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file))), Array(text.utf8))
            }
        }
    }

    func withFixture(_ body: (inout Fixture) async throws -> Void) async throws {
        let data = try makeTemporaryFolder("match-index").appendingPathComponent("data")
        defer { try? FileManager.default.removeItem(at: data.deletingLastPathComponent()) }
        var fixture = try Fixture(data)
        try await body(&fixture)
        fixture.store.close()
    }

    @Test("terms are found in memory and in runs, runs of one size merge, and a restart finds the same")
    func runsAndRestart() async throws {
        try await withFixture { fixture in
            for i in 0..<12 {
                // Three persons share a phone (found), all twelve a date and name (past the limit).
                let phone = i < 3 ? ["phone:855111"] : []
                try await fixture.add("case-\(i)", Set(["doc:D\(i)", "born-named:1990|sok"] + phone))
                try await fixture.catchUp()
            }
            func check() throws {
                for i in 0..<12 { #expect(try fixture.found("doc:D\(i)") == ["case-\(i)"]) }
                #expect(try fixture.found("phone:855111") == ["case-0", "case-1", "case-2"])
                #expect(try fixture.found("born-named:1990|sok").isEmpty)
                #expect(try fixture.found("doc:none").isEmpty)
            }
            try check()
            // 27 terms at 4 a run: written out and merged, never more than one run of a size left over.
            let tiers = try fixture.store.read { try $0.query("SELECT tier FROM match_runs").map { $0.int(0) } }
            #expect(Set(tiers).count == tiers.count)
            #expect(tiers.max() ?? 0 >= 2)
            #expect(fixture.files.count == tiers.count)
            // Log rows written out are dropped with the listing of their run.
            #expect(try fixture.count("SELECT COUNT(*) FROM match_log") < 4)
            for file in fixture.files {
                let attributes = try FileManager.default.attributesOfItem(atPath: fixture.folder + "/" + file)
                #expect(attributes[.posixPermissions] as? Int == 0o600)
            }
            // A restart: memory is gone, the runs and the log rows after them are read again.
            fixture.index = try Fixture.index(fixture.folder)
            _ = try fixture.store.read { try fixture.index.catchUp($0) }
            try check()
        }
    }

    @Test("a run written from memory holds every term, however many rows one statement inserts")
    func largeRun() async throws {
        try await withFixture { fixture in
            // 61 persons of 5 terms each (one shared by all) make one run of 305 rows: several
            // statements' worth, and some over.
            fixture.index = try Fixture.index(fixture.folder, bufferRows: 300)
            for i in 0..<61 {
                let terms = ["doc:D\(i)", "phone:855\(i)", "email:p\(i)", "born-named:19\(i)|sok", "name:common"]
                try await fixture.add("case-\(i)", Set(terms))
            }
            try await fixture.catchUp()
            #expect(fixture.files.count == 1)
            #expect(try (0..<61).allSatisfy { try fixture.rowsInFiles("case-\($0)") == 5 })
            #expect(try fixture.count("SELECT COUNT(*) FROM match_log") == 0)
            for i in 0..<61 {
                #expect(try fixture.found("doc:D\(i)") == ["case-\(i)"])
                #expect(try fixture.found("born-named:19\(i)|sok") == ["case-\(i)"])
            }
        }
    }

    @Test("a person's row holds the keys of their terms in the order of the keys' values, not of the terms")
    func rowsHoldKeysByValue() async throws {
        try await withFixture { fixture in
            // Terms whose order as text differs from their keys' order (kinds sort as text: born, doc, name).
            let terms = ["born-named:1990|sok", "doc:N01234567", "name:sok", "name:dara", "phone:855111"]
            let keys = fixture.store.termKeys(terms)
            #expect(Set(keys).count == terms.count)
            #expect(keys != keys.sorted(), "the example needs keys that the terms' order does not sort")
            try await fixture.store.write { db in
                try db.insertCase(CaseStoreTests().row("case-1"))
                try db.addPersonTerms(search: keys, match: Array(keys.prefix(2)), caseID: "case-1", personRef: "P1")
            }
            let rows = try fixture.store.read { db in
                try ["search_terms", "match_log"].map { table in
                    try db.first("SELECT terms FROM \(table) WHERE case_id = 'case-1'")?.blob(0) ?? []
                }
            }
            #expect(rows[0].count == 8 * terms.count)
            #expect(MatchIndex.keys(rows[0]) == keys.sorted())
            #expect(MatchIndex.keys(rows[1]) == Array(keys.prefix(2)).sorted())
            // The same keys the search and the index are asked with: found by each term.
            let found = try fixture.store.read { db in
                try db.searchPersons(allOf: ["name:dara", "doc:N01234567"], limit: 5)
            }
            #expect(found.map(\.caseID) == ["case-1"])
        }
    }

    @Test("a log longer than memory holds (a rebuilt index) is read a run at a time")
    func longLog() async throws {
        try await withFixture { fixture in
            try await fixture.store.write { db in
                for i in 0..<12 {
                    try db.insertCase(CaseStoreTests().row("case-\(i)"))
                    try db.addPersonTerms(
                        search: [],
                        match: db.termKeys()(["doc:D\(i)", "phone:85544\(i)"]),
                        caseID: "case-\(i)",
                        personRef: "P1"
                    )
                }
            }
            var runsWritten = 0
            while try !fixture.store.read({ try fixture.index.catchUp($0) }) {
                try await fixture.index.writeRunsIfDue { change in try await fixture.store.write(change) }
                runsWritten += 1
            }
            // Read 4 log rows (8 terms) at a time, each page written out before the next is read.
            #expect(runsWritten == 3)
            for i in 0..<12 { #expect(try fixture.found("phone:85544\(i)") == ["case-\(i)"]) }
        }
    }

    @Test("a purged person leaves the runs' files and memory")
    func purge() async throws {
        try await withFixture { fixture in
            for i in 0..<5 {
                try await fixture.add("case-\(i)", ["doc:D\(i)", "phone:855222"])
                try await fixture.catchUp()
            }
            try await fixture.store.write { try $0.purgePersonalData("case-0", atMs: 2) }
            try await fixture.store.write { try $0.purgePersonalData("case-4", atMs: 2) }  // still in memory
            try await fixture.catchUp()
            #expect(try fixture.found("doc:D0").isEmpty)
            #expect(try fixture.found("doc:D4").isEmpty)
            #expect(try fixture.found("phone:855222") == ["case-1", "case-2", "case-3"])
            #expect(try fixture.found("doc:D1") == ["case-1"])
            // The log keeps nothing of them: rows not yet read went at the purge, the removals once done.
            #expect(try fixture.count("SELECT COUNT(*) FROM match_log WHERE case_id IN ('case-0', 'case-4')") == 0)
            // Nor do the files (read once the index lets go of them, as when the node stops).
            fixture.index = try Fixture.index(fixture.folder)
            #expect(try fixture.rowsInFiles("case-0") == 0)
            #expect(try fixture.rowsInFiles("case-1") == 2)
            #expect(try !fixture.filesHold("case-0"), "a removed posting is overwritten, not only marked")
            #expect(try fixture.filesHold("case-1"))
        }
    }

    @Test("a cleared index starts again; files it does not list are deleted; a change after a clear is refused")
    func clearAndStrays() async throws {
        try await withFixture { fixture in
            for i in 0..<4 {
                try await fixture.add("case-\(i)", ["doc:D\(i)", "phone:85533\(i)"])
                try await fixture.catchUp()
            }
            let listed = fixture.files
            #expect(!listed.isEmpty)
            #expect(try fixture.store.read { try MatchIndex.runsPresent($0, folder: fixture.folder) })
            // A run written but never listed (a crash before its listing committed).
            #expect(FileManager.default.createFile(atPath: fixture.folder + "/run-stray.sqlite3", contents: Data([1])))
            fixture.index = try Fixture.index(fixture.folder)
            try await fixture.catchUp()
            #expect(fixture.files == listed)

            // The index is cleared while the scan holds terms in memory: the run it writes is refused.
            try await fixture.add("case-9", ["doc:D9", "phone:855339", "phone:855338", "doc:X9"])
            _ = try fixture.store.read { try fixture.index.catchUp($0) }
            try await fixture.store.write { try $0.clearSearchIndex() }
            await #expect(throws: StoreError.self) {
                try await fixture.index.writeRunsIfDue { change in try await fixture.store.write(change) }
            }
            #expect(try fixture.count("SELECT COUNT(*) FROM match_runs") == 0)
            try await fixture.catchUp()
            #expect(fixture.files.isEmpty)
            #expect(try fixture.found("doc:D0").isEmpty)
            #expect(try fixture.found("doc:D9").isEmpty)

            try await fixture.add("case-10", ["doc:D10"])
            try await fixture.catchUp()
            #expect(try fixture.found("doc:D10") == ["case-10"])
            // A listed run gone from disk (a database restored on another machine), or an older node's
            // SQLite run: the node rebuilds.
            try await fixture.add("case-11", ["doc:D11", "doc:E11", "doc:F11", "doc:G11"])
            try await fixture.catchUp()
            let run = fixture.folder + "/" + fixture.files[0]
            let copy = try Data(contentsOf: URL(fileURLWithPath: run))
            try FileManager.default.removeItem(atPath: run)
            #expect(try !fixture.store.read { try MatchIndex.runsPresent($0, folder: fixture.folder) })
            try Database(path: run, readOnly: false).execute("CREATE TABLE terms (term INTEGER PRIMARY KEY)")
            #expect(try !fixture.store.read { try MatchIndex.runsPresent($0, folder: fixture.folder) })
            try copy.write(to: URL(fileURLWithPath: run))
            #expect(try fixture.store.read { try MatchIndex.runsPresent($0, folder: fixture.folder) })
        }
    }
}

@Suite("Duplicate detection's index: a run's filter")
struct TermFilterTests {
    /// Spread like the keyed hashes the index holds (splitmix64 over a counter).
    static func term(_ i: Int) -> Int64 {
        var z = UInt64(i) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int64(bitPattern: z ^ (z >> 31))
    }

    @Test("every term of a run passes its filter; about 1 % of the others do")
    func filter() {
        let held = (0..<20_000).map(Self.term)
        var filter = TermFilter(capacity: held.count)
        held.forEach { filter.insert($0) }
        #expect(held.allSatisfy(filter.mayHold))
        let strangers = (20_000..<120_000).map(Self.term).filter(filter.mayHold).count
        #expect(strangers > 0 && strangers < 2_000, "\(strangers) of 100,000 terms not held passed")
        // A run whose filter is missing is read for every term, never divided by zero.
        #expect(TermFilter(bits: []).mayHold(Self.term(1)))
    }

    @Test("a filter's bits are where runs already on disk put them")
    func layout() {
        // The layout written out plainly: probe i of a term sets bit (low + i × (high | 1)) mod the
        // filter's bits, in 64-bit wrapping arithmetic, bit (b mod 8) of byte b / 8. A run keeps its
        // filter on disk, so a change here would make old runs miss terms they hold.
        let terms = (0..<1_000).map(Self.term)
        var expected = [UInt8](repeating: 0, count: (terms.count * 10 + 7) / 8)
        for term in terms {
            let value = UInt64(bitPattern: term)
            for i: UInt64 in 0..<7 {
                let bit = Int(((value & 0xFFFF_FFFF) &+ i &* (value >> 32 | 1)) % UInt64(expected.count * 8))
                expected[bit / 8] |= 1 << UInt8(bit % 8)
            }
        }
        var filter = TermFilter(capacity: terms.count)
        terms.forEach { filter.insert($0) }
        #expect(filter.bits == expected)
        #expect(TermFilter(bits: expected).mayHold(terms[0]))
    }
}
