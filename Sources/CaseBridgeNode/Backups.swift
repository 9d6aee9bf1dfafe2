import CaseBridgeProto
import CaseBridgeRPC
import CaseBridgeStore
import Foundation
import Logging

extension CaseTracker {
    /// A consistent copy of the database, taken while the node runs; audited.
    public func backup(_ request: BackupRequest, by member: StaffMember) async throws -> BackupReply {
        guard request.path.hasPrefix("/") else { throw RPCError(.invalidArgument, "path: must be absolute") }
        let bytes: Int64
        do { bytes = try store.backup(to: request.path) } catch let error as StoreError {
            throw RPCError(.failedPrecondition, error.message)
        } catch {
            throw RPCError(.failedPrecondition, "\(error)")
        }
        var reply = BackupReply()
        reply.path = request.path
        reply.bytes = UInt64(bytes)
        reply.takenAtMs = Clock.nowMs()
        await audit(
            event: "backup.written",
            actor: member.auditActor,
            subject: (request.path as NSString).lastPathComponent,
            outcome: "ok",
            detail: "bytes=\(bytes)"
        )
        return reply
    }
}

/// Putting a backup back in place of a node's database, with the node stopped. At its next start the
/// node takes back from its peers what they delivered after the backup (catch-up) and applies its
/// retention rule, so a restored node needs nothing more from its operator.
public enum Restore {
    /// Returns where the replaced database was moved (nil when there was none).
    public static func run(
        _ configuration: NodeConfiguration,
        from backup: String,
        logger: Logger
    ) async throws -> String? {
        try CaseStore.checkBackup(backup)
        let key: [UInt8]
        do { key = try DataKeyFile.load(configuration.dataKeyFile) } catch {
            throw StoreError(
                "no data key at \(configuration.dataKeyFile): a backup cannot be read without the key it "
                    + "was sealed with; put that key file there first"
            )
        }
        let database = (configuration.dataFolder as NSString).appendingPathComponent("casebridge.sqlite3")
        let fileManager = FileManager.default
        try fileManager.createDirectory(
            atPath: configuration.dataFolder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        var movedAside: String?
        if fileManager.fileExists(atPath: database) {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            movedAside = "\(database).replaced-\(stamp)"
            for suffix in ["", "-wal", "-shm"] where fileManager.fileExists(atPath: database + suffix) {
                try fileManager.moveItem(atPath: database + suffix, toPath: movedAside! + suffix)
            }
        }
        func undo() {
            for suffix in ["", "-wal", "-shm"] { try? fileManager.removeItem(atPath: database + suffix) }
            if let movedAside {
                for suffix in ["", "-wal", "-shm"] {
                    try? fileManager.moveItem(atPath: movedAside + suffix, toPath: database + suffix)
                }
            }
        }
        do {
            try fileManager.copyItem(atPath: backup, toPath: database)
            chmod(database, 0o600)
            let store = try CaseStore(folder: configuration.dataFolder, dataKey: key, logger: logger)
            defer { store.close() }
            guard try store.read({ try $0.dataKeysOpen() }) else {
                throw StoreError("the data key at \(configuration.dataKeyFile) does not open this backup")
            }
            let name = (backup as NSString).lastPathComponent
            let kept =
                movedAside.map { "replaced database kept as \(($0 as NSString).lastPathComponent)" }
                ?? "no database before"
            try await store.write { db in
                try db.appendAudit(
                    event: "store.restored",
                    actor: "operator",
                    subject: name,
                    outcome: "ok",
                    detail: kept,
                    atMs: Clock.nowMs()
                )
            }
        } catch {
            undo()
            throw error
        }
        // Duplicate detection's index is the replaced database's: the node builds it again at start.
        try? fileManager.removeItem(atPath: CaseTracker.matchIndexFolder(configuration.dataFolder))
        return movedAside
    }
}
