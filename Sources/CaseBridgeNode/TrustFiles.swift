import CaseBridgeProto
import CaseBridgeRPC
import Foundation
import Synchronization

/// The files a reload reads (directory, CA, CRL, certificate, key) and how they looked when last
/// read: the watcher reloads the node when one of them changed, so an operator only puts files in
/// place. A file replaced by rename, edited in place or removed counts as changed.
final class TrustFiles: Sendable {
    private struct Stamp: Equatable {
        let inode: UInt64
        let size: Int64
        let modifiedNs: Int64
    }

    private let paths: [String]
    private let seen: Mutex<[Stamp?]>

    init(_ configuration: NodeConfiguration) {
        let c = configuration
        paths = [c.directoryPath, c.ca, c.certificate, c.privateKey] + (c.crl.map { [$0] } ?? [])
        seen = Mutex(Self.stamps(paths))
    }

    /// Called as a reload starts reading: a change while it reads makes another reload.
    func markRead() {
        let now = Self.stamps(paths)
        seen.withLock { $0 = now }
    }

    var changed: Bool {
        let now = Self.stamps(paths)
        return seen.withLock { $0 != now }
    }

    private static func stamps(_ paths: [String]) -> [Stamp?] {
        paths.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            return Stamp(
                inode: UInt64(info.st_ino),
                size: Int64(info.st_size),
                modifiedNs: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            )
        }
    }
}

extension Node {
    /// Reloads whenever a trust file changed; a file that cannot be used is logged and audited once
    /// per change, and the material in use stays.
    func watchTrustFiles(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled, trustFiles.changed else { continue }
            do { try await reload(by: "file-watch") } catch {
                logger.error("changed trust files not applied; those in use stay", metadata: ["error": "\(error)"])
                await tracker.audit(
                    event: "node.reload.refused",
                    actor: "file-watch",
                    subject: tracker.me.id,
                    outcome: "FAILED_PRECONDITION",
                    detail: "\(error)"
                )
            }
        }
    }

    /// An embassy holding a signed directory asks NCCT for a newer one now and then.
    func followDirectory(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            do { try await fetchNewerDirectory() } catch let error as RPCError where error.code == .notFound {
                // NCCT keeps a plain directory: nothing to follow.
            } catch {
                logger.warning("could not fetch the signed directory from NCCT", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Fetches NCCT's signed directory; when it is newer than this node's and holds up against the
    /// federation CA, it replaces the directory file (atomically) and the node reloads. True when
    /// it did.
    @discardableResult
    func fetchNewerDirectory() async throws -> Bool {
        let current = tracker.directory
        guard tracker.me.role == .embassy, current.signedFile != nil,
            let worker = crew.worker(current.ncct.id)
        else { return false }
        let reply = try await worker.fetchDirectory(have: current.version)
        guard reply.version > current.version, !reply.signedFile.isEmpty else { return false }
        let source = "\(current.ncct.id) GetDirectory"
        let fetched = try Directory.open(
            signed: reply.signedFile,
            path: source,
            caPEM: try String(contentsOfFile: configuration.ca, encoding: .utf8)
        )
        // The version inside the signature is the one that counts; an older one is a replay.
        guard fetched.version > current.version else { return false }
        _ = try checkReplaceable(fetched, file: source)
        try Self.replaceFile(configuration.directoryPath, with: reply.signedFile)
        try await reload(by: current.ncct.id)
        await tracker.audit(
            event: "directory.followed",
            actor: current.ncct.id,
            subject: tracker.me.id,
            outcome: "ok",
            detail: "version=\(fetched.version) previous=\(current.version) nodes=\(fetched.nodes.count)"
        )
        return true
    }

    /// Writes `bytes` beside `path` and renames it over: a crash leaves the old file or the new one.
    static func replaceFile(_ path: String, with bytes: [UInt8]) throws {
        let temporary = "\(path).new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw ConfigurationError(file: temporary, field: "", problem: "cannot create the file") }
        let written = write(fd, bytes, bytes.count)
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ConfigurationError(file: path, field: "", problem: "cannot replace the file")
        }
    }
}
