import CSQLite
import CaseBridgeThreads
import Foundation
import Logging
import Synchronization

/// How much memory the database may hold, whatever the size of the file: what keeps a node's
/// memory flat as its history grows.
public struct StoreMemory: Sendable, Equatable {
    /// The part of the file each connection maps into memory; reads beyond it use pread. None by
    /// default: each reader mapped its own copy (counted in RSS once per connection: 170 MiB of a
    /// node's 288 MiB at 100,000 cases), and reading through pread and the kernel's cache measured
    /// no slower (`Benchmarks/README.md`).
    public var mapBytes = 0
    /// The writer's page cache: hot index pages kept instead of re-read for every batch.
    public var writerCacheBytes = 64 * 1024 * 1024
    /// New cases whose persons are kept, opened, for the duplicate scan's first look (`FiledTraits`).
    public var filedCasesKept = 10_000
    public init() {}
}

/// The node's SQLite database: one writer thread with group commit, and a pool of readers.
///
/// WAL with synchronous=FULL: a write returns only after its transaction is durable. Writes that
/// arrive together share one transaction and one fsync; each runs in a savepoint of its own, so
/// one failing write does not undo the others.
public final class CaseStore: Sendable {
    /// The data folder, and the database file in it.
    public let folder: String
    public let path: String
    private let writer: Writer
    private let readers = Mutex<[Database]>([])
    private let sealer: RecordSealer
    private let filedTraits: FiledTraits
    private let memory: StoreMemory
    /// The data folder's lock, held while the store is open: a second process is refused.
    private let lock: Mutex<Int32?>

    /// Opens (or creates, owner-only) the database in `folder` and brings its schema up to date;
    /// personal data in it is sealed under `dataKey` (see `RecordSealer`).
    public init(
        folder: String,
        dataKey: [UInt8],
        logger: Logger,
        memory: StoreMemory = StoreMemory()
    ) throws(StoreError) {
        sealer = try RecordSealer(keyEncryptionKey: dataKey)
        filedTraits = FiledTraits(limit: memory.filedCasesKept)
        self.memory = memory
        self.folder = folder
        try Self.makeOwnerOnlyFolder(folder)
        lock = Mutex(try Self.lockFolder(folder))
        path = (folder as NSString).appendingPathComponent("casebridge.sqlite3")
        // Create the file owner-only before SQLite does; its -wal and -shm files copy this mode.
        try Self.makeOwnerOnlyFile(path)
        let database = try Database(
            path: path,
            readOnly: false,
            sealer: sealer,
            filedTraits: filedTraits,
            vfs: WALWriteGathering.vfsName
        )
        // A damaged file (a torn WAL, a bad disk) is refused at start, not found one read at a time:
        // whichever of these statements first reads a damaged page.
        let check: String
        do {
            // synchronous = FULL syncs the WAL at every commit, before readers can see it: the writer's
            // gathered WAL writes (`WALWriteGathering`) are written out at that sync, and rely on it.
            // secure_delete: what a row held before it was sealed, or a purged case key, is overwritten,
            // not left in free pages. Pages of 1 KiB (for a new database): each new case lands on random
            // pages of its indexes, and a commit writes each page it touched whole, twice (WAL, then
            // checkpoint); a lone submit wrote 294 KiB with 4 KiB pages, 69 KiB with these.
            try database.execute(
                """
                PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;
                """
            )
            // The writer keeps the hot index pages in memory instead of re-reading them from the WAL
            // with pread for every batch; checkpoints run every ~16 MiB of WAL, not every 4 MiB (a
            // database made before 1 KiB pages keeps its 4 KiB ones).
            let pageBytes = max(512, Int(try database.first("PRAGMA page_size")?.int(0) ?? 4096))
            try database.execute(
                "PRAGMA cache_size = -\(max(memory.writerCacheBytes / 1024, 1)); "
                    + "PRAGMA mmap_size = \(memory.mapBytes); PRAGMA wal_autocheckpoint = \(16 << 20 / pageBytes);"
            )
            try Migrations.apply(to: database)
            check = try database.first("PRAGMA quick_check")?.text(0) ?? "no answer"
        } catch  where [SQLITE_CORRUPT, SQLITE_NOTADB].contains(error.code & 0xff) {
            check = error.message
        }
        guard check == "ok" else {
            throw StoreError("the database \(path) is damaged (\(check)); restore it from a backup: casebridge restore")
        }
        try Self.sealExisting(database, sealer)
        writer = Writer(database: database, logger: logger)
    }

    /// Takes the data folder's lock (casebridge.lock, holding the holder's process id). Two nodes on
    /// one database would each fail the other's writes; the second is refused at start instead.
    static func lockFolder(_ folder: String) throws(StoreError) -> Int32 {
        let path = (folder as NSString).appendingPathComponent("casebridge.lock")
        let fd = open(path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var holder = [UInt8](repeating: 0, count: 32)
            let count = Glibc.read(fd, &holder, holder.count)
            Glibc.close(fd)
            let pid = String(decoding: holder.prefix(max(0, count)), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw StoreError(
                "another process\(pid.isEmpty ? "" : " (pid \(pid))") is using the data folder \(folder): "
                    + "is this node already running?"
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return fd
    }

    deinit { lock.withLock { $0.map { _ = Glibc.close($0) } } }

    static func makeOwnerOnlyFile(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        Glibc.close(fd)
    }

    static func makeOwnerOnlyFolder(_ folder: String) throws(StoreError) {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: folder,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw StoreError("cannot create data folder \(folder): \(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw StoreError("data folder \(folder) is a file")
        }
        chmod(folder, 0o700)
    }

    /// Runs `body` in the next group-committed transaction; returns once it is durable.
    ///
    /// `lane` names whose write this is (a peer node; "" for the node's own work) and `bytes`
    /// roughly how much it writes: each group takes writes from every lane in turn and stops at
    /// a size, so one peer's large writes cannot hold another's small one back for long.
    public func write<T: Sendable>(
        lane: String = "",
        bytes: Int = 0,
        _ body: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        try await write(lane: lane, bytes: bytes, body, meanwhile: {}).committed
    }

    /// `write`, and when writes come one at a time, `meanwhile` run on the caller's thread while
    /// this write commits alone: work for the answer that needs no database (a signature), taken
    /// off the time a lone caller waits. Under load it is not run (nil): the caller's thread is
    /// better spent bringing the next write to the group. Its error counts only once the write has
    /// committed.
    public func write<T: Sendable, Meanwhile>(
        lane: String = "",
        bytes: Int = 0,
        _ body: @escaping @Sendable (Database) throws -> T,
        meanwhile: () throws -> Meanwhile
    ) async throws -> (committed: T, meanwhile: Meanwhile?) {
        var done: Result<Meanwhile, Error>?
        let committed: T = try await withCheckedThrowingContinuation { continuation in
            let idle = writer.enqueue(
                Job(
                    lane: lane,
                    bytes: bytes,
                    run: { database in
                        let result = Result { try database.savepoint { try body(database) } }
                        return { commitError in
                            if let commitError {
                                continuation.resume(throwing: commitError)
                            } else {
                                continuation.resume(with: result)
                            }
                        }
                    },
                    fail: { continuation.resume(throwing: $0) }
                )
            )
            if idle { done = Result { try meanwhile() } }
        }
        return (committed, try done?.get())
    }

    /// The keys the blind index keeps of terms, worked out on the caller's thread.
    public var termKeys: TermKeys { sealer.termKeys }

    /// Runs `body` on a read connection (a consistent snapshot of committed data).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        let database = try readers.withLock { $0.popLast() } ?? openReader(path)
        defer { readers.withLock { $0.append(database) } }
        try database.begin()
        defer { try? database.commit() }
        return try body(database)
    }

    /// A database from before sealing is sealed once, and the clear text it held is then dropped
    /// from the file and the WAL.
    private static func sealExisting(_ database: Database, _ sealer: RecordSealer) throws(StoreError) {
        guard try database.first("SELECT value FROM store_meta WHERE name = 'sealed'")?.text(0) != "1" else { return }
        let hadData = try database.first("SELECT COUNT(*) FROM cases")?.int(0) ?? 0 > 0
        try database.execute("BEGIN IMMEDIATE")
        do {
            try sealer.sealExisting(database)
            try database.execute("COMMIT")
        } catch {
            database.rollback()
            throw error
        }
        if hadData { try database.execute("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);") }
    }

    private func openReader(_ path: String) throws(StoreError) -> Database {
        let database = try Database(path: path, readOnly: true, sealer: sealer, filedTraits: filedTraits)
        try database.execute("PRAGMA mmap_size = \(memory.mapBytes)")
        return database
    }

    /// Stops the writer after the writes already queued.
    public func close() {
        writer.stop()
        lock.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
    }
}

/// One write: `run` executes it inside the open transaction and returns what to do once the
/// transaction's fate is known; `fail` answers it when it never got to run.
private struct Job: Sendable {
    let lane: String
    let bytes: Int
    let run: @Sendable (Database) -> (@Sendable (Error?) -> Void)
    let fail: @Sendable (Error) -> Void
}

/// The single writer thread.
private final class Writer: @unchecked Sendable {
    private let database: Database
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    /// The largest group: bounds the latency one commit adds to the first write in it.
    private static let maxBatch = 1024
    /// A group stops taking writes past this many bytes (but always takes one).
    private static let maxBatchBytes = 8 * 1024 * 1024

    /// Writes waiting, per lane, and the lanes in the order they get their next turn.
    private struct Queue {
        var lanes: [String: [Job]] = [:]
        var turns: [String] = []
        var count = 0
        /// A group is being committed.
        var committing = false
        /// How many writes the last group held.
        var lastGroup = 0
        var stopping = false

        mutating func append(_ job: Job) {
            if lanes[job.lane, default: []].isEmpty { turns.append(job.lane) }
            lanes[job.lane, default: []].append(job)
            count += 1
        }

        /// The next group: one write from each lane in turn, up to the count and size limits.
        mutating func takeBatch() -> [Job] {
            var batch: [Job] = []
            var bytes = 0
            while batch.count < Writer.maxBatch, !turns.isEmpty, batch.isEmpty || bytes < Writer.maxBatchBytes {
                let lane = turns.removeFirst()
                let job = lanes[lane]!.removeFirst()
                if lanes[lane]!.isEmpty { lanes.removeValue(forKey: lane) } else { turns.append(lane) }
                batch.append(job)
                bytes += job.bytes
            }
            count -= batch.count
            return batch
        }
    }

    init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
        startThread(named: "cb-store-writer") { [self] in run() }
    }

    /// Queues `job`; true when writes come one at a time: the writer has nothing queued or in hand,
    /// and its last group held one write. (Under load it can run dry between groups too; a caller
    /// that then kept its thread would hold back the next group's writes.)
    func enqueue(_ job: Job) -> Bool {
        let idle = queue.withLock { queue in
            defer { queue.append(job) }
            return queue.count == 0 && !queue.committing && queue.lastGroup <= 1
        }
        wake.signal()
        return idle
    }

    func stop() {
        queue.withLock { $0.stopping = true }
        wake.signal()
        stopped.wait()
    }

    private func run() {
        while true {
            wake.wait()
            let (batch, stopping) = queue.withLock { state -> ([Job], Bool) in
                let batch = state.takeBatch()
                state.committing = !batch.isEmpty
                if !batch.isEmpty { state.lastGroup = batch.count }
                return (batch, state.stopping && state.count == 0)
            }
            let answer = batch.isEmpty ? {} : commit(batch)
            // Each signal may stand for several jobs: keep going while any are queued.
            let more = queue.withLock { state in
                state.committing = false
                return state.count > 0
            }
            // Answered once the writer is free: a caller's next write sees it idle.
            answer()
            if more { wake.signal() }
            if stopping { break }
        }
        // A stopped node's database file holds everything, without its WAL beside it.
        try? database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stopped.signal()
    }

    /// Commits `batch` as one transaction; returns how to answer its writes.
    private func commit(_ batch: [Job]) -> () -> Void {
        do {
            try database.begin(immediate: true)
        } catch {
            logger.error(
                "store transaction could not begin",
                metadata: ["error": "\(error)", "writes": "\(batch.count)"]
            )
            return { for job in batch { job.fail(error) } }
        }
        let completions = batch.map { $0.run(database) }
        do {
            try database.commit()
        } catch {
            logger.error("store commit failed", metadata: ["error": "\(error)", "writes": "\(batch.count)"])
            database.rollback()
            return { for completion in completions { completion(error) } }
        }
        return { for completion in completions { completion(nil) } }
    }
}
