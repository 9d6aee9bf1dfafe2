import CSQLite
import Foundation

/// Backups: a consistent copy of the database taken while the node runs (SQLite's online backup, from
/// a read snapshot), owner-only. Personal data in it stays sealed: without the node's data key the
/// copy reveals nothing, and cannot be read either.
extension CaseStore {
    /// Writes the snapshot to `destination`, which must not exist yet. Returns its size in bytes.
    @discardableResult
    public func backup(to destination: String) throws -> Int64 {
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw StoreError("\(destination) already exists; name a new file")
        }
        let fd = open(destination, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create \(destination): \(String(cString: strerror(errno)))") }
        Glibc.close(fd)
        do {
            let target = try Database(path: destination, readOnly: false)
            try read { source in
                guard let copy = sqlite3_backup_init(target.handle, "main", source.handle, "main") else {
                    throw StoreError(String(cString: sqlite3_errmsg(target.handle)))
                }
                let status = sqlite3_backup_step(copy, -1)
                sqlite3_backup_finish(copy)
                guard status == SQLITE_DONE else { throw StoreError(code: status, "the backup did not complete") }
            }
            // One file, readable on its own: no WAL beside it.
            try target.execute("PRAGMA journal_mode = DELETE")
        } catch {
            unlink(destination)
            throw error
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: destination)
        return (attributes?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// Checks that `path` is a CaseBridge database this version can open (for a restore).
    public static func checkBackup(_ path: String) throws(StoreError) {
        let database = try Database(path: path, readOnly: true)
        let version = Int(try database.first("PRAGMA user_version")?.int(0) ?? 0)
        guard version > 0, version <= Migrations.steps.count,
            try database.first("SELECT COUNT(*) FROM sqlite_master WHERE name = 'cases'")?.int(0) == 1
        else {
            throw StoreError("\(path) is not a CaseBridge database this version can restore")
        }
        guard try database.first("PRAGMA integrity_check")?.text(0) == "ok" else {
            throw StoreError("\(path) is damaged (SQLite's integrity check failed)")
        }
    }
}

extension Database {
    /// SQLite's full integrity check: ["ok"], or what it found (up to 20 problems).
    public func integrityCheck() throws(StoreError) -> [String] {
        try query("PRAGMA integrity_check(20)").map { $0.text(0) }
    }
}

extension CaseStore {
    /// Whether the database in `folder` holds any case key (an empty one opens with any key).
    public static func hasCaseKeys(_ folder: String) throws(StoreError) -> Bool {
        let database = try Database(
            path: (folder as NSString).appendingPathComponent("casebridge.sqlite3"),
            readOnly: true
        )
        return try database.first("SELECT COUNT(*) FROM cases WHERE data_key IS NOT NULL")?.int(0) ?? 0 > 0
    }
}
