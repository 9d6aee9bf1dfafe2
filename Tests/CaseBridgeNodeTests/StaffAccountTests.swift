import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// Named staff accounts at real nodes: enrolment with TOTP, roles, accountability across agencies,
/// the access log, lockout, and an operator who never sees a victim's name.
@Suite("Staff accounts", .serialized)
struct StaffAccountTests {
    @Test("officers at both agencies sign in; the other agency sees who acted; audit and access logs name them")
    func accountability() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let ncctOps = federation.console("ncct", token: federation.operators["ncct"]!.token)
        let embassyOps = federation.console("embassy-id", token: federation.operators["embassy-id"]!.token)
        defer { ncctOps.close(); embassyOps.close() }

        // The operators (bootstrapped over each node's socket) add the staff; each enrols and signs in.
        let ncctOfficer = try await AccountSetup.add(
            "dara.sok",
            name: "Sok Dara",
            role: .officer,
            password: "correct horse battery",
            through: ncctOps,
            by: federation.operators["ncct"]!.token
        )
        let ncctSupervisor = try await AccountSetup.add(
            "vanna.chan",
            name: "Chan Vanna",
            role: .supervisor,
            password: "staple battery horse",
            through: ncctOps,
            by: federation.operators["ncct"]!.token
        )
        let consul = try await AccountSetup.add(
            "ayu.lestari",
            name: "Ayu Lestari",
            role: .officer,
            password: "embassy officer pw 1",
            through: embassyOps,
            by: federation.operators["embassy-id"]!.token
        )
        let signedIn = try await consul.login(through: embassyOps)
        #expect(signedIn.account?.displayName == "Ayu Lestari" && signedIn.account?.role == .officer)
        #expect(signedIn.recoveryCodesLeft == 10)

        let embassy = federation.console("embassy-id", token: signedIn.token)
        let ncct = federation.console("ncct", token: ncctOfficer.token)
        defer { embassy.close(); ncct.close() }
        var request = Make.request(persons: 2)
        request.persons[0].fullName = "Person 0 Nameworth"
        let caseID = try await embassy.unary(Console.submit, request).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        var lookup = GetCaseRequest()
        lookup.caseID = caseID
        #expect(try await ncct.unary(Console.getCase, lookup).request?.filedBy == "Ayu Lestari")

        // NCCT's officer acknowledges (the typed author is ignored); the embassy sees the officer's name.
        var ack = Make.status(caseID, .acknowledged)
        ack.author = "root"
        _ = try await ncct.unary(Console.applyChange, ack)
        #expect(
            try await federation.eventually {
                try await embassy.unary(Console.getCase, lookup).history.first?.author == "Sok Dara"
            }
        )

        // An officer may not close a case; the supervisor may. The refusal is audited with the officer's name.
        let notAllowed = await #expect(throws: RPCError.self) {
            _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .declined))
        }
        #expect(notAllowed?.code == .permissionDenied && notAllowed?.message.contains("only supervisors") == true)
        let supervisor = federation.console("ncct", token: ncctSupervisor.token)
        defer { supervisor.close() }
        _ = try await supervisor.unary(Console.applyChange, Make.status(caseID, .inProgress))

        let audit = try await collect(ncctOps, Console.listAudit, ListAuditRequest())
        let actors = Set(audit.map(\.actor))
        for actor in ["staff:op", "staff:dara.sok", "staff:vanna.chan"] { #expect(actors.contains(actor), "\(actors)") }
        #expect(audit.contains { $0.event == "staff.refused" && $0.actor == "staff:dara.sok" })
        #expect(audit.contains { $0.event == "update.made" && $0.actor == "staff:dara.sok" })
        let embassyAudit = try await collect(embassyOps, Console.listAudit, ListAuditRequest())
        #expect(embassyAudit.contains { $0.event == "request.submitted" && $0.actor == "staff:ayu.lestari" })

        // Every read of the case's personal data is in the access log, for auditors only.
        let auditor = try await AccountSetup.add(
            "audit.one",
            name: "Auditor One",
            role: .auditor,
            password: "auditor password 1",
            through: ncctOps,
            by: federation.operators["ncct"]!.token
        )
        let auditing = federation.console("ncct", token: auditor.token)
        defer { auditing.close() }
        var byCase = ListAccessRequest()
        byCase.caseID = caseID
        let reads = try await collect(auditing, Console.listAccess, byCase)
        #expect(reads.contains { $0.login == "dara.sok" && $0.what == "case view" && $0.via.hasPrefix("socket") })
        let notAuditor = await #expect(throws: RPCError.self) {
            _ = try await collect(ncct, Console.listAccess, byCase)
        }
        #expect(notAuditor?.code == .permissionDenied)
        let cli = try federation.cli(["access-log", "--staff", "dara.sok"], node: "ncct", as: "sup")
        #expect(cli.status == 4 && cli.stderr.contains("only auditors may read the access log"), "\(cli.stderr)")

        // A lost laptop: the operator signs the auditor out everywhere; the session no longer works.
        let signedOut = try federation.cli(["staff", "sign-out", "audit.one"], node: "ncct", as: "op")
        #expect(signedOut.stdout.contains("signed out everywhere"), "\(signedOut.stderr)")
        let ended = await #expect(throws: RPCError.self) { _ = try await collect(auditing, Console.listAccess, byCase) }
        #expect(ended?.code == .unauthenticated)
        federation.stopAll()
    }

    @Test("an operator sees statuses, counts and deliveries, but no victim's personal data in any call")
    func operatorSeesNoPersonalData() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        var request = Make.request(persons: 3)
        request.persons[1].travelDocument = {
            var d = TravelDocument(); d.number = "X7777777"; return d
        }()
        let caseID = try await embassy.unary(Console.submit, request).caseID
        _ = try await embassy.unary(Console.applyChange, Make.note(caseID, "Person 0 called her mother"))
        #expect(
            try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM inbox") == ["2"] }
        )
        let secrets = [
            "Person 0", "Person 1", "+62812000", "X7777777", "Held at the compound", "Compound 7",
            "called her mother",
        ]
        for node in federation.nodes {
            let ops = federation.console(node, token: federation.operators[node]!.token)
            defer { ops.close() }
            var lookup = GetCaseRequest()
            lookup.caseID = caseID
            let view = try await ops.unary(Console.getCase, lookup)
            #expect(view.status != .unspecified && view.persons.count == 3 && view.request?.persons.count == 3)
            // What was there is marked withheld, not silently missing.
            #expect(view.request?.summary == PersonalDataMark.withheld)
            #expect(view.request?.persons.map(\.fullName) == Array(repeating: PersonalDataMark.withheld, count: 3))
            let events = try await firstEvents(ops)
            let notes = events.compactMap { event -> String? in
                if case .note(let note)? = event.update?.change { return note.text }
                return nil
            }
            #expect(notes == [PersonalDataMark.withheld], "\(node): \(events.count) events")
            var shown = [String(decoding: try ProtoCodec.encode(view), as: UTF8.self)]
            shown += try await collect(ops, Console.listCases, ListCasesRequest()).map { "\($0)" }
            shown += try await collect(ops, Console.listInbox, ListInboxRequest()).map { "\($0)" }
            shown.append("\(events)")
            for text in shown { for secret in secrets { #expect(!text.contains(secret), "\(node): \(secret) shown") } }
            var search = SearchRequest()
            search.query = "Person"
            let searchRefused = await #expect(throws: RPCError.self) {
                _ = try await collect(ops, Console.search, search)
            }
            #expect(searchRefused?.code == .permissionDenied)
            #expect(try await ops.unary(Console.getStatus, StatusRequest()).nodeID == node)
            let shownByCLI = try federation.cli(["case", "show", caseID, "--json"], node: node, as: "op")
            #expect(shownByCLI.status == 0, "\(shownByCLI.stderr)")
            for secret in secrets { #expect(!shownByCLI.stdout.contains(secret), "\(node) cli: \(secret)") }
        }
        federation.stopAll()
    }

    @Test("ten wrong passwords lock an account; disabled accounts and ended sessions are refused")
    func refusals() async throws {
        let federation = try TestFederation(nodes: ["ncct"], staff: ["session_idle_s": 2, "lockout_failures": 10])
        try await federation.start("ncct")
        let opsToken = federation.operators["ncct"]!.token
        let ops = federation.console("ncct", token: opsToken)
        defer { ops.close() }
        let officer = try await AccountSetup.add(
            "kim.lee",
            name: "Kim Lee",
            role: .officer,
            password: "a long password 1",
            through: ops,
            by: opsToken
        )
        let anonymous = federation.console("ncct", token: "")
        defer { anonymous.close() }

        // Without a session, or with a made-up one: UNAUTHENTICATED, on every staff call.
        for token in ["", "not-a-session"] {
            let stranger = federation.console("ncct", token: token)
            defer { stranger.close() }
            let refused = await #expect(throws: RPCError.self) {
                _ = try await collect(stranger, Console.listCases, ListCasesRequest())
            }
            #expect(refused?.code == .unauthenticated)
        }
        // The first-operator bootstrap is closed once accounts exist.
        var sneaky = AddStaffRequest()
        sneaky.login = "mallory"
        sneaky.displayName = "Mallory"
        sneaky.role = .operator
        let bootstrap = await #expect(throws: RPCError.self) { _ = try await anonymous.unary(Console.addStaff, sneaky) }
        #expect(bootstrap?.code == .unauthenticated)

        // The session ends after the configured idle time.
        try await Task.sleep(for: .seconds(3))
        let idle = await #expect(throws: RPCError.self) {
            _ = try await federation.console("ncct", token: officer.token).unary(Console.getStatus, StatusRequest())
        }
        #expect(idle?.code == .unauthenticated && idle?.message.contains("idle") == true, "\(String(describing: idle))")

        // Ten wrong passwords lock the account, even against the right password afterwards.
        for _ in 0..<10 {
            var wrong = LoginRequest()
            wrong.login = "kim.lee"
            wrong.password = "not the password"
            wrong.code = "123456"
            await #expect(throws: RPCError.self) { _ = try await anonymous.unary(Console.login, wrong) }
        }
        let locked = await #expect(throws: RPCError.self) { _ = try await officer.login(through: anonymous) }
        #expect(locked?.message.contains("locked") == true, "\(String(describing: locked))")
        let ops2 = federation.console(
            "ncct",
            token: try await federation.operators["ncct"]!.login(through: anonymous).token
        )
        defer { ops2.close() }
        #expect(
            try await collect(ops2, Console.listStaff, ListStaffRequest()).first { $0.login == "kim.lee" }?
                .lockedUntilMs ?? 0 > 0
        )

        // A recovery code signs in once, instead of the phone's code; then it is spent.
        let second = try await AccountSetup.add(
            "lee.two",
            name: "Lee Two",
            role: .officer,
            password: "another long pw",
            through: ops2,
            by: federation.operators["ncct"]!.token
        )
        var recovery = LoginRequest()
        recovery.login = "lee.two"
        recovery.password = "another long pw"
        recovery.code = second.recoveryCodes[0].lowercased()
        let recovered = try await anonymous.unary(Console.login, recovery)
        #expect(recovered.recoveryCodesLeft == 9)
        let spent = await #expect(throws: RPCError.self) { _ = try await anonymous.unary(Console.login, recovery) }
        #expect(spent?.code == .unauthenticated)
        // Disabled: its live session stops working at once, and it cannot sign in again.
        var disableSecond = ChangeStaffRequest()
        disableSecond.login = "lee.two"
        disableSecond.change = .disable
        _ = try await ops2.unary(Console.changeStaff, disableSecond)
        let stale = await #expect(throws: RPCError.self) {
            _ = try await federation.console("ncct", token: recovered.token).unary(Console.getStatus, StatusRequest())
        }
        #expect(stale?.code == .unauthenticated)
        recovery.code = second.recoveryCodes[1]
        let refusedLogin = await #expect(throws: RPCError.self) {
            _ = try await anonymous.unary(Console.login, recovery)
        }
        #expect(refusedLogin?.code == .permissionDenied && refusedLogin?.message.contains("disabled") == true)

        // A disabled account cannot sign in; the audit log has each failure and the lock.
        var disable = ChangeStaffRequest()
        disable.login = "kim.lee"
        disable.change = .disable
        _ = try await ops2.unary(Console.changeStaff, disable)
        let reset = try await {
            var r = ResetStaffRequest(); r.login = "kim.lee"; return try await ops2.unary(Console.resetStaff, r)
        }()
        #expect(!reset.enrolmentCode.isEmpty && reset.account?.enrolled == false)
        let audit = try await collect(
            ops2,
            Console.listAudit,
            {
                var r = ListAuditRequest(); r.limit = 100; return r
            }()
        )
        #expect(
            audit.filter { $0.event == "staff.login" && $0.subject == "kim.lee" && $0.outcome == "refused" }.count >= 9
        )
        #expect(audit.contains { $0.event == "staff.login" && $0.outcome == "locked" })
        #expect(audit.contains { $0.event == "staff.changed" && $0.detail == "disabled" && $0.actor == "staff:op" })
        federation.stopAll()
    }

    @Test("the casebridge command signs in with password and code, and refuses without a session (exit 4)")
    func commandLineSignIn() async throws {
        let federation = try TestFederation(nodes: ["ncct"])
        try await federation.start("ncct")
        let added = try federation.cli(
            ["staff", "add", "nita.ros", "--name", "Ros Nita", "--role", "officer", "--json"],
            node: "ncct",
            as: "op"
        )
        #expect(added.status == 0, "\(added.stderr)")
        let enrolment = try #require(
            try JSONSerialization.jsonObject(with: Data(added.stdout.utf8)) as? [String: Any]
        )
        let code = try #require(enrolment["enrolment_code"] as? String)

        // Enrolment in two steps as the command runs it: the secret first, then password and code.
        let fresh = federation.cliEnvironment(as: "nita")
        let begin = try run(
            casebridgeBinary,
            ["enrol", "nita.ros", "--json", "--config", federation.configPath("ncct").path],
            environment: fresh,
            input: "\(code)\n"
        )
        #expect(begin.status != 0)  // no password given: nothing changes, the secret stays for the next try
        let secretText = try #require(
            (try JSONSerialization.jsonObject(with: Data(begin.stdout.split(separator: "\n")[0].utf8))
                as? [String: Any])?["secret"] as? String
        )
        let secret = try #require(Base32.decode(secretText))
        let now = TOTP.step(atMs: Int64(Date().timeIntervalSince1970 * 1000))
        let enrolled = try run(
            casebridgeBinary,
            ["enrol", "nita.ros", "--config", federation.configPath("ncct").path],
            environment: fresh,
            input: "\(code)\nnita password 123\n\(TOTP.code(secret: secret, step: now))\n"
        )
        #expect(enrolled.status == 0 && enrolled.stdout.contains("recovery codes"), "\(enrolled.stderr)")
        let who = try run(
            casebridgeBinary,
            ["whoami", "--config", federation.configPath("ncct").path],
            environment: fresh
        )
        #expect(who.stdout.contains("Ros Nita (nita.ros), officer at ncct"), "\(who.stdout) \(who.stderr)")
        let sessionFile = federation.folder.appendingPathComponent("sessions/nita/ncct.session").path
        let mode = try FileManager.default.attributesOfItem(atPath: sessionFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // Signed out: every staff command fails with one line and exit 4.
        #expect(
            try run(
                casebridgeBinary,
                ["logout", "--config", federation.configPath("ncct").path],
                environment: fresh
            ).status == 0
        )
        let refused = try run(
            casebridgeBinary,
            ["inbox", "--config", federation.configPath("ncct").path],
            environment: fresh
        )
        #expect(refused.status == 4 && refused.stderr.contains("casebridge login"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").count == 1)

        // And in again with password and the next code.
        let login = try run(
            casebridgeBinary,
            ["login", "nita.ros", "--config", federation.configPath("ncct").path],
            environment: fresh,
            input: "nita password 123\n\(TOTP.code(secret: secret, step: now + 1))\n"
        )
        #expect(login.status == 0 && login.stdout.contains("Signed in to ncct as Ros Nita"), "\(login.stderr)")
        let listed = try federation.cli(["staff", "list"], node: "ncct", as: "op")
        #expect(listed.stdout.contains("nita.ros") && listed.stdout.contains("active"), "\(listed.stdout)")
        // The audit log, filtered as an auditor or operator would look for one person's sign-ins.
        let signIns = try federation.cli(
            ["audit", "list", "--event", "staff.log", "--actor", "staff:nita.ros", "--json"],
            node: "ncct",
            as: "op"
        )
        let events = signIns.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(events.count >= 3, "\(signIns.stdout) \(signIns.stderr)")  // login at enrolment, logout, login
        #expect(events.allSatisfy { ($0["actor"] as? String) == "staff:nita.ros" })
        #expect(Set(events.compactMap { $0["event"] as? String }) == ["staff.login", "staff.logout"])
        federation.stopAll()
    }

    @Test("TOTP codes match RFC 6238's test vectors; base32 round-trips; Argon2id hashes verify")
    func codesAndHashes() throws {
        let secret = Array("12345678901234567890".utf8)
        for (seconds, code) in [
            (59, "287082"), (1_111_111_109, "081804"), (1_111_111_111, "050471"), (1_234_567_890, "005924"),
            (2_000_000_000, "279037"), (20_000_000_000, "353130"),
        ] as [(Int64, String)] {
            #expect(TOTP.code(secret: secret, step: TOTP.step(atMs: seconds * 1000)) == code, "\(seconds)")
        }
        #expect(TOTP.matchingStep("287082", secret: secret, atMs: 59_000, lastUsed: 0) == 1)
        #expect(TOTP.matchingStep("287082", secret: secret, atMs: 59_000, lastUsed: 1) == nil)
        #expect(Base32.encode(Array("foobar".utf8)) == "MZXW6YTBOI")
        #expect(Base32.decode("mzxw 6ytb oi") == Array("foobar".utf8))
        let uri = TOTP.uri(secret: secret, issuer: "CaseBridge ncct", account: "dara.sok")
        #expect(uri.hasPrefix("otpauth://totp/CaseBridge%20ncct%3Adara.sok?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))
    }
}

private func collect<Request, Response>(
    _ channel: RPCChannel,
    _ method: RPCMethod<Request, Response>,
    _ request: Request
) async throws -> [Response] {
    var all: [Response] = []
    for try await item in channel.streaming(method, [request], timeout: .seconds(30)) { all.append(item) }
    return all
}

/// What stands where an operator's view withheld a text (PersonalData.withheld in the node).
enum PersonalDataMark {
    static let withheld = "(withheld)"
}

/// The events a watch after the first delivers within a second.
private func firstEvents(_ channel: RPCChannel) async throws -> [CaseEvent] {
    var request = WatchCasesRequest()
    request.afterEventID = 1
    var events: [CaseEvent] = []
    let deadline = ContinuousClock.now.advanced(by: .seconds(1))
    do {
        for try await event in channel.streaming(Console.watch, [request], timeout: .seconds(1)) {
            events.append(event)
            if ContinuousClock.now > deadline { break }
        }
    } catch let error as RPCError where error.code == .deadlineExceeded {}
    return events
}
