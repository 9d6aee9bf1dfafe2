import CaseBridgeTLS
import Foundation
import Testing
import TestSupport

/// Receipts are signed with a SignedData the node assembles around one ECDSA signature; anyone with
/// the CA certificate must be able to check it as if OpenSSL's CMS_sign had made it.
@Suite("Receipt signatures")
struct SignatureTests {
    static let certs = repositoryRoot.appendingPathComponent("certs")

    func text(_ path: String) throws -> String {
        try String(contentsOf: Self.certs.appendingPathComponent(path), encoding: .utf8)
    }

    /// The outline of a DER structure: each element's depth, kind and object name, without values or lengths.
    func outline(_ der: URL) throws -> [String] {
        let parsed = try run("openssl", ["asn1parse", "-inform", "DER", "-in", der.path])
        #expect(parsed.status == 0, "\(parsed.stderr)")
        // "   23:d=3  hl=2 l=   1 prim:    INTEGER           :01" -> "3 prim INTEGER"
        return parsed.stdout.split(separator: "\n").map { line in
            let depth = line.split(separator: "d=").dropFirst().first?.prefix { $0.isNumber } ?? ""
            let form = line.contains("cons:") ? "cons" : "prim"
            let rest = line.components(separatedBy: "\(form):").last ?? ""
            let parts = rest.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let kind = parts.first ?? ""
            return "\(depth) \(form) \(kind)" + (kind == "OBJECT" ? " \(parts.last ?? "")" : "")
        }
    }

    @Test("a receipt's signature holds with the CA, in code and with openssl, and has CMS_sign's structure")
    func holdsAndMatchesOpenSSL() throws {
        let signer = try Signatures.Signer(certificatePEM: text("nodes/ncct.pem"), keyPEM: text("nodes/ncct.key"))
        let statement = Array("a receipt statement".utf8)
        let signature = try signer.sign(statement)
        let ca = try text("ca.pem")
        #expect(try Signatures.verify(signature, content: statement, caPEM: ca).contains { $0.hasSuffix("/ncct") })
        #expect(throws: TLSError.self) { try Signatures.verify(signature, content: statement + [0], caPEM: ca) }

        let folder = try makeTemporaryFolder("signature")
        defer { try? FileManager.default.removeItem(at: folder) }
        let content = folder.appendingPathComponent("statement"), ours = folder.appendingPathComponent("ours.der")
        let theirs = folder.appendingPathComponent("openssl.der")
        try Data(statement).write(to: content)
        try Data(signature).write(to: ours)
        let checked = try run(
            "openssl",
            [
                "cms", "-verify", "-binary", "-inform", "DER", "-in", ours.path, "-content", content.path,
                "-CAfile", Self.certs.appendingPathComponent("ca.pem").path, "-purpose", "any",
            ]
        )
        #expect(checked.status == 0 && checked.stdout == "a receipt statement", "\(checked.stderr)")
        let made = try run(
            "openssl",
            [
                "cms", "-sign", "-binary", "-nosmimecap", "-outform", "DER", "-in", content.path,
                "-signer", Self.certs.appendingPathComponent("nodes/ncct.pem").path,
                "-inkey", Self.certs.appendingPathComponent("nodes/ncct.key").path, "-out", theirs.path,
            ]
        )
        #expect(made.status == 0, "\(made.stderr)")
        let structure = try outline(ours)
        #expect(structure.contains("7 prim OBJECT signingTime") && structure.contains("8 prim UTCTIME"), "\(structure)")
        #expect(structure == (try outline(theirs)))
    }

    @Test("a key that is not EC is signed by OpenSSL's CMS_sign, and holds")
    func otherKeysThroughCMS() throws {
        let folder = try makeTemporaryFolder("signature-rsa")
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = folder.appendingPathComponent("key.pem"), cert = folder.appendingPathComponent("cert.pem")
        let made = try run(
            "openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.path, "-out", cert.path, "-subj",
                "/CN=rsa-test", "-days", "1",
            ]
        )
        #expect(made.status == 0, "\(made.stderr)")
        let certificate = try String(contentsOf: cert, encoding: .utf8)
        let signer = try Signatures.Signer(
            certificatePEM: certificate,
            keyPEM: try String(contentsOf: key, encoding: .utf8)
        )
        let statement = Array("another statement".utf8)
        _ = try Signatures.verify(try signer.sign(statement), content: statement, caPEM: certificate)
    }

    /// Worker threads share one signer, and each signature is a copy of one keyed context.
    @Test("signatures made on several threads at once each hold for their own statement")
    func concurrentSignatures() async throws {
        let signer = try Signatures.Signer(certificatePEM: text("nodes/ncct.pem"), keyPEM: text("nodes/ncct.key"))
        let signed = try await withThrowingTaskGroup(of: [(Int, [UInt8])].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    try (0..<50).map { i in
                        (worker * 50 + i, try signer.sign(Array("statement \(worker * 50 + i)".utf8)))
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let ca = try text("ca.pem")
        #expect(signed.count == 200)
        for (n, signature) in signed {
            #expect(try Signatures.verify(signature, content: Array("statement \(n)".utf8), caPEM: ca).count == 1)
            #expect(throws: TLSError.self) {
                try Signatures.verify(signature, content: Array("statement \(n + 1)".utf8), caPEM: ca)
            }
        }
    }
}
