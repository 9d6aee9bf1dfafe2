import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// The web console: its pages as a browser receives them, the calls its screens make (pages with
/// totals, CSV checked whole, spreadsheet-safe exports), and the main flow driven in a real
/// headless Chromium against real nodes (Tests/Browser/console_flow.py).
@Suite("The web console", .serialized)
struct WebConsoleTests {
    static let web = repositoryRoot.appendingPathComponent("Sources/CaseBridgeWebConsole/Web")

    @Test("every string a script shows is in the English catalog, and the catalog names its direction")
    func catalogComplete() throws {
        let catalogData = try Data(contentsOf: Self.web.appendingPathComponent("messages-en.json"))
        let catalog = try #require(try JSONSerialization.jsonObject(with: catalogData) as? [String: Any])
        #expect(catalog["direction"] as? String == "ltr" && catalog["language"] as? String == "en")
        let messages = try #require(catalog["messages"] as? [String: String])
        let scripts = try FileManager.default.contentsOfDirectory(atPath: Self.web.path).filter { $0.hasSuffix(".js") }
        #expect(scripts.count >= 10)
        let pattern = try NSRegularExpression(pattern: #"\bt\("([a-z_]+\.[A-Za-z_.]+)""#)
        var missing: [String] = []
        for script in scripts {
            let source = try String(contentsOf: Self.web.appendingPathComponent(script), encoding: .utf8)
            for match in pattern.matches(in: source, range: NSRange(source.startIndex..., in: source)) {
                let key = String(source[Range(match.range(at: 1), in: source)!])
                // A counted message is found by its plural forms.
                if messages[key] == nil && messages["\(key).other"] == nil { missing.append("\(script): \(key)") }
            }
        }
        // Keys made at run time: the queue's cards (and their empty text), every error code, every
        // order, and the label of every value of each enum the pages show.
        let queue = try String(contentsOf: Self.web.appendingPathComponent("queue.js"), encoding: .utf8)
        let cards = try NSRegularExpression(pattern: #"key: "(queue\.[a-z_]+)""#)
        for match in cards.matches(in: queue, range: NSRange(queue.startIndex..., in: queue)) {
            let key = String(queue[Range(match.range(at: 1), in: queue)!])
            for needed in [key, "\(key).none"] where messages[needed] == nil { missing.append(needed) }
        }
        let codes = [
            "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
            "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
            "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
        ]
        missing += codes.map { "error.\($0)" }.filter { messages[$0] == nil }
        func keys<E: ProtoEnum>(_: E.Type, _ prefix: String, from first: Int32 = 1) -> [String] {
            E.names.filter { $0.key >= first }.map { "\(prefix)_\($0.value.uppercased())" }
        }
        missing += keys(CaseOrder.self, "order.CASE_ORDER", from: 0).filter { messages[$0] == nil }
        let labelled =
            keys(CaseStatus.self, "CASE_STATUS") + keys(BusinessStep.self, "BUSINESS_STEP")
            + keys(PersonStatus.self, "PERSON_STATUS") + keys(DeliveryState.self, "DELIVERY_STATE")
            + keys(RequestKind.self, "REQUEST_KIND") + keys(Urgency.self, "URGENCY") + keys(Sex.self, "SEX")
            + keys(ControlIndicator.self, "CONTROL_INDICATOR") + keys(SourceKind.self, "SOURCE_KIND")
            + keys(ConsentBasis.self, "CONSENT_BASIS") + keys(StaffRole.self, "STAFF_ROLE")
            + keys(NodeRole.self, "NODE_ROLE") + keys(DeadlineClock.self, "DEADLINE_CLOCK")
            + keys(DeadlineLevel.self, "DEADLINE_LEVEL", from: 0)
        missing += labelled.map { "enum.\($0)" }.filter { messages[$0] == nil }
        #expect(missing.isEmpty, "\(missing)")
        // Nothing in a page builds markup from text: values go in as text nodes only.
        for script in scripts {
            let source = try String(contentsOf: Self.web.appendingPathComponent(script), encoding: .utf8)
            #expect(
                !source.contains("innerHTML") && !source.contains("outerHTML") && !source.contains("eval("),
                "\(script)"
            )
        }
    }

    @Test("pages are served with a strict policy; lists page with totals; CSV is checked whole; exports are safe")
    func pagesAndCalls() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"], console: true)
        for node in federation.nodes { try await federation.start(node) }
        let port = try #require(federation.consolePorts["embassy-id"])
        let ca = TestFederation.certs.appendingPathComponent("ca.pem").path
        // The page and a module, as a browser gets them: from this origin only, never inline script.
        let page = try run(
            "curl",
            ["-sS", "-D", "-", "--cacert", ca, "https://127.0.0.1:\(port)/"]
        )
        #expect(page.stdout.contains("<script type=\"module\" src=\"/app.js\"></script>"), "\(page.stdout)")
        #expect(page.stdout.lowercased().contains("content-security-policy: default-src 'none'; script-src 'self';"))
        #expect(page.stdout.lowercased().contains("content-type: text/html"))
        let module = try run(
            "curl",
            ["-sS", "-D", "-", "--http1.1", "--cacert", ca, "https://127.0.0.1:\(port)/app.js"]
        )
        #expect(module.stdout.lowercased().contains("content-type: text/javascript"))
        let missing = try run(
            "curl",
            [
                "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca,
                "https://127.0.0.1:\(port)/../etc/passwd",
            ]
        )
        #expect(missing.stdout == "404")

        // 60 cases: pages of 25 with the total, filters, and the order asked for.
        let embassy = federation.console("embassy-id")
        for i in 0..<60 {
            var request = Make.request(persons: 1)

            request.originReference = "PAGE-\(i)"
            request.urgency = i % 3 == 0 ? .immediate : .routine
            _ = try await embassy.unary(Console.submit, request, timeout: .seconds(30))
        }
        var find = FindCasesRequest()
        find.limit = 25
        find.offset = 50
        find.order = .createdOldest
        let last = try await embassy.unary(Console.findCases, find, timeout: .seconds(30))
        #expect(last.total == 60 && last.cases.count == 10 && last.offset == 50)
        #expect(last.cases.first?.originReference == "PAGE-50" && last.cases.last?.originReference == "PAGE-59")
        find = FindCasesRequest()
        find.urgencies = [.immediate]
        let immediate = try await embassy.unary(Console.findCases, find, timeout: .seconds(30))
        #expect(immediate.total == 20 && immediate.cases.allSatisfy { $0.urgency == .immediate })
        find = FindCasesRequest()
        find.updatedUntilMs = Int64(Date().timeIntervalSince1970 * 1000) - 86_400_000
        #expect(try await embassy.unary(Console.findCases, find, timeout: .seconds(30)).total == 0)

        // The command line pages the same way, and says where it is.
        let third = try federation.cli(["case", "list", "--limit", "25", "--page", "3"], node: "embassy-id")
        #expect(third.stdout.hasSuffix("Cases 51–60 of 60\n"), "\(third.stdout)")
        let first = try federation.cli(["case", "list", "--limit", "25", "--urgency", "immediate"], node: "embassy-id")
        #expect(first.stdout.hasSuffix("Cases 1–20 of 20\n"), "\(first.stdout)")
        let paged = try federation.cli(["case", "list", "--limit", "25"], node: "embassy-id")
        #expect(paged.stdout.hasSuffix("Cases 1–25 of 60; next: --page 2\n"), "\(paged.stdout)")

        // A CSV with three bad lines: all three, by line and column, and never the value.
        var table = ReadTableRequest()
        table.kind = .persons
        table.csv =
            "full_name,phone,minor\nGood,+628120000001,no\nBad Phone,0812-SECRET,no\n,+628120000003,no\n"
            + "Minor?,+628120000004,perhaps\n"
        let reading = try await embassy.unary(Console.readTable, table, timeout: .seconds(30))
        #expect(reading.persons.isEmpty && reading.lines == 4)
        #expect(reading.problems.map { "\($0.line) \($0.column)" } == ["3 phone", "4 full_name", "5 minor"])
        #expect(!reading.problems.contains { $0.problem.contains("SECRET") || $0.problem.contains("perhaps") })
        table.csv = "full_name,phone\nAyu,+628120000001\nBudi,+628120000002\n"
        let good = try await embassy.unary(Console.readTable, table, timeout: .seconds(30))
        #expect(good.problems.isEmpty && good.persons.map(\.personRef) == ["P1", "P2"])
        // A file with no one in it: a problem of the file as a whole (line 0), not of a line.
        table.csv = "full_name\n"
        let empty = try await embassy.unary(Console.readTable, table, timeout: .seconds(30))
        #expect(empty.problems.map { "\($0.line) \($0.problem)" } == ["0 no persons in the file"])
        table.kind = .outcomes
        table.csv = "person_ref,status\nP1,rescued\nP2,flying\n"
        let outcomes = try await embassy.unary(Console.readTable, table, timeout: .seconds(30))
        #expect(outcomes.problems.map { "\($0.line) \($0.column)" } == ["3 status"])

        // An export with a name a spreadsheet would run: kept as text, and recorded as an export.
        var hostile = Make.request(persons: 2)

        hostile.persons[0].fullName = "=HYPERLINK(\"http://evil.example\",\"click\")"
        hostile.persons[1].fullName = "Budi, \"the cook\""
        let receipt = try await embassy.unary(Console.submit, hostile, timeout: .seconds(30))
        var export = ExportPersonsRequest()
        export.caseID = receipt.caseID
        let file = try await embassy.unary(Console.exportPersons, export, timeout: .seconds(30))
        let lines = file.text.split(separator: "\r\n").map(String.init)
        #expect(file.text.hasPrefix("\u{FEFF}person_ref,full_name,") && file.rows == 2 && lines.count == 3)
        #expect(lines[1].contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\","), "\(lines[1])")
        #expect(lines[2].contains(",\"Budi, \"\"the cook\"\"\","), "\(lines[2])")
        #expect(lines[1].contains(",'+"), "a phone number stays text: \(lines[1])")
        let logged = try federation.sql(
            "embassy-id",
            "SELECT what FROM access_log WHERE case_id = '\(receipt.caseID)' ORDER BY id"
        )
        #expect(logged == ["export"])
        // Operators never receive the file.
        let operatorChannel = federation.console("embassy-id", token: federation.operators["embassy-id"]!.token)
        await #expect(throws: RPCError.self) {
            _ = try await operatorChannel.unary(Console.exportPersons, export, timeout: .seconds(30))
        }
        federation.stopAll()
    }

    @Test("officers file, work and answer a case in Chromium; the operator sees no victim's name")
    func browserFlow() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"], console: true)
        for node in federation.nodes { try await federation.start(node) }
        var add = AddStaffRequest()
        add.login = "amira"
        add.displayName = "Amira (consular officer)"
        add.role = .officer
        let enrolment = try await federation.console("embassy-id").unary(Console.addStaff, add, timeout: .seconds(30))
        let ncctOfficer = try await AccountSetup.add(
            "sok",
            name: "Sok (NCCT case officer)",
            role: .officer,
            password: "ncct officer password",
            through: federation.console("ncct"),
            by: federation.supervisors["ncct"]?.token
        )
        let operatorAccount = try #require(federation.operators["embassy-id"])
        let shots =
            ProcessInfo.processInfo.environment["SCREENSHOTS"]
            ?? repositoryRoot.appendingPathComponent(".build/test-results/screenshots").path
        let result = try run(
            "python3",
            [repositoryRoot.appendingPathComponent("Tests/Browser/console_flow.py").path],
            environment: [
                "EMBASSY_URL": "https://127.0.0.1:\(federation.consolePorts["embassy-id"]!)/",
                "NCCT_URL": "https://127.0.0.1:\(federation.consolePorts["ncct"]!)/",
                "SCREENSHOTS": shots,
                "EMBASSY_LOGIN": "amira", "ENROLMENT_CODE": enrolment.enrolmentCode,
                "NCCT_LOGIN": ncctOfficer.login, "NCCT_PASSWORD": ncctOfficer.password,
                "NCCT_SECRET": Base32.encode(ncctOfficer.secret),
                "OPERATOR_LOGIN": operatorAccount.login, "OPERATOR_PASSWORD": operatorAccount.password,
                "OPERATOR_SECRET": Base32.encode(operatorAccount.secret),
            ]
        )
        let report = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let checks = report?["checks"] as? [String: Bool] ?? [:]
        let failures = report?["failures"] as? [String] ?? ["no report: \(result.stderr.suffix(2000))"]
        #expect(failures.isEmpty, "\(failures)")
        // Every step ran and held; a renamed or dropped check fails here too.
        let expected = [
            "signin_labelled", "enrolment_recovery_codes", "embassy_signed_in", "form_twelve_persons",
            "file_confirmation_says_what", "hostile_names_shown_as_text", "hostile_names_not_run",
            "session_end_asks_to_sign_in_again", "csv_three_problems_at_once", "csv_problems_name_no_value",
            "typed_work_kept_over_sign_in", "csv_read", "csv_confirmation", "csv_case_has_250",
            "ncct_queue_counts_new", "same_case_at_ncct", "nine_selected", "bulk_confirmation",
            "question_highlighted", "answer_live_at_ncct", "embassy_status_after_answer", "attachment_type_refused",
            "attachment_confirmation_names_file", "attachment_shown_at_ncct", "report_totals",
            "report_outcomes", "statistics_export_runs", "ncct_queue_counts_duplicates", "duplicate_side_by_side",
            "duplicate_confirmation_says_what", "embassy_told_of_link", "case_shows_link", "cases_total_shown",
            "operator_node_page", "operator_sees_no_names", "operator_no_file_screen", "keyboard_sign_in",
            "focus_after_sign_in", "focus_visible", "keyboard_reaches_case", "focus_on_case_heading", "skip_link_first",
            "print_leaves_out_forms", "print_keeps_persons", "tablet_no_page_overflow", "no_script_errors",
            "completed",
        ]
        print("web console timings (ms): \(report?["timings_ms"] ?? "none")")
        let notHeld = expected.filter { checks[$0] != true }
        #expect(notHeld.isEmpty, "\(notHeld)")
        // What the browser did is what the nodes hold: 12 + 250 persons, 9 rescued, the answer.
        let counts = try federation.sql("ncct", "SELECT person_count FROM cases ORDER BY person_count")
        #expect(counts == ["12", "250"])
        let rescued = try federation.sql("embassy-id", "SELECT COUNT(*) FROM persons WHERE status = 3")
        #expect(rescued == ["9"])
        // The confirmed duplicate is on NCCT's record with the officer's name.
        #expect(try federation.sql("ncct", "SELECT state, decided_by != '' FROM person_matches") == ["1|1"])
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'statistics.exported'") == ["1"])
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM access_log WHERE what = 'attachment view'") == ["1"])
        federation.stopAll()
    }
}
