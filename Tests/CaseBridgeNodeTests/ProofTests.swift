import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Testing
import TestSupport

/// Signed receipts: what NCCT acknowledged can be proved by the embassy to anyone holding the
/// federation CA certificate, with casebridge or with openssl alone; a tampered bundle is rejected.
@Suite("Signed receipts and proof bundles", .serialized)
struct ProofTests {
    @Test("a proof bundle verifies with verify-proof and with openssl; a tampered one does not")
    func proofBundle() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id"])
        for node in federation.nodes { try await federation.start(node) }
        let embassy = federation.console("embassy-id"), ncct = federation.console("ncct")
        defer { [embassy, ncct].forEach { $0.close() } }
        let caseID = try await embassy.unary(Console.submit, Make.request(persons: 2)).caseID
        _ = try await embassy.unary(Console.applyChange, Make.note(caseID, "the family has a photo"))
        let kept = "SELECT COUNT(*) FROM receipts WHERE case_id = '\(caseID)'"
        #expect(try await federation.eventually { try federation.sql("embassy-id", kept) == ["2"] })
        // NCCT's acknowledgement reaches the embassy, which signs its receipt for NCCT.
        _ = try await ncct.unary(Console.applyChange, Make.status(caseID, .acknowledged))
        #expect(try await federation.eventually { try federation.sql("ncct", kept) == ["1"] })

        let folder = try makeTemporaryFolder("proof")
        defer { try? FileManager.default.removeItem(at: folder) }
        let bundle = folder.appendingPathComponent("bundle")
        let made = try federation.cli(["case", "proof", caseID, "--to", bundle.path], node: "embassy-id")
        #expect(made.status == 0 && made.stdout.contains("Wrote 2 signed receipts"), "\(made.stderr)")
        // The messages hold personal data: the bundle is the owner's alone.
        let modes = try
            ([bundle.path]
            + FileManager.default.contentsOfDirectory(atPath: bundle.path).map {
                bundle.appendingPathComponent($0).path
            }).map { try FileManager.default.attributesOfItem(atPath: $0)[.posixPermissions] as? Int }
        #expect(modes.first == 0o700 && modes.dropFirst().allSatisfy { $0 == 0o600 }, "\(modes)")
        let ca = TestFederation.certs.appendingPathComponent("ca.pem").path
        let checked = try run(casebridgeBinary, ["verify-proof", bundle.path, "--ca", ca])
        #expect(checked.status == 0, "\(checked.stdout) \(checked.stderr)")
        #expect(checked.stdout.contains("01-request-") && checked.stdout.contains("ncct acknowledged it"))
        #expect(checked.stdout.contains("All 2 receipts hold"))

        // openssl alone, with the CA certificate: each signature holds, and names the message.
        let names = try FileManager.default.contentsOfDirectory(atPath: bundle.path)
            .filter { $0.hasSuffix(".statement") }.map { String($0.dropLast(".statement".count)) }.sorted()
        #expect(names.count == 2)
        for name in names {
            let openssl = try run(
                "openssl",
                [
                    "cms", "-verify", "-binary", "-inform", "DER", "-in",
                    bundle.appendingPathComponent(
                        "\(name).signature.der"
                    ).path, "-content", bundle.appendingPathComponent("\(name).statement").path, "-CAfile", ca,
                    "-purpose", "any", "-out", "/dev/null",
                ]
            )
            #expect(openssl.status == 0, "\(openssl.stderr)")
        }

        // Tampered: one byte of a statement (the signature no longer holds), or another message.
        let statement = bundle.appendingPathComponent("\(names[0]).statement")
        var bytes = try Data(contentsOf: statement)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: statement)
        let tampered = try run(casebridgeBinary, ["verify-proof", bundle.path, "--ca", ca])
        #expect(tampered.status == 1 && tampered.stdout.contains("FAILED  \(names[0])"), "\(tampered.stdout)")
        let openssl = try run(
            "openssl",
            [
                "cms", "-verify", "-binary", "-inform", "DER", "-in",
                bundle.appendingPathComponent("\(names[0]).signature.der").path, "-content", statement.path,
                "-CAfile", ca, "-purpose", "any", "-out", "/dev/null",
            ]
        )
        #expect(openssl.status != 0)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: statement)
        try Data("another message".utf8).write(to: bundle.appendingPathComponent("\(names[1]).message"))
        let swapped = try run(casebridgeBinary, ["verify-proof", bundle.path, "--ca", ca])
        #expect(swapped.status == 1 && swapped.stdout.contains("SHA-256 differs"), "\(swapped.stdout)")
        // Against another CA, nothing holds.
        let otherCA = folder.appendingPathComponent("other-ca")
        let other = try run(casebridgeBinary, ["certs", "create-ca", "--out", otherCA.path, "--name", "Another CA"])
        #expect(other.status == 0, "\(other.stderr)")
        try Data(bytes).write(to: statement)  // the statement whole again: only the CA is wrong now
        let foreign = try run(
            casebridgeBinary,
            ["verify-proof", bundle.path, "--ca", otherCA.appendingPathComponent("ca.pem").path]
        )
        #expect(foreign.status == 1 && foreign.stdout.contains("FAILED  \(names[0])"), "\(foreign.stdout)")
        federation.stopAll()
    }
}
