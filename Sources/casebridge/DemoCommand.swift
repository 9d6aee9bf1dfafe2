import ArgumentParser
import CaseBridgeNode
import CaseBridgeNet
import CaseBridgeProto
import CaseBridgeRPC
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Runs a local federation: NCCT and two embassies, one rescue request from filing to outcomes.",
        discussion: """
            Starts three nodes as separate processes on 127.0.0.1 with the TEST certificates in \
            certs/, each with a fresh database under the demo folder. The embassy of Indonesia files \
            a batch rescue request; NCCT acknowledges it, works it step by step and records each \
            person's outcome; you see each node's inbox and tracker as they change. The nodes stop \
            at the end (or keep running with --keep-running); their data stays for you to look at.

            Example: casebridge demo
            """
    )
    @Option(help: "Where to put the demo's configuration and data (replaced if it holds an earlier demo).") var folder =
        "demo-data"
    @Option(help: "The test certificates.") var certs = "certs"
    @Flag(help: "Leave the nodes running until Ctrl-C, to try the commands yourself.") var keepRunning = false
    @Option(help: "Ports from this one up for the three nodes (default: free ones picked at random).") var basePort:
        Int?
    @Flag(help: "Print one JSON object at the end (nodes, ports, the case and its outcome) instead of the story.")
    var json = false
    @Option(
        help: ArgumentHelp(
            "Print the current sign-in code of a demo account (NODE:LOGIN, e.g. ncct:duty) and stop.",
            discussion: "For signing in to a running demo's web console without an authenticator app."
        )
    ) var codeFor: String?

    func validate() throws {
        if let basePort, !(1024...65_533).contains(basePort) {
            throw fail("--base-port must be from 1024 to 65533", code: Exit.badInput)
        }
    }

    func run() async throws {
        if let codeFor {
            print(try DemoFederation.currentCode(codeFor, folder: folder))
            return
        }
        let federation = try DemoFederation(folder: folder, certs: certs, basePort: basePort)
        defer { federation.stopAll() }
        step("Starting the federation in \(federation.folder.path)")
        for node in DemoFederation.nodes {
            try await federation.start(node)
            say("\(node.id) (\(node.name)) is up on 127.0.0.1:\(federation.ports[node.id]!)")
        }
        step("Staff accounts: an operator and a supervisor at each node, signed in")
        for node in DemoFederation.nodes {
            let officer = try await federation.setUpAccounts(node)
            say("\(node.id): \(officer.login) (\(DemoFederation.officerName(node))) signed in")
        }
        say("their passwords and authenticator secrets: \(federation.accountsFile.path) (demo only)")
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct"),
            china = federation.console("embassy-cn")

        step("The embassy of Indonesia files a rescue request for \(DemoFederation.persons.count) nationals")
        var request = InterventionRequest()
        request.kind = .rescue
        request.urgency = .immediate
        request.persons = DemoFederation.persons
        var location = Location()
        location.province = "Preah Sihanouk"
        location.siteName = "Compound K7 (demo)"
        request.location = location
        request.summary =
            "SOS messages from inside the compound; passports taken; one reports violence. (Fictional demo data.)"
        request.indicators = [.documentsWithheld, .physicalViolence, .detention]
        request.originReference = "IDN-PP-DEMO-001"
        let receipt = try await embassy.call(Console.submit, request)
        let caseID = receipt.caseID
        say("filed case \(caseID): stored at the embassy node, status \(receipt.status); delivering to NCCT")
        try await federation.waitFor(embassy, caseID) { $0.status == .received }
        say("NCCT committed it: the embassy's tracker now says \"received\"")

        step("NCCT's inbox")
        for entry in try await ncct.stream(Console.listInbox, ListInboxRequest()) {
            say(
                "#\(entry.entryID) \(entry.kind == .request ? "request" : "update") from \(entry.fromNode): "
                    + "case \(entry.caseID), \(entry.summary?.personCount ?? 0) persons, \(entry.read ? "read" : "NEW")"
            )
        }

        let outcomes = DemoFederation.outcomes
        let changes: [(String, CaseUpdate.Change)] = [
            (
                "NCCT acknowledges the case",
                .statusChange(
                    {
                        var c = StatusChange(); c.toStatus = .acknowledged; return c
                    }()
                )
            ),
            (
                "NCCT starts locating the compound",
                .stepChange(
                    {
                        var c = StepChange(); c.step = .locating; return c
                    }()
                )
            ),
            (
                "The rescue is planned with provincial police",
                .stepChange(
                    {
                        var c = StepChange(); c.step = .rescuePlanned; return c
                    }()
                )
            ),
            (
                "The operation takes place",
                .stepChange(
                    {
                        var c = StepChange(); c.step = .rescued; return c
                    }()
                )
            ),
            ("Outcomes per person are recorded", .personOutcomes(outcomes.first)),
            (
                "Rescued persons are sheltered",
                .stepChange(
                    {
                        var c = StepChange(); c.step = .sheltered; return c
                    }()
                )
            ),
            ("Shelter and documents, per person", .personOutcomes(outcomes.second)),
            (
                "A note for the embassy",
                .note(
                    {
                        var n = Note(); n.text = "Interviews done; emergency travel documents requested."; return n
                    }()
                )
            ),
        ]
        for (number, (title, change)) in changes.enumerated() {
            step(title)
            var update = CaseUpdate()
            update.caseID = caseID
            update.change = change
            _ = try await ncct.call(Console.applyChange, update)
            let view = try await federation.waitFor(embassy, caseID) { $0.history.count == number + 1 }
            say(
                "embassy tracker: \(view.status)\(view.step == .unspecified ? "" : " / \(view.step)") — "
                    + Output.counts(view.outcomeCounts)
            )
        }

        step("A second request, taken by phone in the night and entered 3 hours later: Citra Dewi again")
        var again = InterventionRequest()
        again.kind = .welfareCheck
        again.urgency = .immediate
        again.createdAtMs = Int64(Date().timeIntervalSince1970 * 1000) - 3 * 3_600_000
        var relative = DemoFederation.persons[2]
        relative.personRef = "P1"
        relative.fullName = "Dewi Citra (demo)"  // as her brother spelt it, family name first
        relative.phone = ""
        relative.travelDocument = nil
        again.persons = [relative]
        again.summary = "Her brother has had no news for a week. (Fictional demo data.)"
        again.originReference = "IDN-PP-DEMO-002"
        let secondCase = try await embassy.call(Console.submit, again).caseID
        try await federation.waitFor(embassy, secondCase) { $0.status == .received }
        say("filed case \(secondCase), immediate: NCCT has 2 hours to acknowledge, from the filing")

        step("NCCT's overdue list (casebridge overdue)")
        var overdueRequest = ListDeadlinesRequest()
        overdueRequest.minLevel = .overdue
        let overdue = try await ncct.stream(Console.listDeadlines, overdueRequest)
        for entry in overdue {
            let summary = entry.summary ?? CaseSummary()
            say(
                "\(summary.originReference): OVERDUE, \(entry.deadline?.clock ?? .unspecified) by"
                    + " \(entry.deadline?.waitingOn ?? "") was due \(Output.shortTime(entry.deadline?.dueAtMs ?? 0))"
            )
        }

        step("NCCT's possible duplicates (casebridge duplicates)")
        let matches = try await federation.matches(ncct)
        for match in matches.matches {
            say(
                "match \(match.matchID), score \(match.score)/1000: \(match.person?.fullName ?? "") (\(match.personRef)"
                    + " of \(match.caseSummary?.originReference ?? "")) ~ \(match.otherPerson?.fullName ?? "")"
                    + " (\(match.otherPersonRef) of \(match.otherCaseSummary?.originReference ?? "")), agreeing on "
                    + DuplicatesList.fields(match.agreeingFields)
            )
        }
        let first = matches.matches.first?.matchID ?? 1
        say("an NCCT officer confirms or dismisses it: casebridge duplicates confirm \(first)")

        step("The embassy of China sees none of this")
        let visible = try await china.stream(Console.listCases, ListCasesRequest())
        say("cases at embassy-cn: \(visible.count)")

        step("The case as the embassy of Indonesia sees it")
        let view = try await embassy.call(
            Console.getCase,
            {
                var r = GetCaseRequest(); r.caseID = caseID; return r
            }()
        )
        let allDelivered = try await federation.allDelivered(ncct, caseID)
        say("status \(view.status), step \(view.step), \(view.history.count) updates, all delivered: \(allDelivered)")
        for update in view.history { say("  #\(update.sequence) \(describe(update)) — \(update.author)") }
        if json {
            Output.json([
                "folder": federation.folder.path, "case_id": caseID, "status": view.status.description,
                "step": view.step.description, "updates": view.history.count, "all_delivered": allDelivered,
                "outcome_counts": Dictionary(
                    uniqueKeysWithValues: view.outcomeCounts.map { ($0.status.description, $0.count) }
                ),
                "cases_visible_to_embassy_cn": visible.count, "keep_running": keepRunning,
                "overdue_cases": overdue.map { $0.summary?.caseID ?? "" },
                "duplicate_matches": matches.matches.count,
                "nodes": DemoFederation.nodes.map { node in
                    [
                        "id": node.id, "port": federation.ports[node.id]!,
                        "config": federation.folder.appendingPathComponent("\(node.id)/node.json").path,
                    ] as [String: Any]
                },
            ])
        }

        let tool =
            CommandLine.arguments[0].hasPrefix("/") || CommandLine.arguments[0].contains("/")
            ? CommandLine.arguments[0] : "casebridge"
        let cfg = { (node: String) in federation.folder.appendingPathComponent("\(node)/node.json").path }
        if json {
            if keepRunning { await waitForInterrupt() }
            return
        }
        if keepRunning {
            step("The nodes keep running. Try, in another terminal:")
        } else {
            step("Stopping the nodes (their data stays in \(federation.folder.path))")
            federation.stopAll()
            print(
                """

                To start them again (each in its own terminal, or with & at the end):
                  \(tool) node run --config \(cfg("ncct"))
                  \(tool) node run --config \(cfg("embassy-id"))
                  \(tool) node run --config \(cfg("embassy-cn"))

                Then:
                """
            )
        }
        print(
            """
              \(tool) case show \(caseID) --config \(cfg("embassy-id"))
              \(tool) inbox --config \(cfg("ncct"))
              \(tool) submit --kind welfare_check --config \(cfg("embassy-id"))   (it asks for the person)
              \(tool) ack CASE_ID --config \(cfg("ncct"))
              \(tool) status --config \(cfg("ncct"))
              \(tool) check-peer 127.0.0.1:\(federation.ports["ncct"]!) --config \(cfg("embassy-id"))
              \(tool) audit verify --config \(cfg("ncct"))
            The same console over HTTPS (Connect JSON), e.g. NCCT's status with the session you hold:
              curl --cacert \(federation.certsPath)/ca.pem \\
                https://127.0.0.1:\(federation.consolePorts["ncct"]!)/casebridge.v1.Console/GetStatus \\
                -H "Authorization: Bearer $(cat \(SessionFile.path("ncct").path))" \\
                -H "Content-Type: application/json" -d '{}'
            Logs: \(federation.folder.path)/<node>/node.log
            """
        )
        if keepRunning {
            step("The web console of each node (the browser warns of the test certificate: accept it for the demo)")
            for node in DemoFederation.nodes {
                say("\(node.name): https://127.0.0.1:\(federation.consolePorts[node.id]!)/")
            }
            say("Sign in as duty (a supervisor) or ops (an operator: no victims' data) with the password in")
            say("\(federation.accountsFile.path); the code from an authenticator app given the secret there, or:")
            say("  \(tool) demo --folder \(federation.folder.path) --code-for ncct:duty")
        }
        if keepRunning {
            say("Ctrl-C stops the nodes.")
            await waitForInterrupt()
        }
    }

    private func step(_ text: String) { if !json { print("\n== \(text)") } }
    private func say(_ text: String) { if !json { print("   \(text)") } }

    private func waitForInterrupt() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            signal(SIGINT, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            source.setEventHandler {
                continuation.resume(); source.cancel()
            }
            source.resume()
            keepSource(source)
        }
    }
}

nonisolated(unsafe) private var demoSources: [DispatchSourceSignal] = []
private func keepSource(_ source: DispatchSourceSignal) { demoSources.append(source) }

/// The demo's three nodes: configuration files, processes and consoles.
final class DemoFederation {
    struct NodeInfo { let id, role, represents, name: String }
    static let nodes = [
        NodeInfo(id: "ncct", role: "ncct", represents: "KH", name: "NCCT, Phnom Penh"),
        NodeInfo(id: "embassy-id", role: "embassy", represents: "ID", name: "Embassy of Indonesia"),
        NodeInfo(id: "embassy-cn", role: "embassy", represents: "CN", name: "Embassy of China"),
    ]
    static let marker = ".casebridge-demo"

    let folder: URL
    private(set) var ports: [String: Int] = [:]
    /// Each node's HTTPS console (Connect JSON), with the node's own certificate (it names 127.0.0.1).
    private(set) var consolePorts: [String: Int] = [:]
    let certsPath: String
    private var processes: [String: Process] = [:]
    /// Each node's signed-in demo supervisor.
    private var sessions: [String: String] = [:]
    var accountsFile: URL { folder.appendingPathComponent("accounts.txt") }

    /// The current TOTP code of a demo account ("ncct:duty"), from the demo folder's accounts file.
    static func currentCode(_ account: String, folder: String) throws -> String {
        let parts = account.split(separator: ":").map(String.init)
        let file = URL(fileURLWithPath: folder).appendingPathComponent("accounts.txt")
        guard parts.count == 2 else { throw fail("--code-for takes NODE:LOGIN, e.g. ncct:duty", code: Exit.badInput) }
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw fail("no demo accounts in \(folder): run casebridge demo first", code: Exit.badInput)
        }
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard words.count >= 7, words[0] == parts[0], words[2] == parts[1], let secret = Base32.decode(words[6])
            else { continue }
            return TOTP.code(secret: secret, step: TOTP.step(atMs: Int64(Date().timeIntervalSince1970 * 1000)))
        }
        throw fail("no demo account \(account) in \(file.path)", code: Exit.badInput)
    }

    static func officerName(_ node: NodeInfo) -> String {
        node.role == "ncct" ? "Sok Dara, NCCT duty officer (demo)" : "Duty consul, \(node.name) (demo)"
    }

    /// The first operator (over the local socket), then a supervisor the demo acts as; both enrolled
    /// with their codes computed here. The supervisor's session is saved for the commands printed
    /// at the end; the passwords and secrets go to an owner-only file in the demo folder.
    func setUpAccounts(_ node: NodeInfo) async throws -> AccountSetup {
        let channel = ConsoleConnection(configuration: try configuration(node.id)).channel
        defer { channel.close() }
        let operatorAccount = try await AccountSetup.add(
            "ops",
            name: "Node operator (demo)",
            role: .operator,
            password: "demo-operator-\(node.id)",
            through: channel,
            by: nil
        )
        let officer = try await AccountSetup.add(
            "duty",
            name: Self.officerName(node),
            role: .supervisor,
            password: "demo-supervisor-\(node.id)",
            through: channel,
            by: operatorAccount.token
        )
        sessions[node.id] = officer.token
        try SessionFile.save(officer.token, node: node.id)
        var lines = (try? String(contentsOf: accountsFile, encoding: .utf8)) ?? ""
        for account in [operatorAccount, officer] {
            lines +=
                "\(node.id)  login \(account.login)  password \(account.password)  "
                + "TOTP secret \(Base32.encode(account.secret))\n"
        }
        _ = FileManager.default.createFile(
            atPath: accountsFile.path,
            contents: Data(lines.utf8),
            attributes: [.posixPermissions: 0o600]
        )
        return officer
    }

    func configuration(_ node: String) throws -> NodeConfiguration {
        try NodeConfiguration.load(folder.appendingPathComponent("\(node)/node.json").path)
    }

    init(folder path: String, certs: String, basePort: Int? = nil) throws {
        folder = URL(fileURLWithPath: path).standardizedFileURL
        let certsFolder = URL(fileURLWithPath: certs).standardizedFileURL
        certsPath = certsFolder.path
        guard FileManager.default.fileExists(atPath: certsFolder.appendingPathComponent("ca.pem").path) else {
            throw fail(
                "no test certificates in \(certsFolder.path) (run from the repository, or give --certs)",
                code: Exit.badInput
            )
        }
        if FileManager.default.fileExists(atPath: folder.path) {
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent(Self.marker).path) else {
                throw fail(
                    "\(folder.path) exists and is not an earlier demo; choose another --folder",
                    code: Exit.badInput
                )
            }
            try FileManager.default.removeItem(at: folder)
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent(Self.marker).path, contents: Data())
        for (i, node) in Self.nodes.enumerated() {
            ports[node.id] = basePort.map { $0 + i } ?? SocketAddress.freeLoopbackPort()
            consolePorts[node.id] = SocketAddress.freeLoopbackPort()
        }
        let directory: [String: Any] = [
            "trust_domain": "casebridge.test",
            "nodes": Self.nodes.map { node in
                [
                    "id": node.id, "role": node.role, "represents": node.represents,
                    "endpoint": "127.0.0.1:\(ports[node.id]!)", "display_name": node.name,
                ]
            },
        ]
        try write(directory, to: folder.appendingPathComponent("directory.json"))
        for node in Self.nodes {
            // Git checks the test keys out world-readable; a node refuses a key others can read.
            chmod(certsFolder.appendingPathComponent("nodes/\(node.id).key").path, 0o600)
            let nodeFolder = folder.appendingPathComponent(node.id)
            try FileManager.default.createDirectory(at: nodeFolder, withIntermediateDirectories: true)
            try write(
                [
                    "node_id": node.id, "listen": "127.0.0.1:\(ports[node.id]!)",
                    "certificate": certsFolder.appendingPathComponent("nodes/\(node.id).pem").path,
                    "private_key": certsFolder.appendingPathComponent("nodes/\(node.id).key").path,
                    "ca": certsFolder.appendingPathComponent("ca.pem").path,
                    "crl": certsFolder.appendingPathComponent("crl.pem").path,
                    "directory": "../directory.json", "data_folder": "data", "console_socket": "console.sock",
                    "delivery": ["initial_backoff_ms": 200, "max_backoff_ms": 5000],
                    "console": ["listen": "127.0.0.1:\(consolePorts[node.id]!)"],
                ],
                to: nodeFolder.appendingPathComponent("node.json")
            )
        }
    }

    func start(_ node: NodeInfo) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let nodeFolder = folder.appendingPathComponent(node.id)
        process.arguments = ["node", "run", "--config", nodeFolder.appendingPathComponent("node.json").path]
        let log = nodeFolder.appendingPathComponent("node.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        processes[node.id] = process
        let console = self.console(node.id)
        for _ in 0..<300 {
            guard process.isRunning else { break }
            if (try? await console.channel.unary(
                GRPCHealth.Health.check,
                GRPCHealth.HealthCheckRequest(),
                timeout: .seconds(1)
            )) != nil {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw fail("node \(node.id) did not start; see \(log.path)")
    }

    func console(_ node: String) -> ConsoleConnection {
        ConsoleConnection(configuration: try! configuration(node), session: sessions[node])
    }

    @discardableResult
    func waitFor(_ console: ConsoleConnection, _ caseID: String, until condition: (Case) -> Bool) async throws -> Case {
        var request = GetCaseRequest()
        request.caseID = caseID
        for _ in 0..<600 {
            if let view = try? await console.call(Console.getCase, request), condition(view) { return view }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw fail("the case did not reach the expected state within 15 s; see the logs in \(folder.path)")
    }

    /// NCCT's open duplicate matches, once its scan has looked at the latest case (a few seconds at most).
    func matches(_ ncct: ConsoleConnection) async throws -> MatchPage {
        for _ in 0..<100 {
            let page = try await ncct.call(Console.listMatches, ListMatchesRequest())
            if page.total > 0 { return page }
            try await Task.sleep(for: .milliseconds(100))
        }
        return MatchPage()
    }

    func allDelivered(_ console: ConsoleConnection, _ caseID: String) async throws -> Bool {
        var request = GetCaseRequest()
        request.caseID = caseID
        for _ in 0..<200 {
            if try await console.call(Console.getCase, request).deliveries.allSatisfy({ $0.state == .delivered }) {
                return true
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    func stopAll() {
        for (_, process) in processes where process.isRunning { process.terminate() }
        for (_, process) in processes { process.waitUntilExit() }
        processes.removeAll()
    }

    private func write(_ object: Any, to url: URL) throws {
        try JSONSerialization.data(
            withJSONObject: object,
            options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        ).write(to: url)
    }

    /// Fictional persons: the demo never shows anyone's real data.
    static let persons: [Person] = {
        let names = [
            "Ayu Lestari", "Budi Santoso", "Citra Dewi", "Dimas Pratama", "Eka Putri", "Fajar Nugroho",
            "Gita Permata", "Hadi Wijaya", "Indah Sari", "Joko Susilo", "Kartika Ayu", "Lukman Hakim",
        ]
        return names.enumerated().map { i, name in
            var person = Person()
            person.personRef = "P\(i + 1)"
            person.fullName = name + " (demo)"
            person.nationality = "ID"
            person.dateOfBirth = "\(1990 + i)-0\(1 + i % 9)-1\(i % 10)"
            person.sex = i % 2 == 0 ? .female : .male
            person.phone = "+6281200000\(String(format: "%03d", i))"
            person.languages = ["id"]
            if i % 3 == 0 {
                var document = TravelDocument()
                document.number = "DEMO\(1000 + i)"
                document.issuingCountry = "ID"
                document.withheld = true
                person.travelDocument = document
            }
            return person
        }
    }()

    /// 9 rescued, 2 not found, 1 declined assistance; then 8 sheltered and 1 with documents in process.
    static var outcomes: (first: PersonOutcomes, second: PersonOutcomes) {
        func list(_ pairs: [(Int, PersonStatus)]) -> PersonOutcomes {
            var list = PersonOutcomes()
            list.outcomes = pairs.map { i, status in
                var outcome = PersonOutcome()
                outcome.personRef = "P\(i)"
                outcome.status = status
                return outcome
            }
            return list
        }
        let first = list(
            (1...9).map { ($0, .rescued) } + [(10, .notFound), (11, .notFound), (12, .declinedAssistance)]
        )
        let second = list((1...8).map { ($0, .sheltered) } + [(9, .documentsInProcess)])
        return (first, second)
    }
}
