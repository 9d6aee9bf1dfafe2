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
        #expect(try await federation.eventually { try await embassy.unary(Console.getCase, lookup).status == .received })

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
        var rescued: [String: PersonStatus] = [:], notFound: [String: PersonStatus] = [:], sheltered: [String: PersonStatus] = [:]
        for i in 0..<300 {
            if i < 250 { rescued["P\(i)"] = .rescued } else { notFound["P\(i)"] = .notFound }
            if i < 200 { sheltered["P\(i)"] = .sheltered }
        }
        for update in [Make.status(caseID, .acknowledged), Make.step(caseID, .locating), Make.step(caseID, .rescuePlanned),
                       Make.step(caseID, .rescued), Make.outcomes(caseID, rescued.merging(notFound) { a, _ in a }),
                       Make.step(caseID, .sheltered), Make.outcomes(caseID, sheltered), Make.note(caseID, "Shelter in Phnom Penh")] {
            _ = try await ncct.unary(Console.applyChange, update)
        }
        let atNCCT = try await ncct.unary(Console.getCase, lookup)
        #expect(atNCCT.status == .inProgress)
        #expect(atNCCT.step == .sheltered)
        #expect(atNCCT.outcomeCounts.map { "\($0.status)=\($0.count)" } == ["rescued=50", "sheltered=200", "not_found=50"])

        // The embassy's tracker shows every step and every person's outcome, in order.
        #expect(try await federation.eventually {
            try await embassy.unary(Console.getCase, lookup).history.count == 8
        })
        let atEmbassy = try await embassy.unary(Console.getCase, lookup)
        #expect(atEmbassy.status == .inProgress)
        #expect(atEmbassy.step == .sheltered)
        #expect(atEmbassy.persons == atNCCT.persons)
        #expect(atEmbassy.history.map(\.sequence) == Array(1...8))
        #expect(atEmbassy.history.map(\.updateID) == atNCCT.history.map(\.updateID))
        #expect(try await federation.eventually {
            try await ncct.unary(Console.getCase, lookup).deliveries.map(\.state) == Array(repeating: .delivered, count: 8)
        })
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
        let touch = try await #require(throws: RPCError.self) { try await other.unary(CaseExchange.pushUpdate, withdrawal) }
        #expect(touch.code == .permissionDenied)
        var listed: [CaseSummary] = []
        for try await summary in other.streaming(CaseExchange.listCases, [ListCasesRequest()]) { listed.append(summary) }
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
                let detail: String = switch event.kind {
                case .updated: "updated:\(event.update.map { "\($0.actorNode)#\($0.sequence)" } ?? "?"):\(event.summary?.status.description ?? "")"
                case .delivery: "delivery:\(event.delivery?.state.description ?? "?")"
                default: "\(event.kind)"
                }
                seen.record("\(event.caseID) \(detail)")
                if detail.hasPrefix("updated") { return }  // only case B is acknowledged
            }
        }
        let caseID = try await embassy.unary(Console.submit, Make.request(persons: 1)).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(caseID)'") == ["1"] })
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        _ = try await watcher.value
        let forB = seen.all.filter { $0.hasPrefix(caseID) }.map { String($0.dropFirst(caseID.count + 1)) }
        #expect(forB == ["opened", "delivery:delivered", "updated:ncct#1:acknowledged"])
        federation.stopAll()
    }

    @Test("a request from a newer node is accepted, and the fields this version does not know are kept")
    func newerSender() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        try await federation.start("ncct")
        let sent = try run("python3", [repositoryRoot.appendingPathComponent("Tests/Peers/newer_sender.py").path,
                                       String(federation.ports["ncct"]!), TestFederation.certs.path])
        #expect(sent.status == 0, "\(sent.stderr)")
        let parts = sent.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        try #require(parts.count == 2)
        #expect(parts[1] == "CASE_STATUS_RECEIVED")
        // Stored byte for byte: field 99 is still there for a later version to read.
        let unknown = Array("from-a-newer-node".utf8).map { String(format: "%02X", $0) }.joined()
        #expect(try federation.sql("ncct", "SELECT instr(request, X'9A0611\(unknown)') > 0 FROM cases WHERE case_id = '\(parts[0])'") == ["1"])
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        var lookup = GetCaseRequest()
        lookup.caseID = parts[0]
        #expect(try await ncct.unary(Console.getCase, lookup).request?.persons.first?.personRef == "P1")
        federation.stopAll()
    }
}
