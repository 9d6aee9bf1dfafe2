import CaseBridgeTLS
import Foundation

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
            throw ConfigurationError(file: path, field: "", problem: "the data key file cannot be read: \(error.localizedDescription)")
        }
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == Sealing.keyBytes * 2, let key = bytes(hex) else {
            throw ConfigurationError(file: path, field: "", problem: "not a data key (\(Sealing.keyBytes * 2) hex digits)")
        }
        return key
    }

    private static func create(_ path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ConfigurationError(file: path, field: "", problem: "cannot create the data key: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let text = Sealing.randomBytes(Sealing.keyBytes).map { String(format: "%02x", $0) }.joined() + "\n"
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
