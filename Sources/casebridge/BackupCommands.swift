import ArgumentParser
import CaseBridgeNode
import CaseBridgeProto
import Foundation
import Logging

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Writes a consistent copy of the node's database while it runs.",
        discussion: """
            The copy is one owner-only file. Personal data in it stays sealed: it cannot be read \
            without the node's data key (data_key_file), which is not in it. Keep a copy of that \
            key too, apart from the backups.

            Example:
              casebridge backup --to /var/backups/casebridge/2026-11-23.sqlite3
            """
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "A new file to write.") var to: String

    func run() async throws {
        let console = try node.console()
        var request = BackupRequest()
        request.path = URL(fileURLWithPath: to).standardizedFileURL.path
        let reply = try await console.call(Console.backup, request)
        if node.json { Output.json(ProtoJSON.object(reply)); return }
        print(
            "Backup written: \(reply.path) (\(reply.bytes / 1024) KiB). "
                + "It opens only with the data key at \(console.configuration.dataKeyFile)."
        )
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Puts a backup in place of the node's database (with the node stopped).",
        discussion: """
            The database it replaces is kept beside it, renamed. At its next start the node takes \
            back from its peers what they delivered after the backup, and applies its retention \
            rule. Needs the data key the backup was sealed with.

            Example:
              casebridge restore --from /var/backups/casebridge/2026-11-23.sqlite3
            """
    )
    @OptionGroup var node: NodeOptions
    @Option(help: "The backup file.") var from: String

    func run() async throws {
        let (configuration, logger) = try await stoppedNode(node, to: "restore")
        let movedAside: String?
        do {
            movedAside = try await Restore.run(
                configuration,
                from: URL(fileURLWithPath: from).standardizedFileURL.path,
                logger: logger
            )
        } catch {
            throw fail("cannot restore: \(error)", code: Exit.badInput)
        }
        print("Restored \(configuration.nodeID) from \(from).")
        if let movedAside { print("The database it replaced is kept as \(movedAside).") }
        print("Start the node: it takes back from its peers what they delivered after the backup.")
    }
}

/// The configuration of a node that must be stopped for `action`, and a quiet logger for the work;
/// exit 4 when it is running.
func stoppedNode(_ node: NodeOptions, to action: String) async throws -> (NodeConfiguration, Logger) {
    let configuration = try node.configuration()
    if await ConsoleConnection.isRunning(configuration) {
        throw fail("node \(configuration.nodeID) is running; stop it first, then \(action)", code: Exit.refused)
    }
    var logger = Logger(label: "casebridge.offline")
    logger.logLevel = .critical
    return (configuration, logger)
}

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Checks everything a stopped node needs: files, certificates, database, data key, audit chain.",
        discussion: """
            Run it with the node stopped (after a crash, a move to new disks, or before an upgrade). \
            Each check prints one line; the exit code is 1 if any failed, with what to do.

            Example: casebridge doctor --config /etc/casebridge/node.json
            """
    )
    @OptionGroup var node: NodeOptions

    func run() async throws {
        let (configuration, logger) = try await stoppedNode(node, to: "run the doctor")
        let findings = await Doctor.examine(configuration, logger: logger)
        if node.json {
            findings.forEach { Output.json(["check": $0.check, "ok": $0.ok, "detail": $0.detail]) }
        } else {
            for finding in findings {
                print("\(finding.ok ? "ok     " : "PROBLEM")  \(finding.check): \(finding.detail)")
            }
        }
        if findings.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}
