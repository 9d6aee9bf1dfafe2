import CaseBridgeProto
import Foundation
import Testing
import TestSupport

/// The signed directory as a federation runs it: the CA operator signs one file, puts it at NCCT,
/// and every node follows with no restart; a file the CA did not sign, or an older one, changes
/// nothing.
@Suite("Signed directory", .serialized)
struct SignedDirectoryTests {
    @Test("one signed file at NCCT adds an embassy everywhere; forged, tampered and older files are refused")
    func addAnEmbassyWithOneSignedFile() async throws {
        let nodes = ["ncct", "embassy-id", "embassy-vn"]
        let authority = try TestAuthority(nodes: nodes)
        let (folder, ca) = (authority.folder, authority.ca)
        defer { try? FileManager.default.removeItem(at: folder) }
        let federation = try TestFederation(nodes: nodes, certs: folder)
        for node in nodes {
            try federation.configure(node) { config in
                config["directory"] = "\(node)/directory.signed"
                config["directory_poll_s"] = 1
                config["watch_files_s"] = 1
            }
        }
        func place(_ signed: String, at node: String) throws {
            let target = federation.folder.appendingPathComponent("\(node)/directory.signed")
            let staged = target.appendingPathExtension("staged")
            try Data(contentsOf: URL(fileURLWithPath: signed)).write(to: staged)
            #expect(rename(staged.path, target.path) == 0)
        }
        func sign(_ members: [String], version: Int?, name: String) throws -> ProcessResult {
            let json = folder.appendingPathComponent("\(name).json")
            try federation.writeDirectory(members, version: version, to: json)
            return try run(
                casebridgeBinary,
                ["certs", "sign-directory", json.path, "--ca", ca, "--out", folder.appendingPathComponent(name).path]
            )
        }
        func audited(_ node: String, _ condition: String) async throws -> Bool {
            try await federation.eventually(20) {
                try federation.sql(node, "SELECT COUNT(*) FROM audit WHERE \(condition)") != ["0"]
            }
        }

        // Version 1 knows NCCT and Indonesia only; a directory without a version is not signed.
        let unversioned = try sign(["ncct", "embassy-id"], version: nil, name: "v0.signed")
        #expect(unversioned.status == 2 && unversioned.stderr.contains("\"version\""), "\(unversioned.stderr)")
        #expect(try sign(["ncct", "embassy-id"], version: 1, name: "v1.signed").status == 0)
        let v1 = folder.appendingPathComponent("v1.signed").path
        for node in ["ncct", "embassy-id"] { try place(v1, at: node) }
        for node in ["ncct", "embassy-id"] { try await federation.start(node) }
        let status = try federation.cli(["status"], node: "embassy-id", as: "op")
        #expect(status.stdout.contains("Directory: version 1, signed by the federation CA"), "\(status.stdout)")

        // The openssl command alone, with the CA certificate, shows what the CA vouches for.
        let checked = try run(
            "openssl",
            ["cms", "-verify", "-inform", "PEM", "-in", v1, "-CAfile", "\(ca)/ca.pem", "-purpose", "any"]
        )
        #expect(checked.status == 0 && checked.stdout.contains("\"embassy-id\""), "\(checked.stderr)")

        // Version 2 adds Vietnam: one file at NCCT. NCCT reloads by itself, Indonesia follows.
        let result = try sign(["ncct", "embassy-id", "embassy-vn"], version: 2, name: "v2.signed")
        #expect(result.status == 0 && result.stdout.contains("version 2, 3 nodes"), "\(result.stdout)")
        let v2 = folder.appendingPathComponent("v2.signed").path
        try place(v2, at: "ncct")
        #expect(
            try await audited(
                "ncct",
                "event = 'node.reloaded' AND actor = 'file-watch' AND detail LIKE '%peers_added=embassy-vn%'"
            )
        )
        #expect(try await audited("embassy-id", "event = 'directory.followed' AND detail LIKE 'version=2 %'"))
        let followed = try Data(contentsOf: federation.folder.appendingPathComponent("embassy-id/directory.signed"))
        #expect(followed == (try Data(contentsOf: URL(fileURLWithPath: v2))))

        // Vietnam starts with the same file and exchanges a case: nobody restarted.
        try place(v2, at: "embassy-vn")
        try await federation.start("embassy-vn")
        #expect(try await federation.exchangeACase(from: "embassy-vn"))

        // A directory signed by a node's key (issued by the same CA) is not the CA's word: refused.
        let forgedJSON = folder.appendingPathComponent("forged.json")
        try federation.writeDirectory(["ncct", "embassy-id"], version: 9, to: forgedJSON)
        let forged = folder.appendingPathComponent("forged.signed").path
        let signedByNode = try run(
            "openssl",
            [
                "cms", "-sign", "-binary", "-nodetach", "-outform", "PEM", "-in", forgedJSON.path, "-out", forged,
                "-signer", folder.appendingPathComponent("nodes/ncct.pem").path,
                "-inkey", folder.appendingPathComponent("nodes/ncct.key").path,
            ]
        )
        #expect(signedByNode.status == 0, "\(signedByNode.stderr)")
        try place(forged, at: "ncct")
        #expect(
            try await audited(
                "ncct",
                "event = 'node.reload.refused' AND detail LIKE '%other than the federation CA%'"
            )
        )
        // A byte changed inside the CA's signed file: refused too.
        var tampered = try String(contentsOfFile: v2, encoding: .utf8)
        let middle = tampered.index(tampered.startIndex, offsetBy: tampered.count / 2)
        tampered.replaceSubrange(middle...middle, with: tampered[middle] == "A" ? "B" : "A")
        let tamperedPath = folder.appendingPathComponent("tampered.signed").path
        try tampered.write(toFile: tamperedPath, atomically: true, encoding: .utf8)
        try place(tamperedPath, at: "ncct")
        #expect(
            try await audited("ncct", "event = 'node.reload.refused' AND detail LIKE '%signature does not hold%'")
        )
        #expect(try federation.cli(["status"], node: "ncct", as: "op").stdout.contains("Directory: version 2"))

        // NCCT's operator goes back to version 1: Indonesia keeps version 2 (an older one is a replay).
        try place(v1, at: "ncct")
        #expect(try await audited("ncct", "event = 'node.reloaded' AND detail LIKE '%directory_version=1 %'"))
        try await Task.sleep(for: .seconds(3))
        #expect(
            try federation.cli(["status"], node: "embassy-id", as: "op").stdout.contains("Directory: version 2")
        )
        let follows = try federation.sql("embassy-id", "SELECT COUNT(*) FROM audit WHERE event = 'directory.followed'")
        #expect(follows == ["1"])
        for node in nodes { #expect(federation.isRunning[node] == true) }
        federation.stopAll()
    }
}
