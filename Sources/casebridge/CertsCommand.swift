import ArgumentParser
import CaseBridgeNode
import CaseBridgeTLS
import Foundation

struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Federation certificates: a CA, node certificates, signing requests.",
        discussion: """
            A real federation runs its CA on one offline machine: each agency makes a key and a \
            signing request (`certs request`) on its own node and sends only the request; the CA \
            operator issues the certificate (`certs issue --csr`) and sends it back. Keys never \
            travel. Keys are written owner-only (0600) and never overwritten.
            """,
        subcommands: [
            CreateCA.self, IssueCertificate.self, RequestCertificate.self, ShowCertificate.self,
            RevokeCertificate.self, IssueRevocationList.self, SignDirectory.self,
        ]
    )
}

struct CreateCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-ca",
        abstract: "Creates a federation CA: ca.pem and ca.key in --out.",
        discussion: "Example:\n  casebridge certs create-ca --out ca --name \"CaseBridge federation CA\""
    )
    @Option(help: "Folder for ca.pem and ca.key.") var out: String
    @Option(help: "The CA's name.") var name = "CaseBridge federation CA"
    @Option(help: "Validity in days.") var days = 3650
    @OptionGroup var output: JSONOption

    func run() throws {
        let key = try tls { try CertificateAuthority.newKey() }
        let cert = try tls { try CertificateAuthority.caCertificate(commonName: name, keyPEM: key, days: days) }
        try Files.writeNew(key, to: "\(out)/ca.key", mode: 0o600)
        try Files.writeNew(cert, to: "\(out)/ca.pem", mode: 0o644)
        output.say(
            "Created \(out)/ca.pem and \(out)/ca.key (keep ca.key offline; give ca.pem to every node).",
            ["certificate": "\(out)/ca.pem", "key": "\(out)/ca.key", "name": name, "valid_days": days]
        )
    }
}

struct IssueCertificate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issues a node certificate whose identity is spiffe://<trust-domain>/node/<node-id>.",
        discussion: """
            Without --csr a new key is made too (for test federations). With --csr, only the \
            certificate is written, for the key that stays with the requesting agency.

            Examples:
              casebridge certs issue --ca ca --node-id embassy-th \\
                  --trust-domain casebridge.example --out nodes
              casebridge certs issue --ca ca --node-id embassy-th \\
                  --trust-domain casebridge.example --csr embassy-th.csr --out nodes
            """
    )
    @Option(help: "Folder holding the CA's ca.pem and ca.key.") var ca: String
    @Option(help: "The node's id, as in the directory.") var nodeId: String
    @Option(help: "The federation's trust domain.") var trustDomain: String
    @Option(help: "A signing request from the node's operator.") var csr: String?
    @Option(help: "Folder for <node-id>.pem (and <node-id>.key without --csr).") var out: String
    @Option(help: "Validity in days.") var days = 825
    @OptionGroup var output: JSONOption

    func run() throws {
        let caCert = try Files.read("\(ca)/ca.pem"), caKey = try Files.read("\(ca)/ca.key")
        let request = try csr.map(Files.read)
        let key = request == nil ? try tls { try CertificateAuthority.newKey() } : nil
        let cert = try tls {
            try CertificateAuthority.nodeCertificate(
                nodeID: nodeId,
                trustDomain: trustDomain,
                caCertificatePEM: caCert,
                caKeyPEM: caKey,
                keyPEM: key,
                csrPEM: request,
                validFor: .seconds(days * 86_400)
            )
        }
        if let key { try Files.writeNew(key, to: "\(out)/\(nodeId).key", mode: 0o600) }
        try Files.writeNew(cert, to: "\(out)/\(nodeId).pem", mode: 0o644)
        let identity = "spiffe://\(trustDomain)/node/\(nodeId)"
        var written: [String: Any] = ["certificate": "\(out)/\(nodeId).pem", "identity": identity, "valid_days": days]
        if key != nil { written["key"] = "\(out)/\(nodeId).key" }
        output.say(
            "Issued \(out)/\(nodeId).pem for \(identity)\(key == nil ? "" : " with key \(out)/\(nodeId).key"), "
                + "valid \(days) days.",
            written
        )
    }
}

struct RequestCertificate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Makes this node's key and a signing request to send to the federation CA.",
        discussion: "Example:\n  casebridge certs request --node-id embassy-th --out /etc/casebridge"
    )
    @Option(help: "The node's id, as in the directory.") var nodeId: String
    @Option(help: "Folder for <node-id>.key and <node-id>.csr.") var out: String
    @OptionGroup var output: JSONOption

    func run() throws {
        let key = try tls { try CertificateAuthority.newKey() }
        let request = try tls { try CertificateAuthority.signingRequest(nodeID: nodeId, trustDomain: "", keyPEM: key) }
        try Files.writeNew(key, to: "\(out)/\(nodeId).key", mode: 0o600)
        try Files.writeNew(request, to: "\(out)/\(nodeId).csr", mode: 0o644)
        output.say(
            "Wrote \(out)/\(nodeId).key (stays here) and \(out)/\(nodeId).csr (send it to the federation CA).",
            ["key": "\(out)/\(nodeId).key", "signing_request": "\(out)/\(nodeId).csr"]
        )
    }
}

struct ShowCertificate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Shows a certificate's identity, issuer and validity.",
        discussion: "Example:\n  casebridge certs show certs/nodes/ncct.pem"
    )
    @Argument(help: "A PEM certificate.") var file: String
    @OptionGroup var output: JSONOption

    func run() throws {
        let description = try tls { try CertificateAuthority.describe(certificatePEM: try Files.read(file)) }
        let now = Int64(Date().timeIntervalSince1970)
        let days = (description.notAfter - now) / 86_400
        let status = now < description.notBefore ? "NOT YET VALID" : days < 0 ? "EXPIRED" : "valid, \(days) days left"
        if output.json {
            Output.json([
                "subject": description.subject, "identities": description.identities, "issuer": description.issuer,
                "is_ca": description.isCA, "not_before": Output.time(description.notBefore * 1000),
                "not_after": Output.time(description.notAfter * 1000), "status": status, "days_left": days,
            ])
            return
        }
        print("Subject:   \(description.subject)\(description.isCA ? "  (a CA)" : "")")
        print(
            "Identity:  \(description.identities.isEmpty ? "(none)" : description.identities.joined(separator: ", "))"
        )
        print("Issuer:    \(description.issuer)")
        print("Valid:     \(Output.time(description.notBefore * 1000)) to \(Output.time(description.notAfter * 1000))")
        print("Status:    \(status)")
    }
}

/// The CA's revocation index (`revoked.json` beside ca.pem) and its CRLs: what the CA has revoked,
/// kept so that each new CRL lists all of it, with an increasing CRL number.
struct RevocationIndex: Codable {
    var crlNumber = 0
    var revoked: [RevocationList.Entry] = []

    static func path(_ ca: String) -> String { "\(ca)/revoked.json" }

    static func load(_ ca: String) throws -> RevocationIndex {
        guard let data = FileManager.default.contents(atPath: path(ca)) else { return RevocationIndex() }
        do { return try JSONDecoder().decode(RevocationIndex.self, from: data) } catch {
            throw fail("\(path(ca)) is not a revocation index: \(error)", code: Exit.badInput)
        }
    }

    /// Issues the next CRL to `ca/crl.pem` (replacing the previous one), and saves the index.
    mutating func issue(ca: String, days: Int) throws -> (path: String, nextUpdate: Int64) {
        guard (1...3650).contains(days) else { throw fail("--days must be from 1 to 3650", code: Exit.badInput) }
        crlNumber += 1
        let caCert = try Files.read("\(ca)/ca.pem"), caKey = try Files.read("\(ca)/ca.key")
        let crl = try tls {
            try RevocationList.issue(
                caCertificatePEM: caCert,
                caKeyPEM: caKey,
                entries: revoked,
                number: crlNumber,
                days: days
            )
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Files.replace(String(decoding: try encoder.encode(self), as: UTF8.self), at: Self.path(ca), mode: 0o644)
        try Files.replace(crl, at: "\(ca)/crl.pem", mode: 0o644)
        return ("\(ca)/crl.pem", try tls { try RevocationList.nextUpdate(crl) })
    }
}

struct RevokeCertificate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revokes a node certificate and issues a new CRL (ca/crl.pem) listing it.",
        discussion: """
            Give every node the new crl.pem (their configuration's "crl"). The CA folder keeps an \
            index of what it revoked (revoked.json), so each CRL lists everything revoked so far.

            Example:
              casebridge certs revoke nodes/embassy-th.pem --ca ca --reason keyCompromise
            """
    )
    @Argument(help: "The certificate to revoke (PEM).") var certificate: String
    @Option(help: "Folder holding the CA's ca.pem and ca.key.") var ca: String
    @Option(help: "unspecified, keyCompromise, superseded or cessationOfOperation.") var reason = "unspecified"
    @Option(help: "Days until the new CRL's next update.") var days = 30
    @OptionGroup var output: JSONOption

    func run() throws {
        guard RevocationList.reasons.contains(reason) else {
            throw fail("--reason: one of \(RevocationList.reasons.joined(separator: ", "))", code: Exit.badInput)
        }
        let pem = try Files.read(certificate), caCert = try Files.read("\(ca)/ca.pem")
        guard try tls({ try RevocationList.isIssued(pem, by: caCert) }) else {
            throw fail("\(certificate) was not issued by the CA in \(ca)", code: Exit.badInput)
        }
        let serial = try tls { try RevocationList.serial(ofCertificate: pem) }
        let identity = try tls { try CertificateAuthority.describe(certificatePEM: pem) }.identities.first ?? ""
        var index = try RevocationIndex.load(ca)
        let already = index.revoked.contains { $0.serial == serial }
        if !already {
            index.revoked.append(
                RevocationList.Entry(
                    serial: serial,
                    revokedAt: Int64(Date().timeIntervalSince1970),
                    reason: reason,
                    identity: identity
                )
            )
        }
        let (path, next) = try index.issue(ca: ca, days: days)
        output.say(
            "\(already ? "Already revoked" : "Revoked") \(identity) (serial \(serial)). Wrote \(path) "
                + "(next update \(Output.time(next * 1000))): give it to every node.",
            [
                "serial": serial, "identity": identity, "crl": path, "next_update": Output.time(next * 1000),
                "already_revoked": already,
            ]
        )
    }
}

struct IssueRevocationList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crl",
        abstract: "Issues a fresh CRL (ca/crl.pem) before the current one's next update passes.",
        discussion: """
            A node refuses every peer of a CA whose CRL has passed its next update, and warns 14 days \
            before (casebridge status). Issue a new one in time and give it to every node.

            Example: casebridge certs crl --ca ca --days 30
            """
    )
    @Option(help: "Folder holding the CA's ca.pem and ca.key.") var ca: String
    @Option(help: "Days until the CRL's next update.") var days = 30
    @OptionGroup var output: JSONOption

    func run() throws {
        var index = try RevocationIndex.load(ca)
        let (path, next) = try index.issue(ca: ca, days: days)
        output.say(
            "Wrote \(path): \(index.revoked.count) revoked, next update \(Output.time(next * 1000)).",
            [
                "crl": path, "revoked": index.revoked.count, "next_update": Output.time(next * 1000),
                "crl_number": index.crlNumber,
            ]
        )
    }
}

struct SignDirectory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-directory",
        abstract: "Signs the federation directory with the CA, for NCCT's node to serve to every node.",
        discussion: """
            Raise the directory's "version" each time (embassies take a directory only if it is \
            newer than theirs). Put the signed file in place of NCCT's directory file: NCCT's node \
            reloads it by itself and every embassy holding a signed directory fetches it within \
            its directory_poll_s. A new embassy starts with the same signed file.

            Example, and how anyone checks the result with the CA certificate alone:
              casebridge certs sign-directory directory.json --ca ca \\
                  --out directory.signed
              openssl cms -verify -inform PEM -in directory.signed \\
                  -CAfile ca.pem -purpose any
            """
    )
    @Argument(help: "The directory (JSON) to sign.") var directory: String
    @Option(help: "Folder holding the CA's ca.pem and ca.key.") var ca: String
    @Option(help: "Where to write the signed directory (replaced if there).") var out: String
    @OptionGroup var output: JSONOption

    func run() throws {
        let checked: Directory
        do { checked = try Directory.load(directory) } catch { throw fail("\(error)", code: Exit.badInput) }
        guard checked.signedFile == nil else {
            throw fail("\(directory) is signed already; sign the JSON it holds", code: Exit.badInput)
        }
        guard checked.version > 0 else {
            throw fail("\(directory): give it a \"version\" of 1 or more (raise it each time)", code: Exit.badInput)
        }
        let json = Array(try Files.read(directory).utf8)
        let (caPEM, keyPEM) = (try Files.read("\(ca)/ca.pem"), try Files.read("\(ca)/ca.key"))
        let signed = try tls { try Signatures.signByAuthority(json, caPEM: caPEM, keyPEM: keyPEM) }
        try Files.replace(signed, at: out, mode: 0o644)
        output.say(
            "Signed \(directory) (version \(checked.version), \(checked.nodes.count) nodes) as \(out): "
                + "put it in place of NCCT's directory file.",
            ["directory": out, "version": checked.version, "nodes": checked.nodes.count]
        )
    }
}

/// Runs a certificate operation, turning its error into one line and exit 2.
private func tls<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ExitCode { throw error } catch {
        throw fail("\(error)", code: Exit.badInput)
    }
}

enum Files {
    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw fail("cannot read \(path)", code: Exit.badInput)
        }
        return text
    }

    /// Writes `path` whole, replacing what was there only once the new content is on disk.
    static func replace(_ text: String, at path: String, mode: mode_t) throws {
        let temporary = "\(path).new"
        unlink(temporary)
        try writeNew(text, to: temporary, mode: mode)
        guard rename(temporary, path) == 0 else {
            throw fail("cannot replace \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Creates `path` with `mode`; never replaces an existing file (a key may be irreplaceable).
    static func writeNew(_ text: String, to path: String, mode: mode_t) throws {
        let folder = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(
            atPath: folder.isEmpty ? "." : folder,
            withIntermediateDirectories: true
        )
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            throw fail(
                errno == EEXIST
                    ? "\(path) already exists; not replacing it"
                    : "cannot create \(path): \(String(cString: strerror(errno)))",
                code: Exit.badInput
            )
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw fail("cannot write \(path)") }
    }
}
