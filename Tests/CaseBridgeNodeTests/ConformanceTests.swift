import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// `casebridge conformance` against real nodes: it passes against this implementation, and the
/// test cases it leaves stay out of the staff's views.
@Suite("Conformance kit", .serialized)
struct ConformanceTests {
    func conformance(
        _ federation: TestFederation,
        against node: String,
        as role: String,
        from local: String
    ) throws -> ProcessResult {
        try run(
            casebridgeBinary,
            [
                "conformance", "127.0.0.1:\(federation.ports[node]!)", "--as", role,
                "--config", federation.configPath(local).path,
            ]
        )
    }

    func failures(_ result: ProcessResult) -> [Substring] {
        result.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL ") || $0.hasPrefix("NOT RUN ") }
    }

    @Test(
        "as an embassy against NCCT, and as NCCT against an embassy: every check passes; staff never see the test cases"
    )
    func passesAgainstOurNode() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }

        let asEmbassy = try conformance(federation, against: "ncct", as: "embassy", from: "embassy-id")
        #expect(asEmbassy.status == 0, "\(asEmbassy.stdout)\(asEmbassy.stderr)")
        #expect(failures(asEmbassy).isEmpty, "\(asEmbassy.stdout)")
        for rule in [
            "submit.idempotent", "submit.same-id-other-content", "update.refused-takes-number", "update.after-refusal",
            "update.skipped", "update.gap", "read.byte-for-byte", "submit.large-batch",
        ] {
            #expect(asEmbassy.stdout.contains("PASS \(rule):"), "\(rule) missing: \(asEmbassy.stdout)")
        }

        // Without a test case filed by the embassy, the NCCT side cannot run: it says so, and fails.
        let early = try conformance(federation, against: "embassy-id", as: "ncct", from: "ncct")
        #expect(early.status == 1)
        #expect(early.stdout.contains("NOT RUN test-case: the embassy has no fresh test case"), "\(early.stdout)")
        let filed = try run(
            casebridgeBinary,
            [
                "submit", "--test", "--kind", "trace",
                "--config", federation.configPath("embassy-id").path,
            ],
            environment: federation.cliEnvironment(),
            input: "Conformance Test\n"
        )
        #expect(filed.status == 0, "\(filed.stderr)")
        let asNCCT = try conformance(federation, against: "embassy-id", as: "ncct", from: "ncct")
        #expect(asNCCT.status == 0, "\(asNCCT.stdout)\(asNCCT.stderr)")
        #expect(failures(asNCCT).isEmpty, "\(asNCCT.stdout)")

        // Staff at both nodes see none of it.
        for node in ["ncct", "embassy-id"] {
            let list = try run(
                casebridgeBinary,
                ["case", "list", "--config", federation.configPath(node).path],
                environment: federation.cliEnvironment()
            )
            #expect(list.stdout.contains("No cases") || !list.stdout.contains("trace"), "\(node): \(list.stdout)")
            let inbox = try run(
                casebridgeBinary,
                ["inbox", "--config", federation.configPath(node).path],
                environment: federation.cliEnvironment()
            )
            #expect(inbox.stdout.contains("The inbox is empty"), "\(node): \(inbox.stdout)")
        }
        #expect(try Int(federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE test = 1").first!)! >= 3)
        federation.stopAll()
    }

    /// Each broken rule of the independent fake NCCT, and the check that must name it.
    static let brokenRules = [
        ("", ""), ("submit-idempotency", "submit.idempotent"), ("reused-request-id", "submit.same-id-other-content"),
        ("unknown-fields", "read.byte-for-byte"), ("update-idempotency", "update.idempotent"),
        ("gap-trailer", "update.gap"),
        ("refusal-blocks", "update.after-refusal"), ("skipped", "update.skipped"),
        ("entered-in-error", "update.entered-in-error"), ("role", "update.outside-role"),
    ]

    @Test(
        "against an NCCT written from proto/ alone (grpcio): passes; with one rule broken, fails naming it",
        arguments: brokenRules
    )
    func namesTheBrokenRule(broken: String, rule: String) throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        let certs = TestFederation.certs
        let peer = try BackgroundProcess(
            "python3",
            [
                repositoryRoot.appendingPathComponent("Tests/Peers/fake_ncct.py").path,
                "--ca", certs.appendingPathComponent("ca.pem").path,
                "--cert", certs.appendingPathComponent("nodes/ncct.pem").path,
                "--key", certs.appendingPathComponent("nodes/ncct.key").path,
                "--caller", "embassy-id",
            ] + (broken.isEmpty ? [] : ["--break", broken])
        )
        defer { peer.stop() }
        let port = try #require(peer.waitForLine(prefix: "PORT ")).trimmingCharacters(in: .whitespaces)
        let result = try run(
            casebridgeBinary,
            [
                "conformance", "127.0.0.1:\(port)", "--as", "embassy", "--expect", "ncct",
                "--config", federation.configPath("embassy-id").path,
            ]
        )
        if broken.isEmpty {
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(failures(result).isEmpty, "\(result.stdout)")
        } else {
            #expect(result.status == 1, "\(result.stdout)")
            #expect(failures(result).contains { $0.hasPrefix("FAIL \(rule):") }, "\(broken): \(result.stdout)")
            #expect(result.stderr.contains("failed"), "\(result.stderr)")
        }
    }

    @Test("against an NCCT written with grpc-go from proto/ alone: every check passes")
    func passesAgainstGrpcGo() throws {
        let folder = repositoryRoot.appendingPathComponent(".build-go").path
        let built = try run(repositoryRoot.appendingPathComponent("Tests/Peers/build-go-peer").path, [folder])
        try #require(built.status == 0, "\(built.stderr)")
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        let certs = TestFederation.certs
        let peer = try BackgroundProcess(
            folder + "/fakencct",
            [
                "-ca", certs.appendingPathComponent("ca.pem").path,
                "-cert", certs.appendingPathComponent("nodes/ncct.pem").path,
                "-key", certs.appendingPathComponent("nodes/ncct.key").path,
                "-caller", "embassy-id",
            ]
        )
        defer { peer.stop() }
        let port = try #require(peer.waitForLine(prefix: "PORT ")).trimmingCharacters(in: .whitespaces)
        let result = try run(
            casebridgeBinary,
            [
                "conformance", "127.0.0.1:\(port)", "--as", "embassy", "--expect", "ncct",
                "--config", federation.configPath("embassy-id").path,
            ]
        )
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(failures(result).isEmpty, "\(result.stdout)")
        #expect(result.stdout.contains("PASS read.byte-for-byte:"), "\(result.stdout)")
    }
}
