import CaseBridgeProto
import CaseBridgeTLS
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport
@testable import CaseBridgeNode

/// The lifecycle and its rules, without any I/O.
@Suite("Case lifecycle")
struct LifecycleTests {
    let received = Lifecycle.CaseState(
        status: .received,
        step: .unspecified,
        persons: [PersonState.pending("P1", atMs: 0), PersonState.pending("P2", atMs: 0)]
    )

    func status(_ to: CaseStatus) -> CaseUpdate.Change {
        var change = StatusChange()
        change.toStatus = to
        return .statusChange(change)
    }

    func outcomes(_ pairs: [(String, PersonStatus)]) -> CaseUpdate.Change {
        var outcomes = PersonOutcomes()
        outcomes.outcomes = pairs.map { ref, status in
            var outcome = PersonOutcome()
            outcome.personRef = ref
            outcome.status = status
            return outcome
        }
        return .personOutcomes(outcomes)
    }

    func code(_ body: () throws -> Void) -> RPCCode? {
        do { try body(); return nil } catch let error as RPCError { return error.code } catch { return .unknown }
    }

    @Test("terminal statuses lead only to entered_in_error; every status in the table is reachable from received")
    func table() {
        for status in [CaseStatus.completed, .failed, .declined, .withdrawn, .enteredInError] {
            #expect(Lifecycle.isTerminal(status))
            #expect(Lifecycle.caseTransitions[status, default: []].isSubset(of: [.enteredInError]))
        }
        var reached: Set<CaseStatus> = [.received]
        var frontier: [CaseStatus] = [.received]
        while let next = frontier.popLast() {
            for to in Lifecycle.caseTransitions[next] ?? [] where reached.insert(to).inserted { frontier.append(to) }
        }
        #expect(reached == Set(Lifecycle.caseTransitions.keys).subtracting([.submitted]))
    }

    @Test("the same status again is a no-op; an illegal jump is FAILED_PRECONDITION")
    func transitions() throws {
        #expect(try Lifecycle.checkTransition(from: .acknowledged, to: .acknowledged) == false)
        #expect(try Lifecycle.checkTransition(from: .received, to: .acknowledged) == true)
        #expect(code { _ = try Lifecycle.checkTransition(from: .received, to: .completed) } == .failedPrecondition)
        #expect(code { _ = try Lifecycle.checkTransition(from: .completed, to: .inProgress) } == .failedPrecondition)
    }

    @Test("NCCT acknowledges, steps and records outcomes; a step moves an acknowledged case to in progress")
    func ncctWork() throws {
        // Outcomes wait for an acknowledgement: nobody has taken the case yet.
        #expect(
            code { _ = try Lifecycle.apply(outcomes([("P1", .rescued)]), by: .ncct, to: received, atMs: 1) }
                == .failedPrecondition
        )
        let acknowledged = try Lifecycle.apply(status(.acknowledged), by: .ncct, to: received, atMs: 1)
        #expect(acknowledged.status == .acknowledged)
        #expect(Lifecycle.isNoOp(status(.acknowledged), on: acknowledged))
        #expect(!Lifecycle.isNoOp(status(.onHold), on: acknowledged))
        var step = StepChange()
        step.step = .locating
        let locating = try Lifecycle.apply(.stepChange(step), by: .ncct, to: acknowledged, atMs: 2)
        #expect(locating.status == .inProgress)
        #expect(locating.step == .locating)
        let mixed = try Lifecycle.apply(
            outcomes([("P1", .rescued), ("P2", .notFound)]),
            by: .ncct,
            to: locating,
            atMs: 3
        )
        #expect(mixed.persons.map(\.status) == [.rescued, .notFound])
        #expect(mixed.persons.map(\.updatedAtMs) == [3, 3])
        #expect(
            Lifecycle.outcomeCounts(mixed.persons).map { "\($0.status)=\($0.count)" } == ["rescued=1", "not_found=1"]
        )
        // Per person: rescued cannot go back to pending, and an unknown person is NOT_FOUND.
        #expect(
            code { _ = try Lifecycle.apply(outcomes([("P1", .pending)]), by: .ncct, to: mixed, atMs: 4) }
                == .failedPrecondition
        )
        #expect(
            code { _ = try Lifecycle.apply(outcomes([("P9", .rescued)]), by: .ncct, to: mixed, atMs: 4) } == .notFound
        )
        #expect(
            code {
                _ = try Lifecycle.apply(
                    outcomes([("P1", .sheltered), ("P1", .sheltered)]),
                    by: .ncct,
                    to: mixed,
                    atMs: 4
                )
            } == .invalidArgument
        )
        // A completed rescue still records the repatriation that follows it.
        let completed = try Lifecycle.apply(status(.completed), by: .ncct, to: mixed, atMs: 5)
        let home = try Lifecycle.apply(outcomes([("P1", .repatriated)]), by: .ncct, to: completed, atMs: 6)
        #expect(home.status == .completed)
        #expect(home.persons.map(\.status) == [.repatriated, .notFound])
        // ...and either side may still say it should never have existed.
        #expect(try Lifecycle.apply(status(.enteredInError), by: .ncct, to: home, atMs: 7).status == .enteredInError)
        #expect(
            try Lifecycle.apply(status(.enteredInError), by: .requestingEmbassy, to: home, atMs: 7).status
                == .enteredInError
        )
    }

    // Regression: NCCT's acknowledgement reached the embassy before the embassy had recorded NCCT's
    // receipt for the request, and was rejected as "submitted → acknowledged" (seen in the benchmarks).
    @Test("an update from NCCT on a case still marked submitted counts as received first")
    func ncctUpdateBeforeReceipt() throws {
        var submitted = received
        submitted.status = .submitted
        #expect(try Lifecycle.apply(status(.acknowledged), by: .ncct, to: submitted, atMs: 1).status == .acknowledged)
        var note = Note()
        note.text = "on it"
        #expect(try Lifecycle.apply(.note(note), by: .ncct, to: submitted, atMs: 1).status == .received)
        #expect(
            try Lifecycle.apply(.withdrawal(Withdrawal()), by: .requestingEmbassy, to: submitted, atMs: 1).status
                == .withdrawn
        )
    }

    @Test("only the requesting embassy withdraws or adds information; only NCCT changes status")
    func roles() throws {
        #expect(
            code { _ = try Lifecycle.apply(status(.acknowledged), by: .requestingEmbassy, to: received, atMs: 1) }
                == .permissionDenied
        )
        #expect(
            code { _ = try Lifecycle.apply(status(.completed), by: .requestingEmbassy, to: received, atMs: 1) }
                == .permissionDenied
        )
        #expect(
            code { _ = try Lifecycle.apply(.withdrawal(Withdrawal()), by: .ncct, to: received, atMs: 1) }
                == .permissionDenied
        )
        #expect(
            try Lifecycle.apply(.withdrawal(Withdrawal()), by: .requestingEmbassy, to: received, atMs: 1).status
                == .withdrawn
        )
        var question = InformationRequest()
        question.questions = ["Which floor?"]
        let asked = try Lifecycle.apply(.informationRequest(question), by: .ncct, to: received, atMs: 1)
        #expect(asked.status == .infoRequested)
        var answer = InformationProvided()
        answer.text = "Fourth floor"
        var added = Person()
        added.personRef = "P3"
        answer.addedPersons = [added]
        let answered = try Lifecycle.apply(.informationProvided(answer), by: .requestingEmbassy, to: asked, atMs: 2)
        #expect(answered.status == .acknowledged)
        #expect(answered.persons.map(\.personRef) == ["P1", "P2", "P3"])
        // Notes are allowed from both sides, even on a closed case.
        var note = Note()
        note.text = "closing remark"
        let withdrawn = try Lifecycle.apply(.withdrawal(Withdrawal()), by: .requestingEmbassy, to: received, atMs: 1)
        #expect(try Lifecycle.apply(.note(note), by: .ncct, to: withdrawn, atMs: 2) == withdrawn)
        #expect(
            code { _ = try Lifecycle.apply(outcomes([("P1", .rescued)]), by: .ncct, to: withdrawn, atMs: 2) }
                == .failedPrecondition
        )
    }
}

/// The published lifecycle: every cell of the table against `Lifecycle.apply`, and the copies in
/// README.md and case.proto against the table.
@Suite("Published lifecycle")
struct PublishedLifecycleTests {
    /// A change of the rule's kind whose content is valid, so only status and role decide.
    func sample(_ kind: String) -> CaseUpdate.Change {
        switch kind {
        case "step_change": var c = StepChange(); c.step = .locating; return .stepChange(c)
        case "person_outcomes":
            var outcome = PersonOutcome(); outcome.personRef = "P1"; outcome.status = .located
            var c = PersonOutcomes(); c.outcomes = [outcome]; return .personOutcomes(c)
        case "note": return .note(Note.with("a note"))
        case "information_request":
            var c = InformationRequest(); c.questions = ["where?"]; return .informationRequest(c)
        case "information_provided": var c = InformationProvided(); c.text = "here"; return .informationProvided(c)
        case "withdrawal": return .withdrawal(Withdrawal())
        case "attachment":
            let data: [UInt8] = Array("%PDF-1.4 a scan".utf8)
            var c = Attachment(); c.contentType = "application/pdf"; c.fileName = "scan.pdf"
            c.data = data; c.sha256 = Digest.sha256Hex(data); return .attachment(c)
        default: Issue.record("no sample for \(kind)"); return .note(Note.with("?"))
        }
    }

    func state(_ status: CaseStatus) -> Lifecycle.CaseState {
        Lifecycle.CaseState(status: status, step: .unspecified, persons: [PersonState.pending("P1", atMs: 0)])
    }

    @Test("every change in every status, by either side, does what the published table says")
    func tableMatchesApply() throws {
        let statuses = Array(Lifecycle.caseTransitions.keys)
        for rule in Lifecycle.changeRules where rule.change != "status_change" {
            for actor in [Lifecycle.Actor.ncct, .requestingEmbassy] {
                // From NCCT, a case still `submitted` counts as received first (the table says so in words).
                for status in statuses where !(actor == .ncct && status == .submitted) {
                    let result = Result {
                        try Lifecycle.apply(sample(rule.change), by: actor, to: state(status), atMs: 1)
                    }
                    switch result {
                    case .success(let next):
                        #expect(
                            rule.by.contains(actor) && rule.takenIn.contains(status),
                            "\(rule.change) by \(actor) in \(status)"
                        )
                        #expect(next.status == rule.moves[status] ?? status, "\(rule.change) in \(status)")
                    case .failure(let error as RPCError):
                        #expect(
                            !rule.by.contains(actor) || !rule.takenIn.contains(status),
                            "\(rule.change) in \(status): \(error)"
                        )
                        #expect(
                            error.code == (rule.by.contains(actor) ? .failedPrecondition : .permissionDenied),
                            "\(error)"
                        )
                    case .failure(let error): Issue.record("\(error)")
                    }
                }
            }
        }
        // Status changes: exactly the case table; the embassy only to entered_in_error; the same status is a no-op.
        for from in statuses where from != .submitted {
            for to in statuses where ![.submitted, .received, .withdrawn].contains(to) {
                var change = StatusChange()
                change.toStatus = to
                for actor in [Lifecycle.Actor.ncct, .requestingEmbassy] {
                    let allowed =
                        (from == to || Lifecycle.caseTransitions[from, default: []].contains(to))
                        && (actor == .ncct || to == .enteredInError)
                    let next = try? Lifecycle.apply(.statusChange(change), by: actor, to: state(from), atMs: 1)
                    #expect((next != nil) == allowed, "\(actor): \(from) → \(to)")
                    if let next { #expect(next.status == to) }
                }
            }
        }
    }

    @Test("README.md and case.proto carry the table as the code has it (scripts/generate-lifecycle)")
    func copiesAreFresh() throws {
        for (file, prefix, asComment) in [("README.md", "", false), ("proto/casebridge/v1/case.proto", "// ", true)] {
            let text = try String(contentsOf: repositoryRoot.appendingPathComponent(file), encoding: .utf8)
            let expected =
                prefix + Lifecycle.tableStart + "\n" + Lifecycle.contractText(asProtoComment: asComment)
                + prefix + Lifecycle.tableEnd
            #expect(text.contains(expected), "\(file) is stale: run scripts/generate-lifecycle and commit the result")
        }
    }
}

@Suite("Configuration files")
struct ConfigurationTests {
    func write(_ json: String, _ name: String, in folder: URL) throws -> String {
        let url = folder.appendingPathComponent(name)
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func problem(_ body: () throws -> Void) -> String {
        do { try body(); return "accepted" } catch { return "\(error)" }
    }

    @Test("directory errors name the file, the field and what is wrong")
    func directory() throws {
        let folder = try makeTemporaryFolder("config")
        defer { try? FileManager.default.removeItem(at: folder) }
        let bad = try write(
            #"{"trust_domain": "t", "nodes": [{"id": "ncct", "role": "ncct", "represents": "KH", "endpoint": "h:1"},"#
                + #"{"id": "embassy-id", "role": "consulate", "represents": "ID", "endpoint": "h:2"}]}"#,
            "d1.json",
            in: folder
        )
        #expect(
            problem { _ = try Directory.load(bad) }
                == "\(bad): nodes[1].role: must be \"ncct\" or \"embassy\", not \"consulate\""
        )
        let noNCCT = try write(
            #"{"trust_domain": "t", "nodes": [{"id": "e", "role": "embassy", "represents": "ID", "endpoint": "h:2"}]}"#,
            "d2.json",
            in: folder
        )
        #expect(
            problem { _ = try Directory.load(noNCCT) }.hasSuffix(
                "nodes: must list exactly one node with role \"ncct\" (found 0)"
            )
        )
        let country = try write(
            #"{"trust_domain": "t", "nodes": [{"id": "ncct", "role": "ncct", "represents": "Cambodia", "#
                + #""endpoint": "h:1"}]}"#,
            "d3.json",
            in: folder
        )
        #expect(
            problem { _ = try Directory.load(country) }.hasSuffix(
                "nodes[0].represents: must be an ISO 3166-1 alpha-2 code such as \"ID\""
            )
        )
        let notJSON = try write("{nodes: ", "d4.json", in: folder)
        #expect(problem { _ = try Directory.load(notJSON) }.hasPrefix("\(notJSON): not valid JSON"))
    }

    @Test("node configuration errors name the field; missing files are caught at start")
    func node() throws {
        let folder = try makeTemporaryFolder("config")
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = try write(
            #"{"node_id": "ncct", "listen": "127.0.0.1:7443", "certificate": "nope.pem"}"#,
            "n1.json",
            in: folder
        )
        #expect(
            problem { _ = try NodeConfiguration.load(missing) }
                == "\(missing): certificate: no file at \(folder.path)/nope.pem"
        )
        let listen = try write(#"{"node_id": "ncct", "listen": "everywhere"}"#, "n2.json", in: folder)
        #expect(
            problem { _ = try NodeConfiguration.load(listen) }
                == "\(listen): listen: must be host:port, not \"everywhere\""
        )
        // Every limit is checked against its range.
        let certs = TestFederation.certs.path
        let limit = try write(
            #"{"node_id": "ncct", "listen": "127.0.0.1:1", "certificate": "\#(certs)/nodes/ncct.pem", "#
                + #""private_key": "\#(certs)/nodes/ncct.key", "ca": "\#(certs)/ca.pem", "#
                + #""directory": "\#(certs)/ca.pem", "crl": "none", "#
                + #""data_folder": "d", "console_socket": "s", "limits": {"stream_reset_burst": 0}}"#,
            "n3.json",
            in: folder
        )
        #expect(
            problem { _ = try NodeConfiguration.load(limit) }
                == "\(limit): limits.stream_reset_burst: must be a whole number from 1 to 100000"
        )
        // A key nobody reads is a typo (here one that would have turned revocation off): refused, with a hint.
        let base =
            #"{"node_id": "ncct", "listen": "127.0.0.1:1", "certificate": "\#(certs)/nodes/ncct.pem", "#
            + #""private_key": "\#(certs)/nodes/ncct.key", "ca": "\#(certs)/ca.pem", "#
            + #""directory": "\#(certs)/ca.pem", "data_folder": "d", "console_socket": "s", "#
        let typo = try write(base + #""crll": "\#(certs)/crl.pem"}"#, "n4.json", in: folder)
        #expect(
            problem { _ = try NodeConfiguration.load(typo) }.hasPrefix(
                "\(typo): crll: unknown key (did you mean \"crl\"?)"
            )
        )
        // Revocation is never off by accident: without "crl", the node says what to write.
        let noCRL = try write(base + #""data_key_file": "k"}"#, "n6.json", in: folder)
        #expect(
            problem { _ = try NodeConfiguration.load(noCRL) }
                == "\(noCRL): crl: missing: give the federation CA's CRL file, or \"none\" to run without "
                + "revocation checks"
        )
        let nested = try write(base + #""crl": "none", "limits": {"max_conections": 10}}"#, "n5.json", in: folder)
        #expect(
            problem { _ = try NodeConfiguration.load(nested) }
                .hasPrefix("\(nested): limits.max_conections: unknown key (did you mean \"max_connections\"?)")
        )
        let directory = try write(
            #"{"trust_domain": "t", "nodes": [{"id": "ncct", "role": "ncct", "represents": "KH", "#
                + #""endpoint": "h:1", "endpoit": "h:2"}]}"#,
            "d9.json",
            in: folder
        )
        #expect(problem { _ = try Directory.load(directory) }.hasPrefix("\(directory): nodes[0].endpoit: unknown key"))
    }
}
