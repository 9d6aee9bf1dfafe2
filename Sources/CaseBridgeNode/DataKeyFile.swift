import CaseBridgeStore
import CaseBridgeTLS
import Foundation
import Logging

/// The node's key-encryption key: 32 random bytes as hex in an owner-only file, made at the first
/// start. It wraps every case's data key, so the database, its WAL and any backup of them reveal
/// nothing about a person without it; and without it they cannot be read at all (keep a copy of it
/// apart from the backups).
public enum DataKeyFile {
    static func loadOrCreate(_ path: String) throws -> [UInt8] {
        if !FileManager.default.fileExists(atPath: path) { try create(path) }
        return try load(path)
    }

    /// The key in `path`, which must exist.
    public static func load(_ path: String) throws -> [UInt8] {
        try Node.checkOwnerOnly(path, what: "the data key")
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigurationError(
                file: path,
                field: "",
                problem: "the data key file cannot be read: \(error.localizedDescription)"
            )
        }
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == Sealing.keyBytes * 2, let key = bytes(hex) else {
            throw ConfigurationError(
                file: path,
                field: "",
                problem: "not a data key (\(Sealing.keyBytes * 2) hex digits)"
            )
        }
        return key
    }

    /// Replaces the node's data key with a new one (node stopped): every case key is wrapped anew
    /// in one transaction, then the new key file takes the old one's place. A rotation cut short
    /// is finished, or forgotten, at the next start (`settle`). Backups taken before keep needing
    /// the old key.
    public static func rotate(_ configuration: NodeConfiguration, logger: Logger) async throws {
        try settle(configuration, logger: logger)
        let old = try load(configuration.dataKeyFile)
        let pending = configuration.dataKeyFile + ".new"
        try create(pending)
        let store = try CaseStore(folder: configuration.dataFolder, dataKey: old, logger: logger)
        do {
            try await store.rotateDataKey(to: try load(pending))
            try await store.write { db in
                try db.appendAudit(
                    event: "data_key.rotated",
                    actor: "operator",
                    subject: "data key",
                    outcome: "ok",
                    detail: "every case key wrapped anew; search index rebuilt at the next start",
                    atMs: Clock.nowMs()
                )
            }
        } catch {
            store.close()
            unlink(pending)
            throw error
        }
        store.close()
        guard rename(pending, configuration.dataKeyFile) == 0 else {
            throw ConfigurationError(
                file: configuration.dataKeyFile,
                field: "",
                problem: "the new key is in \(pending) but could not replace the old one; "
                    + "the next start will finish the rotation"
            )
        }
    }

    /// A rotation interrupted between its commit and the key file's replacement left `<key>.new`:
    /// if that key opens the database, it takes the old one's place; otherwise it is dropped.
    static func settle(_ configuration: NodeConfiguration, logger: Logger) throws {
        let pending = configuration.dataKeyFile + ".new"
        guard FileManager.default.fileExists(atPath: pending) else { return }
        let store = try CaseStore(folder: configuration.dataFolder, dataKey: try load(pending), logger: logger)
        let opens = try store.read { try $0.dataKeysOpen() }
        store.close()
        if opens, try CaseStore.hasCaseKeys(configuration.dataFolder) {
            guard rename(pending, configuration.dataKeyFile) == 0 else {
                throw ConfigurationError(file: pending, field: "", problem: "cannot put the rotated data key in place")
            }
            logger.notice("an interrupted data key rotation was finished")
        } else {
            unlink(pending)
            logger.notice("an interrupted data key rotation was dropped; the old key stays")
        }
    }

    private static func create(_ path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ConfigurationError(
                file: path,
                field: "",
                problem: "cannot create the data key: \(String(cString: strerror(errno)))"
            )
        }
        defer { close(fd) }
        let text = Digest.hex(Sealing.randomBytes(Sealing.keyBytes)) + "\n"
        let written = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        guard written == text.utf8.count, fsync(fd) == 0 else {
            throw ConfigurationError(file: path, field: "", problem: "cannot write the data key")
        }
    }

    private static func bytes(_ hex: String) -> [UInt8]? {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}
