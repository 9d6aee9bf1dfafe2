import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// Deadlines agreed in the directory: the same clocks at NCCT and at the embassy, computed from
/// each case's own history, listed most urgent first, and a supervisor's reason for a breach.
@Suite("Deadlines", .serialized)
struct DeadlineTests {
    @Test("both nodes compute the same clocks; overdue and due-soon cases are listed and counted; breaches explained")
    func clocks() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        let hour: Int64 = 3_600_000
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Filed earlier (an officer writing up a call from last night): the clock runs from filing.
        func file(_ reference: String, _ urgency: Urgency, hoursAgo: Int64) async throws -> String {
            var request = Make.request(persons: 1)
            request.originReference = reference
            request.urgency = urgency
            request.createdAtMs = now - hoursAgo * hour
            return try await embassy.unary(Console.submit, request, timeout: .seconds(30)).caseID
        }
        let late = try await file("LATE", .immediate, hoursAgo: 3)  // 2 h allowed: overdue
        let soon = try await file("SOON", .urgent, hoursAgo: 10)  // 12 h: 83 % gone
        let fine = try await file("FINE", .routine, hoursAgo: 13)  // 24 h: 54 % gone
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["3"] })

        func listed(_ channel: RPCChannel, _ level: DeadlineLevel = .threeQuarters) async throws -> [CaseDeadline] {
            var request = ListDeadlinesRequest()
            request.minLevel = level
            return try await channel.streaming(Console.listDeadlines, [request]).reduce(into: []) { $0.append($1) }
        }
        let atNCCT = try await listed(ncct), atEmbassy = try await listed(embassy)
        #expect(atNCCT.map { $0.summary?.caseID } == [late, soon], "most urgent first, the routine case left out")
        #expect(atNCCT.map { $0.deadline?.level } == [.overdue, .threeQuarters])
        #expect(atNCCT.map { $0.deadline?.clock } == [.acknowledge, .acknowledge])
        #expect(atNCCT.allSatisfy { $0.deadline?.waitingOn == "ncct" })
        #expect(atNCCT.first?.deadline?.dueAtMs == now - 3 * hour + 2 * hour)
        // The same due times at the embassy: both clocks run from the filing time the request carries.
        #expect(atEmbassy.map { $0.deadline?.dueAtMs } == atNCCT.map { $0.deadline?.dueAtMs })
        let every = try await listed(ncct, .onTime)
        #expect(every.count == 3 && every.last?.summary?.caseID == fine && every.last?.deadline?.level == .half)
        let status = try await ncct.unary(Console.getStatus, StatusRequest(), timeout: .seconds(30))
        #expect(status.overdueCases == 1 && status.dueSoonCases == 1)

        // A reason for the breach: supervisors only, and only once the deadline has passed.
        var explain = ExplainBreachRequest()
        explain.caseID = late
        explain.reason = "the duty officer was at the border post"
        let officer = try await AccountSetup.add(
            "sok",
            name: "Sok",
            role: .officer,
            password: "ncct officer password",
            through: ncct,
            by: federation.supervisors["ncct"]?.token
        )
        await #expect(throws: RPCError.self) {
            _ = try await federation.console("ncct", token: officer.token).unary(Console.explainBreach, explain)
        }
        let explained = try await ncct.unary(Console.explainBreach, explain, timeout: .seconds(30))
        #expect(explained.deadline?.breachReason == "the duty officer was at the border post")
        #expect(explained.deadline?.breachReasonBy == "Supervisor ncct")
        explain.caseID = fine
        let early = await #expect(throws: RPCError.self) { _ = try await ncct.unary(Console.explainBreach, explain) }
        #expect(early?.code == .failedPrecondition)
        #expect(
            try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'deadline.breach_explained'") == ["1"]
        )
        let cli = try federation.cli(["overdue", "--wide"], node: "ncct")
        #expect(cli.stdout.contains("OVERDUE") && cli.stdout.contains("LATE") && cli.stdout.contains("border post"))
        #expect(!cli.stdout.contains("FINE"), "\(cli.stdout)")

        // Acknowledged: the next clock (movement) starts; a question: the embassy's clock runs.
        var ack = CaseUpdate()
        ack.caseID = late
        var toAcknowledged = StatusChange()
        toAcknowledged.toStatus = .acknowledged
        ack.change = .statusChange(toAcknowledged)
        _ = try await ncct.unary(Console.applyChange, ack, timeout: .seconds(30))
        var ask = CaseUpdate()
        ask.caseID = soon
        var question = InformationRequest()
        question.questions = ["Which floor?"]
        ask.change = .informationRequest(question)
        _ = try await ncct.unary(Console.applyChange, ask, timeout: .seconds(30))
        let after = try await listed(ncct, .onTime)
        let byCase = Dictionary(uniqueKeysWithValues: after.map { ($0.summary?.caseID ?? "", $0.deadline!) })
        #expect(byCase[late]?.clock == .movement && byCase[late]?.level == .onTime)
        #expect(byCase[soon]?.clock == .answer && byCase[soon]?.waitingOn == "embassy-id")
        #expect(
            try await federation.eventually {
                let embassySide = try await listed(embassy, .onTime)
                return embassySide.first { $0.summary?.caseID == soon }?.deadline?.dueAtMs == byCase[soon]?.dueAtMs
            }
        )
        federation.stopAll()
    }

    @Test("the directory's deadline policy is read, checked, and defaults when absent")
    func policy() throws {
        let folder = try makeTemporaryFolder("deadline-policy")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("directory.json")
        func directory(_ deadlines: String) throws -> Directory {
            let text = """
                {"trust_domain": "casebridge.test", "nodes": [
                  {"id": "ncct", "role": "ncct", "represents": "KH", "endpoint": "127.0.0.1:1"}]\(deadlines)}
                """
            try text.write(to: file, atomically: true, encoding: .utf8)
            return try Directory.load(file.path)
        }
        #expect(try directory("").deadlines == DeadlinePolicy.standard)
        let custom = try directory(
            #", "deadlines": {"acknowledge_hours": {"immediate": 1}, "answer_hours": 48, "no_movement_days": 7}"#
        )
        #expect(custom.deadlines.acknowledgeHours[.immediate] == 1 && custom.deadlines.acknowledgeHours[.urgent] == 12)
        #expect(custom.deadlines.answerHours == 48 && custom.deadlines.movementDays == 7)
        #expect(throws: ConfigurationError.self) { try directory(#", "deadlines": {"answer_hours": 0}"#) }
        let typo = #expect(throws: ConfigurationError.self) { try directory(#", "deadlines": {"answer_hour": 5}"#) }
        #expect("\(typo.map { "\($0)" } ?? "")".contains("answer_hour"))
    }

    @Test("each level a clock reaches raises one event at both nodes; a node that was down raises the highest")
    func levelEvents() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes {
            // Look for levels every second (a minute by default).
            try federation.configure(node) { $0["deadline_check_s"] = 1 }
        }
        try await federation.start("embassy-id")
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        let hour: Int64 = 3_600_000
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func file(_ reference: String, hoursAgo: Double) async throws -> String {
            var request = Make.request(persons: 1)
            request.originReference = reference
            request.urgency = .urgent  // 12 h to acknowledge
            request.createdAtMs = now - Int64(hoursAgo * Double(hour))
            return try await embassy.unary(Console.submit, request, timeout: .seconds(30)).caseID
        }
        // NCCT is down while these are filed: it raises their levels when it comes back.
        let half = try await file("HALF", hoursAgo: 7)  // 58 %
        let late = try await file("LATE", hoursAgo: 13)  // overdue
        let onTime = try await file("ON-TIME", hoursAgo: 1)
        try await federation.start("ncct")
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["3"] })

        func deadlineEvents(_ channel: RPCChannel) async throws -> [String] {
            var request = WatchCasesRequest()
            request.afterEventID = 1
            var seen: [String] = []
            let stream = channel.streaming(Console.watch, [request], timeout: .seconds(2))
            do {
                for try await event in stream where event.kind == .deadline {
                    seen.append("\(event.caseID) \(event.deadline?.level.description ?? "?")")
                }
            } catch let error as RPCError where error.code == .deadlineExceeded {}
            return seen.sorted()
        }
        let expected = ["\(half) half", "\(late) overdue"].sorted()
        #expect(try await federation.eventually { try await deadlineEvents(ncct) == expected })
        #expect(try await federation.eventually { try await deadlineEvents(embassy) == expected })
        // Several rounds later still once each; the case on time raised nothing.
        try await Task.sleep(for: .seconds(3))
        #expect(try await deadlineEvents(ncct) == expected)
        #expect(try await deadlineEvents(embassy) == expected)
        #expect(!(try await deadlineEvents(ncct)).contains { $0.hasPrefix(onTime) })
        // The event says which clock and when it is due, as the deadline list does.
        var fromStart = WatchCasesRequest()
        fromStart.afterEventID = 1
        let event = try #require(
            try await ncct.streaming(Console.watch, [fromStart]).first { $0.kind == .deadline && $0.caseID == late }
        )
        #expect(event.deadline?.clock == .acknowledge && event.deadline?.waitingOn == "ncct")
        #expect(event.deadline?.dueAtMs == now - 13 * hour + 12 * hour)
        let watched = try federation.cli(["watch", "--after", "\(event.eventID - 1)", "--count", "1"], node: "ncct")
        #expect(watched.stdout.contains("deadline: OVERDUE, acknowledge by ncct"), "\(watched.stdout)")
        federation.stopAll()
    }
}
