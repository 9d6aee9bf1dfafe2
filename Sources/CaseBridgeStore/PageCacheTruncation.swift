import CSQLite
import Synchronization

/// SQLite's own page cache, wrapped so that the truncation every write transaction ends with costs
/// nothing when no page past the end of the database is held.
///
/// Why: SQLite 3.40 balances a B-tree by swapping page numbers through the page after the 1 GiB lock
/// byte (1,048,577 with 1 KiB pages; `balance_nonroot`). The page is moved back before the commit,
/// but the default cache remembers that number as its largest, and the truncation to the file's size
/// at the commit's end then visits every slot of its hash table to find nothing to drop: 14 % of a
/// lone submit's CPU with the writer's 64 MiB cache (`Benchmarks/README.md`).
///
/// How: every page number enters the cache through a fetch or a rekey, and the wrapper sees both. It
/// keeps the numbers at or above `floor` (the limit of the last truncation) that may still be held.
/// A truncation whose limit is at or above the floor and above every such number has nothing to
/// drop, and is skipped; in any doubt (a limit below the floor, too many numbers to keep) the real
/// truncation runs.
enum PageCacheTruncation {
    /// Whether the wrapper is in place: installed before the process's first connection opens (false
    /// if SQLite was already initialised, when its own cache is used unchanged).
    static let installed = install()

    /// Truncations skipped and run, in this process (for tests and benchmarks).
    static let skipped = Atomic<Int>(0)
    static let run = Atomic<Int>(0)

    /// Page numbers a cache keeps track of before it stops and lets the next truncation run.
    static let maxTracked = 4_096

    private static func install() -> Bool {
        guard cb_sqlite_get_pcache2(&defaults) == SQLITE_OK, defaults.xCreate != nil else { return false }
        var methods = defaults
        methods.xCreate = { pageSize, extraSize, purgeable in
            guard let inner = defaults.xCreate?(pageSize, extraSize, purgeable) else { return nil }
            let cache = UnsafeMutablePointer<TrackedCache>.allocate(capacity: 1)
            cache.initialize(to: TrackedCache(inner: inner))
            return OpaquePointer(cache)
        }
        methods.xCachesize = { cache, size in defaults.xCachesize?(tracked(cache).pointee.inner, size) }
        methods.xPagecount = { cache in defaults.xPagecount?(tracked(cache).pointee.inner) ?? 0 }
        methods.xFetch = { cache, key, create in
            let cache = tracked(cache)
            let page = defaults.xFetch?(cache.pointee.inner, key, create)
            if page != nil { cache.pointee.entered(key) }
            return page
        }
        methods.xUnpin = { cache, page, discard in defaults.xUnpin?(tracked(cache).pointee.inner, page, discard) }
        methods.xRekey = { cache, page, old, new in
            let cache = tracked(cache)
            defaults.xRekey?(cache.pointee.inner, page, old, new)
            cache.pointee.held.remove(old)
            cache.pointee.entered(new)
        }
        methods.xTruncate = { cache, limit in
            let cache = tracked(cache)
            if cache.pointee.mayHold(atOrAbove: limit) {
                defaults.xTruncate?(cache.pointee.inner, limit)
                PageCacheTruncation.run.add(1, ordering: .relaxed)
            } else {
                PageCacheTruncation.skipped.add(1, ordering: .relaxed)
            }
            cache.pointee.truncated(to: limit)
        }
        methods.xDestroy = { cache in
            let cache = tracked(cache)
            defaults.xDestroy?(cache.pointee.inner)
            cache.deinitialize(count: 1)
            cache.deallocate()
        }
        methods.xShrink = { cache in defaults.xShrink?(tracked(cache).pointee.inner) }
        return cb_sqlite_set_pcache2(&methods) == SQLITE_OK
    }
}

/// SQLite's own methods, read once before any connection exists and never written again.
private nonisolated(unsafe) var defaults = sqlite3_pcache_methods2()

private func tracked(_ cache: OpaquePointer?) -> UnsafeMutablePointer<TrackedCache> {
    UnsafeMutablePointer<TrackedCache>(cache!)
}

/// One connection's cache (used by one thread at a time, as its connection is).
private struct TrackedCache {
    let inner: OpaquePointer
    /// The limit of the last truncation: no page at or above it was held after it.
    var floor: UInt32 = 0
    /// Every page number at or above `floor` that may be held since (a dropped page stays listed).
    var held: Set<UInt32> = []
    /// More numbers entered than are kept: the next truncation runs.
    var untracked = false

    mutating func entered(_ key: UInt32) {
        guard key >= floor, !untracked else { return }
        held.insert(key)
        if held.count > PageCacheTruncation.maxTracked {
            held.removeAll()
            untracked = true
        }
    }

    func mayHold(atOrAbove limit: UInt32) -> Bool {
        untracked || limit < floor || held.contains { $0 >= limit }
    }

    mutating func truncated(to limit: UInt32) {
        floor = limit
        held.removeAll(keepingCapacity: true)
        untracked = false
    }
}
