import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// Retention with crypto-shredding, at real nodes.
@Suite("Retention", .serialized)
struct RetentionTests {
    @Test(
        "retention's end: a closed case's persons are gone from the files, even with the key; held, open cases stay"
    )
    func purge() async throws {
        let federation = try TestFederation(
            nodes: ["ncct", "embassy-id"],
            // Duplicate detection's index writes a run for every person: they are in its files.
            limits: ["duplicate_index_memory_terms": 2],
            retention: ["days_after_closed": 0, "check_interval_s": 1]
        )
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
        let wrappedKey =
            try federation.sql("ncct", "SELECT hex(data_key) FROM cases WHERE case_id = '\(closing)'").first ?? ""
        #expect(wrappedKey.count == 2 * (32 + 29))
        for caseID in [closing, open, held] {
            _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        }
        _ = try await ncct.unary(Console.applyChange, Make.outcomes(closing, ["P0": .located]))
        _ = try await ncct.unary(Console.applyChange, Make.status(closing, .completed))
        _ = try await ncct.unary(Console.applyChange, Make.status(held, .declined))
        hold.caseID = closing
        hold.hold = false
        _ = try await ncct.unary(Console.holdRetention, hold)

        // Both nodes destroy the closed case's personal data; the held one and the open one keep theirs.
        let purged = "SELECT COUNT(*) FROM audit WHERE event = 'case.purged' AND subject = '\(closing)'"
        #expect(
            try await federation.eventually(30) {
                try federation.sql("ncct", purged) == ["1"] && federation.sql("embassy-id", purged) == ["1"]
            }
        )
        // Its persons can no longer be found: both blind indexes let go of them, the others' stay.
        let search = "SELECT COUNT(*) FROM search_terms WHERE case_id = "
        #expect(try federation.sql("ncct", search + "'\(closing)'") == ["0"])
        #expect(try federation.sql("ncct", search + "'\(open)'") != ["0"])
        // Duplicate detection's log lets go of them once its index (read below, node stopped) has.
        let logged = "SELECT COUNT(*) FROM match_log WHERE case_id = "
        #expect(try await federation.eventually { try federation.sql("ncct", logged + "'\(closing)'") == ["0"] })
        // And what duplicate detection compares of them is gone with them.
        let traits = "SELECT COUNT(*) FROM cases WHERE match_traits IS NOT NULL AND case_id = "
        #expect(try federation.sql("ncct", traits + "'\(closing)'") == ["0"])
        #expect(try federation.sql("ncct", traits + "'\(open)'") == ["1"])
        // So is the digest a retry of the request was told by.
        let digests = "SELECT COUNT(*) FROM cases WHERE request_sha256 IS NOT NULL AND case_id = "
        #expect(try federation.sql("ncct", digests + "'\(closing)'") == ["0"])
        #expect(try federation.sql("ncct", digests + "'\(open)'") == ["1"])
        // Only NCCT looks for duplicates: an embassy keeps search terms, not the terms matches are found by.
        #expect(try federation.sql("embassy-id", "SELECT COUNT(*) FROM search_terms") != ["0"])
        #expect(try federation.sql("embassy-id", "SELECT COUNT(*) FROM match_log") == ["0"])
        let embassyIndex = federation.folder.appendingPathComponent("embassy-id/data/match-index")
        #expect(!FileManager.default.fileExists(atPath: embassyIndex.path))
        // A hold is the holding node's: NCCT keeps the declined case, the embassy (no hold) does not.
        for (node, kept) in [("ncct", [open, held]), ("embassy-id", [open])] {
            #expect(
                try federation.sql(
                    node,
                    "SELECT COUNT(*) FROM cases WHERE case_id = '\(closing)' AND data_key IS NOT NULL"
                ) == ["0"]
            )
            #expect(
                try await federation.eventually {
                    try federation.sql(node, "SELECT case_id FROM cases WHERE data_key IS NOT NULL ORDER BY case_id")
                        == kept.sorted()
                },
                "\(node)"
            )
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
        let shown = try run(
            casebridgeBinary,
            ["case", "show", closing, "--config", federation.configPath("ncct").path],
            environment: federation.cliEnvironment()
        )
        #expect(
            shown.stdout.contains("Personal data destroyed") && shown.stdout.contains("located 1"),
            "\(shown.stdout)"
        )
        let listed = try run(
            casebridgeBinary,
            ["retention", "--config", federation.configPath("ncct").path],
            environment: federation.cliEnvironment()
        )
        #expect(
            listed.stdout.contains("HELD: court case 2026/114") && listed.stdout.contains("destroyed"),
            "\(listed.stdout)"
        )
        #expect(try await ncct.unary(Console.verifyAudit, VerifyAuditRequest()).intact)
        federation.stopAll()

        // Nor is the purged case in the runs of duplicate detection's index (its postings overwritten,
        // not only marked); the open one is.
        let runs = federation.folder.appendingPathComponent("ncct/data/match-index")
        func inRuns(_ caseID: String) throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: runs.path).filter { $0.hasSuffix(".run") }
                .reduce(0) { total, file in
                    let bytes = try Data(contentsOf: runs.appendingPathComponent(file))
                    var (found, from) = (0, bytes.startIndex)
                    while let hit = bytes.range(of: Data(caseID.utf8), in: from..<bytes.endIndex) {
                        (found, from) = (found + 1, hit.upperBound)
                    }
                    return total + found
                }
        }
        #expect(try inRuns(closing) == 0)
        #expect(try inRuns(open) > 0)

        // Nothing of the purged case's persons is in any file, not even its wrapped data key.
        let keyBytes = stride(from: 0, to: wrappedKey.count, by: 2).map { i -> UInt8 in
            let start = wrappedKey.index(wrappedKey.startIndex, offsetBy: i)
            return UInt8(wrappedKey[start..<wrappedKey.index(start, offsetBy: 2)], radix: 16)!
        }
        var hits = plainTextHits(in: federation.folder, ["Quillon", "Ashvane", "Maribel", "Torvald"])
        let files =
            FileManager.default.enumerator(at: federation.folder, includingPropertiesForKeys: nil)?.compactMap {
                $0 as? URL
            } ?? []
        for file in files where (try? Data(contentsOf: file))?.range(of: Data(keyBytes)) != nil {
            hits.append("\(file.path): wrapped key")
        }
        #expect(hits.isEmpty, "\(hits)")
    }
}

/// Backups taken while a node runs, and a restore that needs no more from the operator than the key.
@Suite("Backup and restore", .serialized)
struct BackupTests {
    @Test(
        "a backup taken while the embassy works is sealed; restored after a disk loss, the embassy takes back the rest"
    )
    func backupAndRestore() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        var embassy = federation.console("embassy-id")
        var first = Make.request(persons: 1)
        first.persons[0].fullName = "Ottoline Vantablack"
        let caseA = try await embassy.unary(Console.submit, first).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        _ = try await ncct.unary(Console.applyChange, Make.status(caseA, .acknowledged))
        let config = federation.configPath("embassy-id").path
        let backup = federation.folder.appendingPathComponent("embassy-backup.sqlite3").path
        let written = try run(
            casebridgeBinary,
            ["backup", "--to", backup, "--config", config],
            environment: federation.cliEnvironment(as: "op")
        )
        #expect(written.status == 0, "\(written.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int == 0o600)
        #expect(plainTextHits(in: federation.folder, ["Ottoline", "Vantablack"]).isEmpty)
        expectOneLine(
            try run(
                casebridgeBinary,
                ["backup", "--to", backup, "--config", config],
                environment: federation.cliEnvironment(as: "op")
            ),
            exit: 4,
            containing: "already exists"
        )

        // After the backup: NCCT works the case and the embassy files another.
        _ = try await ncct.unary(Console.applyChange, Make.step(caseA, .locating))
        let caseB = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        let pending = "SELECT COUNT(*) FROM outbox WHERE state != \(DeliveryState.delivered.rawValue)"
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", pending) == ["0"] && federation.sql("embassy-id", pending) == ["0"]
            }
        )

        // Not while the node runs; not without the key it was sealed with.
        expectOneLine(
            try run(casebridgeBinary, ["restore", "--from", backup, "--config", config]),
            exit: 4,
            containing: "is running; stop it first"
        )
        embassy.close()
        federation.stop("embassy-id")
        let key = federation.folder.appendingPathComponent("embassy-id/data.key")
        try FileManager.default.moveItem(at: key, to: key.appendingPathExtension("away"))
        expectOneLine(
            try run(casebridgeBinary, ["restore", "--from", backup, "--config", config]),
            exit: 2,
            containing: "a backup cannot be read without the key it was sealed with"
        )
        try FileManager.default.moveItem(at: key.appendingPathExtension("away"), to: key)

        // The disk is lost; the backup comes back, and the node takes back the rest from NCCT at its start.
        let restored = try run(casebridgeBinary, ["restore", "--from", backup, "--config", config])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stdout.contains("The database it replaced is kept as"), "\(restored.stdout)")
        #expect(try federation.sql("embassy-id", "SELECT COUNT(*) FROM cases") == ["1"])
        try await federation.start("embassy-id")
        embassy = federation.console("embassy-id")
        defer { embassy.close() }
        #expect(
            try await federation.eventually(30) {
                try federation.sql("embassy-id", "SELECT case_id, status, step FROM cases ORDER BY case_id")
                    == federation.sql("ncct", "SELECT case_id, status, step FROM cases ORDER BY case_id")
            }
        )
        #expect(
            try federation.sql("embassy-id", "SELECT COUNT(*) FROM cases WHERE case_id IN ('\(caseA)', '\(caseB)')")
                == ["2"]
        )
        #expect(
            try federation.sql(
                "embassy-id",
                "SELECT event FROM audit WHERE event IN ('store.restored', 'case.caught_up')"
            )
            .sorted() == ["case.caught_up", "case.caught_up", "store.restored"]
        )
        #expect(try await embassy.unary(Console.verifyAudit, VerifyAuditRequest()).intact)
        federation.stopAll()
    }

    @Test("the data key is rotated with the node stopped: data and search survive, the old key no longer opens it")
    func rotateKey() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        var embassy = federation.console("embassy-id")
        var request = Make.request(persons: 1)
        request.persons[0].fullName = "Rosalind Quenby"
        let caseID = try await embassy.unary(Console.submit, request).caseID
        let config = federation.configPath("embassy-id").path
        expectOneLine(
            try run(casebridgeBinary, ["node", "rotate-key", "--config", config]),
            exit: 4,
            containing: "stop it first"
        )
        embassy.close()
        federation.stop("embassy-id")
        let keyFile = federation.folder.appendingPathComponent("embassy-id/data.key")
        let oldKey = try String(contentsOf: keyFile, encoding: .utf8)
        let rotated = try run(casebridgeBinary, ["node", "rotate-key", "--config", config])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(try String(contentsOf: keyFile, encoding: .utf8) != oldKey)
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int == 0o600)

        // An interrupted rotation (a new key file left behind that opens nothing) is dropped at start.
        try "ab".padding(toLength: 64, withPad: "ab", startingAt: 0).write(
            to: keyFile.appendingPathExtension("new"),
            atomically: true,
            encoding: .utf8
        )
        chmod(keyFile.appendingPathExtension("new").path, 0o600)
        try await federation.start("embassy-id")
        #expect(!FileManager.default.fileExists(atPath: keyFile.appendingPathExtension("new").path))
        embassy = federation.console("embassy-id")
        defer { embassy.close() }
        var get = GetCaseRequest()
        get.caseID = caseID
        #expect(try await embassy.unary(Console.getCase, get).request?.persons.first?.fullName == "Rosalind Quenby")
        let found = try run(
            casebridgeBinary,
            ["search", "--config", config],
            environment: federation.cliEnvironment(),
            input: "quenby rosalind\n"
        )
        #expect(found.stdout.contains("Rosalind Quenby"), "\(found.stdout)\(found.stderr)")
        #expect(
            try federation.sql("embassy-id", "SELECT COUNT(*) FROM audit WHERE event = 'data_key.rotated'") == ["1"]
        )

        // With the old key back, the node refuses to start, and says why.
        federation.stop("embassy-id")
        try oldKey.write(to: keyFile, atomically: true, encoding: .utf8)
        chmod(keyFile.path, 0o600)
        await #expect(throws: (any Error).self) { try await federation.start("embassy-id") }
        #expect(federation.log("embassy-id").contains("this data key does not open the node's database"))
        federation.stopAll()
    }
}
