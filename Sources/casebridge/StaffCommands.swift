import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Files an intervention request with NCCT (embassy nodes).",
        discussion: """
            One person, asked for one question at a time, or a batch from a CSV or JSON file (or \
            standard input). Personal data is never taken from arguments: the process list and \
            the shell history would keep it. The request is stored at this node at once and \
            delivered to NCCT in the background; `casebridge case show ID` tells when NCCT has \
            received it.

            CSV columns (header required; full_name required): person_ref, full_name, native_name, \
            other_names, nationality, date_of_birth, sex, document_number, document_country, \
            document_withheld, phone, languages, minor, needs, description. Lists use ';'.

            Examples:
              casebridge submit --kind rescue --urgency immediate \\
                  --province "Preah Sihanouk" --site "Compound 7"
              (it asks for the name, nationality, date of birth, sex, phone, document)
              casebridge submit --kind repatriation --persons batch.csv \\
                  --province "Preah Sihanouk" --reference IDN-2026-0412
            """
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "rescue, welfare_check, repatriation or trace.") var kind: String
    @Option(help: "routine, urgent or immediate.") var urgency: String = "urgent"
    @Option(help: "A CSV or JSON file of persons (- for standard input). Without it, you are asked for one person.")
    var persons: String?
    // Personal data never goes in arguments: the process list and the shell history would keep it.
    // These are declared only to say so, instead of "unknown option".
    @Option(help: .hidden) var name: String?
    @Option(help: .hidden) var nationality: String?
    @Option(help: .hidden) var dob: String?
    @Option(help: .hidden) var sex: String?
    @Option(help: .hidden) var phone: String?
    @Option(help: .hidden) var passport: String?
    @Option(help: "Province where the persons are held.") var province: String?
    @Option(help: "District.") var district: String?
    @Option(help: "Site or compound name.") var site: String?
    @Option(help: "What is known, in prose.") var summary: String = ""
    @Option(help: "Your own file reference.") var reference: String = ""
    @Option(
        help: "Comma-separated indicators: documents_withheld, debt_bondage, physical_violence, detention, threats, ..."
    )
    var indicators: String = ""
    @Flag(help: "A conformance test case for NCCT's `casebridge conformance --as ncct`; kept out of staff views.")
    var test = false

    func run() async throws {
        var request = InterventionRequest()
        request.test = test
        let kind: RequestKind = try choice(kind, for: "--kind")
        let urgency: Urgency = try choice(urgency, for: "--urgency")
        request.kind = kind
        request.urgency = urgency
        let given = [
            ("--name", name), ("--nationality", nationality), ("--dob", dob), ("--sex", sex), ("--phone", phone),
            ("--passport", passport),
        ].filter { $0.1 != nil }.map(\.0)
        if let flag = given.first {
            throw fail(
                "\(flag) would put personal data in the process list and the shell history; give persons with "
                    + "--persons FILE or --persons - (standard input), or leave it out to be asked",
                code: Exit.badInput
            )
        }
        if let persons {
            Output.progress("reading \(persons)")
            request.persons = try PersonsFile.persons(persons)
            Output.progress("\(request.persons.count) persons read and checked")
        } else {
            request.persons = [try PersonPrompt.ask()]
        }
        var location = Location()
        location.province = province ?? ""
        location.district = district ?? ""
        location.siteName = site ?? ""
        request.location = location
        request.summary = summary
        request.originReference = reference
        for name in indicators.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
        where !name.isEmpty {
            let indicator: ControlIndicator = try choice(name, for: "--indicators")
            request.indicators.append(indicator)
        }
        let console = try node.console()
        let receipt = try await console.call(Console.submit, request)
        if node.json {
            Output.json(ProtoJSON.object(receipt))
        } else {
            let what = test ? "test case" : "case"
            print(
                "Filed \(what) \(receipt.caseID) "
                    + "(\(request.persons.count) person\(request.persons.count == 1 ? "" : "s")); "
                    + "delivering to NCCT."
            )
            print("Follow it with: casebridge case show \(receipt.caseID)")
        }
    }
}

struct InboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbox",
        abstract: "Lists what this node received, unread first.",
        discussion: """
            Examples:
              casebridge inbox
              casebridge inbox --unread
              casebridge inbox --page 2
              casebridge inbox --mark-read 12 13 20-25
              casebridge inbox --mark-read all
            """
    )
    @OptionGroup var node: NodeOptions
    @Flag(help: "Only entries you have not read.") var unread = false
    @Option(help: "Entries per page (1 to 10000).") var limit: Int = 50
    @Option(help: "Which page (1 is the first).") var page: Int = 1
    @Option(
        name: .customLong("mark-read"),
        parsing: .upToNextOption,
        help: "Mark entries read: numbers (12 13), ranges (12-20), or all."
    ) var markRead: [String] = []
    @Flag(help: "Whole case ids and every column in full, however wide.") var wide = false

    func run() async throws {
        let console = try node.console()
        if !markRead.isEmpty {
            var request = MarkReadRequest()
            // "all" is every entry, however many: the node marks them in one go (no list of ids).
            request.all = markRead.map { $0.lowercased() } == ["all"]
            if !request.all { request.entryIDs = try entries(markRead) }
            let reply = try await console.call(Console.markRead, request)
            if node.json { Output.json(ProtoJSON.object(reply)); return }
            print(
                request.all
                    ? "Marked \(reply.marked) entries read: the whole inbox is read."
                    : "Marked \(reply.marked) of \(request.entryIDs.count) entries read."
            )
            return
        }
        var request = ListInboxRequest()
        request.unreadOnly = unread
        request.limit = try listLimit(limit)
        guard page >= 1, (page - 1) * limit <= 100_000 else {
            throw fail("--page must be from 1 to \(100_000 / limit + 1) at --limit \(limit)", code: Exit.badInput)
        }
        request.offset = UInt32((page - 1) * limit)
        let entries = try await console.stream(Console.listInbox, request)
        let empty = unread ? "No unread entries." : "The inbox is empty."
        if Output.printedAsJSONOrEmpty(entries, json: node.json, empty: empty) { return }
        // WHAT is the message itself (a request, a question, outcomes); NOW is where the case stands today.
        Output.table(
            ["#", "RECEIVED", "FROM", "CASE", "WHAT", "NOW", "READ"],
            entries.map { entry in
                let what =
                    entry.kind == .request
                    ? "request: \(entry.summary?.kind.description ?? "?"), \(entry.summary?.personCount ?? 0) persons"
                    : (entry.refusal.isEmpty ? "" : "REFUSED ") + (entry.update.map(describe) ?? "update")
                return [
                    String(entry.entryID), Output.shortTime(entry.receivedAtMs), entry.fromNode,
                    Output.shortID(entry.caseID), what, entry.summary?.status.description ?? "-",
                    entry.read ? "yes" : entry.readBy.isEmpty ? "NEW" : "NEW (read by \(entry.readBy))",
                ]
            },
            flexible: ["WHAT", "READ"],
            wide: wide
        )
        let first = Int(request.offset) + 1, last = Int(request.offset) + entries.count
        print("Entries \(first)–\(last), unread first\(entries.count == limit ? "; next: --page \(page + 1)" : "")")
    }
}

struct CaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "case",
        abstract: "Shows one case, or lists cases.",
        subcommands: [ShowCase.self, ListCases.self, ProofCase.self]
    )
}

struct ShowCase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Status, steps, each person's outcome, history, and the delivery of each message.",
        discussion: "Example:\n  casebridge case show 7d3f2c4e-0b1a-4c5d-9e8f-112233445566"
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Flag(help: "List every person (default: the counts, and the first 20).") var allPersons = false
    @Flag(help: "Every column in full, however wide.") var wide = false

    func run() async throws {
        let console = try node.console()
        var request = GetCaseRequest()
        request.caseID = try await console.resolveCase(caseID)
        let view = try await console.call(Console.getCase, request)
        if node.json { Output.json(ProtoJSON.object(view)); return }
        let r = view.request ?? InterventionRequest()
        let reference = r.originReference.isEmpty ? "" : " · ref \(r.originReference)"
        print("Case \(view.caseID)\(reference)")
        print(
            "Status: \(view.status)\(view.step == .unspecified ? "" : " · step \(view.step)")   "
                + "updated \(Output.time(view.updatedAtMs))"
        )
        var deadline = ListDeadlinesRequest()
        deadline.caseID = view.caseID
        if let running = try await console.stream(Console.listDeadlines, deadline).first?.deadline {
            let reason = running.breachReason.isEmpty ? "" : " — reason: \(running.breachReason)"
            print(
                "Deadline: \(running.clock) by \(running.waitingOn), due \(Output.time(running.dueAtMs)) — "
                    + Output.deadlineLevel(running.level) + reason
            )
        }
        if view.personalDataPurgedAtMs > 0 {
            // Retention ended: the request and the persons' details are gone; what happened stays.
            print("\nPersonal data destroyed \(Output.time(view.personalDataPurgedAtMs)) at the end of its retention.")
            print("Persons: \(view.persons.count) — \(Output.counts(view.outcomeCounts))")
        } else {
            printRequest(r, from: view.requestingNode)
            printPersons(view, r)
        }
        printQuestions(view.history, caseID: view.caseID)
        print("\nHistory")
        if view.history.isEmpty { print("  (no updates yet)") }
        for update in view.history {
            let author = update.author.isEmpty ? "" : "  — \(update.author)"
            let who = "\(update.actorNode) #\(update.sequence)"
            print("  \(Output.time(update.occurredAtMs))  \(who): \(describe(update))\(author)")
            if case .attachment? = update.change {
                let command = "casebridge attachment \(Output.shortID(view.caseID)) \(update.updateID) --to FILE"
                print("      save it: \(command)")
            }
        }
        if !view.refusedUpdates.isEmpty {
            print("\nRefused here (each took its number; it changed nothing; settle with a note or entered_in_error)")
        }
        for refused in view.refusedUpdates {
            let what = refused.update.map(describe) ?? "sequence skipped by its sender"
            print(
                "  \(Output.time(refused.refusedAtMs))  \(refused.actorNode) #\(refused.sequence): \(what)"
                    + " — \(refused.code): \(refused.reason)"
            )
        }
        print("\nDeliveries from this node (whether the other agency's node has each message, not what it did)")
        if view.deliveries.isEmpty { print("  (none)") }
        for delivery in view.deliveries {
            let attempts = "\(delivery.attempts) attempt\(delivery.attempts == 1 ? "" : "s")"
            var line = "  \(delivery.messageID) → \(delivery.peerNode): \(delivery.state) after \(attempts)"
            if delivery.state == .retryWaiting { line += ", next at \(Output.time(delivery.nextAttemptAtMs))" }
            if !delivery.lastError.isEmpty { line += " (\(delivery.lastError))" }
            print(line)
        }
    }

    /// What was asked and what is known: everything an officer acts on.
    private func printRequest(_ r: InterventionRequest, from node: String) {
        print("\nRequest")
        let filer = r.filedBy.isEmpty ? "" : " by \(r.filedBy)"
        print("  \(r.kind) · \(r.urgency) · from \(node), filed \(Output.time(r.createdAtMs))\(filer)")
        if let place = r.location {
            let parts = [place.siteName, place.address, place.district, place.province].filter { !$0.isEmpty }
            print("  Where:       \(parts.isEmpty ? "-" : parts.joined(separator: ", "))")
            if let point = place.coordinates {
                let accuracy = point.accuracyM > 0 ? " (±\(point.accuracyM) m)" : ""
                print("  Coordinates: \(point.latitude), \(point.longitude)\(accuracy)")
            }
            if !place.detail.isEmpty { print("  Directions:  \(place.detail)") }
        }
        if !r.summary.isEmpty { print("  Summary:     \(r.summary)") }
        if !r.indicators.isEmpty {
            let indicators = r.indicators.map { $0.description.replacingOccurrences(of: "_", with: " ") }
            print("  Indicators:  \(indicators.joined(separator: ", "))")
        }
        if let source = r.source {
            let when = source.receivedAtMs > 0 ? ", \(Output.time(source.receivedAtMs))" : ""
            print("  Source:      \(source.kind)\(source.description.isEmpty ? "" : ": \(source.description)")\(when)")
        }
        let consent = r.consent.map { "\($0.basis)\($0.note.isEmpty ? "" : " (\($0.note))")" } ?? "not stated"
        print("  Consent:     \(consent)")
        if !r.contact.isEmpty { print("  Contact:     \(r.contact)") }
    }

    private func printPersons(_ view: Case, _ r: InterventionRequest) {
        print("\nPersons: \(view.persons.count) — \(Output.counts(view.outcomeCounts))")
        let shown = allPersons ? view.persons : Array(view.persons.prefix(20))
        let details = Dictionary(r.persons.map { ($0.personRef, $0) }, uniquingKeysWith: { first, _ in first })
        let headers = ["REF", "NAME", "NAT", "BORN", "DOCUMENT", "PHONE", "NEEDS", "STATUS", "NOTE"]
        Output.table(
            headers,
            shown.map { state in
                let person = details[state.personRef] ?? Person()
                let document = person.travelDocument.map { "\($0.number)\($0.withheld ? " (withheld)" : "")" } ?? "-"
                let needs = (person.minor ? ["minor"] : []) + person.needs
                func shown(_ text: String) -> String { text.isEmpty ? "-" : text }
                return [
                    state.personRef, shown(person.fullName), shown(person.nationality), shown(person.dateOfBirth),
                    document, shown(person.phone), shown(needs.joined(separator: ", ")), state.status.description,
                    state.note,
                ]
            },
            flexible: ["NOTE", "NEEDS", "DOCUMENT", "NAME"],
            wide: wide
        )
        if shown.count < view.persons.count { print("… \(view.persons.count - shown.count) more (--all-persons)") }
    }

    /// Each request for information with its answer; one still open is the first thing to see.
    private func printQuestions(_ history: [CaseUpdate], caseID: String) {
        var asked: [(question: CaseUpdate, answer: CaseUpdate?)] = []
        for update in history {
            switch update.change {
            case .informationRequest?: asked.append((update, nil))
            case .informationProvided?:
                if let open = asked.lastIndex(where: { $0.answer == nil }) { asked[open].answer = update }
            default: break
            }
        }
        guard !asked.isEmpty else { return }
        print("\nQuestions")
        for (question, answer) in asked {
            guard case .informationRequest(let request)? = question.change else { continue }
            print(
                "  \(answer == nil ? "OPEN" : "answered"): \(request.questions.joined(separator: " / "))"
                    + "  — \(question.actorNode), \(Output.time(question.occurredAtMs))"
            )
            if case .informationProvided(let provided)? = answer?.change {
                let added = provided.addedPersons.isEmpty ? "" : " (+\(provided.addedPersons.count) persons)"
                print("    answer: \(provided.text)\(added)")
            } else {
                print("    answer with: casebridge provide-info \(Output.shortID(caseID)) \"...\"")
            }
        }
    }
}

/// One line per update kind, for people.
func describe(_ update: CaseUpdate) -> String {
    switch update.change {
    case .statusChange(let c)?: "status → \(c.toStatus)\(c.reason.isEmpty ? "" : " (\(c.reason))")"
    case .stepChange(let c)?: "step → \(c.step)"
    case .personOutcomes(let c)?:
        "outcomes for \(c.outcomes.count) person\(c.outcomes.count == 1 ? "" : "s"): "
            + Output.counts(Lifecycle.outcomeCounts(c.outcomes.map(\.status)))
    case .note(let c)?: "note: \(c.text)"
    case .informationRequest(let c)?: "information requested: \(c.questions.joined(separator: " / "))"
    case .informationProvided(let c)?:
        "information provided: \(c.text)\(c.addedPersons.isEmpty ? "" : " (+\(c.addedPersons.count) persons)")"
    case .withdrawal(let c)?: "withdrawn\(c.reason.isEmpty ? "" : ": \(c.reason)")"
    case .attachment(let c)?:
        "attachment: \(c.fileName) (\(c.contentType)\(c.personRef.isEmpty ? "" : ", about \(c.personRef)"))"
            + (c.caption.isEmpty ? "" : " — \(c.caption)")
    case nil: "(unknown change)"
    }
}

struct ListCases: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Lists cases, a page at a time, most recently updated first.",
        discussion: """
            Filters combine; the last line says which cases of how many are shown and how to see the \
            next page.

            Examples:
              casebridge case list
              casebridge case list --status in_progress --status info_requested --page 2
              casebridge case list --urgency immediate --embassy embassy-id
              casebridge case list --quiet-days 7
            """
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "Only cases in this status (repeatable).") var status: [String] = []
    @Option(help: "Only cases at this business step (repeatable).") var step: [String] = []
    @Option(help: "Only requests of this kind (repeatable).") var kind: [String] = []
    @Option(help: "Only requests of this urgency (repeatable).") var urgency: [String] = []
    @Option(help: "Only cases this embassy node opened (NCCT).") var embassy: String?
    @Option(help: "Only open cases with no change for this many days.") var quietDays: Int?
    @Option(help: "Cases per page (1 to 500).") var limit: Int = 50
    @Option(help: "Which page (1 is the first).") var page: Int = 1
    @Flag(help: "Whole case ids and every column in full, however wide.") var wide = false

    func validate() throws {
        guard (1...500).contains(limit) else { throw fail("--limit must be from 1 to 500", code: Exit.badInput) }
        guard page >= 1, (page - 1) * limit <= Int(UInt32.max) else {
            throw fail("--page must be 1 or more", code: Exit.badInput)
        }
        if let quietDays, !(1...36_500).contains(quietDays) {
            throw fail("--quiet-days must be from 1 to 36500", code: Exit.badInput)
        }
    }

    func run() async throws {
        var request = FindCasesRequest()
        request.statuses = try status.map { try choice($0, for: "--status") }
        request.steps = try step.map { try choice($0, for: "--step") }
        request.kinds = try kind.map { try choice($0, for: "--kind") }
        request.urgencies = try urgency.map { try choice($0, for: "--urgency") }
        request.requestingNode = embassy ?? ""
        if let quietDays {
            if request.statuses.isEmpty {
                request.statuses = [.received, .acknowledged, .inProgress, .infoRequested, .onHold]
            }
            request.updatedUntilMs = Int64(Date().timeIntervalSince1970 * 1000) - Int64(quietDays) * 86_400_000
        }
        request.limit = UInt32(limit)
        request.offset = UInt32((page - 1) * limit)
        let found = try await node.console().call(Console.findCases, request)
        let cases = found.cases
        if Output.printedAsJSONOrEmpty(cases, json: node.json, empty: "No cases.") { return }
        // FROM is the state an embassy represents ("ID"); outcome counts only with --wide (and in JSON).
        let configuration = try? node.configuration()
        let directory = configuration.flatMap { try? Directory.load($0.directoryPath, caPath: $0.ca) }
        func from(_ node: String) -> String { directory?.node(node)?.represents ?? node }
        let headers =
            ["CASE", "REF", "FROM", "KIND", "URGENCY", "STATUS", "PERSONS", "UPDATED"]
            + (wide ? ["OUTCOMES"] : [])
        Output.table(
            headers,
            cases.map { c in
                [
                    wide ? c.caseID : Output.shortID(c.caseID), c.originReference.isEmpty ? "-" : c.originReference,
                    from(c.requestingNode), c.kind.description, c.urgency.description,
                    c.status.description + (c.step == .unspecified ? "" : " · \(c.step)"), String(c.personCount),
                    Output.shortTime(c.updatedAtMs),
                ] + (wide ? [Output.counts(c.outcomeCounts)] : [])
            },
            flexible: ["STATUS", "REF"],
            wide: wide
        )
        let first = Int(found.offset) + 1, last = Int(found.offset) + cases.count
        let more = last < Int(found.total) ? "; next: --page \(page + 1)" : ""
        print("Cases \(first)–\(last) of \(found.total)\(more)")
    }
}

/// Commands that make one change to a case.
protocol ChangeCommand: AsyncParsableCommand {
    var node: NodeOptions { get }
    var caseID: String { get }
    func change() throws -> CaseUpdate.Change
    /// The change, for commands that must look at the case first (its id resolved).
    func change(to caseID: String, via console: ConsoleConnection) async throws -> CaseUpdate.Change
}

extension ChangeCommand {
    func change() throws -> CaseUpdate.Change { throw fail("internal: no change defined") }
    func change(to caseID: String, via console: ConsoleConnection) async throws -> CaseUpdate.Change { try change() }

    func run() async throws {
        let console = try node.console()
        // The node records the signed-in account as the author; the other agency sees its display name.
        var update = CaseUpdate()
        update.caseID = try await console.resolveCase(caseID)
        update.change = try await change(to: update.caseID, via: console)
        let receipt = try await console.call(Console.applyChange, update)
        if node.json { Output.json(ProtoJSON.object(receipt)); return }
        if receipt.alreadyApplied {
            print("Case \(receipt.caseID) is already \(receipt.status): nothing to change, nothing sent.")
            return
        }
        print(
            "Case \(receipt.caseID): update #\(receipt.sequence) recorded; status \(receipt.status). "
                + "Delivering to the other agency."
        )
    }
}

struct AckCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "ack",
        abstract: "Acknowledges a case: NCCT takes responsibility (NCCT nodes).",
        discussion: "Example:\n  casebridge ack 7d3f2c4e-0b1a-4c5d-9e8f-112233445566 "
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    func change() throws -> CaseUpdate.Change {
        var change = StatusChange()
        change.toStatus = .acknowledged
        return .statusChange(change)
    }
}

struct UpdateCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract:
            "Changes a case's status, business step, or persons' outcomes "
            + "(NCCT nodes; an embassy may only mark its case entered_in_error).",
        discussion: """
            Give exactly one of --status, --step, --outcomes or --person.

            Statuses: acknowledged, in_progress, info_requested, on_hold, completed, failed, \
            declined, entered_in_error.

            Steps: locating, rescue_planned, rescued, police_interview, identified, sheltered, \
            documents_in_process, repatriation_scheduled.

            Outcomes CSV columns: person_ref, status[, note]; statuses: located, rescued, sheltered, \
            documents_in_process, repatriated, not_found, declined_assistance.

            Examples:
              casebridge update ID --step rescue_planned
              casebridge update ID --outcomes outcomes.csv
              casebridge update ID --person P1=rescued --person P2=not_found
              casebridge update ID --status completed --reason "all persons repatriated"
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Option(help: "New case status.") var status: String?
    @Option(help: "Reason for the status, for the other agency.") var reason: String = ""
    @Option(help: "New business step.") var step: String?
    @Option(help: "CSV of person_ref,status[,note].") var outcomes: String?
    @Option(help: "REF=STATUS for one person (repeatable).") var person: [String] = []

    func change() throws -> CaseUpdate.Change {
        let given = [status != nil, step != nil, outcomes != nil, !person.isEmpty].filter { $0 }.count
        guard given == 1 else {
            throw fail("give exactly one of --status, --step, --outcomes, --person", code: Exit.badInput)
        }
        if let status {
            let parsed: CaseStatus = try choice(status, for: "--status")
            var change = StatusChange()
            change.toStatus = parsed
            change.reason = reason
            return .statusChange(change)
        }
        if let step {
            let parsed: BusinessStep = try choice(step, for: "--step")
            var change = StepChange()
            change.step = parsed
            return .stepChange(change)
        }
        var list = PersonOutcomes()
        if let outcomes { list.outcomes = try PersonsFile.outcomes(outcomes) }
        for (i, pair) in person.enumerated() {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let which = person.count == 1 ? "--person" : "--person #\(i + 1)"
            guard parts.count == 2 else { throw fail("\(which): use REF=STATUS, e.g. P1=rescued", code: Exit.badInput) }
            let parsed: PersonStatus = try choice(parts[1], for: "\(which) status")
            var outcome = PersonOutcome()
            outcome.personRef = parts[0]
            outcome.status = parsed
            list.outcomes.append(outcome)
        }
        return .personOutcomes(list)
    }
}

struct NoteCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "note",
        abstract: "Adds a note to a case (either agency).",
        discussion: "Example: casebridge note ID \"Police interview set for Monday\""
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Argument(help: "The note.") var text: String
    func change() throws -> CaseUpdate.Change {
        var note = Note()
        note.text = text
        return .note(note)
    }
}

struct RequestInfoCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "request-info",
        abstract: "Asks the requesting embassy for more information (NCCT nodes).",
        discussion: "Example: casebridge request-info ID \"Which building?\" \"Any recent photo?\""
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Argument(help: "One or more questions.") var questions: [String]
    func change() throws -> CaseUpdate.Change {
        var request = InformationRequest()
        request.questions = questions
        return .informationRequest(request)
    }
}

struct ProvideInfoCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "provide-info",
        abstract: "Answers NCCT, or adds what is newly known, optionally with more persons (embassy nodes).",
        discussion: """
            Persons to add come from a CSV or JSON file, or from standard input with --persons - \
            (one person typed in, never put in the command line). A person without a person_ref \
            gets the next one free in the case.

            Examples:
              casebridge provide-info ID "Fourth floor, building B" --persons more.csv
              printf 'full_name,phone\\nSiti Rahma,+6281234567890\\n' | \\
                  casebridge provide-info ID "One more person" --persons -
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Argument(help: "What is now known.") var text: String
    @Option(help: "A CSV or JSON file of persons to add (- for standard input).") var persons: String?
    func change(to caseID: String, via console: ConsoleConnection) async throws -> CaseUpdate.Change {
        var provided = InformationProvided()
        provided.text = text
        if let persons {
            var request = GetCaseRequest()
            request.caseID = caseID
            let taken = Set(try await console.call(Console.getCase, request).persons.map(\.personRef))
            provided.addedPersons = try PersonsFile.persons(persons, taken: taken)
        }
        return .informationProvided(provided)
    }
}

struct WithdrawCommand: ChangeCommand {
    static let configuration = CommandConfiguration(
        commandName: "withdraw",
        abstract: "Withdraws a request this embassy filed (embassy nodes).",
        discussion: "Example:\n  casebridge withdraw ID --reason \"The family reports she is home\""
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Option(help: "Why, for NCCT.") var reason: String = ""
    func change() throws -> CaseUpdate.Change {
        var withdrawal = Withdrawal()
        withdrawal.reason = reason
        return .withdrawal(withdrawal)
    }
}

extension InboxCommand {
    /// The entry numbers `words` name: numbers and ranges ("12-20").
    func entries(_ words: [String]) throws -> [UInt64] {
        let most = ContractLimits.repeated["casebridge.v1.MarkReadRequest.entry_ids"] ?? 10_000
        var ids: [UInt64] = []
        for word in words {
            let bounds = word.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { UInt64($0) }
            guard let first = bounds.first ?? nil, let last = bounds.last ?? nil, first <= last else {
                throw fail("--mark-read \(word): use entry numbers (12), ranges (12-20) or all", code: Exit.badInput)
            }
            _ = try storedNumber(last, flag: "--mark-read")
            guard last - first < UInt64(most) - UInt64(ids.count) else {
                throw fail(
                    "--mark-read names more than \(most) entries at once; mark them in parts",
                    code: Exit.badInput
                )
            }
            ids.append(contentsOf: first...last)
        }
        return ids
    }
}

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Prints changes to cases as they happen, until interrupted.",
        discussion: "Examples:\n  casebridge watch\n  casebridge watch --after 120 --count 10"
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "Resume after this event number.") var after: UInt64 = 0
    @Option(help: "Stop after this many events (default: until interrupted).") var count: Int?

    func validate() throws {
        if let count, count < 1 { throw fail("--count must be 1 or more", code: Exit.badInput) }
    }

    func run() async throws {
        let console = try node.console()
        var request = WatchCasesRequest()
        request.afterEventID = try storedNumber(after, flag: "--after")
        if !node.json { Output.progress("watching \(console.configuration.nodeID); Ctrl-C to stop") }
        do {
            var printed = 0
            for try await event in console.channel.streaming(Console.watch, [request]) {
                printed += 1
                if node.json {
                    Output.json(ProtoJSON.object(event))
                    if let count, printed >= count { break }
                    continue
                }
                let summary =
                    event.summary.map {
                        "\($0.status)\($0.step == .unspecified ? "" : "/\($0.step)") · "
                            + Output.counts($0.outcomeCounts)
                    } ?? ""
                let what: String =
                    switch event.kind {
                    case .opened: "opened"
                    case .updated: event.update.map(describe) ?? "updated"
                    case .delivery: event.delivery.map { "delivery to \($0.peerNode): \($0.state)" } ?? "delivery"
                    case .refused: "REFUSED " + (event.update.map(describe) ?? "update")
                    case .deadline:
                        event.deadline.map {
                            "deadline: \(Output.deadlineLevel($0.level)), \($0.clock) by \($0.waitingOn)"
                                + " due \(Output.shortTime($0.dueAtMs))"
                        } ?? "deadline"
                    default: "event"
                    }
                print("#\(event.eventID) \(Output.time(event.occurredAtMs)) \(event.caseID)  \(what)  [\(summary)]")
                fflush(nil)  // into a pipe or a file too, each event as it happens
                if let count, printed >= count { break }
            }
        } catch {
            throw ConsoleConnection.exit(for: error, node: console.configuration.nodeID)
        }
    }
}
