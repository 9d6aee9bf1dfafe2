import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

@testable import CaseBridgeNode

/// Reports: the figures match the cases they count, at NCCT and at an embassy.
@Suite("Reports", .serialized)
struct ReportTests {
    @Test("median and 90th percentile by nearest rank; none without cases")
    func percentiles() {
        let ten = CaseTracker.duration([5, 1, 3, 2, 4, 10, 6, 7, 8, 9])
        #expect(ten.cases == 10 && ten.medianMs == 5 && ten.p90Ms == 9)
        let one = CaseTracker.duration([42])
        #expect(one.medianMs == 42 && one.p90Ms == 42)
        #expect(CaseTracker.duration([]).cases == 0)
    }

    @Test("counts by embassy, kind, urgency and status, outcomes and times agree with the cases themselves")
    func figures() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id", "embassy-cn"])
        for node in federation.nodes { try await federation.start(node) }
        let ncct = federation.console("ncct")
        func file(_ node: String, _ kind: RequestKind, _ urgency: Urgency, persons: Int) async throws -> String {
            var request = Make.request(persons: persons, kind: kind)
            request.urgency = urgency
            return try await federation.console(node).unary(Console.submit, request, timeout: .seconds(30)).caseID
        }
        let rescue = try await file("embassy-id", .rescue, .immediate, persons: 2)
        _ = try await file("embassy-id", .welfareCheck, .urgent, persons: 1)
        let repatriation = try await file("embassy-cn", .repatriation, .routine, persons: 3)
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["3"] })
        func apply(_ caseID: String, _ change: CaseUpdate.Change) async throws {
            _ = try await ncct.unary(Console.applyChange, Make.update(caseID, change), timeout: .seconds(30))
        }
        var acknowledged = StatusChange()
        acknowledged.toStatus = .acknowledged
        try await apply(rescue, .statusChange(acknowledged))
        var outcome = PersonOutcome()
        outcome.personRef = "P0"
        outcome.status = .rescued
        var outcomes = PersonOutcomes()
        outcomes.outcomes = [outcome]
        try await apply(rescue, .personOutcomes(outcomes))
        var question = InformationRequest()
        question.questions = ["Which province?"]
        try await apply(repatriation, .informationRequest(question))

        let report = try await ncct.unary(Console.getReport, ReportRequest(), timeout: .seconds(30))
        #expect(report.cases == 3 && report.persons == 6)
        func pairs(_ counts: [ReportCount]) -> [String: [UInt32]] {
            Dictionary(uniqueKeysWithValues: counts.map { ($0.key, [$0.cases, $0.persons]) })
        }
        #expect(pairs(report.byEmbassy) == ["embassy-id": [2, 3], "embassy-cn": [1, 3]])
        #expect(pairs(report.byKind) == ["rescue": [1, 2], "welfare_check": [1, 1], "repatriation": [1, 3]])
        #expect(pairs(report.byUrgency) == ["immediate": [1, 2], "urgent": [1, 1], "routine": [1, 3]])
        #expect(pairs(report.byStatus) == ["acknowledged": [1, 2], "received": [1, 1], "info_requested": [1, 3]])
        // Cross-checked against the cases themselves: each status's count is what a list finds.
        for count in report.byStatus {
            var find = FindCasesRequest()
            find.statuses = [try #require(CaseStatus(name: count.key))]
            #expect(try await ncct.unary(Console.findCases, find, timeout: .seconds(30)).total == count.cases)
        }
        let persons = Dictionary(uniqueKeysWithValues: report.personOutcomes.map { ($0.status, $0.count) })
        #expect(persons == [.pending: 5, .rescued: 1])
        // Taken up: the acknowledged case and the one NCCT asked about; the third waits.
        #expect(report.toAcknowledgement?.cases == 2 && report.toCompletion?.cases == 0)
        // Taken up within the test's own minute: the figure is a duration, not a time of day.
        #expect((0..<60_000).contains(report.toAcknowledgement?.medianMs ?? -1))
        #expect(report.csv.hasPrefix("section,key,cases,persons\r\nall,all,3,6\r\n"))
        #expect(report.csv.contains("embassy,embassy-id,2,3\r\n") && report.csv.contains("person outcome,rescued,,1"))

        // One embassy's share, at NCCT; and an embassy's own report holds its own cases only.
        var chinese = ReportRequest()
        chinese.requestingNode = "embassy-cn"
        #expect(try await ncct.unary(Console.getReport, chinese, timeout: .seconds(30)).cases == 1)
        let indonesia = try await federation.console("embassy-id").unary(
            Console.getReport,
            ReportRequest(),
            timeout: .seconds(30)
        )
        #expect(indonesia.cases == 2 && pairs(indonesia.byEmbassy) == ["embassy-id": [2, 3]])
        // A period with nothing in it, and one that ends before it starts.
        var future = ReportRequest()
        future.sinceMs = Int64(Date().timeIntervalSince1970 * 1000) + 86_400_000
        #expect(try await ncct.unary(Console.getReport, future, timeout: .seconds(30)).cases == 0)
        future.untilMs = future.sinceMs - 1
        let backwards = await #expect(throws: RPCError.self) { _ = try await ncct.unary(Console.getReport, future) }
        #expect(backwards?.code == .invalidArgument)

        let csv = try federation.cli(["report", "--csv"], node: "ncct")
        #expect(csv.status == 0 && csv.stdout.contains("all,all,3,6"), "\(csv.stdout)\(csv.stderr)")
        let text = try federation.cli(["report"], node: "ncct")
        #expect(text.stdout.contains(": 3, 6 persons"), "\(text.stdout)")
        let wrong = try federation.cli(["report", "--since", "2026-11-02", "--until", "2026-11-01"], node: "ncct")
        #expect(wrong.status == 2 && wrong.stderr.contains("--until must not be before --since"))
        federation.stopAll()
    }

    @Test("the anonymised export counts persons by month, country, kind, sex, age and outcome; small counts hidden")
    func anonymisedStatistics() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        let ncct = federation.console("ncct")
        defer { [embassy, ncct].forEach { $0.close() } }
        // 14 women in their late twenties and 3 men in their forties, in one rescue request.
        var request = Make.request(persons: 17)
        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        for index in request.persons.indices {
            let woman = index < 14
            request.persons[index].sex = woman ? .female : .male
            request.persons[index].dateOfBirth = "\(year - (woman ? 27 : 44))-03-0\(index % 9 + 1)"
            request.persons[index].fullName = "Statistics Person \(index)"
        }
        _ = try await embassy.unary(Console.submit, request)
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })

        let file = try await ncct.unary(Console.exportStatistics, StatisticsRequest())
        let lines = file.text.dropFirst().split(separator: "\r\n").map(String.init)  // after the byte-order mark
        #expect(lines.first == "month,country,kind,sex,age_band,outcome,persons")
        let month = CaseTracker.month(Date())
        #expect(lines.contains("\(month),ID,rescue,female,25-34,pending,14"), "\(lines)")
        #expect(lines.contains("\(month),ID,rescue,male,35-49,pending,<11"), "\(lines)")
        #expect(file.rows == 2 && lines.count == 3)
        // Nothing in it names or dates a person.
        #expect(!file.text.contains("Statistics Person") && !file.text.contains("-03-0"))
        #expect(!file.text.contains(try federation.sql("ncct", "SELECT case_id FROM cases")[0]))

        // A stricter threshold hides more; a looser one than the node's is refused.
        var strict = StatisticsRequest()
        strict.minCount = 20
        #expect(try await ncct.unary(Console.exportStatistics, strict).text.contains("female,25-34,pending,<20"))
        var loose = StatisticsRequest()
        loose.minCount = 5
        do {
            _ = try await ncct.unary(Console.exportStatistics, loose)
            Issue.record("a threshold under the node's was accepted")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument && error.message.contains("below 11"))
        }
        let cli = try federation.cli(["report", "--anonymised", "--since", "2020-01-01"], node: "ncct")
        #expect(cli.status == 0 && cli.stdout.contains("male,35-49,pending,<11"), "\(cli.stderr)")
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'statistics.exported'") == ["3"])
        federation.stopAll()
    }
}
