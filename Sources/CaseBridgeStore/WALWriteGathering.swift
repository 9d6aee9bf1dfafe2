import CSQLite
import Synchronization

/// A VFS for the store's writer that gathers a transaction's writes to the WAL in memory and hands
/// them to the kernel in one write when SQLite syncs the WAL, at the commit.
///
/// Why: SQLite writes each frame of the WAL as two `pwrite`s (its 24-byte header, then the page).
/// With 1 KiB pages a lone submit dirties about 21 pages, so its commit made 42 system calls before
/// its `fdatasync`: 18 % of the writer's CPU (`Benchmarks/README.md`).
///
/// Why it is safe: frames become visible to readers only when the WAL index's header is written,
/// after the commit's sync (the writer runs with `synchronous = FULL`, which syncs the WAL at every
/// commit). The wrapper writes out what it holds before that sync, and before anything that looks at
/// the file (a read, its size, a truncation, a file control, its close). Until the sync nothing was
/// durable before either, so a crash loses nothing that was acknowledged. A failed write is reported
/// by the sync, and SQLite then rolls the transaction back as it would for a failed write.
///
/// Only files SQLite opens as a WAL are wrapped; the database file and everything else are SQLite's
/// own files, unchanged, at the start of the same allocation.
enum WALWriteGathering {
    /// The name the writer opens its connection with (nil when the VFS could not be registered, when
    /// the writer uses SQLite's default).
    static let vfsName: String? = register() ? name.description : nil

    /// Bytes held before they are written out without waiting for the sync (a large transaction).
    static let maxHeldBytes = 1 << 20

    /// The most one write hands SQLite's own file: its `unixWrite` masks a length with 0x1ffff, so a
    /// write of 128 KiB or more comes back short, as if the disk were full.
    static let maxWriteBytes = 64 << 10

    /// Writes gathered, and writes made to the WAL, in this process (for tests and benchmarks).
    static let gathered = Atomic<Int>(0)
    static let written = Atomic<Int>(0)

    private static let name: StaticString = "casebridge-gathered-wal"

    private static func register() -> Bool {
        // Finding a VFS initialises SQLite, after which its page cache can no longer be replaced.
        _ = PageCacheTruncation.installed
        guard let inner = sqlite3_vfs_find(nil) else { return false }
        innerVFS = inner
        headerBytes = (MemoryLayout<GatheredFile>.stride + 15) & ~15
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: inner.pointee)
        vfs.pointee.pNext = nil
        vfs.pointee.zName = UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
        vfs.pointee.szOsFile = Int32(headerBytes) + inner.pointee.szOsFile
        vfs.pointee.xOpen = { _, path, file, flags, outFlags in
            guard let file, let open = innerVFS.pointee.xOpen else { return SQLITE_CANTOPEN }
            guard flags & SQLITE_OPEN_WAL != 0 else {
                // Not a WAL: SQLite's own file, at the start of the allocation, with its own methods.
                return open(innerVFS, path, file, flags, outFlags)
            }
            let raw = UnsafeMutableRawPointer(file)
            let inner = (raw + headerBytes).assumingMemoryBound(to: sqlite3_file.self)
            let status = open(innerVFS, path, inner, flags, outFlags)
            guard status == SQLITE_OK, let methods = inner.pointee.pMethods else {
                file.pointee.pMethods = nil
                return status == SQLITE_OK ? SQLITE_CANTOPEN : status
            }
            // Held as an address: a pointer is not Sendable.
            let address = gatheredMethods.withLock { made in
                if made == 0 { made = UInt(bitPattern: WALWriteGathering.makeMethods(like: methods)) }
                return made
            }
            let gathered = UnsafePointer<sqlite3_io_methods>(bitPattern: address)
            raw.bindMemory(to: GatheredFile.self, capacity: 1).initialize(
                to: GatheredFile(base: sqlite3_file(pMethods: gathered), inner: inner, held: Held())
            )
            return SQLITE_OK
        }
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }

    /// SQLite's methods for the WAL, each writing out what is held first; writes are gathered.
    private static func makeMethods(
        like inner: UnsafePointer<sqlite3_io_methods>
    ) -> UnsafePointer<sqlite3_io_methods> {
        innerMethods = inner
        var methods = inner.pointee
        methods.xClose = { file in
            let gathered = gatheredFile(file)
            let status = gathered.pointee.writeOut()
            let closed = innerMethods.pointee.xClose?(gathered.pointee.inner) ?? SQLITE_OK
            gathered.deinitialize(count: 1)
            return status == SQLITE_OK ? closed : status
        }
        methods.xWrite = { file, buffer, count, offset in
            guard let buffer else { return SQLITE_IOERR }
            let bytes = UnsafeRawBufferPointer(start: buffer, count: Int(count))
            return gatheredFile(file).pointee.write(bytes, at: offset)
        }
        methods.xRead = { file, buffer, count, offset in
            writtenOut(file) { innerMethods.pointee.xRead?($0, buffer, count, offset) }
        }
        methods.xTruncate = { file, size in writtenOut(file) { innerMethods.pointee.xTruncate?($0, size) } }
        methods.xSync = { file, flags in writtenOut(file) { innerMethods.pointee.xSync?($0, flags) } }
        methods.xFileSize = { file, size in writtenOut(file) { innerMethods.pointee.xFileSize?($0, size) } }
        methods.xFileControl = { file, operation, argument in
            writtenOut(file) { innerMethods.pointee.xFileControl?($0, operation, argument) }
        }
        methods.xLock = { file, lock in
            innerMethods.pointee.xLock?(gatheredFile(file).pointee.inner, lock) ?? SQLITE_OK
        }
        methods.xUnlock = { file, lock in
            innerMethods.pointee.xUnlock?(gatheredFile(file).pointee.inner, lock) ?? SQLITE_OK
        }
        methods.xCheckReservedLock = { file, out in
            innerMethods.pointee.xCheckReservedLock?(gatheredFile(file).pointee.inner, out) ?? SQLITE_OK
        }
        methods.xSectorSize = { file in innerMethods.pointee.xSectorSize?(gatheredFile(file).pointee.inner) ?? 4096 }
        methods.xDeviceCharacteristics = { file in
            innerMethods.pointee.xDeviceCharacteristics?(gatheredFile(file).pointee.inner) ?? 0
        }
        // A WAL has no shared memory of its own, nor a memory map: what SQLite never calls is left out.
        methods.xShmMap = nil
        methods.xShmLock = nil
        methods.xShmBarrier = nil
        methods.xShmUnmap = nil
        methods.xFetch = nil
        methods.xUnfetch = nil
        methods.iVersion = 1
        let stored = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        stored.initialize(to: methods)
        return UnsafePointer(stored)
    }
}

/// Set once: at registration, and when the first WAL opens (under the lock), before any WAL is used.
private nonisolated(unsafe) var innerVFS: UnsafeMutablePointer<sqlite3_vfs>!
private nonisolated(unsafe) var innerMethods: UnsafePointer<sqlite3_io_methods>!
private nonisolated(unsafe) var headerBytes = 0
private let gatheredMethods = Mutex<UInt>(0)

private func gatheredFile(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<GatheredFile> {
    UnsafeMutableRawPointer(file!).assumingMemoryBound(to: GatheredFile.self)
}

/// Writes out what the WAL holds, then calls SQLite's own method (`call`) on its own file.
private func writtenOut(
    _ file: UnsafeMutablePointer<sqlite3_file>?,
    then call: (UnsafeMutablePointer<sqlite3_file>) -> Int32?
) -> Int32 {
    let gathered = gatheredFile(file)
    let status = gathered.pointee.writeOut()
    guard status == SQLITE_OK else { return status }
    return call(gathered.pointee.inner) ?? SQLITE_IOERR
}

/// What SQLite allocated for a WAL: this header (whose first field SQLite reads the methods from),
/// then SQLite's own file.
private struct GatheredFile {
    var base: sqlite3_file
    let inner: UnsafeMutablePointer<sqlite3_file>
    let held: Held

    /// Appends to what is held when `bytes` continue it; otherwise writes that out first.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: sqlite3_int64) -> Int32 {
        if !held.bytes.isEmpty, offset != held.offset + sqlite3_int64(held.bytes.count) {
            let status = writeOut()
            guard status == SQLITE_OK else { return status }
        }
        if held.bytes.isEmpty { held.offset = offset }
        held.bytes.append(contentsOf: bytes)
        WALWriteGathering.gathered.add(1, ordering: .relaxed)
        return held.bytes.count > WALWriteGathering.maxHeldBytes ? writeOut() : SQLITE_OK
    }

    /// Writes what is held at its place in the file, in as few writes as SQLite's own file takes.
    func writeOut() -> Int32 {
        guard !held.bytes.isEmpty else { return SQLITE_OK }
        defer { held.bytes.removeAll(keepingCapacity: true) }
        return held.bytes.withUnsafeBytes { bytes in
            for start in stride(from: 0, to: bytes.count, by: WALWriteGathering.maxWriteBytes) {
                let count = Int32(min(WALWriteGathering.maxWriteBytes, bytes.count - start))
                WALWriteGathering.written.add(1, ordering: .relaxed)
                let write = innerMethods.pointee.xWrite, at = held.offset + Int64(start)
                let status = write?(inner, bytes.baseAddress! + start, count, at) ?? SQLITE_IOERR
                guard status == SQLITE_OK else { return status }
            }
            return SQLITE_OK
        }
    }
}

/// The bytes a WAL file holds back, and where in the file they go (used by its connection's thread).
private final class Held {
    var offset: sqlite3_int64 = 0
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(64 << 10) }
}
