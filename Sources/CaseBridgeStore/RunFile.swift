import Foundation

/// One sorted run of duplicate detection's index (`MatchIndex`), in a file of its own:
///
///     postings  each: term (8 bytes, little-endian), removed (1 byte), the case id's length (1), the
///               person ref's length (1), the case id, the person ref; ordered by term, case id and
///               person ref (as bytes), each once
///     samples   the term and place of every `sampleEvery`-th posting (8 + 8 bytes), read into memory
///               when the run is opened: a lookup reads one small window from the last sample before
///               its term
///     filter    the run's `TermFilter`
///     trailer   the postings held, where the samples and the filter start, and the format's mark
///
/// A run was a SQLite file. Its writes (a B-tree insert a posting, a statement every 64) and its
/// lookups (a statement each) were half the duplicate scan, for files written once, in order, and
/// then only read. Read with `pread`, not mapped: the kernel's cache holds what is hot, and the
/// node's memory does not grow with the runs. A purge overwrites what it removes in place (`remove`).
final class RunFile {
    static let sampleEvery = 64
    static let fileExtension = ".run"
    private static let mark = Array("CBRUN\0\0\u{1}".utf8)
    private static let trailerBytes = 48
    private static let headerBytes = 11

    let path: String
    let rows: Int
    let filter: TermFilter
    private let fd: Int32
    private let postingsEnd: Int
    private var sampleTerms: [Int64]
    private let sampleOffsets: [Int]

    /// Opens a run written by `Writer`; a file that is not one (an older node's SQLite run, a damaged
    /// file) is refused.
    init(path: String) throws(StoreError) {
        self.path = path
        fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure("cannot open", path) }
        do throws(StoreError) {
            let size = Int(lseek(fd, 0, SEEK_END))
            guard size >= Self.trailerBytes else { throw Self.damaged(path) }
            let trailer = try Self.read(fd, at: size - Self.trailerBytes, count: Self.trailerBytes, path)
            let (count, samplesAt, samples, filterAt, filterBytes) = (
                Self.integer(trailer, at: 0), Self.integer(trailer, at: 8), Self.integer(trailer, at: 16),
                Self.integer(trailer, at: 24), Self.integer(trailer, at: 32)
            )
            // Each part within the file, in place: a damaged trailer is refused before anything is read by it.
            let fields = [count, samplesAt, samples, filterAt, filterBytes]
            guard Array(trailer[40...]) == Self.mark, fields.allSatisfy({ (0...size).contains($0) }),
                samplesAt + 16 * samples == filterAt, filterAt + filterBytes == size - Self.trailerBytes
            else { throw Self.damaged(path) }
            rows = count
            postingsEnd = samplesAt
            let sampled = try Self.read(fd, at: samplesAt, count: 16 * samples, path)
            sampleTerms = (0..<samples).map { Self.int64(sampled, at: 16 * $0) }
            sampleOffsets = (0..<samples).map { Self.integer(sampled, at: 16 * $0 + 8) }
            filter = TermFilter(bits: try Self.read(fd, at: filterAt, count: filterBytes, path))
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// Whether `path` ends as a run in this format does (`MatchIndex.runsPresent`).
    static func isRun(_ path: String) -> Bool { (try? RunFile(path: path)) != nil }

    // MARK: Reading

    /// The postings of `term`, other cases' than `caseID`, at most `limit`.
    func postings(of term: Int64, excludingCase caseID: String, limit: Int) throws(StoreError) -> [MatchIndex.Posting] {
        guard limit > 0, filter.mayHold(term) else { return [] }
        var found: [MatchIndex.Posting] = []
        var cursor = Cursor(self, from: start(of: term), windowBytes: 4096)
        while found.count < limit, try cursor.next() {
            if cursor.removed || cursor.term < term { continue }
            if cursor.term > term { break }
            guard !cursor.caseID.elementsEqual(caseID.utf8) else { continue }
            found.append(
                MatchIndex.Posting(
                    caseID: String(decoding: cursor.caseID, as: UTF8.self),
                    personRef: String(decoding: cursor.personRef, as: UTF8.self)
                )
            )
        }
        return found
    }

    /// Where to start reading for `term`: the last sample before it (the postings' start if none).
    private func start(of term: Int64) -> Int {
        var (low, high) = (0, sampleTerms.count)  // the first sample at or past `term`, found in [low, high]
        while low < high {
            let middle = (low + high) / 2
            if sampleTerms[middle] < term { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? 0 : sampleOffsets[low - 1]
    }

    /// Reads the postings in order from a place, a window of the file at a time.
    struct Cursor {
        private let file: RunFile
        private let windowBytes: Int
        private var window: [UInt8] = []
        private var windowStart = 0
        private var following: Int  // where the next posting starts
        private var caseRange = 0..<0
        private var refRange = 0..<0
        /// The posting read last: where it starts, its term, and whether a purge removed it.
        private(set) var offset = 0
        private(set) var term: Int64 = 0
        private(set) var removed = false
        var caseID: ArraySlice<UInt8> { window[caseRange] }
        var personRef: ArraySlice<UInt8> { window[refRange] }

        /// `windowBytes`: read at a time, at least a posting's largest size.
        init(_ file: RunFile, from offset: Int, windowBytes: Int) {
            self.file = file
            self.windowBytes = max(windowBytes, RunFile.headerBytes + 2 * 255)
            following = offset
        }

        /// Moves to the next posting; false past the last.
        mutating func next() throws(StoreError) -> Bool {
            offset = following
            guard offset < file.postingsEnd else { return false }
            if offset + RunFile.headerBytes > windowStart + window.count { try fill() }
            var at = offset - windowStart
            guard at + RunFile.headerBytes <= window.count else { throw RunFile.damaged(file.path) }
            let length = RunFile.headerBytes + Int(window[at + 9]) + Int(window[at + 10])
            if offset + length > windowStart + window.count {
                try fill()
                at = 0
            }
            guard at + length <= window.count else { throw RunFile.damaged(file.path) }
            term = RunFile.int64(window, at: at)
            removed = window[at + 8] != 0
            caseRange = (at + RunFile.headerBytes)..<(at + RunFile.headerBytes + Int(window[at + 9]))
            refRange = caseRange.upperBound..<(at + length)
            following = offset + length
            return true
        }

        /// Moves to the next posting not removed; false past the last.
        mutating func nextKept() throws(StoreError) -> Bool {
            while try next() {
                if !removed { return true }
            }
            return false
        }

        /// Whether this posting comes before `other`'s in a run's order.
        func precedes(_ other: Cursor) -> Bool {
            if term != other.term { return term < other.term }
            if !caseID.elementsEqual(other.caseID) { return caseID.lexicographicallyPrecedes(other.caseID) }
            return personRef.lexicographicallyPrecedes(other.personRef)
        }

        private mutating func fill() throws(StoreError) {
            windowStart = offset
            window = try RunFile.read(
                file.fd,
                at: offset,
                count: min(windowBytes, file.postingsEnd - offset),
                file.path
            )
        }
    }

    // MARK: Removing

    /// Overwrites the postings of each case's `terms` in place, then syncs the file: each is marked
    /// removed, its case id and person ref zeroed, and its term (and a sample's) replaced by the term
    /// before it, so that the file stays in order and holds nothing of the person.
    func remove(_ removals: [(caseID: String, terms: [Int64])]) throws(StoreError) {
        var changed = false
        for (caseID, terms) in removals {
            changed = try remove(caseID: caseID, terms: terms) || changed
        }
        if changed, fsync(fd) != 0 { throw Self.failure("cannot sync", path) }
    }

    private func remove(caseID: String, terms: [Int64]) throws(StoreError) -> Bool {
        var changed = false
        for term in Set(terms) where filter.mayHold(term) {
            var cursor = Cursor(self, from: start(of: term), windowBytes: 4096)
            var before = Int64.min  // the term of the posting before, as the file holds it now
            while try cursor.next() {
                guard !cursor.removed, cursor.term == term, cursor.caseID.elementsEqual(caseID.utf8) else {
                    if !cursor.removed, cursor.term > term { break }
                    before = cursor.term
                    continue
                }
                var erased: [UInt8] = []
                Self.append(before, to: &erased)
                erased += [1, UInt8(cursor.caseID.count), UInt8(cursor.personRef.count)]
                erased += [UInt8](repeating: 0, count: cursor.caseID.count + cursor.personRef.count)
                try Self.write(fd, erased, at: cursor.offset, path)
                if let sample = sample(at: cursor.offset) {
                    sampleTerms[sample] = before
                    try Self.write(fd, Array(erased.prefix(8)), at: postingsEnd + 16 * sample, path)
                }
                changed = true
            }
        }
        return changed
    }

    /// The sample at `offset`, if a posting there is one.
    private func sample(at offset: Int) -> Int? {
        var (low, high) = (0, sampleOffsets.count)
        while low < high {
            let middle = (low + high) / 2
            if sampleOffsets[middle] < offset { low = middle + 1 } else { high = middle }
        }
        return low < sampleOffsets.count && sampleOffsets[low] == offset ? low : nil
    }

    // MARK: Writing

    /// Writes the postings of `sources` that are not removed into `writer`, in order.
    static func merge(_ sources: [RunFile], into writer: Writer) throws(StoreError) {
        var cursors: [Cursor] = []
        for source in sources {
            var cursor = Cursor(source, from: 0, windowBytes: 1 << 18)
            if try cursor.nextKept() { cursors.append(cursor) }
        }
        while !cursors.isEmpty {
            var least = 0
            for i in cursors.indices.dropFirst() where cursors[i].precedes(cursors[least]) { least = i }
            let next = cursors[least]
            try writer.append(term: next.term, caseID: next.caseID, personRef: next.personRef)
            if try !cursors[least].nextKept() { cursors.remove(at: least) }
        }
    }

    /// Writes a new run, postings given in order; `finish` completes and syncs it.
    final class Writer {
        private let path: String
        private let fd: Int32
        private var buffer: [UInt8] = []
        private var written = 0
        private(set) var rows = 0
        private var samples: [UInt8] = []
        private var filter: TermFilter
        /// The last posting written (none yet: `rows` is 0).
        private var lastTerm: Int64 = 0
        private var lastCaseID: [UInt8] = []
        private var lastPersonRef: [UInt8] = []

        /// `capacity`: the most postings the run will hold (its filter's size).
        init(path: String, capacity: Int) throws(StoreError) {
            self.path = path
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RunFile.failure("cannot open", path) }
            filter = TermFilter(capacity: capacity)
            buffer.reserveCapacity(1 << 16)
        }

        /// Appends a posting, in order after the last; the same posting twice is written once.
        func append(
            term: Int64,
            caseID: some Collection<UInt8>,
            personRef: some Collection<UInt8>
        ) throws(StoreError) {
            if rows > 0, lastTerm == term, lastCaseID.elementsEqual(caseID), lastPersonRef.elementsEqual(personRef) {
                return
            }
            guard (1...255).contains(caseID.count), personRef.count <= 255 else {
                throw StoreError("a case id or person ref too long for the duplicate index")
            }
            if rows % RunFile.sampleEvery == 0 {
                RunFile.append(term, to: &samples)
                RunFile.append(Int64(written + buffer.count), to: &samples)
            }
            RunFile.append(term, to: &buffer)
            buffer += [0, UInt8(caseID.count), UInt8(personRef.count)]
            buffer += caseID
            buffer += personRef
            filter.insert(term)
            rows += 1
            lastTerm = term
            lastCaseID.removeAll(keepingCapacity: true)
            lastCaseID += caseID
            lastPersonRef.removeAll(keepingCapacity: true)
            lastPersonRef += personRef
            if buffer.count >= 1 << 16 { try flush() }
        }

        /// Writes the samples, the filter and the trailer, and syncs the file.
        func finish() throws(StoreError) {
            let samplesAt = written + buffer.count
            buffer += samples
            buffer += filter.bits
            for value in [rows, samplesAt, samples.count / 16, samplesAt + samples.count, filter.bits.count] {
                RunFile.append(Int64(value), to: &buffer)
            }
            buffer += RunFile.mark
            try flush()
            guard fsync(fd) == 0 else { throw RunFile.failure("cannot sync", path) }
        }

        deinit { Glibc.close(fd) }

        private func flush() throws(StoreError) {
            try RunFile.write(fd, buffer, at: written, path)
            written += buffer.count
            buffer.removeAll(keepingCapacity: true)
        }
    }

    // MARK: Bytes

    private static func append(_ value: Int64, to bytes: inout [UInt8]) {
        for byte in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: value) >> (8 * byte))) }
    }

    private static func int64(_ bytes: [UInt8], at offset: Int) -> Int64 {
        Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) })
    }

    private static func integer(_ bytes: [UInt8], at offset: Int) -> Int { Int(int64(bytes, at: offset)) }

    private static func read(_ fd: Int32, at offset: Int, count: Int, _ path: String) throws(StoreError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            var chunk = [UInt8](repeating: 0, count: count - bytes.count)
            let got = pread(fd, &chunk, chunk.count, off_t(offset + bytes.count))
            guard got > 0 else { throw got == 0 ? damaged(path) : failure("cannot read", path) }
            if bytes.isEmpty, got == chunk.count { return chunk }  // almost always: one read
            bytes += chunk.prefix(got)
        }
        return bytes
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8], at offset: Int, _ path: String) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let rest = done == 0 ? bytes : Array(bytes[done...])
            let count = pwrite(fd, rest, rest.count, off_t(offset + done))
            guard count > 0 else { throw failure("cannot write", path) }
            done += count
        }
    }

    private static func failure(_ what: String, _ path: String) -> StoreError {
        StoreError("\(what) \(path): \(String(cString: strerror(errno)))")
    }

    static func damaged(_ path: String) -> StoreError {
        StoreError("the duplicate index file \(path) is damaged; restart the node to build it again")
    }
}

/// A Bloom filter of a run's terms: about 1 % of the terms a run does not hold still read it (10
/// bits and 7 probes a term). The terms are keyed hashes already: their halves are the probes' seeds.
struct TermFilter {
    private(set) var bits: [UInt8]

    init(bits: [UInt8]) { self.bits = bits }

    /// An empty filter for up to `capacity` terms.
    init(capacity: Int) { bits = [UInt8](repeating: 0, count: max(8, (capacity * 10 + 7) / 8)) }

    mutating func insert(_ term: Int64) {
        let count = bits.count * 8
        for probe in 0..<Self.probes { set(Self.bit(probe, of: term, count)) }
    }

    /// False when the run certainly does not hold `term`. An empty filter (none read) holds all.
    /// Most terms looked up are in no run: the first probe that misses says so.
    func mayHold(_ term: Int64) -> Bool {
        guard !bits.isEmpty else { return true }
        let count = bits.count * 8
        for probe in 0..<Self.probes where !isSet(Self.bit(probe, of: term, count)) { return false }
        return true
    }

    private static let probes: UInt64 = 7

    private static func bit(_ probe: UInt64, of term: Int64, _ count: Int) -> Int {
        let value = UInt64(bitPattern: term)
        let (first, second) = (value & 0xFFFF_FFFF, value >> 32 | 1)
        return Int((first &+ probe &* second) % UInt64(count))
    }

    private mutating func set(_ bit: Int) { bits[bit >> 3] |= 1 << UInt8(bit & 7) }
    private func isSet(_ bit: Int) -> Bool { bits[bit >> 3] & (1 << UInt8(bit & 7)) != 0 }
}
