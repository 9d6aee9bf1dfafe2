import CaseBridgeNode
import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeTLS
import Foundation
import Logging

/// A connection to another node as this node (its own certificate), for the operator's checks.
struct PeerConnection {
    let channel: RPCChannel
    let me: DirectoryEntry
    let peerID: String
    let endpoint: String

    /// The peer's identity comes from the directory entry with `endpoint`, or from `expect`.
    static func open(_ node: NodeOptions, endpoint: String, expect: String?) throws -> PeerConnection {
        let configuration = try node.configuration()
        let directory: Directory
        do { directory = try Directory.load(configuration.directoryPath, caPath: configuration.ca) } catch {
            throw fail("\(error)", code: Exit.badInput)
        }
        guard let me = directory.node(configuration.nodeID) else {
            throw fail(
                "\(configuration.nodeID) is not in the directory \(configuration.directoryPath)",
                code: Exit.badInput
            )
        }
        guard let peerID = expect ?? directory.nodes.first(where: { $0.endpoint == endpoint })?.id else {
            throw fail(
                "no directory entry has endpoint \(endpoint); name the peer with --expect NODE_ID",
                code: Exit.badInput
            )
        }
        let tls: TLSContext
        do {
            tls = try TLSContext(
                .client,
                configuration: TLSConfiguration(
                    certificateChainPath: configuration.certificate,
                    privateKeyPath: configuration.privateKey,
                    trustedCAPath: configuration.ca,
                    revocationListPath: configuration.crl,
                    trustDomain: directory.trustDomain
                )
            )
        } catch { throw fail("our own TLS setup: \(error)", code: Exit.badInput) }
        var logger = Logger(label: "casebridge.peer-check")
        logger.logLevel = .critical
        var client = RPCClientConfiguration()
        client.maxReceiveMessageBytes = configuration.maxReadBytes
        client.protoLimits = configuration.readLimits
        let target = PeerIdentity(trustDomain: directory.trustDomain, nodeID: peerID)
        return PeerConnection(
            channel: RPCChannel(endpoint: endpoint, target: target, tls: tls, configuration: client, logger: logger),
            me: me,
            peerID: peerID,
            endpoint: endpoint
        )
    }
}

/// Runs named checks one after the other and prints PASS, FAIL or NOT RUN for each (or JSON).
final class CheckReport {
    let json: Bool
    let context: [String: String]
    private(set) var passed = 0, failed = 0, notRun = 0

    /// A check that could not run, and why (a failed check it needs, a missing test case).
    struct NotRun: Error { let reason: String }

    init(json: Bool, context: [String: String]) {
        self.json = json
        self.context = context
    }

    /// Runs `body`; what it returns is the detail of a pass, what it throws the reason of a failure.
    @discardableResult
    func check(_ name: String, _ body: () async throws -> String) async -> Bool {
        let outcome: String, detail: String
        do {
            detail = try await body()
            outcome = "PASS"
            passed += 1
        } catch let skip as NotRun {
            (outcome, detail) = ("NOT RUN", skip.reason)
            notRun += 1
        } catch {
            (outcome, detail) = ("FAIL", "\(error)")
            failed += 1
        }
        if json {
            var object: [String: Any] = [
                "check": name, "passed": outcome == "PASS", "outcome": outcome, "detail": detail,
            ]
            for (key, value) in context { object[key] = value }
            Output.json(object)
        } else {
            print("\(outcome) \(name): \(detail)")
        }
        return outcome == "PASS"
    }

    var summary: String {
        "\(passed + failed + notRun) checks: \(passed) passed, \(failed) failed"
            + (notRun > 0 ? ", \(notRun) not run" : "")
    }
}
