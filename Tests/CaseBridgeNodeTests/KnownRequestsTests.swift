@testable import CaseBridgeNode
@testable import CaseBridgeStore
import Foundation
import Logging
import Testing
import TestSupport

/// The filter that tells a new request from a sender's retry without a read: it may say "maybe" of
/// an id it never took, never "no" of one it took, and "maybe" of all until the stored ids are in.
@Suite("Known request ids")
struct KnownRequestsTests {
    static func ids(_ count: Int) -> [String] { (0..<count).map { _ in UUID().uuidString.lowercased() } }

    /// An empty store, or one holding cases under `caseIDs`.
    static func withStore(holding caseIDs: [String] = [], _ body: (CaseStore) throws -> Void) async throws {
        let folder = try makeTemporaryFolder("known-requests")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try CaseStore(
            folder: folder.appendingPathComponent("data").path,
            dataKey: [UInt8](repeating: 7, count: 32),
            logger: Logger(label: "test")
        )
        defer { store.close() }
        for id in caseIDs {
            let row = CaseRow(
                caseID: id,
                requestingNode: "embassy-id",
                request: [1],
                kind: 1,
                urgency: 2,
                originReference: "",
                status: 2,
                step: 0,
                personCount: 1,
                createdAtMs: 1,
                updatedAtMs: 1
            )
            try await store.write { try $0.insertCase(row) }
        }
        try body(store)
    }

    @Test("an id taken is never told apart; one never taken is, once the stored ids are in, and not before")
    func tellsApart() async throws {
        let known = KnownRequests()
        let taken = Self.ids(20_000), others = Self.ids(20_000)
        for id in taken { known.add(id) }
        // Before the load, every id may have been stored: the store is read for each.
        #expect(others.allSatisfy(known.mayHold))
        try await Self.withStore { store in
            let loaded = try known.load(from: store)
            #expect(loaded == 0)
        }
        #expect(taken.allSatisfy(known.mayHold))
        // At 20,000 ids in 2^25 bits with four probes, one in about 10^12 is a false "maybe".
        #expect(others.filter(known.mayHold).count <= 1)
    }

    @Test("the ids a store holds are loaded a page at a time, the last page's too")
    func loadsStoredIDs() async throws {
        let stored = Self.ids(25)
        try await Self.withStore(holding: stored) { store in
            let known = KnownRequests()
            let loaded = try known.load(from: store, pageSize: 10)
            #expect(loaded == 25)
            #expect(stored.allSatisfy(known.mayHold))
            #expect(Self.ids(1_000).filter(known.mayHold).isEmpty)
        }
    }
}
