#!/usr/bin/env python3
"""Benchmark (not a test): durable 1 KiB puts on disk storage, rate and syscalls per put.

Starts each server binary on a fresh disk store, then for each round and each client count runs
C client processes (spawned, never forked after gRPC started), each putting new 1 KiB objects
for `--seconds`: by default all clients write into one session (one directory, the case group
commit of directory fsyncs is for), with `--own-sessions` each client into its own. Binaries
alternate round by round; the report gives median puts/s per binary and client count, and the
load average before each run (the rate depends on the machine's load, the syscall counts do not).

With `--perf`, the same with `perf stat` (context switches, futex and fsync calls per put: far
less intrusive than strace, whose slowdown changes how often threads block). With `--strace`, one extra run per binary and client count puts a fixed number of objects with
`strace -f -c` attached to the server (all threads) for exactly that window and prints syscalls
per put (fsync, fdatasync, rename, openat, write, close, futex): load-independent.

    .venv/bin/python bench/durable_puts.py \
        --binary callback=build/release/src/server/flame-object-cache \
        --binary "arrow=build/release/src/server/flame-object-cache --transport arrow" \
        --clients 1,4 --rounds 3 --seconds 3 --strace
    # a previous build: --binary old=<its build dir>/src/server/flame-object-cache
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench_server import launch

KIB = 1024
TRACED = ("fsync", "fdatasync", "rename", "renameat", "renameat2", "openat", "write", "close",
          "mkdir", "newfstatat", "futex")


def _worker(endpoint: str, session: str, idx: int, seconds: float, count: int, start, results) -> None:
    import bson
    import pyarrow as pa
    from pyarrow import flight

    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
    client = flight.connect(endpoint)
    payload = os.urandom(KIB)
    batch = pa.record_batch([pa.array([0], pa.uint64()), pa.array([payload], pa.binary())], schema=schema)
    start.wait()
    n = 0
    t_end = time.perf_counter() + seconds
    while (count > 0 and n < count) or (count == 0 and time.perf_counter() < t_end):
        desc = flight.FlightDescriptor.for_path("bench", session, f"w{idx}-{n}")
        writer, reader = client.do_put(desc, schema)
        writer.write_batch(batch)
        writer.done_writing()
        meta = reader.read()
        writer.close()
        assert int(bson.decode(meta.to_pybytes())["version"]) > 0
        n += 1
    client.close()
    results.put(n)


def run_puts(endpoint: str, clients: int, seconds: float, count: int, tag: str, own_sessions: bool,
             before_start=None) -> tuple[int, float]:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(endpoint, f"{tag}-c{i}" if own_sessions else tag, i, seconds,
                                          count, start, results))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0 + 0.2 * clients)  # imports and connects
    if before_start is not None:
        before_start()
    t0 = time.perf_counter()
    start.set()
    total = sum(results.get(timeout=seconds + 600) for _ in procs)
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return total, wall


class Server:
    def __init__(self, name: str, spec: str) -> None:
        """`spec`: the binary's path, then any server arguments (`PATH --transport arrow`)."""
        binary, *extra = shlex.split(spec)
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=f"foc-dp-{name}-", dir=os.environ.get("FOC_BENCH_DIR"))
        self.proc, self.endpoint = launch(
            [binary, "--endpoint", "grpc://127.0.0.1:0", "--storage", os.path.join(self.tmp, "store"),
             "--max-memory", "4G", *extra],
            {**os.environ, "HOME": self.tmp},
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process `pid` (all threads) from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def parse_strace_summary(text: str) -> dict[str, int]:
    calls: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1].isidentifier():
            try:
                calls[parts[-1]] = int(parts[3])
            except ValueError:
                pass
    return calls


def strace_run(server: Server, clients: int, per_client: int, tag: str, own_sessions: bool) -> dict[str, float]:
    out = os.path.join(server.tmp, f"strace-{tag}.txt")
    tracer: list[subprocess.Popen] = []

    def attach() -> None:
        tracer.append(subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(server.proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # attached to every thread

    total, _ = run_puts(server.endpoint, clients, 0.0, per_client, tag, own_sessions, before_start=attach)
    tracer[0].send_signal(signal.SIGINT)  # detaches and writes the summary
    tracer[0].wait(timeout=60)
    with open(out) as f:
        calls = parse_strace_summary(f.read())
    return {k: calls.get(k, 0) / total for k in TRACED if calls.get(k, 0)}


PERF_EVENTS = ("context-switches", "syscalls:sys_enter_futex", "syscalls:sys_enter_fsync")


def perf_run(server: Server, clients: int, per_client: int, tag: str, own_sessions: bool) -> dict[str, float]:
    """`perf stat` counts per put (much less intrusive than strace)."""
    out = os.path.join(server.tmp, f"perf-{tag}.txt")
    tracer: list[subprocess.Popen] = []

    def attach() -> None:
        tracer.append(subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(PERF_EVENTS),
                                        "-p", str(server.proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)

    total, _ = run_puts(server.endpoint, clients, 0.0, per_client, tag, own_sessions, before_start=attach)
    tracer[0].send_signal(signal.SIGINT)
    tracer[0].wait(timeout=60)
    counts: dict[str, float] = {}
    with open(out) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[2] in PERF_EVENTS and parts[0].replace(".", "").isdigit():
                counts[parts[2].replace("syscalls:sys_enter_", "")] = float(parts[0]) / total
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", default=[], help="NAME=PATH [ARGS] of our server binary, e.g. 'arrow=PATH --transport arrow'")
    ap.add_argument("--clients", default="1,4", help="comma-separated client counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--strace", action="store_true", help="also count syscalls per put")
    ap.add_argument("--strace-puts", type=int, default=500, help="puts per client in the strace run")
    ap.add_argument("--perf", action="store_true",
                    help="also count context switches, futex and fsync calls per put with perf stat")
    ap.add_argument("--own-sessions", action="store_true", help="each client writes its own session")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    servers = [Server(*b.split("=", 1)) for b in args.binary]
    if not servers:
        raise SystemExit("name at least one --binary")
    try:
        print(f"# durable 1 KiB puts, {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
              f"{'own session per client' if args.own_sessions else 'one session'}")
        rates: dict[tuple[str, int], list[float]] = {}
        loads: list[float] = []
        cpus: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            order = servers[r % len(servers):] + servers[: r % len(servers)]
            for c in clients:
                for s in order:
                    load = os.getloadavg()[0]
                    loads.append(load)
                    cpu0: list[tuple[float, float]] = []
                    n, wall = run_puts(s.endpoint, c, args.seconds, 0, f"r{r}c{c}", args.own_sessions,
                                       before_start=lambda s=s, cpu0=cpu0: cpu0.append(cpu_seconds(s.proc.pid)))
                    u1, s1 = cpu_seconds(s.proc.pid)
                    us, sy = (u1 - cpu0[0][0]) / n * 1e6, (s1 - cpu0[0][1]) / n * 1e6
                    rates.setdefault((s.name, c), []).append(n / wall)
                    cpus.setdefault((s.name, c), []).append((us, sy))
                    print(f"round {r + 1} clients {c} {s.name:8s} {n / wall:8.1f} puts/s  server CPU/put "
                          f"{us:.0f} µs user {sy:.0f} µs sys  (load {load:.2f})", file=sys.stderr, flush=True)
        print(f"load average at the runs' starts: {min(loads):.2f}-{max(loads):.2f}")
        print("| clients | " + " | ".join(f"{s.name} puts/s (rounds) | {s.name} server CPU µs/put user+sys"
                                          for s in servers) + " |")
        print("|---|" + "---|---|" * len(servers))
        for c in clients:
            cells = []
            for s in servers:
                vals = rates[(s.name, c)]
                cpu = cpus[(s.name, c)]
                cells.append(f"{statistics.median(vals):.0f} ({', '.join(f'{v:.0f}' for v in vals)})")
                cells.append(f"{statistics.median(u for u, _ in cpu):.0f} + {statistics.median(y for _, y in cpu):.0f}")
            print(f"| {c} | " + " | ".join(cells) + " |")
        for on, what, run, tag in (
            (args.strace, "syscalls per put (strace -f -c attached to the server during", strace_run, "st"),
            (args.perf, "context switches, futex and fsync calls per put (perf stat attached to the server during",
             perf_run, "pf"),
        ):
            if not on:
                continue
            print(f"\n{what} {args.strace_puts} puts per client):")
            for c in clients:
                for s in servers:
                    per = run(s, c, args.strace_puts, f"{tag}-c{c}", args.own_sessions)
                    cells = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
                    print(f"  clients {c} {s.name}: {cells}")
    finally:
        for s in servers:
            s.stop()


if __name__ == "__main__":
    main()
