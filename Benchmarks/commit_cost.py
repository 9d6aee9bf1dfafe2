#!/usr/bin/env python3
"""What one small commit costs the system's SQLite against the size of its page cache.

Found profiling one-at-a-time submits (2026-12-06): a commit in which a B-tree page split renumbers
pages (a row inserted at a random place in a key, such as a case id) walks the writer's whole page
cache, so with a 64 MiB cache it costs several times what it does with a small one. A split swaps
page numbers through a temporary number, the page after the 1 GiB lock byte (`balance_nonroot`,
`sqlite3PagerRekey`); the cache then remembers that number as its largest, and the truncation to
the file's size that ends every commit (`pcache1Truncate`) scans the whole hash table to drop it.
Rows appended in key order allocate pages without swapping any, and an update allocates none: both
stay cheap at any cache size. Once the file is larger than 1 GiB the temporary page is inside it,
and the scan no longer happens.

    python3 Benchmarks/commit_cost.py     # a few seconds; writes a scratch database in a temporary folder
"""
import os
import sqlite3
import tempfile
import time
import uuid

COMMITS = 2000


def timed(db, statement, values):
    start = time.perf_counter()
    for value in values:
        db.execute("BEGIN IMMEDIATE")
        db.execute(statement, (value,))
        db.execute("COMMIT")
    return (time.perf_counter() - start) / len(values) * 1e6


def main():
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(os.path.join(folder, "scratch.sqlite3"), isolation_level=None)
        # As the node's store: 1 KiB pages, WAL; no fsync, so the figures are the library's CPU.
        db.executescript("PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
                         "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB);"
                         "CREATE TABLE log (id INTEGER PRIMARY KEY, v BLOB);")
        db.execute("BEGIN")
        for _ in range(200_000):
            db.execute("INSERT INTO t VALUES (?, randomblob(200))", (str(uuid.uuid4()),))
        db.execute("COMMIT")
        existing = [row[0] for row in db.execute("SELECT k FROM t LIMIT ?", (COMMITS,))]
        print(f"SQLite {sqlite3.sqlite_version}, {COMMITS} commits of one row each, µs per commit:")
        print("| page cache | insert at a random key (splits) | append, 3 KB rows (the file grows) | update |")
        print("|---:|---:|---:|---:|")
        for cache_kib in [1024, 8192, 65536]:
            db.execute(f"PRAGMA cache_size = -{cache_kib}")
            db.execute("SELECT COUNT(v) FROM t").fetchone()  # fill the cache, as a long-running writer's is
            split = timed(db, "INSERT INTO t VALUES (?, randomblob(200))", [str(uuid.uuid4()) for _ in existing])
            append = timed(db, "INSERT INTO log (v) VALUES (randomblob(?))", [3000] * COMMITS)
            change = timed(db, "UPDATE t SET v = randomblob(200) WHERE k = ?", existing)
            print(f"| {cache_kib // 1024} MiB | {split:.0f} | {append:.0f} | {change:.0f} |")


if __name__ == "__main__":
    main()
