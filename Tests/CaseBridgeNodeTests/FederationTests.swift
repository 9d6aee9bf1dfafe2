import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

@Suite("A federation of node processes", .serialized)
struct FederationTests {
    @Test("a 300-person rescue request: submitted, acknowledged, worked and reported back per person")
    func rescueRequestLifecycle() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        defer { embassy.close(); ncct.close() }

        // The embassy files the request; it is committed locally, then delivered.
        let receipt = try await embassy.unary(Console.submit, Make.request(persons: 300))
        #expect(receipt.status == .submitted)
        let caseID = receipt.caseID
        var lookup = GetCaseRequest()
        lookup.caseID = caseID
        #expect(
            try await federation.eventually { try await embassy.unary(Console.getCase, lookup).status == .received }
        )

        // NCCT has it in its inbox, unread, with all 300 persons pending.
        var unread = ListInboxRequest()
        unread.unreadOnly = true
        var inbox: [InboxEntry] = []
        for try await entry in ncct.streaming(Console.listInbox, [unread]) { inbox.append(entry) }
        #expect(inbox.map(\.caseID) == [caseID])
        #expect(inbox.first?.fromNode == "embassy-id")
        let received = try await ncct.unary(Console.getCase, lookup)
        #expect(received.persons.count == 300)
        #expect(received.outcomeCounts.map { "\($0.status)=\($0.count)" } == ["pending=300"])

        // NCCT acknowledges and works the case, with mixed outcomes per person.
        var rescued: [String: PersonStatus] = [:], notFound: [String: PersonStatus] = [:],
            sheltered: [String: PersonStatus] = [:]
        for i in 0..<300 {
            if i < 250 { rescued["P\(i)"] = .rescued } else { notFound["P\(i)"] = .notFound }
            if i < 200 { sheltered["P\(i)"] = .sheltered }
        }
        for update in [
            Make.status(caseID, .acknowledged), Make.step(caseID, .locating), Make.step(caseID, .rescuePlanned),
            Make.step(caseID, .rescued), Make.outcomes(caseID, rescued.merging(notFound) { a, _ in a }),
            Make.step(caseID, .sheltered), Make.outcomes(caseID, sheltered), Make.note(caseID, "Shelter in Phnom Penh"),
        ] {
            _ = try await ncct.unary(Console.applyChange, update)
        }
        let atNCCT = try await ncct.unary(Console.getCase, lookup)
        #expect(atNCCT.status == .inProgress)
        #expect(atNCCT.step == .sheltered)
        #expect(
            atNCCT.outcomeCounts.map { "\($0.status)=\($0.count)" } == ["rescued=50", "sheltered=200", "not_found=50"]
        )
        // A list shows the counts kept with the case: the same as counting its persons.
        var list = ListCasesRequest()
        list.limit = 10
        var summaries: [CaseSummary] = []
        for try await summary in ncct.streaming(Console.listCases, [list]) { summaries.append(summary) }
        #expect(summaries.first { $0.caseID == caseID }?.outcomeCounts == atNCCT.outcomeCounts)

        // The embassy's tracker shows every step and every person's outcome, in order.
        #expect(
            try await federation.eventually {
                try await embassy.unary(Console.getCase, lookup).history.count == 8
            }
        )
        let atEmbassy = try await embassy.unary(Console.getCase, lookup)
        #expect(atEmbassy.status == .inProgress)
        #expect(atEmbassy.step == .sheltered)
        #expect(atEmbassy.persons == atNCCT.persons)
        #expect(atEmbassy.history.map(\.sequence) == Array(1...8))
        #expect(atEmbassy.history.map(\.updateID) == atNCCT.history.map(\.updateID))
        #expect(
            try await federation.eventually {
                try await ncct.unary(Console.getCase, lookup).deliveries.map(\.state)
                    == Array(repeating: .delivered, count: 8)
            }
        )
        #expect(atEmbassy.deliveries.map(\.state) == [.delivered])

        // Embassy B can neither read nor touch the case; each refusal is audited at NCCT.
        let other = try federation.peerChannel(to: "ncct", as: "embassy-cn")
        defer { other.close() }
        let read = try await #require(throws: RPCError.self) { try await other.unary(CaseExchange.getCase, lookup) }
        #expect(read.code == .permissionDenied)
        var withdrawal = Make.update(caseID, .withdrawal(Withdrawal()))
        withdrawal.updateID = UUID().uuidString.lowercased()
        withdrawal.actorNode = "embassy-cn"
        withdrawal.sequence = 1
        let touch = try await #require(throws: RPCError.self) {
            try await other.unary(CaseExchange.pushUpdate, withdrawal)
        }
        #expect(touch.code == .permissionDenied)
        var listed: [CaseSummary] = []
        for try await summary in other.streaming(CaseExchange.listCases, [ListCasesRequest()]) {
            listed.append(summary)
        }
        #expect(listed.isEmpty)
        let refusals = try federation.sql("ncct", "SELECT actor, outcome FROM audit WHERE event = 'call.refused'")
        #expect(refusals == ["embassy-cn|PERMISSION_DENIED", "embassy-cn|PERMISSION_DENIED"])
        #expect(try await ncct.unary(Console.getCase, lookup).history.count == 8)

        for node in federation.nodes {
            let console = federation.console(node)
            #expect(try await console.unary(Console.verifyAudit, VerifyAuditRequest()).intact)
            console.close()
        }
        // No personal data in any log.
        for node in federation.nodes { #expect(!federation.log(node).contains("Person 1")) }
        federation.stopAll()
    }

    @Test("watch: the embassy sees its request open, get delivered, and NCCT's acknowledgement arrive")
    func watch() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        defer { embassy.close(); ncct.close() }
        // Event 1 is case A opening; watching after it sees everything later, however late it starts.
        _ = try await embassy.unary(Console.submit, Make.request(persons: 1))
        var resume = WatchCasesRequest()
        resume.afterEventID = 1
        let seen = Recorder()
        let watcher = Task {
            for try await event in embassy.streaming(Console.watch, [resume]) {
                let detail: String =
                    switch event.kind {
                    case .updated:
                        "updated:\(event.update.map { "\($0.actorNode)#\($0.sequence)" } ?? "?"):"
                            + (event.summary?.status.description ?? "")
                    case .delivery: "delivery:\(event.delivery?.state.description ?? "?")"
                    default: "\(event.kind)"
                    }
                seen.record("\(event.caseID) \(detail)")
                if detail.hasPrefix("updated") { return }  // only case B is acknowledged
            }
        }
        let caseID = try await embassy.unary(Console.submit, Make.request(persons: 1)).caseID
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(caseID)'") == ["1"]
            }
        )
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        _ = try await watcher.value
        let forB = seen.all.filter { $0.hasPrefix(caseID) }.map { String($0.dropFirst(caseID.count + 1)) }
        #expect(forB == ["opened", "delivery:delivered", "updated:ncct#1:acknowledged"])
        federation.stopAll()
    }

    @Test(
        "a newer node's request and update: stored, and returned by GetCase byte for byte (grpcio, no name override)"
    )
    func newerSender() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        try await federation.start("ncct")
        let sent = try run(
            "python3",
            [
                repositoryRoot.appendingPathComponent("Tests/Peers/faithful_reads.py").path, "newer",
                String(federation.ports["ncct"]!), TestFederation.certs.path,
            ]
        )
        #expect(sent.status == 0, "\(sent.stderr)")
        let parts = sent.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        try #require(parts.count == 2 && parts[0] == "ok")
        // Stored byte for byte (the peer read field 99 back), and sealed: not in clear in the node's files.
        #expect(plainTextHits(in: federation.folder.appendingPathComponent("ncct"), ["from-a-newer-node"]).isEmpty)
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        var lookup = GetCaseRequest()
        lookup.caseID = parts[1]
        #expect(try await ncct.unary(Console.getCase, lookup).request?.persons.first?.personRef == "P1")
        federation.stopAll()
    }

    @Test("a 6,000-person case (5,000 filed, 1,000 added later) reads back in full, over the wire and at the console")
    func largeCase() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        func persons(_ range: Range<Int>) -> [Person] {
            range.map { i in
                var person = Person()
                person.personRef = "P\(i)"
                person.fullName = "Person \(i) " + String(repeating: "n", count: 700)
                return person
            }
        }
        var request = Make.request(persons: 0)
        request.persons = persons(0..<5_000)
        let caseID = try await embassy.unary(Console.submit, request).caseID
        var provided = InformationProvided()
        provided.text = "1,000 more from the same compound"
        provided.addedPersons = persons(5_000..<6_000)
        _ = try await embassy.unary(Console.applyChange, Make.update(caseID, .informationProvided(provided)))
        #expect(
            try await federation.eventually(60) {
                try federation.sql("ncct", "SELECT COUNT(*) FROM persons WHERE case_id = '\(caseID)'") == ["6000"]
            }
        )

        // Over the wire: grpcio, as the embassy, reads NCCT's copy (larger than one 4 MiB message).
        let read = try run(
            "python3",
            [
                repositoryRoot.appendingPathComponent("Tests/Peers/faithful_reads.py").path, "read",
                String(federation.ports["ncct"]!), TestFederation.certs.path, "embassy-id", caseID,
            ]
        )
        #expect(read.status == 0, "\(read.stderr)")
        let fields = Dictionary(
            uniqueKeysWithValues: read.stdout.split(separator: " ").compactMap { part -> (String, Int)? in
                let pair = part.split(separator: "=")
                return pair.count == 2
                    ? (String(pair[0]), Int(pair[1].trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1) : nil
            }
        )
        #expect(fields["persons"] == 6_000 && fields["history"] == 1, "\(read.stdout)")
        #expect((fields["bytes"] ?? 0) > 4 * 1024 * 1024, "\(read.stdout)")
        // At the console: the casebridge command shows it whole.
        let shown = try run(
            casebridgeBinary,
            ["case", "show", caseID, "--json", "--config", federation.configPath("ncct").path],
            environment: federation.cliEnvironment()
        )
        #expect(shown.status == 0, "\(shown.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
        #expect((json?["persons"] as? [Any])?.count == 6_000)
        federation.stopAll()
    }

    @Test(
        "after requests, answers, outcomes, notes, refusals and a catch-up, no file of any node holds a person in clear"
    )
    func nothingInClear() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        defer { [embassy, ncct].forEach { $0.close() } }
        var request = Make.request(persons: 1)
        request.persons[0].fullName = "Zarqa Ilmanova"
        request.persons[0].nativeName = "Nguyễn Thị Đào"
        request.persons[0].phone = "+84901234567"
        var document = TravelDocument()
        document.number = "X9K4Q7Z1"
        request.persons[0].travelDocument = document
        request.summary = "Zarqa was last seen near the river"
        let caseID = try await embassy.unary(Console.submit, request).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        var outcomes = Make.outcomes(caseID, ["P0": .located])
        if case .personOutcomes(var list)? = outcomes.change {
            list.outcomes[0].note = "Zarqa located at the Ilmanova house"
            outcomes.change = .personOutcomes(list)
        }
        _ = try await ncct.unary(Console.applyChange, outcomes)
        var provided = InformationProvided()
        provided.text = "Her brother Wiremu Tawhiri called"
        var brother = Person()
        brother.personRef = "P9"
        brother.fullName = "Wiremu Tawhiri"
        brother.phone = "+64211234567"
        provided.addedPersons = [brother]
        _ = try await embassy.unary(Console.applyChange, Make.update(caseID, .informationProvided(provided)))
        _ = try await embassy.unary(Console.applyChange, Make.note(caseID, "Zarqa's mother confirms"))
        let pending = "SELECT COUNT(*) FROM outbox WHERE state != \(DeliveryState.delivered.rawValue)"
        #expect(
            try await federation.eventually {
                try federation.sql("ncct", pending) == ["0"] && federation.sql("embassy-id", pending) == ["0"]
            }
        )
        // A restart: the catch-up reads every case back from the peer and writes what it takes.
        federation.stop("embassy-id")
        try await federation.start("embassy-id")
        var get = GetCaseRequest()
        get.caseID = caseID
        let view = try await federation.console("embassy-id").unary(Console.getCase, get)
        #expect(view.request?.persons.first?.fullName == "Zarqa Ilmanova")
        #expect(view.persons.first?.note == "Zarqa located at the Ilmanova house")
        federation.stopAll()

        let needles = [
            "Zarqa", "Ilmanova", "Nguyễn Thị Đào", "+84901234567", "84901234567", "X9K4Q7Z1", "Wiremu",
            "Tawhiri", "+64211234567",
        ]
        #expect(
            plainTextHits(in: federation.folder, needles).isEmpty,
            "\(plainTextHits(in: federation.folder, needles))"
        )
    }
}
