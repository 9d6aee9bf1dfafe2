#!/usr/bin/env python3
"""How a node's costs grow with its history: fills an NCCT node step by step (1,000, 10,000 and
100,000 cases; --million adds 1,000,000) with unique durable submits over mutual TLS, and at each
step times the screens staff open (inbox page, one case, status, the web console's work queue),
one audit walk, durable submits at 512 in flight, the node's memory and its data on disk.

    Benchmarks/scale [--million]     (results: Benchmarks/results/scale-latest.json)

Between steps the desk marks its inbox read, as officers do; the cases are the load generator's
(2 persons, ~550 bytes, status "received").
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, Federation, bench, cpu_seconds, memory_kib, settle, sh, written  # noqa: E402

SIZES = [1_000, 10_000, 100_000] + ([1_000_000] if "--million" in sys.argv else [])
if os.environ.get("SCALE_SIZES"):  # e.g. SCALE_SIZES=30000, to look at one size
    SIZES = [int(size) for size in os.environ["SCALE_SIZES"].split(",")]


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main():
    print("building (release)...", file=sys.stderr)
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    binary = os.path.join(ROOT, ".build/release/casebridge")
    generator = os.path.join(ROOT, ".build/release/casebridge-bench")
    # SCALE_LIMITS='{"database_map_mib": 0}': the same run with other node limits.
    federation = Federation(binary, limits={**Federation.THROUGHPUT_LIMITS,
                                            **json.loads(os.environ.get("SCALE_LIMITS", "{}"))})
    results = []
    try:
        pid = federation.start("ncct")
        socket = federation.socket("ncct")
        token = sh(generator, "sign-in", "--socket", socket).stdout.strip()
        sessions = os.path.join(federation.folder, "sessions")
        os.makedirs(sessions, mode=0o700)
        with open(os.path.join(sessions, "ncct.session"), "w") as f:
            f.write(token)
        os.chmod(os.path.join(sessions, "ncct.session"), 0o600)
        cli_env = dict(os.environ, CASEBRIDGE_SESSIONS=sessions)
        config = os.path.join(federation.folder, "ncct.json")
        endpoint = f"127.0.0.1:{federation.ports['ncct']}"

        def count():
            out = sh(binary, "case", "list", "--limit", "1", "--config", config, env=cli_env).stdout
            last = out.strip().splitlines()[-1]  # "Cases 1–1 of N..."
            return int(last.split(" of ")[1].split(";")[0]) if " of " in last else 0

        for size in SIZES:
            print(f"filling to {size:,} cases...", file=sys.stderr)
            while (have := count()) < size:
                # ~5,000 durable submits/s here: ask for a bit less than what is missing (fewer in
                # flight for the last few thousand).
                missing = size - have
                load = ["--connections", "16", "--streams", "32"] if missing > 5000 else ["--streams", "16"]
                bench(generator, "submit", "--endpoint", endpoint, *load,
                      "--seconds", f"{max(0.2, missing / 7000):.1f}", "--warmup", "0")
            cases = count()
            # Duplicate detection runs behind a fill: let it finish, or it lands in the figures.
            settled_after = settle(pid)
            sh(binary, "inbox", "--mark-read", "all", "--config", config, env=cli_env)
            views = sh(generator, "views", "--socket", socket, "--token", token).stdout.strip().splitlines()[-1]
            views = json.loads(views)
            before, written_before = cpu_seconds(pid), written(pid)
            submit = bench(generator, "submit", "--endpoint", endpoint, "--connections", "16", "--streams", "32",
                           "--seconds", "5", "--warmup", "1")
            row = {"cases": cases, "settled_after_s": settled_after, **views,
                   "durable_submit_rps": round(submit["rps"]),
                   "submit_cpu_us_per_request":
                       round((cpu_seconds(pid) - before) * 1e6 / max(1, submit["requests"]), 1),
                   # Bytes the node wrote to disk (WAL, checkpoints, duplicate detection's index).
                   "written_kib_per_submit":
                       round((written(pid) - written_before) / 1024 / max(1, submit["requests"]), 1),
                   "node_rss_mib": round(memory_kib(pid, "VmRSS") / 1024),
                   # Anonymous memory (heaps, SQLite's page cache) apart from the database file's
                   # pages mapped in (none unless limits.database_map_mib is set; the kernel may drop them).
                   "node_anon_mib": round(memory_kib(pid, "RssAnon") / 1024),
                   "node_file_mib": round(memory_kib(pid, "RssFile") / 1024),
                   "data_mib": round(folder_bytes(os.path.join(federation.folder, "ncct", "data")) / 2**20, 1)}
            results.append(row)
            print("  " + json.dumps(row), file=sys.stderr)
    finally:
        if os.environ.get("SCALE_KEEP"):  # leave the node's data to look at
            for process in federation.processes.values():
                process.terminate()
                process.wait()
            print(f"kept {federation.folder}", file=sys.stderr)
        else:
            federation.stop()
    out = os.path.join(ROOT, "Benchmarks", "results", "scale-latest.json")
    json.dump({"date": time.strftime("%Y-%m-%d"), "steps": results}, open(out, "w"), indent=1)
    print("| cases | inbox page | case show | status | work queue | audit verify | submit @512 | µs CPU/submit"
          " | KiB written/submit | RSS (anon + file) | data | scan settled after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['cases']:,} | {r['inbox_page_ms']} ms | {r['case_show_ms']} ms | {r['status_ms']} ms | "
              f"{r['work_queue_ms']} ms | {r['audit_verify_s']} s | {r['durable_submit_rps']:,}/s | "
              f"{r['submit_cpu_us_per_request']} | {r['written_kib_per_submit']} | {r['node_rss_mib']} MiB "
              f"({r['node_anon_mib']} + {r['node_file_mib']}) | {r['data_mib']} MiB | {r['settled_after_s']} s |")


if __name__ == "__main__":
    main()
