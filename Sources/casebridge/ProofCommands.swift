import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeTLS
import Foundation

struct ProofCase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proof",
        abstract: "Writes a proof bundle: each message sent about a case with the receiver's signed receipt.",
        discussion: """
            The folder holds, per message, the message as sent, the receiver's statement and its \
            signature, with the federation CA certificate and the CRL. Anyone can check it \
            offline with `casebridge verify-proof FOLDER` or with openssl (README.txt inside).

            Example:
              casebridge case proof IDN-2026-0412 --to proof-0412
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "The case: its id, a unique start of it, or its reference.") var caseID: String
    @Option(help: "A new folder to write the bundle into.") var to: String

    func run() async throws {
        let console = try node.console()
        var request = GetCaseRequest()
        request.caseID = try await console.resolveCase(caseID)
        let bundle = try await console.call(Console.getProof, request)
        guard !FileManager.default.fileExists(atPath: to) else {
            throw fail("\(to) exists; give a new folder", code: Exit.badInput)
        }
        // Owner-only: the messages hold victims' personal data.
        let folder = URL(fileURLWithPath: to)
        try FileManager.default.createDirectory(
            at: folder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        func write(_ bytes: [UInt8], _ name: String) throws {
            let path = folder.appendingPathComponent(name).path
            guard
                FileManager.default.createFile(
                    atPath: path,
                    contents: Data(bytes),
                    attributes: [.posixPermissions: 0o600]
                )
            else { throw fail("cannot write \(path)", code: Exit.badInput) }
        }
        try write(Array(bundle.caPem.utf8), "ca.pem")
        if !bundle.crlPem.isEmpty { try write(Array(bundle.crlPem.utf8), "crl.pem") }
        var manifest: [[String: Any]] = []
        for (index, item) in bundle.items.enumerated() {
            let name = String(format: "%02d-%@-%@", index + 1, item.kind, String(item.messageID.prefix(8)))
            try write(item.message, "\(name).message")
            try write(item.receipt?.statement ?? [], "\(name).statement")
            try write(item.receipt?.signature ?? [], "\(name).signature.der")
            manifest.append(["name": name, "kind": item.kind, "message_id": item.messageID])
        }
        let object: [String: Any] = [
            "case_id": bundle.caseID, "made_by": bundle.node, "made_at_ms": bundle.madeAtMs, "items": manifest,
        ]
        try write(
            [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])),
            "manifest.json"
        )
        try write(Array(Self.readme.utf8), "README.txt")
        print("Wrote \(bundle.items.count) signed receipts for case \(bundle.caseID) to \(to)")
        print("Check it: casebridge verify-proof \(to) --ca YOUR-COPY-OF-ca.pem")
    }

    static let readme = """
        A CaseBridge proof bundle. For each message NN-<kind>-<id>:
          .message        the message as the sender sent it (protobuf)
          .statement      what the receiving node signed (casebridge.v1.ReceiptStatement): the case,
                          the message id, the SHA-256 of .message, the status, the time
          .signature.der  a detached CMS signature over .statement, with the receiver's certificate

        Check a signature with openssl and the federation CA certificate (your own copy):
          openssl cms -verify -binary -inform DER -in NN.signature.der -content NN.statement \\
            -CAfile ca.pem -purpose any -out /dev/null
        and that the statement names the message:
          sha256sum NN.message   (the same hex as in the statement)
        Or all at once: casebridge verify-proof FOLDER --ca ca.pem

        """
}

struct VerifyProofCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-proof",
        abstract: "Checks a proof bundle offline: every signature, the signer, and that it names the message.",
        discussion: """
            Needs no node. Give your own copy of the federation CA certificate with --ca: the \
            bundle's ca.pem is used otherwise, which proves only that the bundle is consistent.

            Example:
              casebridge verify-proof proof-0412 --ca ca.pem
            """
    )
    @Argument(help: "The folder `casebridge case proof` wrote.") var folder: String
    @Option(help: "The federation CA certificate to trust (default: the bundle's ca.pem).") var ca: String?

    func run() throws {
        let base = URL(fileURLWithPath: folder)
        func read(_ name: String) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: base.appendingPathComponent(name).path) else {
                throw fail("\(folder) has no \(name): not a proof bundle", code: Exit.badInput)
            }
            return [UInt8](data)
        }
        guard
            let manifest = try JSONSerialization.jsonObject(with: Data(try read("manifest.json"))) as? [String: Any],
            let caseID = manifest["case_id"] as? String, let items = manifest["items"] as? [[String: Any]]
        else { throw fail("\(folder)/manifest.json is not a proof manifest", code: Exit.badInput) }
        let caPEM: String
        if let ca {
            guard let text = try? String(contentsOfFile: ca, encoding: .utf8) else {
                throw fail("cannot read \(ca)", code: Exit.badInput)
            }
            caPEM = text
        } else {
            caPEM = String(decoding: try read("ca.pem"), as: UTF8.self)
        }
        let crlPEM = FileManager.default.contents(atPath: base.appendingPathComponent("crl.pem").path)
            .map { String(decoding: $0, as: UTF8.self) }
        var failures = 0
        for item in items {
            let name = item["name"] as? String ?? "?"
            do {
                let statementBytes = try read("\(name).statement")
                let identities = try Signatures.verify(
                    try read("\(name).signature.der"),
                    content: statementBytes,
                    caPEM: caPEM,
                    crlPEM: crlPEM
                )
                let statement = try ProtoCodec.decode(ReceiptStatement.self, from: statementBytes)
                guard identities.compactMap({ PeerIdentity(uri: $0)?.nodeID }).contains(statement.node) else {
                    throw Problem("signed by \(identities.joined(separator: ", ")), not by \(statement.node)")
                }
                guard statement.caseID == caseID, statement.messageID == item["message_id"] as? String else {
                    throw Problem("the statement is about another case or message")
                }
                guard Digest.sha256Hex(try read("\(name).message")) == statement.messageSha256 else {
                    throw Problem("the message is not the one signed for (SHA-256 differs)")
                }
                print(
                    "OK      \(name): \(statement.node) acknowledged it at \(Output.time(statement.atMs)),"
                        + " case status \(statement.status)"
                )
            } catch {
                failures += 1
                print("FAILED  \(name): \(Self.reason(error))")
            }
        }
        guard failures == 0 else {
            throw fail("\(failures) of \(items.count) receipts do not hold", code: 1)
        }
        print("All \(items.count) receipts hold for case \(caseID).")
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func reason(_ error: Error) -> String {
        if let error = error as? TLSError { return error.message }
        return "\(error)"
    }
}
