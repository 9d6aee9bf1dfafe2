import CaseBridgeNet
import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// A failure is exactly one line on stderr, starting "casebridge: ".
func expectOneLine(
    _ result: ProcessResult,
    exit code: Int32,
    containing fragment: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(result.status == code, "exit \(result.status): \(result.stderr)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.count == 1 && lines[0].hasPrefix("casebridge: "), "\(result.stderr)", sourceLocation: sourceLocation)
    #expect(result.stderr.contains(fragment), "\(result.stderr)", sourceLocation: sourceLocation)
}

/// Terminal columns, counting CJK ideographs as two (what the tables must align by).
func terminalColumns(_ text: String) -> Int {
    text.unicodeScalars.reduce(0) { $0 + ((0x4E00...0x9FFF).contains($1.value) ? 2 : 1) }
}

/// The casebridge command, run as staff and operators run it, against real nodes.
@Suite("The casebridge command", .serialized)
struct CommandLineTests {
    func cli(
        _ arguments: [String],
        _ federation: TestFederation,
        node: String? = nil,
        input: String? = nil
    ) throws -> ProcessResult {
        try federation.cli(arguments, node: node, input: input)
    }

    @Test("staff commands: submit, inbox, case show and list, ack, update, note, request and provide info, withdraw")
    func staffCommands() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let batch = federation.folder.appendingPathComponent("batch.csv")
        try """
        person_ref,full_name,nationality,phone,document_number,document_withheld,languages
        P1,Ayu Test,ID,+628120001,X1,yes,id;en
        P2,"Santoso, Budi",ID,,,,id
        P3,王小明,CN,,,,zh

        """.write(to: batch, atomically: true, encoding: .utf8)
        let submitted = try cli(
            [
                "submit", "--kind", "rescue", "--urgency", "immediate", "--persons", batch.path,
                "--province", "Preah Sihanouk", "--site", "Compound 7", "--summary", "SOS by phone",
                "--reference", "IDN-CLI-7", "--json",
            ],
            federation,
            node: "embassy-id"
        )
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let receipt = try #require(
            try JSONSerialization.jsonObject(with: Data(submitted.stdout.utf8)) as? [String: Any]
        )
        let caseID = try #require(receipt["caseId"] as? String)
        #expect(receipt["status"] as? String == "CASE_STATUS_SUBMITTED")
        // One person: asked for, one answer per line (here piped), never taken from arguments.
        let single = try cli(
            ["submit", "--kind", "welfare_check"],
            federation,
            node: "embassy-id",
            input: "One Person\nid\n\n\n+62811111111\n\n\n"
        )
        #expect(single.status == 0, "\(single.stderr)")
        #expect(single.stdout.hasPrefix("Filed case "))

        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["2"] })
        let inbox = try cli(["inbox", "--unread"], federation, node: "ncct")
        #expect(inbox.status == 0)
        #expect(
            inbox.stdout.contains(String(caseID.prefix(8))) && inbox.stdout.contains("NEW")
                && inbox.stdout.contains("request: rescue, 3 persons"),
            "\(inbox.stdout)"
        )

        #expect(try cli(["ack", caseID], federation, node: "ncct").status == 0)
        #expect(try cli(["update", caseID, "--step", "rescue_planned"], federation, node: "ncct").status == 0)
        let outcomes = federation.folder.appendingPathComponent("outcomes.csv")
        try "person_ref,status,note\nP1,rescued,safe\nP2,not_found,\n".write(
            to: outcomes,
            atomically: true,
            encoding: .utf8
        )
        #expect(try cli(["update", caseID, "--outcomes", outcomes.path], federation, node: "ncct").status == 0)
        #expect(try cli(["note", caseID, "Shelter arranged"], federation, node: "ncct").status == 0)
        #expect(try cli(["request-info", caseID, "Which floor?"], federation, node: "ncct").status == 0)
        #expect(
            try await federation.eventually {
                try federation.sql("embassy-id", "SELECT status FROM cases WHERE case_id = '\(caseID)'") == [
                    "\(CaseStatus.infoRequested.rawValue)"
                ]
            }
        )
        // The embassy's inbox shows NCCT's question as a question, beside where the case stands now.
        let embassyInbox = try cli(["inbox"], federation, node: "embassy-id")
        #expect(
            embassyInbox.stdout.contains("information requested: Which floor?")
                && embassyInbox.stdout.contains("info_requested"),
            "\(embassyInbox.stdout)"
        )
        // A case is named by its reference or a unique start of its id, as well as its whole id.
        #expect(try cli(["provide-info", "IDN-CLI-7", "Fourth floor"], federation, node: "embassy-id").status == 0)
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT status FROM cases WHERE case_id = '\(caseID)'") == [
                    "\(CaseStatus.acknowledged.rawValue)"
                ]
            }
        )

        let shown = try cli(["case", "show", String(caseID.prefix(6))], federation, node: "embassy-id")
        #expect(shown.status == 0, "\(shown.stderr)")
        for fragment in [
            "Status: acknowledged", "rescued 1, not found 1", "Santoso, Budi", "Request\n",
            "Compound 7, Preah Sihanouk",
            "Summary:     SOS by phone", "Consent:", "answered: Which floor?", "answer: Fourth floor",
            "information provided: Fourth floor", "X1 (withheld)", "ncct #1: status → acknowledged",
            "— Supervisor ncct",
        ] {
            #expect(shown.stdout.contains(fragment), "missing \(fragment) in\n\(shown.stdout)")
        }
        // Wide characters take two columns: every row's STATUS starts where its header does.
        let table = shown.stdout.split(separator: "\n").drop { !$0.hasPrefix("REF") }.prefix(4).map(String.init)
        #expect(table.count == 4)
        let headerStart = terminalColumns(String(table[0][..<table[0].range(of: "STATUS")!.lowerBound]))
        for row in table.dropFirst() {
            let start = try #require(row.range(of: #"(rescued|not_found|pending)"#, options: .regularExpression))
            #expect(
                terminalColumns(String(row[..<start.lowerBound])) == headerStart,
                "\(table.joined(separator: "\n"))"
            )
        }
        let listed = try cli(["case", "list", "--status", "acknowledged"], federation, node: "ncct")
        #expect(
            listed.stdout.contains(String(caseID.prefix(8))) && listed.stdout.contains("IDN-CLI-7"),
            "\(listed.stdout)"
        )
        #expect(listed.stdout.split(separator: "\n").allSatisfy { terminalColumns(String($0)) <= 100 })
        #expect(try cli(["case", "list", "--wide"], federation, node: "ncct").stdout.contains(caseID))
        expectOneLine(
            try cli(["case", "show", "IDN-NOPE"], federation, node: "ncct"),
            exit: 4,
            containing: "no case IDN-NOPE"
        )

        let other = try cli(["submit", "--kind", "trace"], federation, node: "embassy-id", input: "To Withdraw\n")
            .stdout
        let otherID = String(other.split(separator: " ")[2])
        #expect(
            try cli(["withdraw", otherID, "--reason", "found at home"], federation, node: "embassy-id").status == 0
        )
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT status FROM cases WHERE case_id = '\(otherID)'") == [
                    "\(CaseStatus.withdrawn.rawValue)"
                ]
            }
        )
        federation.stopAll()
    }

    @Test("operator commands: status, audit verify, check-peer")
    func operatorCommands() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let status = try cli(["status"], federation, node: "ncct")
        #expect(status.status == 0)
        #expect(
            status.stdout.contains("Node ncct (NCCT)") && status.stdout.contains("embassy-id")
                && status.stdout.contains("Certificate valid until")
        )
        let audit = try cli(["audit", "verify"], federation, node: "ncct")
        #expect(audit.status == 0)
        #expect(audit.stdout.hasPrefix("Audit log intact:"))
        let check = try cli(["check-peer", "127.0.0.1:\(federation.ports["ncct"]!)"], federation, node: "embassy-id")
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS") }.count == 4)
        // A peer that is not who the directory says: refused, with the reason.
        let wrong = try cli(
            ["check-peer", "127.0.0.1:\(federation.ports["ncct"]!)", "--expect", "embassy-cn"],
            federation,
            node: "embassy-id"
        )
        #expect(wrong.status == 3)
        #expect(
            wrong.stdout.contains("FAIL tls:")
                && wrong.stdout.contains("expected spiffe://casebridge.test/node/embassy-cn")
        )
        // As JSON, one object per check.
        let checks = try cli(
            ["check-peer", "127.0.0.1:\(federation.ports["ncct"]!)", "--json"],
            federation,
            node: "embassy-id"
        )
        let objects = try checks.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["check"] as? String } == ["tls", "health", "reflection", "round trip"])
        #expect(objects.allSatisfy { $0["passed"] as? Bool == true })
        // An embassy's status lists the peer it exchanges with (NCCT), never the other embassies.
        let embassyStatus = try cli(["status", "--json"], federation, node: "embassy-id")
        let peers = try #require(
            try JSONSerialization.jsonObject(with: Data(embassyStatus.stdout.utf8)) as? [String: Any]
        )["peers"]
        #expect((peers as? [[String: Any]])?.compactMap { $0["nodeId"] as? String } == ["ncct"])
        federation.stopAll()
    }

    @Test("persons added without a ref get the next free one; one person can come from standard input")
    func addedPersons() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let batch = federation.folder.appendingPathComponent("two.csv")
        try "full_name\nFirst Person\nSecond Person\n".write(to: batch, atomically: true, encoding: .utf8)
        let filed = try cli(
            ["submit", "--kind", "rescue", "--persons", batch.path, "--reference", "ADD-1"],
            federation,
            node: "embassy-id"
        )
        #expect(filed.status == 0, "\(filed.stderr)")
        let more = federation.folder.appendingPathComponent("more.csv")
        try "full_name,person_ref\nThird Person,\nFourth Person,P3\n".write(to: more, atomically: true, encoding: .utf8)
        let added = try cli(
            ["provide-info", "ADD-1", "Two more", "--persons", more.path],
            federation,
            node: "embassy-id"
        )
        #expect(added.status == 0, "\(added.stderr)")
        let config = federation.configPath("embassy-id").path
        let piped = try run(
            "sh",
            [
                "-c",
                "printf 'full_name,phone\\nFifth Person,+6281200000055\\n' | "
                    + "'\(casebridgeBinary)' provide-info ADD-1 'One more' --persons - --config '\(config)'",
            ],
            environment: federation.cliEnvironment()
        )
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(
            try await federation.eventually {
                try federation.sql(
                    "ncct",
                    "SELECT group_concat(person_ref, ',') FROM (SELECT person_ref FROM persons ORDER BY position)"
                )
                    == ["P1,P2,P4,P3,P5"]
            }
        )
        // A ref the case already has is refused by line, before anything is sent.
        try "full_name,person_ref\nDuplicate,P2\n".write(to: more, atomically: true, encoding: .utf8)
        expectOneLine(
            try cli(
                ["provide-info", "ADD-1", "Again", "--persons", more.path],
                federation,
                node: "embassy-id"
            ),
            exit: 2,
            containing: "more.csv line 2: person_ref: already in the case"
        )
        federation.stopAll()
    }

    @Test("inbox --mark-read takes numbers, ranges and all")
    func markReadRanges() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        for n in 1...6 {
            #expect(
                try cli(["submit", "--kind", "rescue"], federation, node: "embassy-id", input: "Range Test \(n)\n")
                    .status == 0
            )
        }
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM inbox") == ["6"] })
        let ids = try federation.sql("ncct", "SELECT entry_id FROM inbox ORDER BY entry_id").compactMap { Int($0) }
        // Paged, newest first: 4 on the first page, 2 on the second, nothing stops silently.
        let firstPage = try cli(["inbox", "--limit", "4"], federation, node: "ncct").stdout
        #expect(firstPage.contains("Entries 1–4, unread first; next: --page 2"), "\(firstPage)")
        let secondPage = try cli(["inbox", "--limit", "4", "--page", "2"], federation, node: "ncct").stdout
        #expect(secondPage.contains("Entries 5–6, unread first\n"), "\(secondPage)")
        #expect(secondPage.contains("\n\(ids[0]) ") && !firstPage.contains("\n\(ids[0]) "))
        let ranged = try cli(["inbox", "--mark-read", "\(ids[0])", "\(ids[1])-\(ids[3])"], federation, node: "ncct")
        #expect(ranged.stdout == "Marked 4 of 4 entries read.\n", "\(ranged.stderr)")
        #expect(
            try cli(
                ["inbox", "--mark-read", "all"],
                federation,
                node: "ncct"
            ).stdout == "Marked 2 entries read: the whole inbox is read.\n"
        )
        // Read for this account only: the operator has read none of them.
        #expect(
            try federation.sql(
                "ncct",
                "SELECT COUNT(*) FROM inbox_reads r JOIN staff s USING (staff_id) WHERE s.login = 'sup'"
            ) == ["6"]
        )
        let forOperator = try federation.cli(["status", "--json"], node: "ncct", as: "op")
        #expect(forOperator.stdout.contains("\"unreadInbox\":6"), "\(forOperator.stdout)")
        expectOneLine(
            try cli(["inbox", "--mark-read", "9-3"], federation, node: "ncct"),
            exit: 2,
            containing: "--mark-read 9-3: use entry numbers (12), ranges (12-20) or all"
        )
        expectOneLine(
            try cli(["inbox", "--mark-read", "1-99999999"], federation, node: "ncct"),
            exit: 2,
            containing: "--mark-read names more than 10000 entries at once"
        )
        federation.stopAll()
    }

    @Test("certificates and the contract print JSON too")
    func jsonEverywhere() throws {
        let folder = try makeTemporaryFolder("json")
        defer { try? FileManager.default.removeItem(at: folder) }
        func object(_ arguments: [String]) throws -> [String: Any] {
            let result = try run(casebridgeBinary, arguments + ["--json"])
            #expect(result.status == 0, "\(result.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        }
        #expect(
            try object([
                "certs", "create-ca", "--out",
                "\(folder.path)/ca",
            ])["key"] as? String == "\(folder.path)/ca/ca.key"
        )
        let issued = try object([
            "certs", "issue", "--ca", "\(folder.path)/ca", "--node-id", "embassy-th",
            "--trust-domain", "casebridge.example", "--out", "\(folder.path)/nodes",
        ])
        #expect(issued["identity"] as? String == "spiffe://casebridge.example/node/embassy-th")
        #expect(
            try object([
                "certs", "request", "--node-id", "embassy-vn", "--out",
                "\(folder.path)/vn",
            ])["signing_request"]
                as? String == "\(folder.path)/vn/embassy-vn.csr"
        )
        let shown = try object(["certs", "show", "\(folder.path)/nodes/embassy-th.pem"])
        #expect(shown["identities"] as? [String] == ["spiffe://casebridge.example/node/embassy-th"])
        let contract = try run(casebridgeBinary, ["contract", "--json"]).stdout.split(separator: "\n")
        #expect(contract.contains { $0.contains(#""method":"SubmitRequest""#) })
    }

    @Test("bad input: one readable line and a non-zero exit, and no personal data echoed")
    func badInput() async throws {
        let federation = try TestFederation()
        // Node not running.
        expectOneLine(try cli(["inbox"], federation, node: "ncct"), exit: 3, containing: "node ncct is not running")
        for node in federation.nodes { try await federation.start(node) }
        // Unknown case.
        expectOneLine(
            try cli(["case", "show", "00000000-0000-4000-8000-000000000000"], federation, node: "ncct"),
            exit: 4,
            containing: "no case"
        )
        // Malformed CSV: the line and column are named, the value is not.
        let csv = federation.folder.appendingPathComponent("bad.csv")
        try "full_name,phone\nGood Person,+628120001\nBad Person,0812-SECRET\n".write(
            to: csv,
            atomically: true,
            encoding: .utf8
        )
        let malformed = try cli(["submit", "--kind", "rescue", "--persons", csv.path], federation, node: "embassy-id")
        expectOneLine(malformed, exit: 2, containing: "bad.csv line 3: phone: must be E.164")
        #expect(!malformed.stderr.contains("SECRET"))
        // A 250-person file with three bad lines: all three are named at once, and nothing is sent.
        var rows = (1...250).map { "Person \($0),+62812\(String(format: "%06d", $0))" }
        rows[9] = "Person 10,0812-SECRET"
        rows[99] = ",+62812000100"
        rows[199] = "Person 200,+62-SECRET"
        try (["full_name,phone"] + rows).joined(separator: "\n").write(to: csv, atomically: true, encoding: .utf8)
        let three = try cli(["submit", "--kind", "rescue", "--persons", csv.path], federation, node: "embassy-id")
        #expect(three.status == 2)
        #expect(
            three.stderr.split(separator: "\n") == [
                "casebridge: \(csv.path) line 11: phone: must be E.164, e.g. +6281234567890",
                "casebridge: \(csv.path) line 101: full_name: is empty",
                "casebridge: \(csv.path) line 201: phone: must be E.164, e.g. +6281234567890",
                "casebridge: \(csv.path): 3 lines to fix; nothing was sent",
            ],
            "\(three.stderr)"
        )
        #expect(!three.stderr.contains("SECRET"))
        #expect(try federation.sql("embassy-id", "SELECT COUNT(*) FROM cases") == ["0"])
        try "full_name,shoe_size\nA,42\n".write(to: csv, atomically: true, encoding: .utf8)
        expectOneLine(
            try cli(["submit", "--kind", "rescue", "--persons", csv.path], federation, node: "embassy-id"),
            exit: 2,
            containing: "line 1: unknown column shoe_size"
        )
        try "full_name\n\"unclosed\n".write(to: csv, atomically: true, encoding: .utf8)
        expectOneLine(
            try cli(["submit", "--kind", "rescue", "--persons", csv.path], federation, node: "embassy-id"),
            exit: 2,
            containing: "a quoted field is not closed"
        )
        // Wrong role: an embassy cannot acknowledge; NCCT cannot file requests.
        let filed = try cli(["submit", "--kind", "rescue"], federation, node: "embassy-id", input: "Role Test\n").stdout
        let caseID = String(filed.split(separator: " ")[2])
        expectOneLine(
            try cli(["ack", caseID], federation, node: "embassy-id"),
            exit: 4,
            containing: "only NCCT may change status"
        )
        expectOneLine(
            try cli(["submit", "--kind", "rescue"], federation, node: "ncct", input: "X\n"),
            exit: 4,
            containing: "only embassy nodes file requests"
        )
        // Illegal transition and bad flags.
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        expectOneLine(
            try cli(["update", caseID, "--status", "completed"], federation, node: "ncct"),
            exit: 4,
            containing: "cannot go from received to completed"
        )
        expectOneLine(
            try cli(["update", caseID, "--step", "teleported"], federation, node: "ncct"),
            exit: 2,
            containing: "--step must be one of: locating, rescue_planned, rescued,"
        )
        expectOneLine(
            try cli(["update", caseID, "--person", "IDN001=rescude"], federation, node: "ncct"),
            exit: 2,
            containing: "--person status must be one of: pending, located, rescued, sheltered,"
        )
        expectOneLine(
            try cli(["submit", "--kind", "rescue"], federation, node: "embassy-id"),
            exit: 2,
            containing: "--persons"
        )
        // Personal data in arguments is refused, with what to do instead, and the value is not repeated.
        let leaked = try cli(["submit", "--kind", "rescue", "--name", "Siti Secret"], federation, node: "embassy-id")
        expectOneLine(leaked, exit: 2, containing: "--name would put personal data in the process list")
        #expect(!leaked.stderr.contains("Secret"))
        // A name typed where a person ref belongs is not repeated either (here, or to the other agency).
        #expect(try cli(["ack", caseID], federation, node: "ncct").status == 0)
        let typo = try cli(["update", caseID, "--person", "Siti Secret=located"], federation, node: "ncct")
        expectOneLine(typo, exit: 4, containing: "person_ref: no such person in the case")
        #expect(!typo.stderr.contains("Secret"))
        expectOneLine(try cli(["inbox"], federation), exit: 2, containing: "--config")
        // Mistakes in the flags themselves: the same one line and exit 2, with where to look.
        expectOneLine(
            try cli(["case", "show"], federation, node: "ncct"),
            exit: 2,
            containing: "casebridge: Missing expected argument '<case-id>' (see `casebridge case show --help`)"
        )
        expectOneLine(
            try cli(["update", caseID, "--bogus"], federation, node: "ncct"),
            exit: 2,
            containing: "Unknown option '--bogus' (see `casebridge update --help`)"
        )
        expectOneLine(try cli(["nosuch"], federation), exit: 2, containing: "(see `casebridge --help`)")
        // A peer that is not running is called that, not a TLS failure.
        let silentPort = SocketAddress.freeLoopbackPort()
        let noPeer = try cli(
            ["check-peer", "127.0.0.1:\(silentPort)", "--expect", "ncct"],
            federation,
            node: "embassy-id"
        )
        #expect(noPeer.status == 3)
        #expect(
            noPeer.stdout.contains("nothing is listening at 127.0.0.1:\(silentPort): is the node running?"),
            "\(noPeer.stdout)"
        )
        let emptyEnvironment = try run(casebridgeBinary, ["inbox"], environment: ["CASEBRIDGE_CONFIG": ""])
        expectOneLine(emptyEnvironment, exit: 2, containing: "say which node: --config FILE, or set CASEBRIDGE_CONFIG")
        federation.stopAll()
    }

    @Test("watch in text mode writes each event into a pipe as it happens")
    func watchIntoPipe() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let watcher = try BackgroundProcess(
            casebridgeBinary,
            ["watch", "--config", federation.configPath("embassy-id").path],
            environment: federation.cliEnvironment()
        )
        defer { watcher.stop() }
        try await Task.sleep(for: .milliseconds(500))
        #expect(
            try cli(["submit", "--kind", "rescue"], federation, node: "embassy-id", input: "Pipe Test\n").status == 0
        )
        // The watcher is still running: the line must arrive without it exiting or being interrupted.
        // (If it never comes, the watcher is stopped after 20 s and the read ends empty.)
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { watcher.process.terminate() }
        let line = watcher.waitForLine(prefix: "#")
        #expect(watcher.process.isRunning, "the line came only when the watcher was stopped")
        #expect(line?.contains("opened") == true, "\(line ?? "nothing")")
        federation.stopAll()
    }

    @Test("a node whose certificate expired refuses to start, saying so in one line")
    func expiredCertificate() throws {
        let federation = try TestFederation()
        let path = federation.configPath("ncct").path
        var config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        )
        config["certificate"] = TestFederation.certs.appendingPathComponent("bad/expired.pem").path
        config["private_key"] = TestFederation.certs.appendingPathComponent("bad/expired.key").path
        chmod(TestFederation.certs.appendingPathComponent("bad/expired.key").path, 0o600)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        let result = try run(casebridgeBinary, ["node", "run", "--config", path])
        expectOneLine(result, exit: 2, containing: "certificate is not for spiffe://casebridge.test/node/ncct")
        // With the identity right but the date wrong, the date is what it says.
        config["node_id"] = "embassy-expired"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        var directory = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: federation.folder.appendingPathComponent("directory.json"))
            ) as? [String: Any]
        )
        var nodes = try #require(directory["nodes"] as? [[String: Any]])
        nodes.append(["id": "embassy-expired", "role": "embassy", "represents": "TH", "endpoint": "127.0.0.1:1"])
        directory["nodes"] = nodes
        try JSONSerialization.data(withJSONObject: directory).write(
            to: federation.folder.appendingPathComponent("directory.json")
        )
        expectOneLine(
            try run(casebridgeBinary, ["node", "run", "--config", path]),
            exit: 2,
            containing: "certificate expired"
        )
    }

    @Test("a node refuses a private key that other users can read, and says how to fix it")
    func worldReadableKey() throws {
        let federation = try TestFederation(nodes: ["ncct"])
        let key = federation.folder.appendingPathComponent("ncct.key").path
        try FileManager.default.copyItem(
            atPath: TestFederation.certs.appendingPathComponent("nodes/ncct.key").path,
            toPath: key
        )
        chmod(key, 0o644)
        let path = federation.configPath("ncct").path
        var config = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
                as? [String: Any]
        )
        config["private_key"] = key
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        expectOneLine(
            try run(casebridgeBinary, ["node", "run", "--config", path]),
            exit: 2,
            containing: "\(key): the private key is readable by other users; run: chmod 600 \(key)"
        )
        chmod(key, 0o600)
        let started = try BackgroundProcess(
            casebridgeBinary,
            ["node", "run", "--config", path, "--log-level", "error"]
        )
        defer { started.stop() }
        Thread.sleep(forTimeInterval: 1)
        #expect(started.process.isRunning)
    }

    @Test("a second node process on the same data folder is refused at start, and the first keeps serving")
    func secondProcessRefused() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        try await federation.start("ncct")
        let second = try run(casebridgeBinary, ["node", "run", "--config", federation.configPath("ncct").path])
        expectOneLine(second, exit: 2, containing: "is using the data folder")
        #expect(second.stderr.contains("is this node already running?"), "\(second.stderr)")
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        #expect(try await ncct.unary(Console.getStatus, StatusRequest()).nodeID == "ncct")
        federation.stopAll()
    }

    @Test("operators: audit log listed, deliveries retried now, a stopped node's file whole, a damaged one refused")
    func operatorTools() async throws {
        let federation = try TestFederation(
            nodes: ["ncct", "embassy-id"],
            initialBackoffMs: 60_000,
            maxBackoffMs: 60_000
        )
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        let caseID = try await embassy.unary(Console.submit, Make.request(persons: 1)).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        let audit = try cli(["audit", "list", "--limit", "5"], federation, node: "ncct")
        #expect(audit.status == 0 && audit.stdout.contains("request.received"), "\(audit.stdout)")

        // NCCT is down when a note is made: the delivery waits a minute for its next try...
        federation.stop("ncct")
        _ = try await embassy.unary(Console.applyChange, Make.note(caseID, "after the outage"))
        let waiting = "SELECT COUNT(*) FROM outbox WHERE state = \(DeliveryState.retryWaiting.rawValue)"
        #expect(try await federation.eventually { try federation.sql("embassy-id", waiting) == ["1"] })
        try await federation.start("ncct")
        // ...unless the operator says now.
        let now = try cli(["deliver", "--now"], federation, node: "embassy-id")
        #expect(now.stdout.contains("1 message tried now"), "\(now.stdout)\(now.stderr)")
        #expect(
            try await federation.eventually(10) {
                try federation.sql("ncct", "SELECT COUNT(*) FROM case_history WHERE case_id = '\(caseID)'") == ["1"]
            }
        )
        federation.stopAll()

        // Stopped, a node's database file holds everything by itself (no WAL beside it).
        let alone = federation.folder.appendingPathComponent("alone.sqlite3")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: federation.database("ncct")), to: alone)
        let count = try run(
            "python3",
            [
                "-c",
                "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
                    + "'SELECT COUNT(*) FROM case_history').fetchone()[0])", alone.path,
            ]
        )
        #expect(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(count.stdout)\(count.stderr)")

        // A damaged database is refused at start, with what to do.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: federation.database("ncct")))
        let header = try #require(try handle.read(upToCount: 18))
        let pageBytes = Int(header[16]) << 8 | Int(header[17])  // the page size, in the file's header
        for page in 1..<4 {  // the headers of pages 2 to 4: what the b-trees are made of
            try handle.seek(toOffset: UInt64(pageBytes * page))
            handle.write(Data(repeating: 0xA5, count: 64))
        }
        try handle.close()
        await #expect(throws: (any Error).self) { try await federation.start("ncct") }
        #expect(federation.log("ncct").contains("is damaged"), "\(federation.log("ncct"))")
    }

    @Test("casebridge doctor checks a stopped node whole, and names what is wrong")
    func doctor() async throws {
        let federation = try TestFederation(nodes: ["ncct"])
        try await federation.start("ncct")
        let running = try cli(["doctor"], federation, node: "ncct")
        #expect(running.status == 4 && running.stderr.contains("stop it first"), "\(running.stderr)")
        federation.stop("ncct")
        let healthy = try cli(["doctor"], federation, node: "ncct")
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        for check in ["directory", "certificate, key, CA and CRL", "database pages", "data key", "audit chain"] {
            #expect(healthy.stdout.contains("ok       \(check)"), "\(check): \(healthy.stdout)")
        }
        // Someone edits the audit log behind the node's back: the doctor finds the entry.
        let edit = try run(
            "python3",
            [
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(\"DROP TRIGGER "
                    + "audit_is_append_only_update; UPDATE audit SET detail = 'nothing happened' WHERE seq = 2;\")",
                federation.database("ncct"),
            ]
        )
        #expect(edit.status == 0, "\(edit.stderr)")
        let broken = try cli(["doctor"], federation, node: "ncct")
        #expect(broken.status == 1, "\(broken.stdout)")
        #expect(broken.stdout.contains("PROBLEM  audit chain: broken at entry 2"), "\(broken.stdout)")
        federation.stopAll()
    }

    @Test("a node configured with \"crl\": \"none\" says revocation is off, in its log and in status")
    func revocationOff() async throws {
        let certs = try makeTemporaryFolder("nocrl")
        defer { try? FileManager.default.removeItem(at: certs) }
        try FileManager.default.copyItem(
            at: TestFederation.certs.appendingPathComponent("ca.pem"),
            to: certs.appendingPathComponent("ca.pem")
        )
        try FileManager.default.copyItem(
            at: TestFederation.certs.appendingPathComponent("nodes"),
            to: certs.appendingPathComponent("nodes")
        )
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"], certs: certs)
        try await federation.start("ncct")
        let status = try cli(["status"], federation, node: "ncct")
        #expect(status.stdout.contains("Revocation: OFF"), "\(status.stdout)")
        #expect(status.stdout.contains("WARNING: revocation is off"), "\(status.stdout)")
        #expect(federation.log("ncct").contains("revocation is off"))
        federation.stopAll()
    }
}

@Suite("The demo")
struct DemoTests {
    @Test("casebridge demo runs a rescue request from filing to outcomes and stops its nodes")
    func demo() throws {
        let folder = try makeTemporaryFolder("demo")
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("demo-data").path
        let result = try run(
            casebridgeBinary,
            ["demo", "--folder", target, "--certs", repositoryRoot.appendingPathComponent("certs").path]
        )
        #expect(result.status == 0, "\(result.stderr)")
        for fragment in [
            "NCCT committed it", "rescued 9, not found 2, declined assistance 1",
            "sheltered 8, documents in process 1", "cases at embassy-cn: 0", "all delivered: true",
            "IDN-PP-DEMO-002: OVERDUE, acknowledge by ncct", "agreeing on name, date of birth", "Stopping the nodes",
        ] {
            #expect(result.stdout.contains(fragment), "missing: \(fragment)")
        }
        // The data stays, the nodes are gone, and the folder is owner-only.
        #expect(FileManager.default.fileExists(atPath: "\(target)/ncct/data/casebridge.sqlite3"))
        #expect(!FileManager.default.fileExists(atPath: "\(target)/ncct/console.sock"))
        // Nothing about the (fictional) persons can be read from any file the nodes wrote.
        let needles = ["Ayu Lestari", "Lukman Hakim", "+6281200000000", "+6281200000011", "DEMO1000", "DEMO1009"]
        #expect(plainTextHits(in: URL(fileURLWithPath: target), needles).isEmpty)
        let mode = try FileManager.default.attributesOfItem(atPath: "\(target)/ncct/data")[.posixPermissions] as? Int
        #expect(mode == 0o700)
        // Running it again replaces the earlier demo, here on ports of our choosing and as JSON.
        let base = SocketAddress.freeLoopbackPort()
        let again = try run(
            casebridgeBinary,
            [
                "demo", "--folder", target, "--base-port", "\(base)", "--json",
                "--certs", repositoryRoot.appendingPathComponent("certs").path,
            ]
        )
        #expect(again.status == 0, "\(again.stderr)")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any],
            "\(again.stdout)"
        )
        #expect(
            (summary["nodes"] as? [[String: Any]])?.compactMap { $0["port"] as? Int } == [base, base + 1, base + 2]
        )
        #expect(summary["all_delivered"] as? Bool == true)
        #expect((summary["overdue_cases"] as? [String])?.count == 1 && summary["duplicate_matches"] as? Int == 1)
        #expect((summary["outcome_counts"] as? [String: Int])?["declined_assistance"] == 1)
        expectOneLine(
            try run(casebridgeBinary, ["demo", "--base-port", "80"]),
            exit: 2,
            containing: "--base-port must be from 1024 to 65533"
        )
        // A folder that is not a demo is left alone.
        let refused = try run(
            casebridgeBinary,
            ["demo", "--folder", folder.path, "--certs", repositoryRoot.appendingPathComponent("certs").path]
        )
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("is not an earlier demo"))
    }
}

@Suite("Certificates made with casebridge certs")
struct CertificateCommandTests {
    @Test("a CA, a node certificate with a new key, and one from a signing request: a federation runs on them")
    func federationFromScratch() async throws {
        let folder = try makeTemporaryFolder("pki")
        defer { try? FileManager.default.removeItem(at: folder) }
        let pki = folder.path
        func cli(_ arguments: [String]) throws -> ProcessResult { try run(casebridgeBinary, ["certs"] + arguments) }
        #expect(try cli(["create-ca", "--out", "\(pki)/ca"]).status == 0)
        #expect(
            try cli([
                "issue", "--ca", "\(pki)/ca", "--node-id", "ncct", "--trust-domain", "casebridge.example", "--out",
                "\(pki)/nodes",
            ]).status == 0
        )
        // The embassy keeps its key and sends only a signing request.
        #expect(try cli(["request", "--node-id", "embassy-id", "--out", "\(pki)/embassy"]).status == 0)
        #expect(
            try cli([
                "issue", "--ca", "\(pki)/ca", "--node-id", "embassy-id", "--trust-domain", "casebridge.example",
                "--csr", "\(pki)/embassy/embassy-id.csr", "--out", "\(pki)/nodes",
            ]).status == 0
        )
        try FileManager.default.copyItem(atPath: "\(pki)/embassy/embassy-id.key", toPath: "\(pki)/nodes/embassy-id.key")
        try FileManager.default.copyItem(atPath: "\(pki)/ca/ca.pem", toPath: "\(pki)/ca.pem")
        for key in ["ca/ca.key", "nodes/ncct.key", "embassy/embassy-id.key"] {
            #expect(
                try FileManager.default.attributesOfItem(atPath: "\(pki)/\(key)")[.posixPermissions] as? Int == 0o600,
                "\(key)"
            )
        }
        let shown = try cli(["show", "\(pki)/nodes/embassy-id.pem"])
        #expect(shown.stdout.contains("Identity:  spiffe://casebridge.example/node/embassy-id"))
        #expect(shown.stdout.contains("valid, 82"))
        let again = try cli(["create-ca", "--out", "\(pki)/ca"])
        #expect(again.status == 2)
        #expect(again.stderr.contains("already exists; not replacing it"))

        let federation = try TestFederation(
            nodes: ["ncct", "embassy-id"],
            certs: folder,
            trustDomain: "casebridge.example"
        )
        for node in federation.nodes { try await federation.start(node) }
        let check = try run(
            casebridgeBinary,
            [
                "check-peer", "127.0.0.1:\(federation.ports["ncct"]!)", "--config",
                federation.configPath("embassy-id").path,
            ]
        )
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("the peer proved it is spiffe://casebridge.example/node/ncct"))
        federation.stopAll()
    }
}
