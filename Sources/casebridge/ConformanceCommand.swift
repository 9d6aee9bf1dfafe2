import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import Foundation

struct ConformanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract:
            "Drives the case protocol against a peer node and reports, rule by rule, whether it keeps the contract.",
        discussion: """
            Connects with this node's certificate and plays its role against the peer: --as embassy \
            checks an NCCT node, --as ncct checks an embassy node. Everything it files or changes is \
            a test case (InterventionRequest.test), which nodes keep out of their staff's views.

            --as embassy files its own test cases. --as ncct needs a test case the embassy under test \
            filed and NCCT has not worked yet: at the embassy, run \
            casebridge submit --test --kind trace (and give "Conformance Test" as the name)

            Exit 0 when every check passed; 1 otherwise. --json prints one object per check.

            Examples:
              casebridge conformance 127.0.0.1:7400 --as embassy \\
                --config embassy-id/node.json
              casebridge conformance 127.0.0.1:7401 --as ncct --config ncct/node.json
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "host:port of the peer under test.") var endpoint: String
    @Option(name: .customLong("as"), help: "The role to play: embassy (to check NCCT) or ncct (to check an embassy).")
    var role: String
    @Option(help: "The peer's node id, if the directory does not list this endpoint.") var expect: String?

    func run() async throws {
        guard let role = DirectoryEntry.Role(rawValue: role) else {
            throw fail("--as \(role): use embassy or ncct", code: Exit.badInput)
        }
        let peer = try PeerConnection.open(node, endpoint: endpoint, expect: expect)
        defer { peer.channel.close() }
        guard peer.me.role == role else {
            throw fail(
                "--as \(role.rawValue) needs the configuration of a \(role.rawValue) node; "
                    + "\(peer.me.id) is \(peer.me.role.rawValue)",
                code: Exit.badInput
            )
        }
        let report = CheckReport(
            json: node.json,
            context: ["peer": peer.peerID, "endpoint": endpoint, "as": role.rawValue]
        )
        let kit = ConformanceKit(peer: peer, report: report)
        if role == .embassy { await kit.checkNCCT() } else { await kit.checkEmbassy() }
        if !node.json { print(report.summary) }
        if report.failed + report.notRun > 0 {
            throw fail("\(peer.peerID) at \(endpoint): \(report.summary)")
        }
    }
}

/// The checks: each names the rule of the contract (proto/casebridge/v1/exchange.proto) it tries.
final class ConformanceKit: @unchecked Sendable {
    let peer: PeerConnection
    let report: CheckReport
    var channel: RPCChannel { peer.channel }
    /// Field 99 with a value: what a newer node would add; a peer must keep and return it.
    static let unknownField: [UInt8] = [0x9a, 0x06, 0x0c] + Array("from-a-newer".utf8)
    static let timeout: Duration = .seconds(30)

    init(peer: PeerConnection, report: CheckReport) {
        self.peer = peer
        self.report = report
    }

    // MARK: Against an NCCT node, as an embassy

    func checkNCCT() async {
        guard await health() else { return }
        var request = testRequest(persons: 2)
        let requestBytes = (try? ProtoCodec.encode(request)).map { $0 + Self.unknownField } ?? []
        let filed = await report.check("submit") {
            let receipt = try await submit(requestBytes)
            try expect(
                receipt.caseID == request.requestID && receipt.status == .received && !receipt.alreadyReceived,
                "receipt \(receipt.status), case \(receipt.caseID), already_received \(receipt.alreadyReceived)"
            )
            try expect(receipt.receiverNode == peer.peerID, "receiver_node \(receipt.receiverNode)")
            return "a test request was committed: RECEIVED, case_id = request_id"
        }
        let caseID = request.requestID
        func needsCase() throws {
            if !filed { throw CheckReport.NotRun(reason: "needs the case from the check submit") }
        }
        await report.check("submit.idempotent") {
            try needsCase()
            let again = try await submit(requestBytes)
            try expect(again.alreadyReceived && again.status == .received, "already_received \(again.alreadyReceived)")
            return "the same request again: OK, already_received"
        }
        await report.check("submit.same-id-other-content") {
            try needsCase()
            var other = request
            other.summary = "other content under the same id"
            try await refused(.alreadyExists) { _ = try await self.submit(try ProtoCodec.encode(other)) }
            return "ALREADY_EXISTS"
        }
        await report.check("submit.malformed") {
            var malformed = testRequest(persons: 1)
            malformed.persons[0].phone = "not-a-phone-7781"
            let error = try await refused(.invalidArgument) {
                _ = try await self.submit(try ProtoCodec.encode(malformed))
            }
            try expect(
                error.message.contains("persons[0].phone"),
                "the message does not name persons[0].phone: \(error.message)"
            )
            try expect(!error.message.contains("7781"), "the message repeats the value sent")
            return "INVALID_ARGUMENT naming persons[0].phone, without its value"
        }
        await report.check("submit.not-the-caller") {
            var spoofed = testRequest(persons: 1)
            spoofed.originNode = peer.me.id == "conformance-other" ? "conformance-else" : "conformance-other"
            try await refused(.permissionDenied) { _ = try await self.submit(try ProtoCodec.encode(spoofed)) }
            return "PERMISSION_DENIED for an origin_node that is not the caller"
        }
        await report.check("read.byte-for-byte") {
            try needsCase()
            let bytes = try await getCase(caseID)
            let stored = try RawFields.extract(2, from: bytes, message: Case.protoName)
            try expect(
                stored == [requestBytes],
                "GetCase did not return the request as sent (field 99 of a newer node lost?)"
            )
            return "GetCase returns the request byte for byte, a newer node's field included"
        }
        var sent: [UInt64: [UInt8]] = [:]
        func update(_ sequence: UInt64, _ change: CaseUpdate.Change, skipped: [UInt64] = []) -> CaseUpdate {
            var update = CaseUpdate()
            update.updateID = UUID().uuidString.lowercased()
            update.caseID = caseID
            update.sequence = sequence
            update.actorNode = peer.me.id
            update.occurredAtMs = Int64(Date().timeIntervalSince1970 * 1000)
            update.author = "conformance"
            update.change = change
            update.skippedSequences = skipped
            return update
        }
        let first = update(1, .note(Self.note("conformance: first note")))
        await checkSequences(caseID: caseID, needsCase: needsCase, first: first, sent: &sent)
        await report.check("update.outside-role") {
            try needsCase()
            var change = StatusChange()
            change.toStatus = .completed
            try await refused(.permissionDenied) { _ = try await self.push(update(2, .statusChange(change))) }
            return "PERMISSION_DENIED for a status change by an embassy"
        }
        await report.check("update.role-refusal-takes-no-number") {
            try needsCase()
            var provided = InformationProvided()
            provided.text = "conformance: information"
            let update = update(2, .informationProvided(provided))
            let receipt = try await push(update)
            sent[2] = try ProtoCodec.encode(update)
            try expect(receipt.sequence == 2, "sequence \(receipt.sequence)")
            return "after a PERMISSION_DENIED, sequence 2 is still free and applies"
        }
        await report.check("update.withdrawal") {
            try needsCase()
            let receipt = try await push(update(3, .withdrawal(Withdrawal())))
            try expect(receipt.status == .withdrawn, "status \(receipt.status)")
            return "the embassy's withdrawal applies: WITHDRAWN"
        }
        var provided = InformationProvided()
        provided.text = "conformance: too late"
        let late = update(4, .informationProvided(provided))
        var lateError: RPCError?
        await report.check("update.refused-takes-number") {
            try needsCase()
            let error = try await refused(.failedPrecondition) { _ = try await self.push(late) }
            try expect(error.metadata["casebridge-expected-sequence"] == nil, "the refusal carries a gap trailer")
            lateError = error
            return "information for a withdrawn case: FAILED_PRECONDITION, no gap trailer"
        }
        await report.check("update.refusal-replayed") {
            guard let lateError else { throw CheckReport.NotRun(reason: "needs update.refused-takes-number") }
            let again = try await refused(lateError.code) { _ = try await self.push(late) }
            try expect(again.metadata["casebridge-expected-sequence"] == nil, "the replay is answered as a gap")
            return "the refused update again: the same refusal"
        }
        await report.check("update.after-refusal") {
            try needsCase()
            let receipt = try await push(update(5, .note(Self.note("conformance: after a refusal"))))
            try expect(receipt.sequence == 5, "sequence \(receipt.sequence)")
            return "the update after a refused one applies: the case is not blocked"
        }
        await report.check("update.skipped") {
            try needsCase()
            let receipt = try await push(
                update(8, .note(Self.note("conformance: after two given up")), skipped: [6, 7])
            )
            try expect(receipt.sequence == 8, "sequence \(receipt.sequence)")
            return "sequences 6 and 7 named as skipped: 8 applies"
        }
        await report.check("update.entered-in-error") {
            try needsCase()
            var change = StatusChange()
            change.toStatus = .enteredInError
            let receipt = try await push(update(9, .statusChange(change)))
            try expect(receipt.status == .enteredInError, "status \(receipt.status)")
            return "the embassy may mark its own case entered_in_error, from withdrawn"
        }
        await report.check("read.history") {
            try needsCase()
            let bytes = try await getCase(caseID)
            let view = try ProtoCodec.decode(Case.self, from: bytes, limits: .init(maxMessageBytes: 64 << 20))
            let mine = view.history.filter { $0.actorNode == peer.me.id }.map(\.sequence)
            try expect(mine == [1, 2, 3, 5, 8, 9], "history holds sequences \(mine)")
            let refused = view.refusedUpdates.filter { $0.actorNode == peer.me.id }.map { "\($0.sequence) \($0.code)" }
            try expect(refused == ["4 FAILED_PRECONDITION", "6 SKIPPED", "7 SKIPPED"], "refused_updates \(refused)")
            try expect(view.status == .enteredInError, "status \(view.status)")
            let history = try RawFields.extract(7, from: bytes, message: Case.protoName)
            try expect(history.contains(sent[1] ?? []), "the first update did not come back byte for byte")
            return "history 1, 2, 3, 5, 8, 9; refused 4; skipped 6, 7; status entered_in_error"
        }
        await report.check("list.sequences") {
            try needsCase()
            var list = ListCasesRequest()
            list.limit = 100
            var found: CaseSummary?
            for try await summary in channel.streaming(CaseExchange.listCases, [list], timeout: Self.timeout)
            where summary.caseID == caseID { found = summary }
            guard let found else { throw Failure("ListCases does not list the case") }
            try expect(
                found.embassySequence == 9 && found.test,
                "embassy_sequence \(found.embassySequence), test \(found.test)"
            )
            return "ListCases lists the case with embassy_sequence 9, marked test"
        }
        await report.check("submit.large-batch") {
            request = testRequest(persons: ContractLimits.maxPersons)
            _ = try await submit(try ProtoCodec.encode(request))
            let view = try ProtoCodec.decode(
                Case.self,
                from: try await getCase(request.requestID),
                limits: .init(maxMessageBytes: 64 << 20, maxElements: 8_000_000)
            )
            try expect(view.persons.count == ContractLimits.maxPersons, "\(view.persons.count) persons read back")
            return "a \(ContractLimits.maxPersons)-person request is committed and read back whole"
        }
        await unknownMethod()
    }

    /// Idempotency and sequence rules on a first update, the same whichever side pushes it.
    func checkSequences(
        caseID: String,
        needsCase: () throws -> Void,
        first: CaseUpdate,
        sent: inout [UInt64: [UInt8]]
    ) async {
        let firstBytes = ((try? ProtoCodec.encode(first)) ?? []) + Self.unknownField
        sent[first.sequence] = firstBytes
        let applied = await report.check("update.apply") {
            try needsCase()
            let receipt = try await pushBytes(firstBytes)
            try expect(
                receipt.sequence == first.sequence && !receipt.alreadyApplied,
                "receipt sequence \(receipt.sequence)"
            )
            return "update \(first.sequence) applies"
        }
        func needsFirst() throws { if !applied { throw CheckReport.NotRun(reason: "needs update.apply") } }
        await report.check("update.idempotent") {
            try needsFirst()
            let again = try await pushBytes(firstBytes)
            try expect(again.alreadyApplied, "already_applied is false")
            return "the same update again: OK, already_applied"
        }
        await report.check("update.same-id-other-content") {
            try needsFirst()
            var other = first
            other.change = .note(Self.note("other content under the same update id"))
            try await refused(.alreadyExists) { _ = try await self.push(other) }
            return "ALREADY_EXISTS"
        }
        await report.check("update.sequence-taken") {
            try needsFirst()
            var other = first
            other.updateID = UUID().uuidString.lowercased()
            let error = try await refused(.alreadyExists) { _ = try await self.push(other) }
            let next = String(first.sequence + 1)
            try expect(
                error.metadata["casebridge-expected-sequence"] == next,
                "no casebridge-expected-sequence: \(next)"
            )
            return "another update with a taken number: ALREADY_EXISTS, expected-sequence \(next)"
        }
        await report.check("update.gap") {
            try needsFirst()
            var ahead = first
            ahead.updateID = UUID().uuidString.lowercased()
            ahead.sequence = first.sequence + 3
            let error = try await refused(.failedPrecondition) { _ = try await self.push(ahead) }
            let next = String(first.sequence + 1)
            try expect(
                error.metadata["casebridge-expected-sequence"] == next,
                "casebridge-expected-sequence is \(error.metadata["casebridge-expected-sequence"] ?? "absent")"
            )
            return "a gap: FAILED_PRECONDITION naming expected sequence \(next)"
        }
    }

    // MARK: Against an embassy node, as NCCT

    func checkEmbassy() async {
        guard await health() else { return }
        await report.check("submit.not-to-an-embassy") {
            try await refused(.permissionDenied) {
                _ = try await self.submit(try ProtoCodec.encode(self.testRequest(persons: 1)))
            }
            return "PERMISSION_DENIED: requests go to NCCT"
        }
        var found: CaseSummary?
        await report.check("test-case") {
            var list = ListCasesRequest()
            list.limit = 10_000
            list.statuses = [.submitted, .received]
            for try await summary in channel.streaming(CaseExchange.listCases, [list], timeout: Self.timeout)
            where summary.test && found == nil { found = summary }
            guard let found else {
                throw CheckReport.NotRun(
                    reason: "the embassy has no fresh test case; there, run: "
                        + "casebridge submit --test --kind trace (name: Conformance Test)"
                )
            }
            return "works on test case \(found.caseID) (NCCT sequence so far \(found.ncctSequence))"
        }
        let caseID = found?.caseID ?? ""
        let base = found?.ncctSequence ?? 0
        func needsCase() throws {
            if found == nil { throw CheckReport.NotRun(reason: "needs a test case (see test-case)") }
        }
        func update(_ offset: UInt64, _ change: CaseUpdate.Change, skipped: [UInt64] = []) -> CaseUpdate {
            var update = CaseUpdate()
            update.updateID = UUID().uuidString.lowercased()
            update.caseID = caseID
            update.sequence = base + offset
            update.actorNode = peer.me.id
            update.occurredAtMs = Int64(Date().timeIntervalSince1970 * 1000)
            update.author = "conformance"
            update.change = change
            update.skippedSequences = skipped.map { base + $0 }
            return update
        }
        func status(_ status: CaseStatus) -> CaseUpdate.Change {
            var change = StatusChange()
            change.toStatus = status
            return .statusChange(change)
        }
        var sent: [UInt64: [UInt8]] = [:]
        await checkSequences(caseID: caseID, needsCase: needsCase, first: update(1, status(.acknowledged)), sent: &sent)
        var personRef = ""
        await report.check("update.outside-role") {
            try needsCase()
            try await refused(.permissionDenied) { _ = try await self.push(update(2, .withdrawal(Withdrawal()))) }
            let view = try ProtoCodec.decode(
                Case.self,
                from: try await getCase(caseID),
                limits: .init(maxMessageBytes: 64 << 20)
            )
            personRef = view.request?.persons.first?.personRef ?? ""
            return "PERMISSION_DENIED for a withdrawal by NCCT"
        }
        await report.check("update.step") {
            try needsCase()
            var step = StepChange()
            step.step = .locating
            let receipt = try await push(update(2, .stepChange(step)))
            try expect(receipt.status == .inProgress, "status \(receipt.status)")
            return "a step on an acknowledged case: IN_PROGRESS"
        }
        await report.check("update.refused-takes-number") {
            try needsCase()
            try await refused(.failedPrecondition) {
                _ = try await self.push(update(3, Self.outcome(personRef, .repatriated)))
            }
            return "pending → repatriated for a person: FAILED_PRECONDITION"
        }
        await report.check("update.after-refusal") {
            try needsCase()
            let receipt = try await push(update(4, Self.outcome(personRef, .located)))
            try expect(receipt.sequence == base + 4, "sequence \(receipt.sequence)")
            return "the next update after a refused one applies"
        }
        await report.check("update.skipped") {
            try needsCase()
            let receipt = try await push(update(7, .note(Self.note("conformance: two given up")), skipped: [5, 6]))
            try expect(receipt.sequence == base + 7, "sequence \(receipt.sequence)")
            return "two sequences named as skipped: the next applies"
        }
        await report.check("update.complete-then-outcome") {
            try needsCase()
            _ = try await push(update(8, status(.completed)))
            let receipt = try await push(update(9, Self.outcome(personRef, .rescued)))
            try expect(receipt.status == .completed, "status \(receipt.status)")
            return "a completed case still takes person outcomes"
        }
        await report.check("read.history") {
            try needsCase()
            let view = try ProtoCodec.decode(
                Case.self,
                from: try await getCase(caseID),
                limits: .init(maxMessageBytes: 64 << 20)
            )
            let mine = view.history.filter { $0.actorNode == peer.me.id }.map { $0.sequence - base }
            try expect(mine == [1, 2, 4, 7, 8, 9], "history holds sequences base + \(mine)")
            let refused = view.refusedUpdates.filter { $0.actorNode == peer.me.id }.map {
                "\($0.sequence - base) \($0.code)"
            }
            try expect(refused == ["3 FAILED_PRECONDITION", "5 SKIPPED", "6 SKIPPED"], "refused_updates \(refused)")
            try expect(
                view.persons.first?.status == .rescued,
                "first person \(view.persons.first?.status ?? .unspecified)"
            )
            return "history, refusals and skipped sequences as sent; the person rescued"
        }
        await unknownMethod()
    }

    // MARK: Shared checks and helpers

    func health() async -> Bool {
        await report.check("health") {
            var request = GRPCHealth.HealthCheckRequest()
            request.service = CaseExchange.serviceName
            let status = try await channel.unary(GRPCHealth.Health.check, request, timeout: Self.timeout).status
            try expect(status == .serving, "\(CaseExchange.serviceName) is \(status)")
            return "TLS with mutual certificates to \(peer.peerID); \(CaseExchange.serviceName) SERVING"
        }
    }

    func unknownMethod() async {
        await report.check("unknown-method") {
            try await refused(.unimplemented) {
                _ = try await self.channel.unaryBytes("/casebridge.v1.CaseExchange/NoSuchMethod", [])
            }
            return "UNIMPLEMENTED"
        }
    }

    func testRequest(persons: Int) -> InterventionRequest {
        var request = InterventionRequest()
        request.requestID = UUID().uuidString.lowercased()
        request.originNode = peer.me.id
        request.kind = .trace
        request.urgency = .routine
        request.test = true
        request.createdAtMs = Int64(Date().timeIntervalSince1970 * 1000)
        request.summary = "casebridge conformance: a test case, not a person"
        request.persons = (0..<persons).map { index in
            var person = Person()
            person.personRef = "T\(index + 1)"
            person.fullName = "Conformance Test \(index + 1)"
            return person
        }
        return request
    }

    static func note(_ text: String) -> Note {
        var note = Note()
        note.text = text
        return note
    }

    static func outcome(_ ref: String, _ status: PersonStatus) -> CaseUpdate.Change {
        var outcome = PersonOutcome()
        outcome.personRef = ref
        outcome.status = status
        var outcomes = PersonOutcomes()
        outcomes.outcomes = [outcome]
        return .personOutcomes(outcomes)
    }

    func submit(_ bytes: [UInt8]) async throws -> SubmitReceipt {
        try ProtoCodec.decode(
            SubmitReceipt.self,
            from: try await channel.unaryBytes(
                CaseExchange.submitRequest.path,
                bytes,
                timeout: Self.timeout
            )
        )
    }

    func push(_ update: CaseUpdate) async throws -> UpdateReceipt { try await pushBytes(try ProtoCodec.encode(update)) }

    func pushBytes(_ bytes: [UInt8]) async throws -> UpdateReceipt {
        try ProtoCodec.decode(
            UpdateReceipt.self,
            from: try await channel.unaryBytes(
                CaseExchange.pushUpdate.path,
                bytes,
                timeout: Self.timeout
            )
        )
    }

    func getCase(_ caseID: String) async throws -> [UInt8] {
        var request = GetCaseRequest()
        request.caseID = caseID
        return try await channel.unaryEncoded(CaseExchange.getCase, request, timeout: Self.timeout)
    }

    /// The call must fail with `code`; returns the error.
    @discardableResult
    func refused(_ code: RPCCode, _ call: () async throws -> Void) async throws -> RPCError {
        do {
            try await call()
        } catch let error as RPCError {
            guard error.code == code else { throw Failure("expected \(code), got \(error)") }
            return error
        }
        throw Failure("expected \(code), got OK")
    }

    func expect(_ condition: Bool, _ problem: @autoclosure () -> String) throws {
        if !condition { throw Failure(problem()) }
    }
}

/// Why a check failed, in words.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
