import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// Retention with crypto-shredding, at real nodes.
@Suite("Retention", .serialized)
struct RetentionTests {
    @Test("when retention ends, a closed case's persons are unrecoverable from the files, even with the node's key; held and open cases keep theirs")
    func purge() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"],
                                            retention: ["days_after_closed": 0, "check_interval_s": 1])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        defer { [embassy, ncct].forEach { $0.close() } }
        func file(_ name: String) async throws -> String {
            var request = Make.request(persons: 1)
            request.persons[0].fullName = name
            request.persons[0].phone = "+8490555" + String(name.count).padding(toLength: 4, withPad: "0", startingAt: 0)
            return try await embassy.unary(Console.submit, request).caseID
        }
        let closing = try await file("Quillon Ashvane"), open = try await file("Maribel Otterly")
        let held = try await file("Torvald Brightwick")
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["3"] })
        // Held while it is worked, so that its wrapped key can be noted before it goes.
        var hold = HoldRetentionRequest()
        hold.caseID = closing
        hold.hold = true
        hold.reason = "noted for the test"
        _ = try await ncct.unary(Console.holdRetention, hold)
        hold.caseID = held
        hold.reason = "court case 2026/114"
        _ = try await ncct.unary(Console.holdRetention, hold)
        let wrappedKey = try federation.sql("ncct", "SELECT hex(wrapped) FROM case_keys WHERE case_id = '\(closing)'").first ?? ""
        #expect(wrappedKey.count == 2 * (32 + 29))
        for caseID in [closing, open, held] { _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged)) }
        _ = try await ncct.unary(Console.applyChange, Make.outcomes(closing, ["P0": .located]))
        _ = try await ncct.unary(Console.applyChange, Make.status(closing, .completed))
        _ = try await ncct.unary(Console.applyChange, Make.status(held, .declined))
        hold.caseID = closing
        hold.hold = false
        _ = try await ncct.unary(Console.holdRetention, hold)

        // Both nodes destroy the closed case's personal data; the held one and the open one keep theirs.
        let purged = "SELECT COUNT(*) FROM audit WHERE event = 'case.purged' AND subject = '\(closing)'"
        #expect(try await federation.eventually(30) { try federation.sql("ncct", purged) == ["1"] && federation.sql("embassy-id", purged) == ["1"] })
        // A hold is the holding node's: NCCT keeps the declined case, the embassy (no hold) does not.
        for (node, kept) in [("ncct", [open, held]), ("embassy-id", [open])] {
            #expect(try federation.sql(node, "SELECT COUNT(*) FROM case_keys WHERE case_id = '\(closing)'") == ["0"])
            #expect(try await federation.eventually {
                try federation.sql(node, "SELECT case_id FROM case_keys ORDER BY case_id") == kept.sorted()
            }, "\(node)")
        }
        var get = GetCaseRequest()
        get.caseID = closing
        let view = try await ncct.unary(Console.getCase, get)
        #expect(view.personalDataPurgedAtMs > 0)
        #expect(view.request == nil)
        #expect(view.status == .completed)
        #expect(view.outcomeCounts.map { "\($0.status)=\($0.count)" } == ["located=1"])
        get.caseID = open
        #expect(try await ncct.unary(Console.getCase, get).request?.persons.first?.fullName == "Maribel Otterly")
        let listed = try run(casebridgeBinary, ["retention", "--config", federation.configPath("ncct").path])
        #expect(listed.stdout.contains("HELD: court case 2026/114") && listed.stdout.contains("destroyed"), "\(listed.stdout)")
        #expect(try await ncct.unary(Console.verifyAudit, VerifyAuditRequest()).intact)
        federation.stopAll()

        // Nothing of the purged case's persons is in any file, not even its wrapped data key.
        let keyBytes = stride(from: 0, to: wrappedKey.count, by: 2).map { i -> UInt8 in
            let start = wrappedKey.index(wrappedKey.startIndex, offsetBy: i)
            return UInt8(wrappedKey[start..<wrappedKey.index(start, offsetBy: 2)], radix: 16)!
        }
        var hits = plainTextHits(in: federation.folder, ["Quillon", "Ashvane", "Maribel", "Torvald"])
        let files = FileManager.default.enumerator(at: federation.folder, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where (try? Data(contentsOf: file))?.range(of: Data(keyBytes)) != nil { hits.append("\(file.path): wrapped key") }
        #expect(hits.isEmpty, "\(hits)")
    }
}
