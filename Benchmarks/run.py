#!/usr/bin/env python3
"""CaseBridge benchmarks: one command, one table (and JSON). See Benchmarks/README.md."""
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import handshakes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CERTS = os.path.join(ROOT, "certs")
TICKS = os.sysconf("SC_CLK_TCK")
QUICK = "--quick" in sys.argv
SECONDS = 4 if QUICK else 10


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def thread_cpu_seconds(pid):
    """CPU seconds per kind of thread (the node names its threads: cb-store-writer, cb-worker-0, ...;
    the number is dropped, so both workers count as one kind). A thread that has ended is no longer
    counted: Dispatch's threads come and go, so their kinds can come out low."""
    kinds = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{task}/comm").read().strip()
            fields = open(f"/proc/{pid}/task/{task}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        kind = name.rstrip("0123456789").rstrip("-") or name
        kinds[kind] = kinds.get(kind, 0) + (int(fields[11]) + int(fields[12])) / TICKS
    return kinds


def cpu_us_per_case_by_thread(before, after, cases):
    """µs of CPU a case by kind of thread between two `thread_cpu_seconds` readings: the kinds that
    used some, busiest first."""
    return {kind: round((seconds - before.get(kind, 0)) * 1e6 / cases, 1)
            for kind, seconds in sorted(after.items(), key=lambda item: -item[1])
            if seconds - before.get(kind, 0) > 0}


def memory_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0


class Federation:
    """An NCCT node and an embassy node (release build) with fresh data, on loopback."""

    REPRESENTS = {"ncct": "KH", "embassy-id": "ID", "embassy-cn": "CN"}
    # One load generator stands for many peers: lift the limits that exist to keep one member or
    # one address from taking everything (the attack benchmark keeps the defaults).
    THROUGHPUT_LIMITS = {"max_connections": 8192, "max_concurrent_streams": 128, "max_connections_per_peer": 4096,
                         "max_calls_per_peer": 100000, "max_expensive_calls_per_peer": 1000,
                         "max_bytes_per_peer_per_minute": 1 << 40, "max_handshakes_per_address": 4096,
                         "new_connections_per_address_per_second": 100000}

    def __init__(self, binary, nodes=("ncct", "embassy-id"), limits=None):
        self.binary = binary
        self.folder = tempfile.mkdtemp(prefix="casebridge-bench-")
        self.ports = {node: free_port() for node in nodes}
        directory = {"trust_domain": "casebridge.test", "nodes": [
            {"id": node, "role": "ncct" if node == "ncct" else "embassy", "represents": self.REPRESENTS[node],
             "endpoint": f"127.0.0.1:{self.ports[node]}"} for node in nodes]}
        json.dump(directory, open(os.path.join(self.folder, "directory.json"), "w"))
        for node in self.ports:
            os.chmod(f"{CERTS}/nodes/{node}.key", 0o600)  # git checks keys out world-readable; nodes refuse that
            os.makedirs(os.path.join(self.folder, node))
            json.dump({"node_id": node, "listen": f"127.0.0.1:{self.ports[node]}",
                       "certificate": f"{CERTS}/nodes/{node}.pem", "private_key": f"{CERTS}/nodes/{node}.key",
                       "ca": f"{CERTS}/ca.pem", "crl": f"{CERTS}/crl.pem", "directory": "directory.json", "data_folder": f"{node}/data",
                       "console_socket": f"{node}/console.sock",
                       "limits": limits or self.THROUGHPUT_LIMITS,
                       "delivery": {"initial_backoff_ms": 100, "max_backoff_ms": 2000}},
                      open(os.path.join(self.folder, f"{node}.json"), "w"))
        self.processes = {}

    def start(self, node):
        log = open(os.path.join(self.folder, f"{node}.log"), "w")
        process = subprocess.Popen([self.binary, "node", "run", "--config", os.path.join(self.folder, f"{node}.json"),
                                    "--log-level", "warning"], stderr=log, stdout=log)
        self.processes[node] = process
        for _ in range(200):
            if os.path.exists(os.path.join(self.folder, node, "console.sock")):
                time.sleep(0.2)
                return process.pid
            time.sleep(0.05)
        raise SystemExit(f"{node} did not start; see {self.folder}/{node}.log")

    def socket(self, node):
        return os.path.join(self.folder, node, "console.sock")

    def stop(self):
        for process in self.processes.values():
            process.terminate()
            process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


WARMUP = 2


def measured(pid, run, warmup=WARMUP):
    """Runs `run()` (which warms up for `warmup` seconds first), returning its result and the
    server's CPU seconds over the measured part only."""
    import threading
    mark = {}
    timer = threading.Timer(warmup, lambda: mark.setdefault("start", cpu_seconds(pid)))
    timer.start()
    result = run()
    timer.cancel()
    return result, cpu_seconds(pid) - mark.get("start", 0)


def settle(pid, quiet_s=0.03):
    """Waits until the process uses less than `quiet_s` of CPU in a second; returns the seconds waited."""
    start, before = time.time(), cpu_seconds(pid)
    while True:
        time.sleep(1)
        now = cpu_seconds(pid)
        if now - before < quiet_s:
            return round(time.time() - start, 1)
        before = now


def written(pid):
    """Bytes the process caused to be written to disk (its WAL, checkpoints, logs)."""
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def case_count(federation, node):
    import sqlite3
    db = sqlite3.connect(f"file:{federation.folder}/{node}/data/casebridge.sqlite3?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    finally:
        db.close()


def bench(binary, *args):
    out = sh(binary, *args, "--certificate", f"{CERTS}/nodes/embassy-id.pem", "--key", f"{CERTS}/nodes/embassy-id.key",
             "--ca", f"{CERTS}/ca.pem").stdout
    return json.loads(out.strip().splitlines()[-1])


def h2load(port, body, path, shim, work, connections=16, streams=32):
    # A log of its own for each run: h2load appends, and a shared log made every later row count the
    # requests of the earlier runs too (issue 17).
    log = tempfile.mktemp(prefix="h2load-", suffix=".log", dir=work)
    env = dict(os.environ, LD_PRELOAD=shim, H2LOAD_CLIENT_CERT=f"{CERTS}/nodes/embassy-id.pem",
               H2LOAD_CLIENT_KEY=f"{CERTS}/nodes/embassy-id.key")
    sh("h2load", "--header", "content-type: application/grpc", "--header", "te: trailers", "-d", body,
             f"https://127.0.0.1:{port}{path}", "-c", str(connections), "-m", str(streams), "-t", "1",
             "-D", str(SECONDS), "--warm-up-time", "2", "--log-file", log, env=env).stdout
    rows = [line.split("\t") for line in open(log) if line.strip()]
    # Status 0: requests still in flight when the time ran out; they did not complete.
    latencies = [int(r[2]) for r in rows if r[1] == "200"]
    # The log holds the measured period only (-D, after the warm-up); "finished in" counts the warm-up
    # as well, so dividing by it understated the rate.
    seconds = SECONDS
    return {"requests": len(latencies), "rps": len(latencies) / seconds, "p50_us": percentile(latencies, 0.5),
            "p90_us": percentile(latencies, 0.9), "p99_us": percentile(latencies, 0.99),
            "unfinished_at_end": sum(1 for r in rows if r[1] != "200")}


def fsync_floor_us(folder, count=300):
    """Median time to write 4 KiB and fdatasync it, in the folder the nodes' data lives in: the least a
    durable answer can wait for."""
    path = os.path.join(folder, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        times = []
        for i in range(count):
            start = time.perf_counter()
            os.pwrite(fd, os.urandom(4096), (i % 64) * 4096)
            os.fdatasync(fd)
            times.append((time.perf_counter() - start) * 1e6)
        return percentile(times, 0.5)
    finally:
        os.close(fd)
        os.unlink(path)


def targets(results, fsync_us):
    """Issue 17's targets as ratios to grpc-go in this run: (what, ratio, at most or at least, limit)."""
    row = {r["workload"]: r for r in results}

    def cpu(name):
        return row[name]["server_cpu_us_per_request"]

    go_lone = row["grpc_go_submit_1"]["p50_us"]
    return [
        ("durable submit @512, req/s vs grpc-go", row["durable_submit_512"]["rps"] / row["grpc_go_submit_512"]["rps"],
         "≥", 0.5),
        ("durable submit @512, CPU per request vs grpc-go",
         cpu("durable_submit_512") / cpu("grpc_go_submit_512"), "≤", 3),
        ("replayed submit @512, CPU per request vs grpc-go",
         cpu("replay_submit_512") / cpu("grpc_go_replay_submit_512"), "≤", 1.5),
        (f"one at a time, p50 vs fsync ({fsync_us:.0f} µs) + grpc-go p50 ({go_lone:.0f} µs)",
         row["durable_submit_1"]["p50_us"] / (fsync_us + go_lone), "≤", 1.3),
        ("full handshake, server CPU vs grpc-go", row["casebridge_handshake_full"]["server_cpu_us_per_handshake"]
         / row["grpc_go_handshake_full"]["server_cpu_us_per_handshake"], "≤", 1.0),
    ]


def main():
    print("building (release)...", file=sys.stderr)
    subprocess.run(["swift", "build", "-c", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    binary = os.path.join(ROOT, ".build/release/casebridge")
    generator = os.path.join(ROOT, ".build/release/casebridge-bench")
    work = tempfile.mkdtemp(prefix="casebridge-bench-work-")
    shim = os.path.join(work, "h2load_clientcert.so")
    sh("cc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(ROOT, "..", "shared", "tools", "h2load-clientcert", "h2load_clientcert.c"),
       "-ldl", "-lssl")
    results = []

    def add(row, cpu_s, pid):
        row["server_cpu_us_per_request"] = round(cpu_s * 1e6 / max(1, row["requests"]), 1)
        row["server_peak_rss_kib"] = memory_kib(pid, "VmHWM")
        results.append(row)
        print(f"  {row['workload']}: {row['rps']:.0f} req/s, p50 {row['p50_us']:.0f} µs, p99 {row['p99_us']:.0f} µs, "
              f"{row['server_cpu_us_per_request']} µs CPU/request", file=sys.stderr)

    federation = Federation(binary)
    try:
        ncct = federation.start("ncct")
        endpoint = ["--endpoint", f"127.0.0.1:{federation.ports['ncct']}"]
        print("durable submit...", file=sys.stderr)
        for connections, streams in [(1, 1), (16, 32)]:
            cases_before, cpu_before, written_before = case_count(federation, "ncct"), cpu_seconds(ncct), written(ncct)
            threads_before = thread_cpu_seconds(ncct)
            row, cpu = measured(ncct, lambda: bench(generator, "submit", *endpoint, "--connections", str(connections),
                                                    "--streams", str(streams), "--seconds", str(SECONDS)))
            add(row, cpu, ncct)
            # Duplicate detection runs behind a flood of new cases, at a lower priority: its catching up
            # counts too (and must not land in the next row's window).
            row["settle_s"] = settle(ncct)
            cases = max(1, case_count(federation, "ncct") - cases_before)
            row["settled_cpu_us_per_case"] = round((cpu_seconds(ncct) - cpu_before) * 1e6 / cases, 1)
            row["written_kib_per_case"] = round((written(ncct) - written_before) / 1024 / cases, 1)
            # Where a case's CPU went, by thread: the store's writer, the workers, duplicate detection
            # (cb-background), the event loops (cb-server), settled as above.
            row["settled_cpu_us_per_case_by_thread"] = cpu_us_per_case_by_thread(
                threads_before, thread_cpu_seconds(ncct), cases)
            print(f"    settled after {row['settle_s']} s: {row['settled_cpu_us_per_case']} µs CPU and "
                  f"{row['written_kib_per_case']} KiB written to disk per case in all; by thread: "
                  + ", ".join(f"{kind} {us}" for kind, us in row["settled_cpu_us_per_case_by_thread"].items()),
                  file=sys.stderr)

        row, cpu = measured(ncct, lambda: bench(generator, "submit", *endpoint, "--connections", "16", "--streams", "32",
                                                "--seconds", str(SECONDS), "--replay"))
        add(row, cpu, ncct)

        print("transport path (h2load)...", file=sys.stderr)
        health = os.path.join(work, "health.bin")
        submit = os.path.join(work, "submit.bin")
        sh(generator, "write-request", "health", health)
        sh(generator, "write-request", "submit", submit)
        for name, body, path in [("h2load_health", health, "/grpc.health.v1.Health/Check"),
                                 ("h2load_submit_replay", submit, "/casebridge.v1.CaseExchange/SubmitRequest")]:
            row, cpu = measured(ncct, lambda: h2load(federation.ports["ncct"], body, path, shim, work))
            row["workload"] = name
            if name == "h2load_submit_replay":
                # h2load cannot read gRPC statuses, but every refusal by the exchange is audited.
                import sqlite3
                db = sqlite3.connect(f"file:{federation.folder}/ncct/data/casebridge.sqlite3?mode=ro", uri=True)
                row["errors"] = db.execute("SELECT COUNT(*) FROM audit WHERE event = 'call.refused'").fetchone()[0]
            add(row, cpu, ncct)

        print("1,000 idle connections...", file=sys.stderr)
        before = memory_kib(ncct, "VmRSS")
        cpu_before = cpu_seconds(ncct)
        holder = subprocess.Popen([generator, "connections", *endpoint, "--count", "1000", "--hold", "3",
                                   "--certificate", f"{CERTS}/nodes/embassy-id.pem", "--key", f"{CERTS}/nodes/embassy-id.key",
                                   "--ca", f"{CERTS}/ca.pem"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        holder.stderr.readline()  # CONNECTED n
        time.sleep(1)
        held = memory_kib(ncct, "VmRSS")
        handshake_cpu = cpu_seconds(ncct) - cpu_before
        row = json.loads(holder.communicate()[0].strip().splitlines()[-1])
        row.update({"memory_per_connection_kib": round((held - before) / 1000, 1),
                    "server_cpu_us_per_handshake": round(handshake_cpu * 1e6 / 1000, 1), "server_peak_rss_kib": memory_kib(ncct, "VmHWM")})
        results.append(row)
        print(f"  {row['memory_per_connection_kib']} KiB per idle connection, {row['connections_per_s']:.0f} new connections/s, "
              f"{row['server_cpu_us_per_handshake']} µs CPU per handshake", file=sys.stderr)

        print("handshakes, full and resumed...", file=sys.stderr)
        for row in handshakes.measure("casebridge", federation.ports["ncct"], ncct, CERTS, cpu_seconds):
            results.append(row)
            print(f"  {row['workload']}: {row['server_cpu_us_per_handshake']} µs server CPU "
                  f"({row['resumed']} of {row['connections']} resumed)", file=sys.stderr)

        print("end to end...", file=sys.stderr)
        federation.start("embassy-id")
        row, cpu = measured(ncct, warmup=0, run=lambda: json.loads(sh(generator, "e2e", "--embassy-socket", federation.socket("embassy-id"),
                                                        "--ncct-socket", federation.socket("ncct"),
                                                        "--cases", "200" if QUICK else "1000").stdout.strip().splitlines()[-1]))
        add(row, cpu, ncct)
    finally:
        federation.stop()

    print("grpcio for comparison...", file=sys.stderr)
    peer = subprocess.Popen([sys.executable, os.path.join(ROOT, "Benchmarks", "grpcio_server.py"), CERTS],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = int(peer.stdout.readline().split()[1])
    try:
        row, cpu = measured(peer.pid, lambda: h2load(port, submit, "/casebridge.v1.CaseExchange/SubmitRequest", shim, work))
        row["workload"] = "grpcio_submit_h2load"
        add(row, cpu, peer.pid)
        # h2load does not read gRPC trailers: an error answered as trailers-only counts as a success.
        # The same workload through a client that checks every status keeps the comparison honest.
        row, cpu = measured(peer.pid, lambda: bench(generator, "submit", "--endpoint", f"127.0.0.1:{port}", "--connections", "16",
                                                    "--streams", "32", "--seconds", str(SECONDS), "--replay"))
        row["workload"] = "grpcio_submit_checked_512"
        add(row, cpu, peer.pid)
    finally:
        peer.stdin.close()
        peer.wait()

    print("grpc-go for comparison (Tests/Peers/fakencct)...", file=sys.stderr)
    go_folder = os.path.join(ROOT, ".build-go")
    sh(os.path.join(ROOT, "Tests", "Peers", "build-go-peer"), go_folder)
    go_peer = subprocess.Popen([os.path.join(go_folder, "fakencct"), "-ca", f"{CERTS}/ca.pem",
                                "-cert", f"{CERTS}/nodes/ncct.pem", "-key", f"{CERTS}/nodes/ncct.key",
                                "-caller", "embassy-id"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        go_port = int(go_peer.stdout.readline().split()[1])
        time.sleep(0.5)  # it prints its port just before it serves
        # The same submits, answered from memory: what a plain gRPC call costs (issue 17's yardstick).
        go_endpoint = ["--endpoint", f"127.0.0.1:{go_port}"]
        for name, connections, streams, replay in [("grpc_go_submit_1", 1, 1, []), ("grpc_go_submit_512", 16, 32, []),
                                                   ("grpc_go_replay_submit_512", 16, 32, ["--replay"])]:
            row, cpu = measured(go_peer.pid, lambda: bench(generator, "submit", *go_endpoint, "--connections",
                                                           str(connections), "--streams", str(streams),
                                                           "--seconds", str(SECONDS), *replay))
            row["workload"] = name
            add(row, cpu, go_peer.pid)
        for row in handshakes.measure("grpc_go", go_port, go_peer.pid, CERTS, cpu_seconds):
            results.append(row)
            print(f"  {row['workload']}: {row['server_cpu_us_per_handshake']} µs server CPU "
                  f"({row['resumed']} of {row['connections']} resumed)", file=sys.stderr)
    finally:
        go_peer.stdin.close()
        go_peer.wait()

    fsync_us = fsync_floor_us(work)
    ours = next(r for r in results if r["workload"] == "replay_submit_512")
    theirs = next(r for r in results if r["workload"] == "grpcio_submit_checked_512")
    summary = {"date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
               "ratio_rps_vs_grpcio": round(ours["rps"] / theirs["rps"], 2),
               "ratio_cpu_vs_grpcio": round(ours["server_cpu_us_per_request"] / theirs["server_cpu_us_per_request"], 2),
               "fsync_4kib_p50_us": round(fsync_us, 1),
               "targets": [{"target": what, "ratio": round(ratio, 2), "limit": f"{sense} {limit}",
                            "met": ratio >= limit if sense == "≥" else ratio <= limit}
                           for what, ratio, sense, limit in targets(results, fsync_us)],
               "results": results}
    os.makedirs(os.path.join(ROOT, "Benchmarks", "results"), exist_ok=True)
    json.dump(summary, open(os.path.join(ROOT, "Benchmarks", "results", "latest.json"), "w"), indent=2)

    print(f"\nCaseBridge benchmarks, {summary['date']}, {summary['machine']}")
    # "client": the load generator's own CPU per request (it shares the cores with the server).
    print(f"{'workload':32} {'req/s':>9} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'CPU µs/req':>11} {'client':>7} "
          f"{'peak RSS':>10}  errors")
    for r in results:
        if "rps" not in r or r["workload"].startswith("connections"):
            continue
        client = r.get("client_cpu_us_per_request")
        print(f"{r['workload']:32} {r['rps']:9.0f} {r['p50_us']:8.0f} {r['p90_us']:8.0f} {r['p99_us']:8.0f} "
              f"{r.get('server_cpu_us_per_request', 0):11.1f} {'-' if client is None else f'{client:.0f}':>7} "
              f"{r.get('server_peak_rss_kib', 0) / 1024:8.1f} MiB  {r.get('errors', 'unchecked (h2load)')}")
    c = next(r for r in results if r["workload"].startswith("connections"))
    print(f"1,000 idle mTLS connections: {c['memory_per_connection_kib']} KiB each, {c['connections_per_s']:.0f} new/s, "
          f"{c['server_cpu_us_per_handshake']} µs server CPU per handshake")
    for kind in ("full", "resumed"):
        ours_hs = next(r for r in results if r["workload"] == f"casebridge_handshake_{kind}")
        go_hs = next(r for r in results if r["workload"] == f"grpc_go_handshake_{kind}")
        print(f"handshake, {kind}: {ours_hs['server_cpu_us_per_handshake']} µs server CPU, grpc-go "
              f"{go_hs['server_cpu_us_per_handshake']} µs "
              f"({ours_hs['server_cpu_us_per_handshake'] / go_hs['server_cpu_us_per_handshake']:.2f}×)")
    print(f"vs grpcio (replayed submit, 512 in flight, every status checked): {summary['ratio_rps_vs_grpcio']}× the requests/s, "
          f"{summary['ratio_cpu_vs_grpcio']}× the CPU per request")
    print("issue 17's targets, as ratios to grpc-go in this run:")
    for target in summary["targets"]:
        print(f"  {target['target']}: {target['ratio']}× ({target['limit']}: {'met' if target['met'] else 'not met'})")
    print(f"JSON: Benchmarks/results/latest.json")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
