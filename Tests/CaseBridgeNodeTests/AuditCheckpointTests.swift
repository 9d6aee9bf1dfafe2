import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// The audit log as someone holding only its database file would attack it: entries cut off the
/// end, or one changed and the chain recomputed. Both walk clean; the signed checkpoints, the
/// node's own and the one its peer holds, give them away.
@Suite("Audit checkpoints", .serialized)
struct AuditCheckpointTests {
    @Test("a truncated audit log and a recomputed chain are both caught, here and by the peer holding a checkpoint")
    func truncationAndRewriting() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try federation.configure(node) { $0["audit_checkpoint_s"] = 1 } }
        for node in federation.nodes { try await federation.start(node) }
        for _ in 0..<2 { #expect(try await federation.exchangeACase(from: "embassy-id")) }
        func held() throws -> Int {
            let query = "SELECT MAX(entries) FROM peer_checkpoints WHERE node = 'embassy-id'"
            let newest = try federation.sql("ncct", query)
            return Int(newest.first ?? "") ?? 0
        }
        // NCCT holds a signed checkpoint of the embassy's log, and the embassy one of NCCT's.
        #expect(try await federation.eventually { try held() >= 12 })
        #expect(
            try await federation.eventually {
                try federation.sql("embassy-id", "SELECT COUNT(*) FROM peer_checkpoints WHERE node = 'ncct'") != ["0"]
            }
        )
        let verified = try federation.cli(["audit", "verify"], node: "embassy-id", as: "op")
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("signed checkpoints of this node match"), "\(verified.stdout)")
        #expect(verified.stdout.contains("ncct holds a checkpoint of"), "\(verified.stdout)")

        // A graceful stop leaves the database file complete: keep it to tamper with twice.
        federation.stop("embassy-id")
        let database = federation.database("embassy-id")
        let pristine = database + ".pristine"
        try FileManager.default.copyItem(atPath: database, toPath: pristine)
        func tamper(_ arguments: [String]) throws {
            let script = repositoryRoot.appendingPathComponent("Tests/Peers/tamper_audit.py").path
            let result = try run("python3", [script, database] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
        }

        // 1. Cut short below what NCCT holds, with the node's own checkpoints gone too.
        try tamper(["truncate", "\(try held() / 3)"])
        try await federation.start("embassy-id")
        let truncated = try federation.cli(["audit", "verify"], node: "embassy-id", as: "op")
        #expect(truncated.status == 1, "\(truncated.stdout)")
        #expect(
            truncated.stderr.contains("NOT intact") && truncated.stderr.contains("cut short"),
            "\(truncated.stderr)"
        )
        // NCCT keeps what it held, refuses the shorter log's checkpoints and records why.
        #expect(
            try await federation.eventually {
                try federation.sql(
                    "ncct",
                    "SELECT COUNT(*) FROM audit WHERE event = 'call.refused' AND actor = 'embassy-id'"
                        + " AND detail LIKE '%LodgeCheckpoint%cut short%'"
                ) != ["0"]
            }
        )
        let status = try federation.cli(["status"], node: "embassy-id", as: "op")
        #expect(status.stdout.contains("WARNING: audit log: ncct refused"), "\(status.stdout)")
        federation.stop("embassy-id")

        // 2. The untouched copy back, then one entry changed and every hash after it recomputed.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        try FileManager.default.copyItem(atPath: pristine, toPath: database)
        try tamper(["rewrite", "3"])
        // The doctor (node stopped) checks the node's own checkpoints against the log.
        let doctor = try federation.cli(["doctor"], node: "embassy-id", as: "op")
        #expect(doctor.status == 1, "\(doctor.stdout)")
        #expect(
            doctor.stdout.contains("PROBLEM  audit chain:") && doctor.stdout.contains("rewritten"),
            "\(doctor.stdout)"
        )
        try await federation.start("embassy-id")
        let rewritten = try federation.cli(["audit", "verify"], node: "embassy-id", as: "op")
        #expect(rewritten.status == 1, "\(rewritten.stdout)")
        #expect(rewritten.stderr.contains("no longer has that hash: the log was rewritten"), "\(rewritten.stderr)")
        #expect(rewritten.stdout.contains("ncct: MISMATCH"), "\(rewritten.stdout)")
        #expect(
            try federation.sql("embassy-id", "SELECT COUNT(*) FROM audit WHERE event = 'audit.checkpoint.mismatch'")
                != ["0"]
        )
        for node in federation.nodes { #expect(federation.isRunning[node] == true) }
        federation.stopAll()
    }
}
