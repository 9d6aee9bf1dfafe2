import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Logging

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Peers, what is owed to each, the oldest undelivered message, and certificate expiry.",
        discussion: "Example: casebridge status --config demo-data/ncct/node.json"
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let status = try await node.console().call(Console.getStatus, StatusRequest())
        if node.json { Output.json(ProtoJSON.object(status)); return }
        let role = status.role == .ncct ? "NCCT" : "embassy of \(status.represents)"
        print(
            "Node \(status.nodeID) (\(role)), version \(status.version), "
                + "running since \(Output.time(status.startedAtMs))"
        )
        let days = (status.certificateNotAfterMs - Int64(Date().timeIntervalSince1970 * 1000)) / 86_400_000
        print(
            "Certificate valid until \(Output.time(status.certificateNotAfterMs)) (\(days) days)"
                + (days < 30 ? "  ← renew soon" : "")
        )
        if status.crlNextUpdateMs > 0 { print("CRL in force until \(Output.time(status.crlNextUpdateMs))") }
        if !status.revocationChecked {
            print("Revocation: OFF — the configuration says \"crl\": \"none\"; revoked certificates are not refused")
        }
        print(
            status.directorySigned
                ? "Directory: version \(status.directoryVersion), signed by the federation CA"
                : "Directory: a plain file kept by this node's operator"
        )
        for warning in status.warnings { print("WARNING: \(warning)") }
        print("Unread in inbox: \(status.unreadInbox)")
        print("Deadlines: \(status.overdueCases) overdue, \(status.dueSoonCases) due soon (casebridge overdue)\n")
        Output.table(
            ["PEER", "ENDPOINT", "REACHABLE", "OWED", "OLDEST UNDELIVERED", "LAST ERROR"],
            status.peers.map { peer in
                [
                    peer.nodeID, peer.endpoint,
                    peer.lastContactAtMs == 0 && peer.lastError.isEmpty
                        ? "not tried yet"
                        : peer.reachable
                            ? "yes" : "NO, since \(Output.shortTime(peer.failingSinceMs))",
                    String(peer.outboxDepth), Output.time(peer.oldestUndeliveredAtMs), peer.lastError,
                ]
            }
        )
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "The node's hash-chained audit log.",
        subcommands: [VerifyAudit.self, ListAudit.self]
    )
}

struct VerifyAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recomputes every hash of the audit chain and checks it against the signed checkpoints held "
            + "here and by the peers; exits 1 if any entry was changed or removed.",
        discussion: "Example: casebridge audit verify"
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let result = try await node.console().call(Console.verifyAudit, VerifyAuditRequest())
        if node.json {
            Output.json(ProtoJSON.object(result))
        } else {
            if result.intact {
                print(
                    "Audit log intact: \(result.entries) entries, every hash matches; "
                        + "\(result.checkpointsChecked) signed checkpoints of this node match."
                )
            }
            for peer in result.peers { print(Self.line(peer)) }
        }
        if !result.intact {
            // A broken walk stops at the entry after those it verified; a checkpoint's finding names its own.
            let walk = result.firstBadEntry == result.entries + 1
            let walked = walk ? " (\(result.entries) entries verified before it)" : ""
            throw fail("audit log NOT intact: \(result.detail)\(walked)")
        }
    }

    /// What a peer's checkpoint of this log says, in one line.
    static func line(_ peer: CheckpointCheck) -> String {
        guard peer.reached else { return "\(peer.node): not asked (\(peer.detail)); checked next time" }
        guard peer.matches else { return "\(peer.node): MISMATCH: \(peer.detail)" }
        guard let held = peer.held else { return "\(peer.node): held no checkpoint of this log yet; it has one now" }
        return "\(peer.node) holds a checkpoint of \(held.entries) entries (signed \(Output.time(held.atMs))): matches."
    }
}

struct CheckPeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-peer",
        abstract: "Checks that a peer node interoperates: TLS and identity, health, reflection, a harmless call "
            + "(the quick check; `casebridge conformance` is the deep one).",
        discussion: """
            Connects with this node's own certificate. The peer's expected identity comes from the \
            directory entry with that endpoint, or from --expect.

            Example:
              casebridge check-peer 127.0.0.1:7401 --config demo-data/embassy-id/node.json
            """
    )
    @OptionGroup var node: NodeOptions
    @Argument(help: "host:port of the peer.") var endpoint: String
    @Option(help: "The peer's node id, if the directory does not list this endpoint.") var expect: String?

    func run() async throws {
        let peer = try PeerConnection.open(node, endpoint: endpoint, expect: expect)
        let channel = peer.channel, target = channel.target
        defer { channel.close() }
        let report = CheckReport(json: node.json, context: ["peer": peer.peerID, "endpoint": endpoint])
        await report.check("tls") {
            _ = try await channel.unary(GRPCHealth.Health.check, GRPCHealth.HealthCheckRequest(), timeout: .seconds(10))
            return "TLS 1.3 with mutual certificates; the peer proved it is \(target)"
        }
        guard report.failed == 0 else {
            throw fail("\(endpoint) is not reachable as \(peer.peerID); see above", code: Exit.unreachable)
        }
        await report.check("health") {
            var request = GRPCHealth.HealthCheckRequest()
            request.service = CaseExchange.serviceName
            let status = try await channel.unary(GRPCHealth.Health.check, request, timeout: .seconds(10)).status
            guard status == .serving else { throw RPCError(.unavailable, "\(CaseExchange.serviceName) is \(status)") }
            return "\(CaseExchange.serviceName) is SERVING"
        }
        await report.check("reflection") {
            var request = GRPCReflectionV1.ServerReflectionRequest()
            request.messageRequest = .listServices("")
            var services: [String] = []
            for try await response in channel.streaming(
                GRPCReflectionV1.ServerReflection.serverReflectionInfo,
                [request],
                timeout: .seconds(10)
            ) {
                if case .listServicesResponse(let list)? = response.messageResponse {
                    services = list.service.map(\.name)
                }
            }
            guard services.contains(CaseExchange.serviceName) else {
                throw RPCError(.notFound, "services listed: \(services.joined(separator: ", "))")
            }
            return "lists \(services.count) services, including \(CaseExchange.serviceName)"
        }
        await report.check("round trip") {
            var request = ListCasesRequest()
            request.limit = 1
            var count = 0
            for try await _ in channel.streaming(CaseExchange.listCases, [request], timeout: .seconds(10)) {
                count += 1
            }
            return "CaseExchange.ListCases answered (\(count) case\(count == 1 ? "" : "s") visible to us)"
        }
        if !node.json {
            print(
                "\(report.summary). For the whole case protocol: "
                    + "casebridge conformance \(endpoint) --as \(peer.me.role.rawValue)"
            )
        }
        if report.failed > 0 {
            throw fail("\(report.failed) check\(report.failed == 1 ? "" : "s") failed against \(endpoint)")
        }
    }
}

struct ListAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "The audit log, latest entries first: who did what, when, and what was refused.",
        discussion: """
            Examples:
              casebridge audit list
              casebridge audit list --limit 200 --before 5120
              casebridge audit list --event staff.login --since 2026-11-23
              casebridge audit list --actor staff:dara.sok --json
            """
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "At most this many.") var limit: Int = 50
    @Option(help: "Only entries before this number (to page back).") var before: UInt64 = 0
    @Option(help: "Only this event, or events starting so (staff.).") var event: String = ""
    @Option(help: "Only this actor (staff:LOGIN, a node id, an address).") var actor: String = ""
    @Option(help: "Only this subject (a case id, a login, ...).") var subject: String = ""
    @Option(help: "From this day or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC).") var since: String?
    @Option(help: "Before this day or time.") var until: String?
    @Flag(help: "Every column in full, however wide.") var wide = false

    func run() async throws {
        let console = try node.console()
        var request = ListAuditRequest()
        request.limit = try listLimit(limit)
        request.beforeSeq = try storedNumber(before, flag: "--before")
        request.event = event
        request.actor = actor
        request.subject = subject
        request.sinceMs = try since.map { try timeMs($0, field: "--since") } ?? 0
        request.untilMs = try until.map { try timeMs($0, field: "--until") } ?? 0
        let entries = try await console.stream(Console.listAudit, request)
        if Output.printedAsJSONOrEmpty(entries, json: node.json, empty: "The audit log is empty.") { return }
        Output.table(
            ["#", "AT", "EVENT", "BY", "SUBJECT", "OUTCOME", "DETAIL"],
            entries.map { entry in
                [
                    String(entry.seq), Output.shortTime(entry.atMs), entry.event, entry.actor, entry.subject,
                    entry.outcome,
                    entry.detail,
                ]
            },
            flexible: ["SUBJECT", "DETAIL"],
            wide: wide
        )
        if let oldest = entries.last, oldest.seq > 1, entries.count == Int(request.limit) {
            print("Older entries: casebridge audit list --before \(oldest.seq) (with the same filters)")
        }
    }
}

struct DeliverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliver",
        abstract: "Tries now every message waiting for a retry (after an outage), instead of at its next backoff.",
        discussion: """
            Examples:
              casebridge deliver --now
              casebridge deliver --now --peer embassy-id
            """
    )
    @OptionGroup var node: NodeOptions
    @Flag(help: "Try every waiting message now.") var now = false
    @Option(help: "Only messages to this peer node.") var peer: String?

    func run() async throws {
        guard now else {
            throw fail("say --now: every message waiting for a retry is tried at once", code: Exit.badInput)
        }
        let console = try node.console()
        var request = DeliverNowRequest()
        request.peerNode = peer ?? ""
        let reply = try await console.call(Console.deliverNow, request)
        if node.json { Output.json(ProtoJSON.object(reply)); return }
        let tried = "\(reply.messages) message\(reply.messages == 1 ? "" : "s") tried now"
        print(
            reply.messages == 0
                ? "Nothing was waiting for a retry." : "\(tried); `casebridge status` shows how it went."
        )
    }
}
