#!/usr/bin/env python3
"""What one small commit costs the system's SQLite against the size of its page cache.

Found profiling one-at-a-time submits (2026-12-06): a commit that makes the database grow (a new
page appended) walks the whole page cache, so with the node's 64 MiB writer cache it costs several
times what it does with a small one. Commits that only change existing pages do not.

    python3 Benchmarks/commit_cost.py     # about 30 s; writes a scratch database in a temporary folder
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
                         "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB);")
        db.execute("BEGIN")
        for _ in range(200_000):
            db.execute("INSERT INTO t VALUES (?, randomblob(200))", (str(uuid.uuid4()),))
        db.execute("COMMIT")
        existing = [row[0] for row in db.execute("SELECT k FROM t LIMIT ?", (COMMITS,))]
        print(f"SQLite {sqlite3.sqlite_version}, {COMMITS} commits of one row each, µs per commit:")
        print("| page cache | insert (the file grows) | update (it does not) |")
        print("|---:|---:|---:|")
        for cache_kib in [1024, 16384, 65536]:
            db.execute(f"PRAGMA cache_size = -{cache_kib}")
            db.execute("SELECT COUNT(v) FROM t").fetchone()  # fill the cache, as a long-running writer's is
            grow = timed(db, "INSERT INTO t VALUES (?, randomblob(200))", [str(uuid.uuid4()) for _ in existing])
            change = timed(db, "UPDATE t SET v = randomblob(200) WHERE k = ?", existing)
            print(f"| {cache_kib // 1024} MiB | {grow:.0f} | {change:.0f} |")


if __name__ == "__main__":
    main()
