import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// Revocation as an operator runs it: the CA's own index and CRLs from `casebridge certs`, checked
/// with the openssl command, applied by real nodes; and a warning before the CRL goes stale.
@Suite("Revocation", .serialized)
struct RevocationTests {
    @Test("certs revoke lists the node in a new CRL; nodes refuse it; a CRL near its end is warned about")
    func revokeAndWarn() async throws {
        let nodes = ["ncct", "embassy-id", "embassy-cn"]
        let authority = try TestAuthority(nodes: nodes, crlDays: 5)
        let (folder, ca) = (authority.folder, authority.ca)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certs = TestAuthority.certs
        #expect(authority.firstCRL.stdout.contains("0 revoked"), "\(authority.firstCRL.stdout)")

        let federation = try TestFederation(nodes: nodes, certs: folder)
        for node in nodes { try await federation.start(node) }
        // Five days before the CRL goes stale, status says so and says what to do.
        let status = try federation.cli(["status"], node: "ncct", as: "op")
        #expect(status.stdout.contains("WARNING: the CRL ends on"), "\(status.stdout)")
        #expect(status.stdout.contains("in 5 days") && status.stdout.contains("casebridge certs crl"))
        #expect(federation.log("ncct").contains("the CRL ends on"))

        // embassy-cn files a case while all is well: it now has a connection open to NCCT.
        func file(from node: String) async throws -> String {
            let console = federation.console(node)
            defer { console.close() }
            return try await console.unary(Console.submit, Make.request(persons: 1)).caseID
        }
        func arrived(_ caseID: String, within seconds: Double) async throws -> Bool {
            try await federation.eventually(seconds) {
                try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(caseID)'") == ["1"]
            }
        }
        #expect(try await arrived(try await file(from: "embassy-cn"), within: 30))

        // embassy-cn's key is compromised: the CA revokes it; the openssl command reads the CRL.
        let nodePEM = folder.appendingPathComponent("nodes/embassy-cn.pem").path
        let revoked = try certs(["revoke", nodePEM, "--ca", ca, "--reason", "keyCompromise", "--json"])
        let serial = try #require(
            (try JSONSerialization.jsonObject(with: Data(revoked.stdout.utf8)) as? [String: Any])?["serial"] as? String
        )
        let listed = try run("openssl", ["crl", "-in", "\(ca)/crl.pem", "-noout", "-text", "-CAfile", "\(ca)/ca.pem"])
        #expect(listed.stdout.contains(serial) && listed.stdout.contains("Key Compromise"), "\(listed.stdout)")
        #expect(listed.stderr.contains("verify OK"), "\(listed.stderr)")
        let again = try certs(["revoke", nodePEM, "--ca", ca])
        #expect(again.stdout.hasPrefix("Already revoked"))
        let elsewhere = try run(
            casebridgeBinary,
            ["certs", "revoke", TestFederation.certs.appendingPathComponent("nodes/ncct.pem").path, "--ca", ca]
        )
        #expect(elsewhere.status == 2 && elsewhere.stderr.contains("was not issued by the CA"), "\(elsewhere.stderr)")

        // NCCT takes the new CRL without a restart: embassy-cn's open connection is cut and it
        // cannot connect again; embassy-id carries on; the CRL warning is gone (30 days now).
        try FileManager.default.removeItem(at: folder.appendingPathComponent("crl.pem"))
        try FileManager.default.copyItem(atPath: "\(ca)/crl.pem", toPath: folder.appendingPathComponent("crl.pem").path)
        let reload = try federation.cli(["node", "reload"], node: "ncct", as: "op")
        #expect(reload.status == 0 && reload.stdout.contains("to reload"), "\(reload.stderr)")
        func audited(_ event: String, containing text: String) async throws -> Bool {
            try await federation.eventually {
                try federation.sql(
                    "ncct",
                    "SELECT COUNT(*) FROM audit WHERE event = '\(event)' AND detail LIKE '%\(text)%'"
                ) != ["0"]
            }
        }
        #expect(try await audited("connection.revoked", containing: "embassy-cn is revoked"))
        #expect(try await arrived(try await file(from: "embassy-id"), within: 30))
        #expect(!(try await arrived(try await file(from: "embassy-cn"), within: 5)))
        #expect(try await audited("tls.refused", containing: "revoked"))
        let after = try federation.cli(["status"], node: "ncct", as: "op")
        #expect(!after.stdout.contains("WARNING: the CRL"), "\(after.stdout)")
        #expect(federation.isRunning["ncct"] == true)
        federation.stopAll()
    }
}

/// The directory changed while the federation runs: a reload, and no restart anywhere.
@Suite("Live directory changes", .serialized)
struct LiveDirectoryTests {
    @Test("an embassy added to the directory exchanges a case with no restart; one removed is cut off")
    func addAndRemove() async throws {
        let federation = try TestFederation(nodes: ["ncct", "embassy-id", "embassy-vn"])
        // NCCT and Indonesia start in a federation that does not know Vietnam yet.
        try federation.writeDirectory(["ncct", "embassy-id"])
        for node in ["ncct", "embassy-id"] { try await federation.start(node) }
        // The directory gains Vietnam's embassy; NCCT reloads; Vietnam's node starts.
        try federation.writeDirectory(["ncct", "embassy-id", "embassy-vn"])
        let reloaded = try federation.cli(["node", "reload"], node: "ncct", as: "op")
        #expect(reloaded.status == 0, "\(reloaded.stderr)")
        #expect(
            try await federation.eventually {
                try federation.sql(
                    "ncct",
                    "SELECT COUNT(*) FROM audit WHERE event = 'node.reloaded'"
                        + " AND detail LIKE '%peers_added=embassy-vn%'"
                ) == ["1"]
            }
        )
        try await federation.start("embassy-vn")
        #expect(try await federation.exchangeACase(from: "embassy-vn"))
        let status = try federation.cli(["status"], node: "ncct", as: "op")
        #expect(status.stdout.contains("embassy-vn"), "\(status.stdout)")

        // Indonesia leaves the directory: its open connection is cut, its next case refused.
        try federation.writeDirectory(["ncct", "embassy-vn"])
        #expect(try federation.cli(["node", "reload"], node: "ncct", as: "op").status == 0)
        #expect(
            try await federation.eventually {
                try federation.sql(
                    "ncct",
                    "SELECT COUNT(*) FROM audit WHERE event = 'connection.revoked' AND detail LIKE '%embassy-id%'"
                ) != ["0"]
            }
        )
        let indonesia = federation.console("embassy-id")
        defer { indonesia.close() }
        let refused = try await indonesia.unary(Console.submit, Make.request(persons: 1)).caseID
        try await Task.sleep(for: .seconds(3))
        #expect(try federation.sql("ncct", "SELECT COUNT(*) FROM cases WHERE case_id = '\(refused)'") == ["0"])
        #expect(federation.isRunning["ncct"] == true)
        federation.stopAll()
    }
}
