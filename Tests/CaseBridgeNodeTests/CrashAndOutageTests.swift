import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

@Suite("Crash safety and outages", .serialized)
struct CrashAndOutageTests {
    /// Submits `count` one-person requests through an embassy's console, 16 at a time.
    func submit(_ count: Int, via console: RPCChannel) async throws -> [String] {
        try await withThrowingTaskGroup(of: [String].self) { group in
            for lane in 0..<16 {
                group.addTask {
                    var ids: [String] = []
                    for _ in stride(from: lane, to: count, by: 16) {
                        ids.append(try await console.unary(Console.submit, Make.request(persons: 1)).caseID)
                    }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    @Test(
        "NCCT killed during 2,000 submissions, an embassy down during 100 updates: nothing lost, nothing twice"
    )
    func crashAndOutage() async throws {
        let federation = try TestFederation()
        for node in federation.nodes { try await federation.start(node) }
        let embassyA = federation.console("embassy-id"), embassyB = federation.console("embassy-cn")
        defer { embassyA.close(); embassyB.close() }

        // 1,000 requests from each embassy; NCCT is killed once it has received 300, then restarted.
        async let fromA = submit(1000, via: embassyA)
        async let fromB = submit(1000, via: embassyB)
        #expect(
            try await federation.eventually(60) {
                Int(try federation.sql("ncct", "SELECT COUNT(*) FROM inbox").first ?? "0")! >= 300
            }
        )
        federation.kill("ncct")
        let atKill = Int(try federation.sql("ncct", "SELECT COUNT(*) FROM inbox").first ?? "0")!
        try await Task.sleep(for: .milliseconds(500))
        try await federation.start("ncct")
        let submitted = Set(try await fromA + fromB)
        #expect(submitted.count == 2000)
        #expect(atKill < 2000, "NCCT was killed after everything arrived; the test proves nothing")

        #expect(
            try await federation.eventually(120) {
                try federation.sql("ncct", "SELECT COUNT(*) FROM inbox") == ["2000"]
            }
        )
        #expect(
            try federation.sql("ncct", "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM inbox WHERE kind = 1") == [
                "2000|2000"
            ]
        )
        #expect(Set(try federation.sql("ncct", "SELECT case_id FROM cases")) == submitted)
        for embassy in ["embassy-id", "embassy-cn"] {
            #expect(
                try await federation.eventually(30) {
                    try federation.sql(
                        embassy,
                        "SELECT COUNT(*) FROM outbox WHERE state != \(DeliveryState.delivered.rawValue)"
                    ) == ["0"]
                }
            )
            #expect(
                try federation.sql(embassy, "SELECT COUNT(*) FROM cases WHERE status = \(CaseStatus.received.rawValue)")
                    == ["1000"]
            )
        }

        // Embassy B is stopped; NCCT makes 100 changes to ten of B's cases while it is away.
        federation.stop("embassy-cn")
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        let cases = Array(
            try federation.sql(
                "ncct",
                "SELECT case_id FROM cases WHERE requesting_node = 'embassy-cn' ORDER BY case_id LIMIT 10"
            )
        )
        var made: [String] = []
        for caseID in cases {
            made.append(try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged)).updateID)
            for n in 1...9 {
                made.append(try await ncct.unary(Console.applyChange, Make.note(caseID, "follow-up \(n)")).updateID)
            }
        }
        #expect(made.count == 100)
        // Several backoff rounds pass with B unreachable.
        #expect(
            try await federation.eventually(30) {
                Int(
                    try federation.sql("ncct", "SELECT MAX(attempts) FROM outbox WHERE peer_node = 'embassy-cn'").first
                        ?? "0"
                )! >= 3
            }
        )
        // The operator sees since when B has been failing, and that A is fine.
        let down = try federation.cli(["status"], node: "ncct", as: "op")
        let rows = down.stdout.split(separator: "\n")
        #expect(rows.contains { $0.hasPrefix("embassy-cn") && $0.contains("NO, since") }, "\(down.stdout)")
        #expect(rows.contains { $0.hasPrefix("embassy-id") && $0.contains(" yes ") }, "\(down.stdout)")
        try await federation.start("embassy-cn")
        /// What is left for B, should it not all arrive, and the end of a node's log: for the failure message.
        func lastLog(_ node: String) -> Substring { federation.log(node).suffix(3000) }
        func stuck() -> [String] {
            let query = "SELECT state, attempts, last_error FROM outbox WHERE peer_node = 'embassy-cn'"
            return (try? federation.sql("ncct", query + " AND state != \(DeliveryState.delivered.rawValue) LIMIT 5"))
                ?? []
        }
        // Generous: under a loaded CI machine the catch-up and the 100 deliveries share two cores.
        #expect(
            try await federation.eventually(120) {
                try federation.sql(
                    "ncct",
                    "SELECT COUNT(*) FROM outbox WHERE peer_node = 'embassy-cn'"
                        + " AND state != \(DeliveryState.delivered.rawValue)"
                ) == ["0"]
            },
            "undelivered: \(stuck())\nNCCT's log: \(lastLog("ncct"))\nB's log: \(lastLog("embassy-cn"))"
        )
        // Every update is in B's tracker exactly once, and each case's in the order NCCT made them
        // (cases are delivered side by side, so only the order within a case is promised).
        let applied = try federation.sql(
            "embassy-cn",
            "SELECT update_id FROM case_history WHERE actor_node = 'ncct' ORDER BY position"
        )
        #expect(applied.sorted() == made.sorted())
        for (index, caseID) in cases.enumerated() {
            let inCase = "FROM case_history WHERE case_id = '\(caseID)' ORDER BY position"
            #expect(
                try federation.sql("embassy-cn", "SELECT update_id \(inCase)")
                    == Array(made[(index * 10)..<(index * 10 + 10)])
            )
            #expect(try federation.sql("embassy-cn", "SELECT sequence \(inCase)") == (1...10).map(String.init))
        }
        #expect(
            try federation.sql(
                "embassy-cn",
                "SELECT COUNT(*) FROM cases WHERE status = \(CaseStatus.acknowledged.rawValue)"
            ) == ["10"]
        )

        for node in federation.nodes {
            let console = federation.console(node)
            let audit = try await console.unary(Console.verifyAudit, VerifyAuditRequest())
            #expect(audit.intact, "\(node): \(audit.detail)")
            console.close()
        }
        federation.stopAll()
    }

    @Test(
        "a withdrawal crossing a decline: both refused, nothing blocked, staff settle it, trackers agree",
        arguments: ["ncct", "embassy-id"]
    )
    func crossedWithdrawalAndDecline(settledBy settler: String) async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let first = federation.console("embassy-id")
        let caseX = try await first.unary(Console.submit, Make.request(persons: 1)).caseID
        first.close()
        let ncct0 = federation.console("ncct")
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["1"] })
        _ = try await ncct0.unary(Console.applyChange, Make.status(caseX, .acknowledged))
        ncct0.close()
        func status(_ node: String) throws -> [String] {
            try federation.sql(node, "SELECT status FROM cases WHERE case_id = '\(caseX)'")
        }
        #expect(try await federation.eventually { try status("embassy-id") == ["\(CaseStatus.acknowledged.rawValue)"] })

        // Apart: NCCT declines the case while the embassy is down...
        federation.stop("embassy-id")
        let ncct = federation.console("ncct")
        _ = try await ncct.unary(Console.applyChange, Make.status(caseX, .declined))
        ncct.close()
        federation.stop("ncct")
        // ...and the embassy, not knowing, withdraws it, adds a note, and files a new case.
        try await federation.start("embassy-id")
        let embassy = federation.console("embassy-id")
        _ = try await embassy.unary(Console.applyChange, Make.update(caseX, .withdrawal(Withdrawal())))
        _ = try await embassy.unary(Console.applyChange, Make.note(caseX, "family reports she is home"))
        let caseY = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        embassy.close()
        try await federation.start("ncct")

        // Both queues drain: each side refuses the change that no longer fits and takes the note; the new case arrives.
        let settled =
            "SELECT COUNT(*) FROM outbox WHERE state IN "
            + "(\(DeliveryState.queued.rawValue), \(DeliveryState.retryWaiting.rawValue))"
        #expect(
            try await federation.eventually(30) {
                try federation.sql("embassy-id", settled) == ["0"] && federation.sql("ncct", settled) == ["0"]
            }
        )
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(caseY)'") == ["1"])
        let embassyOut = try federation.sql(
            "embassy-id",
            "SELECT state, last_error FROM outbox WHERE case_id = '\(caseX)' AND kind = 2 ORDER BY position"
        )
        #expect(
            embassyOut == [
                "\(DeliveryState.rejected.rawValue)|FAILED_PRECONDITION: a case cannot go from declined to withdrawn",
                "\(DeliveryState.delivered.rawValue)|",
            ],
            "\(embassyOut)"
        )
        let ncctOut = try federation.sql(
            "ncct",
            "SELECT state, last_error FROM outbox WHERE case_id = '\(caseX)' ORDER BY position"
        )
        #expect(
            ncctOut == [
                "\(DeliveryState.delivered.rawValue)|",
                "\(DeliveryState.rejected.rawValue)|FAILED_PRECONDITION: a case cannot go from withdrawn to declined",
            ],
            "\(ncctOut)"
        )
        #expect(try status("ncct") == ["\(CaseStatus.declined.rawValue)"])
        #expect(try status("embassy-id") == ["\(CaseStatus.withdrawn.rawValue)"])

        // Each node shows what it refused; the note went through.
        let views = try await ["ncct", "embassy-id"].asyncMap { node in
            let console = federation.console(node)
            defer { console.close() }
            var get = GetCaseRequest()
            get.caseID = caseX
            return try await console.unary(Console.getCase, get)
        }
        #expect(views[0].refusedUpdates.map { "\($0.actorNode) \($0.code)" } == ["embassy-id FAILED_PRECONDITION"])
        #expect(views[1].refusedUpdates.map { "\($0.actorNode) \($0.code)" } == ["ncct FAILED_PRECONDITION"])
        #expect(
            views[0].history.contains { if case .note? = $0.change { $0.actorNode == "embassy-id" } else { false } }
        )

        // Staff settle it: a note, then entered_in_error, from either side; both trackers converge.
        let console = federation.console(settler)
        defer { console.close() }
        _ = try await console.unary(Console.applyChange, Make.note(caseX, "crossed: withdrawn here, declined there"))
        _ = try await console.unary(Console.applyChange, Make.status(caseX, .enteredInError))
        let closed = ["\(CaseStatus.enteredInError.rawValue)"]
        #expect(try await federation.eventually(30) { try status("ncct") == closed && status("embassy-id") == closed })
        #expect(
            try await federation.eventually(30) {
                try federation.sql("embassy-id", settled) == ["0"] && federation.sql("ncct", settled) == ["0"]
            }
        )
        let notes = "SELECT COUNT(*) FROM case_history WHERE case_id = '\(caseX)' AND refusal_code = 0"
        #expect(try federation.sql("ncct", notes) == federation.sql("embassy-id", notes))
        federation.stopAll()
    }

    @Test("an embassy restored from an old backup takes back everything it lost, in order, and new cases keep flowing")
    func restoredFromBackup() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        var embassy = federation.console("embassy-id")
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        let caseA = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        let caseB = try await embassy.unary(Console.submit, Make.request(persons: 1)).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["2"] })
        for caseID in [caseA, caseB] {
            _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        }
        let pending = "SELECT COUNT(*) FROM outbox WHERE state != \(DeliveryState.delivered.rawValue)"
        func drained() async throws -> Bool {
            try await federation.eventually(30) {
                try federation.sql("ncct", pending) == ["0"] && federation.sql("embassy-id", pending) == ["0"]
            }
        }
        #expect(try await drained())

        // The backup: the embassy's data folder as it is now.
        embassy.close()
        federation.stop("embassy-id")
        let data = URL(fileURLWithPath: federation.database("embassy-id")).deletingLastPathComponent()
        let backup = federation.folder.appendingPathComponent("embassy-backup")
        try FileManager.default.copyItem(at: data, to: backup)
        try await federation.start("embassy-id")
        embassy = federation.console("embassy-id")

        // After the backup: NCCT works both cases, the embassy adds a note and files a third case.
        _ = try await ncct.unary(Console.applyChange, Make.step(caseA, .locating))
        _ = try await ncct.unary(Console.applyChange, Make.outcomes(caseA, ["P0": .rescued, "P1": .notFound]))
        var question = InformationRequest()
        question.questions = ["Which building?"]
        _ = try await ncct.unary(Console.applyChange, Make.update(caseB, .informationRequest(question)))
        _ = try await embassy.unary(Console.applyChange, Make.note(caseA, "the family confirms the address"))
        let caseC = try await embassy.unary(Console.submit, Make.request(persons: 3)).caseID
        #expect(try await federation.eventually { try federation.sql("ncct", "SELECT COUNT(*) FROM cases") == ["3"] })
        _ = try await ncct.unary(Console.applyChange, Make.status(caseC, .acknowledged))
        #expect(try await drained())

        // The disk fails; the embassy is restored from the backup, which knows nothing of the above.
        embassy.close()
        federation.stop("embassy-id")
        try FileManager.default.removeItem(at: data)
        try FileManager.default.copyItem(at: backup, to: data)
        try await federation.start("embassy-id")
        embassy = federation.console("embassy-id")
        defer { embassy.close() }

        // It takes back what NCCT had delivered (and its own note, and case C), in NCCT's order...
        func picture(_ node: String) throws -> [String] {
            try federation.sql(
                node,
                """
                SELECT c.case_id || ' ' || c.status || ' ' || c.step || ' ' ||
                       (SELECT group_concat(status, ',') FROM
                            (SELECT status FROM persons p WHERE p.case_id = c.case_id ORDER BY position)) || ' ' ||
                       (SELECT group_concat(update_id, ',') FROM
                            (SELECT update_id FROM case_history h WHERE h.case_id = c.case_id
                             ORDER BY actor_node, sequence))
                FROM cases c ORDER BY c.case_id
                """
            )
        }
        let caughtUp = try await federation.eventually(30) { try picture("embassy-id") == picture("ncct") }
        #expect(caughtUp, "\((try? picture("embassy-id")) ?? []) vs \((try? picture("ncct")) ?? [])")
        #expect(
            try federation.sql("embassy-id", "SELECT status FROM cases WHERE case_id = '\(caseB)'") == [
                "\(CaseStatus.infoRequested.rawValue)"
            ]
        )
        #expect(try federation.sql("embassy-id", "SELECT event FROM audit WHERE event = 'case.caught_up'").count == 3)

        // ...and carries on: its next update to case A takes the next number, and a new case arrives.
        let next = try await embassy.unary(Console.applyChange, Make.note(caseA, "after the restore"))
        #expect(next.sequence == 2)
        let caseD = try await embassy.unary(Console.submit, Make.request(persons: 1)).caseID
        #expect(try await drained())
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(caseD)'") == ["1"])
        #expect(
            try federation.sql("ncct", "SELECT COUNT(*) FROM case_history WHERE update_id = '\(next.updateID)'") == [
                "1"
            ]
        )
        #expect(try await federation.eventually { try picture("embassy-id") == picture("ncct") })
        federation.stopAll()
    }

    @Test("an embassy that lost everything takes back more cases than a page holds, sending new ones meanwhile")
    func catchUpPagesAndNeverHoldsDeliveryBack() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        // Three cases a page: hundreds of pages, and cases that share a millisecond across pages.
        try federation.configure("embassy-id") { settings in
            var delivery = settings["delivery"] as! [String: Any]
            delivery["catch_up_page"] = 3
            settings["delivery"] = delivery
        }
        try await federation.start("ncct")

        // What NCCT holds of the embassy's: many cases, filed as the embassy's node (its data folder
        // is then lost: the embassy starts with none of them).
        let asEmbassy = try federation.peerChannel(to: "ncct", as: "embassy-id")
        let held = 1_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for batch in 0..<10 {
                group.addTask {
                    for _ in 0..<(held / 10) {
                        var request = Make.request(persons: 1, from: "embassy-id")
                        request.originReference = "BATCH-\(batch)"
                        _ = try await asEmbassy.unary(CaseExchange.submitRequest, request, timeout: .seconds(10))
                    }
                }
            }
            try await group.waitForAll()
        }
        asEmbassy.close()
        let ncct = federation.console("ncct")
        defer { ncct.close() }
        let acknowledged = try await ncct.unary(Console.findCases, FindCasesRequest()).cases[0].caseID
        _ = try await ncct.unary(Console.applyChange, Make.status(acknowledged, .acknowledged))

        try await federation.start("embassy-id")
        let embassy = federation.console("embassy-id")
        defer { embassy.close() }
        let urgent = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        let arrived = try await federation.eventually {
            try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(urgent)'") == ["1"]
        }
        #expect(arrived)
        // The new request did not wait for the taking back to finish: read off the embassy's audit
        // order (its delivery against the cases taken back before it), not off when a poll saw it.
        let delivered = "SELECT seq FROM audit WHERE event = 'message.delivered' AND subject = '\(urgent)'"
        #expect(try await federation.eventually { try federation.sql("embassy-id", delivered).count == 1 })
        let takenBeforeDelivery = try federation.sql(
            "embassy-id",
            """
            SELECT COUNT(*) FROM audit WHERE event = 'case.caught_up' AND seq < (\(delivered))
            """
        )
        #expect(
            Int(takenBeforeDelivery[0]).map { $0 < held } == true,
            "the new request went out after \(takenBeforeDelivery) of \(held) cases were taken back"
        )

        // Every case comes back, once, with what NCCT did to it.
        let all = try await federation.eventually(120) {
            try federation.sql("embassy-id", "SELECT COUNT(*) FROM cases") == ["\(held + 1)"]
        }
        #expect(all, "\((try? federation.sql("embassy-id", "SELECT COUNT(*) FROM cases")) ?? [])")
        #expect(
            try federation.sql("embassy-id", "SELECT status FROM cases WHERE case_id = '\(acknowledged)'") == [
                "\(CaseStatus.acknowledged.rawValue)"
            ]
        )
        #expect(
            try federation.sql("embassy-id", "SELECT COUNT(*) FROM audit WHERE event = 'case.caught_up'") == ["\(held)"]
        )
        federation.stopAll()
    }
}

extension Array where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
