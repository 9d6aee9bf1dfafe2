import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Testing
import TestSupport

/// A peer acting outside its role, or out of turn, gets a precise status; nothing is stored but
/// the audit entry.
@Suite("Refused node calls", .serialized)
struct NodeRefusalTests {
    /// Whether a receipt's proof holds, made by NCCT's certificate under the federation's CA.
    static func signedByNCCT(_ signed: SignedReceipt) throws -> Bool {
        let ca = try String(contentsOf: TestFederation.certs.appendingPathComponent("ca.pem"), encoding: .utf8)
        return try Signatures.verify(signed.signature, content: signed.statement, caPEM: ca).contains {
            $0.hasSuffix("/ncct")
        }
    }

    /// The same content encoded otherwise: a field this version does not know (99, "hi") added.
    static func encodedOtherwise(_ bytes: [UInt8]) -> [UInt8] { bytes + [0x9a, 0x06, 0x02, 0x68, 0x69] }

    /// A request's bytes submitted as they are: the receipt.
    static func submit(_ bytes: [UInt8], on channel: RPCChannel) async throws -> SubmitReceipt {
        let answer = try await channel.unaryBytes(CaseExchange.submitRequest.path, bytes)
        return try ProtoCodec.decode(SubmitReceipt.self, from: answer)
    }

    @Test(
        "a request sent again gets the same receipt and proof; other content, or another embassy, under its id does not"
    )
    func requestSentAgain() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let asEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-id")
        let otherEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-cn")
        defer { [asEmbassy, otherEmbassy].forEach { $0.close() } }
        let request = Make.request(persons: 2, from: "embassy-id")

        let first = try await asEmbassy.unary(CaseExchange.submitRequest, request)
        let again = try await asEmbassy.unary(CaseExchange.submitRequest, request)
        let third = try await asEmbassy.unary(CaseExchange.submitRequest, request)
        #expect(!first.alreadyReceived && again.alreadyReceived && third.alreadyReceived)
        #expect(again.receivedAtMs == first.receivedAtMs && again.status == first.status)
        // A retry's proof says what the first said, and holds.
        let statement = try ProtoCodec.decode(ReceiptStatement.self, from: try #require(again.signed).statement)
        #expect(statement.atMs == first.receivedAtMs && statement.messageID == request.requestID)
        #expect(third.signed == again.signed)
        for receipt in [first, again] { #expect(try Self.signedByNCCT(try #require(receipt.signed))) }
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"])
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM inbox") == ["1"])
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'request.received'") == ["1"])

        // Once acknowledged, a retry's receipt carries the case's status now.
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        _ = try await ncct.unary(Console.applyChange, Make.status(request.requestID, .acknowledged))
        let later = try await asEmbassy.unary(CaseExchange.submitRequest, request)
        #expect(later.alreadyReceived && later.status == .acknowledged && later.signed != again.signed)

        var altered = request
        altered.summary += " (changed)"
        let changed = await captureError { _ = try await asEmbassy.unary(CaseExchange.submitRequest, altered) }
        #expect(changed?.code == .alreadyExists && changed?.message.contains("other content") == true)
        var taken = request
        taken.originNode = "embassy-cn"
        let elsewhere = await captureError { _ = try await otherEmbassy.unary(CaseExchange.submitRequest, taken) }
        #expect(elsewhere?.code == .alreadyExists && elsewhere?.message.contains("another node") == true)
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"])
        federation.stopAll()
    }

    @Test("a retry is told by the digest kept with its case, and without one by the sealed request")
    func retryByDigest() async throws {
        let federation = try TestFederation()
        try await federation.start("ncct")
        let asEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-id")
        let request = Make.request(persons: 2, from: "embassy-id")
        let bytes = try ProtoCodec.encode(request)
        let otherEncoding = Self.encodedOtherwise(bytes)
        var altered = request
        altered.summary += " (changed)"
        func submit(_ bytes: [UInt8]) async throws -> SubmitReceipt { try await Self.submit(bytes, on: asEmbassy) }

        let first = try await submit(bytes)
        let statement = try ProtoCodec.decode(ReceiptStatement.self, from: try #require(first.signed).statement)
        let kept = try federation.sql("ncct", "SELECT lower(hex(request_sha256)) FROM cases")
        #expect(kept == [Digest.sha256Hex(bytes)] && statement.messageSha256 == Digest.sha256Hex(bytes))
        #expect(try await submit(bytes).alreadyReceived)
        #expect(try await submit(otherEncoding).alreadyReceived)

        // A case kept before digests were (migration 15) is compared by its request.
        asEmbassy.close()
        federation.stop("ncct")
        let forget = try run(
            "python3",
            [
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                    + "c.execute('UPDATE cases SET request_sha256 = NULL'); c.commit()",
                federation.database("ncct"),
            ]
        )
        #expect(forget.status == 0, "\(forget.stderr)")
        try await federation.start("ncct")
        let again = try federation.peerChannel(to: "ncct", as: "embassy-id")
        defer { again.close() }
        for retry in [bytes, otherEncoding] {
            let answer = try await Self.submit(retry, on: again)
            #expect(answer.alreadyReceived && answer.receivedAtMs == first.receivedAtMs)
        }
        let changed = await captureError { _ = try await again.unary(CaseExchange.submitRequest, altered) }
        #expect(changed?.code == .alreadyExists && changed?.message.contains("other content") == true)
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"])
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'request.received'") == ["1"])
        federation.stopAll()
    }

    @Test("a retry is answered from its bytes, without decoding them: still after the node's decode limit is lowered")
    func retryNotDecodedAgain() async throws {
        let federation = try TestFederation()
        try await federation.start("ncct")
        let request = Make.request(persons: 1_200, from: "embassy-id")
        let bytes = try ProtoCodec.encode(request)
        func submit(_ bytes: [UInt8]) async throws -> SubmitReceipt {
            let channel = try federation.peerChannel(to: "ncct", as: "embassy-id")
            defer { channel.close() }
            return try await Self.submit(bytes, on: channel)
        }
        let first = try await submit(bytes)

        // The operator lowers the limit below what this request decodes to (1,200 persons). A stop is
        // not an error: the node's log says nothing (its background work, cancelled, is not a failure).
        federation.stop("ncct")
        #expect(!federation.log("ncct").contains(" error "), "\(federation.log("ncct"))")
        try federation.configure("ncct") { config in
            var limits = config["limits"] as? [String: Any] ?? [:]
            limits["max_decoded_elements"] = 1_000
            config["limits"] = limits
        }
        try await federation.start("ncct")

        // The sender's retry (a lost receipt) is the request received: its receipt, and a proof of it.
        // Sent for half a second: before and after the node has loaded the ids it held at the start
        // (from then on, an id not among them is taken for new without a read).
        for _ in 0..<5 {
            let again = try await submit(bytes)
            #expect(again.alreadyReceived && again.receivedAtMs == first.receivedAtMs)
            #expect(try Self.signedByNCCT(try #require(again.signed)))
            try await Task.sleep(for: .milliseconds(100))
        }
        // Anything decoded meets the new limit: the same content encoded otherwise, and a new request.
        let otherEncoding = Self.encodedOtherwise(bytes)
        let newRequest = try ProtoCodec.encode(Make.request(persons: 1_200, from: "embassy-id"))
        for other in [otherEncoding, newRequest] {
            let refused = await captureError { _ = try await submit(other) }
            #expect(refused?.code == .invalidArgument)
        }
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"])
        federation.stopAll()
    }

    @Test("a request committed elsewhere while its write waited is answered with that commit's receipt and proof")
    func committedWhileWaiting() async throws {
        let federation = try TestFederation()
        try await federation.start("ncct")
        let asEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-id")
        defer { asEmbassy.close() }
        let seed = Make.request(persons: 1, from: "embassy-id")
        let raced = Make.request(persons: 1, from: "embassy-id")
        _ = try await asEmbassy.unary(CaseExchange.submitRequest, seed)
        let bytes = try ProtoCodec.encode(raced)

        // Another process takes the write lock, and commits the raced request (a copy of the seed's
        // row under its id and digest, kept an hour earlier) while the node's write for it waits.
        // The node's first submit reaches an idle writer, so its proof is made before the write
        // finds the request there; the retry queues behind it.
        let keptAtMs: Int64 = 1_700_000_000_000
        let held = federation.folder.appendingPathComponent("lock-held").path
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        locker.arguments = [
            "python3", "-c",
            """
            import sqlite3,sys,time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute('BEGIN IMMEDIATE'); open(sys.argv[2], 'w').close(); time.sleep(1.5)
            cols = [r[1] for r in c.execute('PRAGMA table_info(cases)')]
            put = {'case_id': sys.argv[4], 'created_at_ms': int(sys.argv[5]),
                   'request_sha256': bytes.fromhex(sys.argv[6])}
            select = ','.join('?' if k in put else k for k in cols)
            c.execute('INSERT INTO cases (%s) SELECT %s FROM cases WHERE case_id = ?' % (','.join(cols), select),
                      [put[k] for k in cols if k in put] + [sys.argv[3]])
            c.execute('COMMIT')
            """,
            federation.database("ncct"), held, seed.requestID, raced.requestID, "\(keptAtMs)",
            Digest.sha256Hex(bytes),
        ]
        try locker.run()
        #expect(try await federation.eventually(10) { FileManager.default.fileExists(atPath: held) })
        async let first = asEmbassy.unaryBytes(CaseExchange.submitRequest.path, bytes)
        try await Task.sleep(for: .milliseconds(300))
        async let retry = asEmbassy.unaryBytes(CaseExchange.submitRequest.path, bytes)
        let receipts = try await [first, retry].map { try ProtoCodec.decode(SubmitReceipt.self, from: $0) }
        locker.waitUntilExit()
        #expect(locker.terminationStatus == 0)

        for receipt in receipts {
            #expect(receipt.alreadyReceived && receipt.receivedAtMs == keptAtMs)
            let signed = try #require(receipt.signed)
            let statement = try ProtoCodec.decode(ReceiptStatement.self, from: signed.statement)
            #expect(statement.atMs == keptAtMs && statement.status == receipt.status)
            #expect(statement.messageID == raced.requestID && statement.messageSha256 == Digest.sha256Hex(bytes))
            #expect(try Self.signedByNCCT(signed))
        }
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["2"])
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'request.received'") == ["1"])
        federation.stopAll()
    }

    @Test("wrong role, wrong origin, illegal transition, sequence gap, unknown case, malformed request")
    func refusals() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let ncct = federation.console("ncct"), embassy = federation.console("embassy-id")
        let asEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-id")
        let embassyToEmbassy = try federation.peerChannel(to: "embassy-id", as: "embassy-cn")
        defer { [ncct, embassy, asEmbassy, embassyToEmbassy].forEach { $0.close() } }

        let caseID = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        func stored() throws -> [String] {
            let counts = ["cases", "persons", "case_history", "inbox", "outbox"].map { "(SELECT COUNT(*) FROM \($0))" }
            return try federation.sql(
                "ncct",
                "SELECT \(counts.joined(separator: ", ")), (SELECT group_concat(status) FROM cases)"
            )
        }
        func refusalCount() throws -> Int {
            Int(try federation.sql("ncct", "SELECT COUNT(*) FROM audit WHERE event = 'call.refused'").first!)!
        }
        func update(
            _ change: CaseUpdate.Change,
            sequence: UInt64,
            caseID: String = caseID,
            actor: String = "embassy-id"
        ) -> CaseUpdate {
            var update = Make.update(caseID, change)
            update.updateID = UUID().uuidString.lowercased()
            update.actorNode = actor
            update.sequence = sequence
            return update
        }
        let before = try stored()

        // Refused calls, each with the status a caller must act on.
        var expectedRefusals = try refusalCount()
        func refused(_ code: RPCCode, _ fragment: String, _ call: () async throws -> Void) async throws {
            guard let error = await captureError(call) else { Issue.record("\(fragment): no RPCError"); return }
            #expect(error.code == code, "\(error)")
            #expect(error.message.contains(fragment), "\(error.message)")
            expectedRefusals += 1
            #expect(try refusalCount() == expectedRefusals)
            #expect(try stored() == before)
        }
        // Wrong role: an embassy changing a case's status, and an embassy submitting to another embassy.
        try await refused(.permissionDenied, "only NCCT may change status") {
            _ = try await asEmbassy.unary(
                CaseExchange.pushUpdate,
                update(
                    .statusChange(
                        {
                            var s = StatusChange(); s.toStatus = .completed; return s
                        }()
                    ),
                    sequence: 1
                )
            )
        }
        let misrouted = Make.request(persons: 1, from: "embassy-cn")
        let error = try await #require(throws: RPCError.self) {
            try await embassyToEmbassy.unary(CaseExchange.submitRequest, misrouted)
        }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains("is an embassy node"))
        // Wrong origin: a request or update claiming to come from someone else.
        let spoofed = Make.request(persons: 1, from: "embassy-cn")
        try await refused(.permissionDenied, "origin_node embassy-cn is not the caller embassy-id") {
            _ = try await asEmbassy.unary(CaseExchange.submitRequest, spoofed)
        }
        try await refused(.permissionDenied, "actor_node ncct is not the caller") {
            _ = try await asEmbassy.unary(
                CaseExchange.pushUpdate,
                update(
                    .note(
                        {
                            var n = Note(); n.text = "x"; return n
                        }()
                    ),
                    sequence: 1,
                    actor: "ncct"
                )
            )
        }
        // Gap in sequence: the receiver names the sequence it expects.
        let gap = try await #require(throws: RPCError.self) {
            _ = try await asEmbassy.unary(
                CaseExchange.pushUpdate,
                update(
                    .note(
                        {
                            var n = Note(); n.text = "x"; return n
                        }()
                    ),
                    sequence: 3
                )
            )
        }
        #expect(gap.code == .failedPrecondition)
        #expect(gap.metadata["casebridge-expected-sequence"] == "1")
        expectedRefusals += 1
        #expect(try stored() == before)
        // Unknown case.
        try await refused(.notFound, "no case") {
            _ = try await asEmbassy.unary(
                CaseExchange.pushUpdate,
                update(
                    .note(
                        {
                            var n = Note(); n.text = "x"; return n
                        }()
                    ),
                    sequence: 1,
                    caseID: UUID().uuidString.lowercased()
                )
            )
        }
        // Malformed request: the field is named, its value is not echoed.
        var malformed = Make.request(persons: 1, from: "embassy-id")
        malformed.persons[0].phone = "0812-SECRET"
        try await refused(.invalidArgument, "persons[0].phone") {
            _ = try await asEmbassy.unary(CaseExchange.submitRequest, malformed)
        }
        #expect(try !federation.sql("ncct", "SELECT detail FROM audit").joined().contains("SECRET"))

        // Illegal transition, at NCCT's own console: received cannot jump to completed.
        let illegal = try await #require(throws: RPCError.self) {
            try await ncct.unary(Console.applyChange, Make.status(caseID, .completed))
        }
        #expect(illegal.code == .failedPrecondition)
        #expect(illegal.message == "a case cannot go from received to completed")
        // ...and over the wire: withdrawing a case NCCT has completed.
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .completed))
        let withdrawal = update(.withdrawal(Withdrawal()), sequence: 1)
        let late = try await #require(throws: RPCError.self) {
            _ = try await asEmbassy.unary(CaseExchange.pushUpdate, withdrawal)
        }
        #expect(late.code == .failedPrecondition)
        #expect(late.message == "a case cannot go from completed to withdrawn")
        #expect(late.metadata["casebridge-expected-sequence"] == nil)

        // The refusal took sequence 1 (no dead end): the same update again gets the same answer, another
        // update claiming 1 is ALREADY_EXISTS, and sequence 2 applies.
        let replayed = await captureError { _ = try await asEmbassy.unary(CaseExchange.pushUpdate, withdrawal) }
        #expect(
            replayed?.code == .failedPrecondition && replayed?.message == late.message,
            "\(String(describing: replayed))"
        )
        let thanks = Note.with("thanks")
        let claim = await captureError {
            _ = try await asEmbassy.unary(CaseExchange.pushUpdate, update(.note(thanks), sequence: 1))
        }
        #expect(claim?.code == .alreadyExists, "\(String(describing: claim))")
        #expect(claim?.message.contains("already taken by update \(withdrawal.updateID)") == true)
        let note = update(.note(thanks), sequence: 2)
        let first = try await asEmbassy.unary(CaseExchange.pushUpdate, note)
        let again = try await asEmbassy.unary(CaseExchange.pushUpdate, note)
        #expect(!first.alreadyApplied)
        #expect(again.alreadyApplied)
        #expect(
            try federation.sql("ncct", "SELECT COUNT(*) FROM case_history WHERE update_id = '\(note.updateID)'") == [
                "1"
            ]
        )
        // The same update id with other content is not a duplicate.
        var altered = note
        altered.change = .note(Note.with("something else"))
        let reused = await captureError { _ = try await asEmbassy.unary(CaseExchange.pushUpdate, altered) }
        #expect(
            reused?.code == .alreadyExists && reused?.message.contains("other content") == true,
            "\(String(describing: reused))"
        )
        // Sequences the sender gave up on are skipped when it names them; an unnamed gap is still refused.
        var skipping = update(.note(Note.with("after two lost")), sequence: 5)
        skipping.skippedSequences = [3]
        let unnamed = await captureError { _ = try await asEmbassy.unary(CaseExchange.pushUpdate, skipping) }
        #expect(unnamed?.metadata["casebridge-expected-sequence"] == "4")
        skipping.skippedSequences = [3, 4]
        #expect(try await asEmbassy.unary(CaseExchange.pushUpdate, skipping).sequence == 5)

        // NCCT's staff see what was refused and skipped, apart from what was applied.
        var get = GetCaseRequest()
        get.caseID = caseID
        let view = try await ncct.unary(Console.getCase, get)
        #expect(view.history.filter { $0.actorNode == "embassy-id" }.map(\.sequence) == [2, 5])
        #expect(
            view.refusedUpdates.map { "\($0.sequence) \($0.code)" } == [
                "1 FAILED_PRECONDITION", "3 SKIPPED", "4 SKIPPED",
            ]
        )
        #expect(view.refusedUpdates.first?.update?.updateID == withdrawal.updateID)
        #expect(view.status == .completed)

        #expect(try await ncct.unary(Console.verifyAudit, VerifyAuditRequest()).intact)
        federation.stopAll()
    }
}

extension Note {
    static func with(_ text: String) -> Note {
        var note = Note()
        note.text = text
        return note
    }
}

/// The RPCError a call throws, or nil when it succeeds or throws something else.
func captureError(_ call: () async throws -> Void) async -> RPCError? {
    do { try await call() } catch let error as RPCError { return error } catch {}
    return nil
}
