import Foundation
import Testing
import TestSupport
@testable import CaseBridgeStore

@Suite("Duplicate detection's index: a run's file")
struct RunFileTests {
    struct Posting: Hashable {
        let term: Int64
        let caseID: String
        let personRef: String

        /// Term, then case id and person ref as bytes (ASCII here: as text).
        static func less(_ a: Posting, _ b: Posting) -> Bool {
            (a.term, a.caseID, a.personRef) < (b.term, b.caseID, b.personRef)
        }
    }

    /// A person for each case, with two terms: one of their own, and one of 40 that every 40th case
    /// shares. Terms spread over the whole range of keys, negative ones among them.
    static func postings(cases: Range<Int>) -> [Posting] {
        cases.flatMap { i in
            [
                Posting(term: TermFilterTests.term(i), caseID: "case-\(i)", personRef: "P1"),
                Posting(term: TermFilterTests.term(1_000_000 + i % 40), caseID: "case-\(i)", personRef: "P1"),
            ]
        }
    }

    func write(_ postings: [Posting], _ path: String) throws -> RunFile {
        let writer = try RunFile.Writer(path: path, capacity: postings.count)
        for posting in postings.sorted(by: Posting.less) {
            try writer.append(term: posting.term, caseID: posting.caseID.utf8, personRef: posting.personRef.utf8)
        }
        try writer.finish()
        return try RunFile(path: path)
    }

    /// What the run answers for every term `expected` holds, as the index asks (another case, a limit).
    func check(_ run: RunFile, holds expected: [Posting]) throws {
        for (term, held) in Dictionary(grouping: expected, by: \.term) {
            let found = try run.postings(of: term, excludingCase: "none", limit: 1_000)
            #expect(found.count == held.count)
            #expect(Set(found.map(\.caseID)) == Set(held.map(\.caseID)))
            #expect(found.allSatisfy { $0.personRef == "P1" })
            let other = try run.postings(of: term, excludingCase: held[0].caseID, limit: 1_000)
            #expect(other.count == held.count - 1)
            #expect(try run.postings(of: term, excludingCase: "none", limit: 2).count == min(2, held.count))
        }
    }

    @Test("a run finds every term's postings, after removals in place, and merged with another")
    func lookUpRemoveMerge() throws {
        let folder = try makeTemporaryFolder("run-file")
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = Self.postings(cases: 0..<1_500), second = Self.postings(cases: 1_500..<3_000)
        let a = try write(first + first.prefix(5), folder.path + "/a.run")  // a posting given twice is kept once
        let b = try write(second, folder.path + "/b.run")
        #expect(a.rows == first.count)
        try check(a, holds: first)
        #expect(try a.postings(of: TermFilterTests.term(9_999_999), excludingCase: "none", limit: 10).isEmpty)

        // Removed: every 64th posting in the file's order (the samples a lookup starts from), the
        // first, and a run of postings of one shared term.
        let ordered = first.sorted(by: Posting.less)
        var removed = Set(stride(from: 0, to: ordered.count, by: RunFile.sampleEvery).map { ordered[$0] })
        removed.formUnion(ordered.filter { $0.term == TermFilterTests.term(1_000_003) }.prefix(20))
        try a.remove(removed.map { ($0.caseID, [$0.term]) })
        let kept = first.filter { !removed.contains($0) }
        try check(a, holds: kept)
        try check(try RunFile(path: folder.path + "/a.run"), holds: kept)  // the samples as the file holds them
        for posting in removed where !kept.contains(where: { $0.term == posting.term }) {
            #expect(try a.postings(of: posting.term, excludingCase: "none", limit: 10).isEmpty)
        }
        // Nothing of a removed posting stays in the file: not its term (this one is no one else's), not
        // the posting as written.
        let bytes = [UInt8](try Data(contentsOf: folder.appendingPathComponent("a.run")))
        let gone = ordered[64]
        let term = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: gone.term) >> (8 * $0)) }
        let posting = term + [0, UInt8(gone.caseID.utf8.count), 2] + Array("\(gone.caseID)P1".utf8)
        let termLeft = holds(bytes, term), postingLeft = holds(bytes, posting)
        #expect(!termLeft)
        #expect(!postingLeft)

        let writer = try RunFile.Writer(path: folder.path + "/merged.run", capacity: a.rows + b.rows)
        try RunFile.merge([b, a], into: writer)
        try writer.finish()
        let run = try RunFile(path: folder.path + "/merged.run")
        #expect(run.rows == kept.count + second.count)
        try check(run, holds: kept + second)
        var cursor = RunFile.Cursor(run, from: 0, windowBytes: 1)  // the least: one posting's largest size
        var read: [Posting] = []
        while try cursor.nextKept() {
            read.append(
                Posting(
                    term: cursor.term,
                    caseID: String(decoding: cursor.caseID, as: UTF8.self),
                    personRef: String(decoding: cursor.personRef, as: UTF8.self)
                )
            )
        }
        #expect(read == (kept + second).sorted(by: Posting.less), "merged in order, each posting once")
    }

    @Test("a file that is not a run (an older node's SQLite run, a damaged or cut file) is refused")
    func notARun() throws {
        let folder = try makeTemporaryFolder("run-file")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sqlite = folder.path + "/old.sqlite3"
        try Database(path: sqlite, readOnly: false).execute("CREATE TABLE terms (term INTEGER)")
        #expect(!RunFile.isRun(sqlite))
        _ = try write(Self.postings(cases: 0..<10), folder.path + "/cut.run")
        #expect(RunFile.isRun(folder.path + "/cut.run"))
        // A trailer that adds up but counts a negative number of samples: refused, not read by.
        let damaged = folder.appendingPathComponent("cut.run")
        var bytes = [UInt8](try Data(contentsOf: damaged))
        func field(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[bytes.count - 48 + at + $1]) << (8 * $1) } }
        func set(_ at: Int, _ value: Int) {
            for i in 0..<8 { bytes[bytes.count - 48 + at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        let samplesAt = field(8)
        set(16, -1)
        set(24, samplesAt - 16)
        set(32, bytes.count - 48 - (samplesAt - 16))
        try Data(bytes).write(to: damaged)
        #expect(!RunFile.isRun(damaged.path))
        #expect(truncate(damaged.path, 100) == 0)
        #expect(!RunFile.isRun(damaged.path))
    }
}

/// Whether `bytes` hold `wanted` anywhere.
func holds(_ bytes: [UInt8], _ wanted: [UInt8]) -> Bool {
    bytes.indices.dropLast(wanted.count - 1).contains { bytes[$0..<($0 + wanted.count)].elementsEqual(wanted) }
}
