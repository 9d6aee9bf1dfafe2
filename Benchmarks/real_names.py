#!/usr/bin/env python3
"""Durable submits whose persons have names as real requests do, and what duplicate detection then
costs NCCT's node.

`Benchmarks/run` files persons with unique synthetic names: no two share a term of the index, so
duplicate detection finds few candidates. Real requests share family names and birth years (a year
and "Nguyễn" are many persons), and every candidate found is read, opened and compared. This fills a
fresh NCCT node at 512 in flight with `casebridge-bench submit --realistic-names` (the duplicate
set's generator: Vietnamese, Chinese and Indonesian names from a few dozen, 85 % full birth dates),
in steps, and after each step waits until the node is idle again.

    python3 Benchmarks/real_names.py [SECONDS_PER_STEP] [STEPS]    (15 and 2 by default; ~5 minutes)

Per step: cases, submit rate, node CPU per case by thread (the duplicate scan runs on
cb-background) and how long the node took to finish after the step's last submit.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (ROOT, Federation, bench, case_count, cpu_us_per_case_by_thread, settle,  # noqa: E402
                 thread_cpu_seconds)


def main():
    seconds = sys.argv[1] if len(sys.argv) > 1 else "15"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    binary = os.path.join(ROOT, ".build/release/casebridge")
    generator = os.path.join(ROOT, ".build/release/casebridge-bench")
    federation = Federation(binary, limits=Federation.THROUGHPUT_LIMITS)
    try:
        pid = federation.start("ncct")
        endpoint = ["--endpoint", f"127.0.0.1:{federation.ports['ncct']}"]
        cases, cpu = 0, thread_cpu_seconds(pid)
        for step in range(steps):
            row = bench(generator, "submit", *endpoint, "--connections", "16", "--streams", "32",
                        "--seconds", seconds, "--realistic-names")
            behind = settle(pid)
            now_cases, now_cpu = case_count(federation, "ncct"), thread_cpu_seconds(pid)
            per = cpu_us_per_case_by_thread(cpu, now_cpu, max(1, now_cases - cases))
            main_kinds = ["cb-store-writer", "cb-worker", "cb-background", "cb-server"]
            split = ", ".join(f"{kind[3:]} {per.get(kind, 0):,.0f}" for kind in main_kinds)
            print(f"step {step + 1}: {now_cases:,} cases, {row['rps']:,.0f} submits/s; node CPU a case "
                  f"{sum(per.values()):,.0f} µs ({split}); idle {behind:.0f} s after the last submit", flush=True)
            cases, cpu = now_cases, now_cpu
    finally:
        federation.stop()


if __name__ == "__main__":
    main()
