#!/usr/bin/env python3
"""What sealing personal data at rest costs a durable submit: the same workload against a node built
from a commit before sealing and against this tree, in turns (A B A B ...), so that the machine's
drift hits both alike.

    Benchmarks/sealing.py BEFORE_REV [--rounds 3] [--seconds 10]

Builds both in release mode (the earlier one in a git worktree under /tmp), runs casebridge-bench
submit (16 connections x 32 streams, ~550-byte requests) for each round, and prints the medians of
requests/s and of the node's CPU per request; writes Benchmarks/results/sealing.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as common  # noqa: E402

ROOT = common.ROOT


def build(tree):
    subprocess.run(["swift", "build", "-c", "release", "--product", "casebridge"], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["swift", "build", "-c", "release", "--product", "casebridge-bench"], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(tree, ".build/release/casebridge")


def one_round(binary, generator, seconds):
    federation = common.Federation(binary)
    try:
        pid = federation.start("ncct")
        endpoint = ["--endpoint", f"127.0.0.1:{federation.ports['ncct']}"]
        row, cpu = common.measured(pid, lambda: common.bench(generator, "submit", *endpoint, "--connections", "16",
                                                             "--streams", "32", "--seconds", str(seconds)))
        return row["rps"], cpu * 1e6 / max(1, row["requests"]), row.get("errors", 0)
    finally:
        federation.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    tree = "/tmp/casebridge-before-sealing"
    if not os.path.exists(tree):
        subprocess.run(["git", "worktree", "add", "--detach", tree, args.before], cwd=ROOT, check=True)
    print("building both (release)...", file=sys.stderr)
    before, after = build(tree), build(ROOT)
    generator = os.path.join(ROOT, ".build/release/casebridge-bench")
    samples = {"before": [], "after": []}
    for round_number in range(args.rounds):
        for name, binary in [("before", before), ("after", after)]:
            rps, cpu, errors = one_round(binary, generator, args.seconds)
            samples[name].append({"rps": rps, "cpu_us_per_request": cpu, "errors": errors})
            print(f"  round {round_number + 1} {name}: {rps:.0f} req/s, {cpu:.0f} µs CPU/request, {errors} errors",
                  file=sys.stderr)
    summary = {name: {"rps": statistics.median(s["rps"] for s in runs),
                      "cpu_us_per_request": statistics.median(s["cpu_us_per_request"] for s in runs)}
               for name, runs in samples.items()}
    cost = 1 - summary["after"]["rps"] / summary["before"]["rps"]
    print(f"durable submit, median of {args.rounds}: before sealing {summary['before']['rps']:.0f} req/s "
          f"({summary['before']['cpu_us_per_request']:.0f} µs CPU), sealed {summary['after']['rps']:.0f} req/s "
          f"({summary['after']['cpu_us_per_request']:.0f} µs CPU): {cost * 100:+.1f} % throughput cost")
    os.makedirs(os.path.join(ROOT, "Benchmarks/results"), exist_ok=True)
    json.dump({"before": args.before, "samples": samples, "summary": summary, "throughput_cost": cost},
              open(os.path.join(ROOT, "Benchmarks/results/sealing.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
