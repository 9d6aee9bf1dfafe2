import Foundation
import Testing
@testable import CaseBridgeStore

@Suite("New cases' persons handed to the duplicate scan")
struct FiledTraitsTests {
    let store = CaseStoreTests()

    /// The traits the scan reads for a new case, and the SQLite steps that read took (0: from memory).
    func firstLook(_ store: CaseStore, _ caseID: String) throws -> (traits: [UInt8]?, steps: Int) {
        try store.read { db in
            let before = db.stepsRun
            let traits = try db.newCaseMatchTraits(caseID)
            return (traits, db.stepsRun - before)
        }
    }

    @Test("the scan's first look at a new case is what its row holds, from memory while nothing changed it")
    func asTheRowHoldsThem() async throws {
        try await store.withStore { cases, _ in
            let test = {
                var row = store.row("test-case")
                row.test = true
                return row
            }()
            try await cases.write { db in
                for id in ["kept", "added-to", "purged"] { try db.insertCase(store.row(id), matchTraits: [1, 2, 3]) }
                try db.insertCase(test, matchTraits: [1, 2, 3])
                try db.insertCase(store.row("embassy"))
            }
            try await cases.write { try $0.addMatchTraits([4, 5], caseID: "added-to") }
            try await cases.write { try $0.purgePersonalData("purged", atMs: 2) }

            let kept = try firstLook(cases, "kept")
            #expect(kept.traits == [1, 2, 3])
            #expect(kept.steps == 0, "read from memory, not from the database")
            // Taken once: a second look (a scan after a restart of its cursor) reads the row.
            let again = try firstLook(cases, "kept")
            #expect(again.traits == [1, 2, 3])
            #expect(again.steps > 0)
            // Persons added after filing are compared too; a purged or test case has nothing to compare.
            #expect(try firstLook(cases, "added-to").traits == [1, 2, 3, 4, 5])
            #expect(try firstLook(cases, "purged").traits == nil)
            #expect(try firstLook(cases, "test-case").traits == nil)
            #expect(try firstLook(cases, "embassy").traits == nil)
        }
    }

    @Test("a cleared index forgets every case kept")
    func clearedIndex() async throws {
        try await store.withStore { cases, _ in
            try await cases.write { try $0.insertCase(store.row("c1"), matchTraits: [1, 2, 3]) }
            try await cases.write { try $0.clearSearchIndex() }
            #expect(try firstLook(cases, "c1").traits == nil)
        }
    }

    @Test("at most the limit is kept; taking a case drops those filed before it, which the scan has passed")
    func bounded() {
        let filed = FiledTraits(limit: 3)
        for i in 0..<5 { filed.keep([UInt8(i)], caseID: "c\(i)") }
        #expect(filed.count == 3, "past the limit a new case is not kept")
        #expect(filed.take("c3") == nil)
        #expect(filed.take("c1") == [1])
        #expect(filed.count == 1, "c0, filed before c1, is dropped with it")
        #expect(filed.take("c0") == nil)
        filed.keep([5], caseID: "c5")
        #expect(filed.take("c2") == [2])
        #expect(filed.take("c5") == [5])
        #expect(filed.count == 0)
        // Kept and forgotten again and again (persons added before the scan looked): the order
        // of filing stays within twice the limit.
        for i in 0..<100 {
            filed.keep([1], caseID: "d\(i)")
            filed.forget("d\(i)")
            #expect(filed.orderHeld <= 6)
        }
        filed.keep([9], caseID: "last")
        #expect(filed.take("last") == [9])
        #expect(FiledTraits(limit: 0).take("none") == nil)
    }
}
