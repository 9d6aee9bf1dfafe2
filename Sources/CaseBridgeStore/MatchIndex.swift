import Foundation

/// Duplicate detection's index of persons by term (keyed hashes, as in `search_terms`), kept as
/// sorted runs in files of their own beside the database (`RunFile`).
///
/// A B-tree keyed by term took a random leaf page for each of a new person's eight or so terms:
/// past a few thousand cases that was 80 % of all the pages a node wrote. Here the writer only
/// appends each person's terms to `match_log` (one row, pages written in order). The duplicate
/// scan, the index's one user, reads the log into memory and, every `Limits.bufferRows` terms,
/// writes them out sorted as a new run: each page once. Runs of one size are merged, in order,
/// into one of the next size once there are `Limits.runsPerTier` of them, so a term is rewritten a
/// few times in all and a lookup reads a few small files.
///
/// The runs in use are listed in the database (`match_runs`, with how far into the log each
/// reaches), in the same transaction that drops the log rows they hold: a crash leaves either the
/// log rows or the run, never neither. Files not listed (a run written but never listed) are
/// deleted when the index loads. Used by one task at a time (the scan): not locked.
public final class MatchIndex: @unchecked Sendable {
    public struct Limits: Sendable {
        /// Terms held in memory before they are written out as a run.
        public var bufferRows = 100_000
        /// Runs of one size merged into one of the next size.
        public var runsPerTier = 4
        public init() {}
    }

    /// Commits a change to the database (`CaseStore.write`): the index lists its runs there.
    public typealias Register = (@escaping @Sendable (Database) throws -> Void) async throws -> Void

    public struct Posting: Hashable, Sendable {
        public let caseID: String
        public let personRef: String
    }

    private struct Run {
        /// The file's name in the index's folder.
        let name: String
        let tier: Int
        let through: Int64
        let file: RunFile
    }

    public let folder: String
    private let limits: Limits
    private var runs: [Run] = []
    private var buffer: [Int64: [Posting]] = [:]
    private var bufferRows = 0
    /// The last log row the runs and the buffer hold.
    private var drained: Int64 = 0
    /// The last removal read and carried out, whose log rows (they hold a purged person's terms) are
    /// still to be deleted.
    private var removedThrough: Int64?
    /// Which build of the index the runs belong to (`clearSearchIndex` starts another); nil until loaded.
    private var generation: String?

    public init(folder: String, limits: Limits = Limits()) throws(StoreError) {
        self.folder = folder
        self.limits = limits
        try CaseStore.makeOwnerOnlyFolder(folder)
    }

    /// Whether every run the database lists is on disk, in this format (a database restored elsewhere
    /// has none, an older node's are SQLite files: the index is then built again from the cases).
    public static func runsPresent(_ db: Database, folder: String) throws(StoreError) -> Bool {
        try db.query("SELECT file FROM match_runs").allSatisfy {
            RunFile.isRun((folder as NSString).appendingPathComponent($0.text(0)))
        }
    }

    // MARK: Reading the log

    /// Brings the index up to what `db` (a read snapshot) holds: the log rows written since, and
    /// the runs listed, should the index have been cleared and built again. False when memory
    /// filled up first (a rebuilt index logs every case at once): write a run, then read on.
    @discardableResult
    public func catchUp(_ db: Database) throws(StoreError) -> Bool {
        let current = try Self.generation(db)
        let listed = try db.query("SELECT file, tier, rows, through FROM match_runs")
        if current != generation || Set(listed.map { $0.text(0) }) != Set(runs.map(\.name)) {
            try load(listed, generation: current)
        }
        var removals: [(caseID: String, terms: [Int64])] = []
        var drainedAll = false
        let page = min(5_000, limits.bufferRows)
        while !drainedAll && bufferRows < limits.bufferRows {
            let rows = try db.query(
                "SELECT seq, case_id, person_ref, terms, removed FROM match_log WHERE seq > ? ORDER BY seq LIMIT ?",
                [.int(drained), .int(Int64(page))]
            )
            for row in rows {
                let terms = Self.keys(row.blob(3))
                if row.int(4) != 0 {
                    let caseID = row.text(1)
                    for term in terms { buffer[term]?.removeAll { $0.caseID == caseID } }
                    removals.append((caseID, terms))
                    removedThrough = row.int(0)
                } else {
                    let posting = Posting(caseID: row.text(1), personRef: row.text(2))
                    for term in terms { buffer[term, default: []].append(posting) }
                    bufferRows += terms.count
                }
                drained = row.int(0)
            }
            drainedAll = rows.count < page
        }
        try remove(removals)
        return drainedAll
    }

    /// Opens the runs the database lists, forgets what memory held, and deletes files it does not list.
    private func load(_ listed: [Row], generation: String) throws(StoreError) {
        runs = []
        buffer = [:]
        bufferRows = 0
        drained = 0
        removedThrough = nil
        for row in listed {
            let (file, tier, through) = (row.text(0), Int(row.int(1)), row.int(3))
            runs.append(Run(name: file, tier: tier, through: through, file: try open(file)))
            drained = max(drained, through)
        }
        self.generation = generation
        let kept = Set(listed.map { $0.text(0) })
        for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where !kept.contains(file) {
            unlink(path(file))
        }
    }

    /// Takes purged persons out of every run, synced before the removals are deleted from the log. A
    /// removal names all of a person's search terms; a run's filter skips those it does not hold.
    private func remove(_ removals: [(caseID: String, terms: [Int64])]) throws(StoreError) {
        guard !removals.isEmpty else { return }
        for run in runs { try run.file.remove(removals) }
    }

    // MARK: Looking up

    /// For each query (the keys of terms: `TermKeys`), the persons of other
    /// cases than `caseID` that have at least one of its terms. A term more than `maxPersonsPerTerm`
    /// persons have finds no one; each term reads at most `maxPersonsPerTerm` + 1 postings.
    public func searchPersons(
        anyOfEach queries: [[Int64]],
        excludingCase caseID: String,
        maxPersonsPerTerm: Int
    ) throws(StoreError) -> [[Posting]] {
        var personsByTerm: [Int64: [Posting]] = [:]
        for term in Set(queries.flatMap { $0 }) {
            var persons = Set((buffer[term] ?? []).lazy.filter { $0.caseID != caseID }.prefix(maxPersonsPerTerm + 1))
            for run in runs where persons.count <= maxPersonsPerTerm {
                let limit = maxPersonsPerTerm + 1 - persons.count
                persons.formUnion(try run.file.postings(of: term, excludingCase: caseID, limit: limit))
            }
            personsByTerm[term] = persons.count > maxPersonsPerTerm ? [] : persons.sorted { Self.order($0, $1) }
        }
        return queries.map { terms in
            var seen = Set<Posting>()
            return terms.sorted().flatMap { personsByTerm[$0] ?? [] }.filter { seen.insert($0).inserted }
        }
    }

    // MARK: Writing runs

    /// Writes what memory holds as a run once it holds `Limits.bufferRows` terms, and merges runs of
    /// one size once there are enough of them; deletes the removals carried out. `register` commits
    /// a change to the database (see `CaseStore.write`); a change to the list of runs made after the
    /// index was cleared is refused.
    public func writeRunsIfDue(register: Register) async throws {
        if let removed = removedThrough {
            try await register { db in
                try db.query("DELETE FROM match_log WHERE removed = 1 AND seq <= ?", [.int(removed)])
            }
            removedThrough = nil
        }
        if bufferRows >= limits.bufferRows { try await flush(register: register) }
        while let tier = Dictionary(grouping: runs, by: \.tier).filter({ $0.value.count >= limits.runsPerTier })
            .keys.min()
        {
            try await merge(Array(runs.filter { $0.tier == tier }.prefix(limits.runsPerTier)), register: register)
        }
    }

    /// Writes what memory holds as a run of the first size, and drops the log rows it holds.
    private func flush(register: Register) async throws {
        guard bufferRows > 0 else { return }
        let through = drained
        let run = try build(tier: 0, through: through, capacity: bufferRows) { writer in
            for term in buffer.keys.sorted() {
                for posting in buffer[term]!.sorted(by: Self.order) {
                    try writer.append(term: term, caseID: posting.caseID.utf8, personRef: posting.personRef.utf8)
                }
            }
        }
        try await commit(run, replacing: [], register: register) { db in
            try db.query("DELETE FROM match_log WHERE seq <= ?", [.int(through)])
        }
        buffer = [:]
        bufferRows = 0
    }

    private func merge(_ sources: [Run], register: Register) async throws {
        let run = try build(
            tier: sources[0].tier + 1,
            through: sources.map(\.through).max() ?? 0,
            capacity: sources.map(\.file.rows).reduce(0, +)
        ) { writer in
            try RunFile.merge(sources.map(\.file), into: writer)
        }
        try await commit(run, replacing: sources, register: register) { _ in }
    }

    /// Lists `run` (and unlists `replaced`) in the database, then deletes the replaced runs' files.
    private func commit(
        _ run: Run,
        replacing replaced: [Run],
        register: Register,
        also: @escaping @Sendable (Database) throws -> Void
    ) async throws {
        let generation = self.generation ?? ""
        let (file, tier, rows, through) = (run.name, run.tier, run.file.rows, run.through)
        let replacedFiles = replaced.map(\.name)
        do {
            try await register { db in
                guard try Self.generation(db) == generation else { throw StoreError("the duplicate index was cleared") }
                for replaced in replacedFiles {
                    try db.query("DELETE FROM match_runs WHERE file = ?", [.text(replaced)])
                }
                try db.query(
                    "INSERT INTO match_runs (file, tier, rows, through) VALUES (?, ?, ?, ?)",
                    [.text(file), .int(Int64(tier)), .int(Int64(rows)), .int(through)]
                )
                try also(db)
            }
        } catch {
            unlink(path(file))
            self.generation = nil  // loaded again from the database at the next catch-up
            throw error
        }
        runs.removeAll { replacedFiles.contains($0.name) }
        runs.append(run)
        for file in replacedFiles { unlink(path(file)) }
    }

    /// Writes a new run file, synced (with the folder) before it is listed; `capacity`: the most
    /// postings it will hold.
    private func build(
        tier: Int,
        through: Int64,
        capacity: Int,
        _ fill: (RunFile.Writer) throws -> Void
    ) throws -> Run {
        let file = "run-\(UUID().uuidString.lowercased())\(RunFile.fileExtension)"
        do {
            let writer = try RunFile.Writer(path: path(file), capacity: capacity)
            try fill(writer)
            try writer.finish()
            try Self.sync(folder)
            return Run(name: file, tier: tier, through: through, file: try RunFile(path: path(file)))
        } catch {
            unlink(path(file))
            throw error
        }
    }

    private func open(_ file: String) throws(StoreError) -> RunFile {
        guard FileManager.default.fileExists(atPath: path(file)) else {
            throw StoreError("the duplicate index file \(path(file)) is missing; restart the node to build it again")
        }
        return try RunFile(path: path(file))
    }

    /// Which build of the index the database lists runs for (a new one at each `clearSearchIndex`).
    private static func generation(_ db: Database) throws(StoreError) -> String {
        try db.first("SELECT value FROM store_meta WHERE name = 'match-generation'")?.text(0) ?? ""
    }

    private func path(_ file: String) -> String { (folder as NSString).appendingPathComponent(file) }

    private static func sync(_ path: String) throws(StoreError) {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0, fsync(fd) == 0 else {
            if fd >= 0 { Glibc.close(fd) }
            throw StoreError("cannot sync \(path): \(String(cString: strerror(errno)))")
        }
        Glibc.close(fd)
    }

    /// The order of a term's postings in a run: by case id, then person ref, as bytes.
    private static func order(_ a: Posting, _ b: Posting) -> Bool {
        guard a.caseID == b.caseID else { return a.caseID.utf8.lexicographicallyPrecedes(b.caseID.utf8) }
        return a.personRef.utf8.lexicographicallyPrecedes(b.personRef.utf8)
    }

    /// The 8-byte keyed hashes a row of the log or of `search_terms` holds, as the integers the runs are keyed by.
    static func keys(_ blob: [UInt8]) -> [Int64] {
        stride(from: 0, to: blob.count - 7, by: 8).map { start in
            Int64(bitPattern: blob[start..<(start + 8)].reduce(0) { $0 << 8 | UInt64($1) })
        }
    }

    /// The row `keys` reads back as these.
    static func blob(_ keys: [Int64]) -> [UInt8] {
        keys.flatMap { key in
            (0..<8).reversed().map { byte in UInt8(truncatingIfNeeded: UInt64(bitPattern: key) >> (byte * 8)) }
        }
    }
}
