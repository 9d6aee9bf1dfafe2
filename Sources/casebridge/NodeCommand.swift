import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Dispatch
import Foundation
import Logging

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Runs this agency's node.",
        subcommands: [RunNode.self, ReloadNode.self, RotateKey.self]
    )
}

struct RunNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Runs a node in the foreground until SIGINT or SIGTERM.",
        discussion: """
            Logs go to standard error, one line each, without personal data. On SIGINT or SIGTERM \
            the node stops taking new calls, lets calls in flight finish, and keeps its outbox \
            for the next start. On SIGHUP (casebridge node reload) it reads its certificate, key, \
            CA and CRL files again and cuts the connections of peers the CRL now revokes.

            Example: casebridge node run --config demo/ncct/node.json
            """
    )

    @Option(name: .long, help: "The node's configuration file (JSON).")
    var config: String

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw fail("--log-level must be one of trace, debug, info, notice, warning, error, critical", code: 2)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "casebridge.node")
        let configuration: NodeConfiguration
        do { configuration = try NodeConfiguration.load(config) } catch { throw fail("\(error)", code: 2) }
        let node: Node
        do { node = try await Node(configuration: configuration, logger: logger) } catch {
            throw fail("cannot start: \(error)", code: 2)
        }
        reloadOnHangup(node, logger: logger)
        await waitForStopSignal()
        await node.shutdown()
    }

    /// SIGHUP: new trust material without a restart; a bad new file leaves the old one in force.
    private func reloadOnHangup(_ node: Node, logger: Logger) {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler {
            Task {
                do { try await node.reload() } catch {
                    logger.error("reload failed; the trust material in use stays", metadata: ["error": "\(error)"])
                }
            }
        }
        source.resume()
        keepAlive([source])
    }

    private func waitForStopSignal() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            var sources: [DispatchSourceSignal] = []
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler { if once.claim() { continuation.resume() } }
                source.resume()
                sources.append(source)
            }
            keepAlive(sources)
        }
    }
}

/// True for the first caller only.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}

/// Signal sources stop when released; these live as long as the process.
nonisolated(unsafe) private var retainedSources: [DispatchSourceSignal] = []
private func keepAlive(_ sources: [DispatchSourceSignal]) { retainedSources += sources }

struct ReloadNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Makes a running node read its certificate, key, CA and CRL files again (SIGHUP).",
        discussion: """
            After the CA revoked a node (casebridge certs revoke) or issued a fresh CRL, or after \
            this node got a new certificate: put the files in place, then reload. New connections \
            use them at once; open connections of peers the CRL revokes are cut. If a new file is \
            unusable, the node keeps the old ones and says why in its log.

            Example: casebridge node reload --config /etc/casebridge/node.json
            """
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let configuration = try node.configuration()
        let lock = (configuration.dataFolder as NSString).appendingPathComponent("casebridge.lock")
        let text = (try? String(contentsOfFile: lock, encoding: .utf8)) ?? ""
        guard await ConsoleConnection.isRunning(configuration),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else {
            throw fail(
                "node \(configuration.nodeID) is not running; its next start reads the files",
                code: Exit.unreachable
            )
        }
        guard kill(pid, SIGHUP) == 0 else {
            throw fail("cannot signal node \(configuration.nodeID) (pid \(pid)): \(String(cString: strerror(errno)))")
        }
        print("Asked node \(configuration.nodeID) (pid \(pid)) to reload; `casebridge status` shows the result.")
    }
}

struct RotateKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-key",
        abstract: "Replaces the node's data key with a new one (with the node stopped).",
        discussion: """
            Every case's key is wrapped under the new data key in one transaction; then the new \
            key file replaces the old one. If it is cut short, the next start finishes or forgets \
            it. Backups taken before the rotation still need the old key: keep a copy of it with \
            them. The search index is rebuilt at the next start.

            Example: casebridge node rotate-key --config /etc/casebridge/node.json
            """
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let (configuration, logger) = try await stoppedNode(node, to: "rotate its key")
        do { try await DataKeyFile.rotate(configuration, logger: logger) } catch {
            throw fail("cannot rotate the data key: \(error)", code: Exit.badInput)
        }
        print(
            "Data key of \(configuration.nodeID) replaced: \(configuration.dataKeyFile). "
                + "Backups taken before need the old key."
        )
    }
}
