#!/usr/bin/env python3
"""Benchmark (not a test): several Flight cache endpoints measured side by side.

Each target is an object-cache endpoint speaking flamepy 0.6.0's wire (ours, a previous build of
ours, upstream's Rust server, …). Every round runs every scenario against every target, the
targets' order rotating from round to round so that a slow moment of the machine does not always
hit the same one; the report gives per-scenario medians over the rounds, the ratio of each target
to the first, and the raw rounds. The machine's own limits are measured in the same run: memcpy
(numpy, 256 MiB blocks) and one loopback TCP stream (iperf3 when installed, else a Python socket
pair — labelled as such).

Clients are separate processes started with the `spawn` method (never fork after gRPC started),
one process per concurrent client, all released together by one event.

    .venv/bin/python bench/side_by_side.py \
        --target ours=grpc://127.0.0.1:9090 --target upstream=grpc://127.0.0.1:9091
    # or let the harness start binaries of ours (disk storage in a temp dir, free port):
    .venv/bin/python bench/side_by_side.py \
        --binary new=build/release/src/server/flame-object-cache \
        --binary old=<a previous build>/src/server/flame-object-cache

`--target NAME=URL,pid=PID` names the server's process so that its peak RSS during a 1 GiB upload
can be sampled from /proc (started binaries are sampled automatically). `--scenarios` takes a
comma-separated subset of the names printed by `--list`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from bench_server import launch

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # put | get | notmod | patchonly | putget | patchpair | rss
    size: int
    clients: int = 1
    unit: str = "ops/s"


def all_scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for size, label in ((KIB, "1KiB"), (4 * MIB, "4MiB"), (64 * MIB, "64MiB"), (GIB, "1GiB")):
        out.append(Scenario(f"put_{label}", "put", size, unit="MB/s" if size > KIB else "ops/s"))
        out.append(Scenario(f"get_{label}", "get", size, unit="MB/s" if size > KIB else "ops/s"))
    for c in (1, 4, 16):
        out.append(Scenario(f"notmod_c{c}", "notmod", KIB, c))
    for c in (1, 4, 16):
        out.append(Scenario(f"patchonly_c{c}", "patchonly", KIB, c))
    out.append(Scenario("notmod_64MiB_10patches_c1", "notmod", 64 * MIB, 1))
    out.append(Scenario("putget_1KiB_c1", "putget", KIB, 1))
    out.append(Scenario("putget_1KiB_c4", "putget", KIB, 4))
    out.append(Scenario("patchpair_c1", "patchpair", KIB, 1))
    out.append(Scenario("rss_1GiB_upload", "rss", GIB, unit="MiB peak RSS growth"))
    return out


# --- the client side (runs in spawned processes) ---------------------------------------------


def _wire():
    import bson
    import pyarrow as pa
    import pyarrow.flight as flight

    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])

    def put(client, descriptor, data: bytes) -> int:
        writer, reader = client.do_put(descriptor, schema)
        writer.write_batch(
            pa.record_batch([pa.array([0], pa.uint64()), pa.array([data], pa.binary())], schema=schema)
        )
        writer.done_writing()
        meta = reader.read()
        writer.close()
        return int(bson.decode(meta.to_pybytes())["version"])

    def put_key(client, key: str, data: bytes) -> int:
        return put(client, flight.FlightDescriptor.for_path(*key.split("/")), data)

    def patch(client, key: str, data: bytes) -> int:
        return put(client, flight.FlightDescriptor.for_command(f"PATCH:{key}".encode()), data)

    def get(client, key: str, version: int):
        return client.do_get(flight.Ticket(f"{key}:{version}".encode())).read_all()

    return flight, put_key, patch, get


def _prepare(endpoint: str, sc: Scenario, tag: str) -> dict:
    """Creates what a scenario reads; returns {key, version} for the workers."""
    flight, put_key, patch, _ = _wire()
    client = flight.connect(endpoint)
    key = f"bench/{tag}/{sc.name}"
    info: dict = {"key": key, "version": 0}
    if sc.kind in ("get", "notmod", "patchonly", "patchpair"):
        info["version"] = put_key(client, key, os.urandom(sc.size) if sc.size <= 64 * MIB else bytes(sc.size))
        if sc.kind in ("patchonly", "patchpair") or sc.size == 64 * MIB and sc.kind == "notmod":
            base = info["version"]
            for _ in range(10):
                info["version"] = patch(client, key, os.urandom(KIB))
            info["base"] = base
    client.close()
    return info


def _worker(endpoint: str, sc: Scenario, info: dict, idx: int, seconds: float, start, results) -> None:
    flight, put_key, patch, get = _wire()
    client = flight.connect(endpoint)
    payload = os.urandom(sc.size) if sc.size <= 64 * MIB else bytes(sc.size)
    key = info["key"]
    own_key = f"{key}-w{idx}"
    lat: list[float] = []
    nbytes = 0
    # at least this many operations, even past `seconds`, so that 1 GiB scenarios count
    min_ops = 1 if sc.size >= GIB else 3
    start.wait()
    t_end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        if sc.kind == "put":
            put_key(client, own_key, payload)
            nbytes += sc.size
        elif sc.kind == "get":
            t = get(client, key, 0)
            nbytes += sum(len(v.as_py()) for v in t.column("data"))
        elif sc.kind == "notmod":
            get(client, key, info["version"])
        elif sc.kind == "patchonly":
            get(client, key, info["version"] - 1)  # one patch behind: the reply is that patch
        elif sc.kind == "putget":
            v = put_key(client, own_key, payload)
            get(client, own_key, 0)
            assert v > 0
        elif sc.kind == "patchpair":
            v = patch(client, key if idx == 0 else own_key, payload)
            get(client, key, v - 1)
        lat.append(time.perf_counter() - t0)
        if time.perf_counter() >= t_end and len(lat) >= min_ops:
            break
    client.close()
    results.put({"ops": len(lat), "bytes": nbytes, "lat": lat})


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _run_rss(endpoint: str, pid: int | None, tag: str) -> dict | None:
    if pid is None:
        return None
    ctx = mp.get_context("spawn")
    sc = Scenario("rss", "put", GIB)
    info = {"key": f"bench/{tag}/rss"}
    start = ctx.Event()
    results = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(endpoint, sc, info, 0, 0.0, start, results))
    proc.start()
    time.sleep(1.0)  # the worker allocates its 1 GiB payload first
    before = _rss_kib(pid)
    peak = before
    start.set()
    while proc.is_alive():
        peak = max(peak, _rss_kib(pid))
        time.sleep(0.01)
        if not results.empty():
            break
    results.get(timeout=600)
    proc.join()
    after = _rss_kib(pid)
    return {"value": (peak - before) / 1024.0, "extra": f"after {((after - before) / 1024.0):.0f} MiB"}


def run_scenario(endpoint: str, pid: int | None, sc: Scenario, seconds: float, tag: str) -> dict | None:
    if sc.kind == "rss":
        return _run_rss(endpoint, pid, tag)
    ctx = mp.get_context("spawn")
    info = _prepare(endpoint, sc, tag)
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(endpoint, sc, info, i, seconds, start, results))
        for i in range(sc.clients)
    ]
    for p in procs:
        p.start()
    time.sleep(0.5 + 0.1 * sc.clients + sc.size / GIB)  # imports, connects, payload allocation
    t0 = time.perf_counter()
    start.set()
    outs = [results.get(timeout=seconds + 900) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    lat = sorted(x for o in outs for x in o["lat"])
    ops = sum(o["ops"] for o in outs)
    nbytes = sum(o["bytes"] for o in outs)
    value = nbytes / 1e6 / wall if sc.unit == "MB/s" else ops / wall
    p50 = lat[len(lat) // 2] * 1e6
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6
    return {"value": value, "extra": f"p50 {p50:.0f} µs, p99 {p99:.0f} µs", "p50_us": p50, "p99_us": p99}


# --- yardsticks ------------------------------------------------------------------------------


def memcpy_mbps() -> float:
    import numpy as np

    a = np.ones(256 * MIB, dtype=np.uint8)
    b = np.empty_like(a)
    np.copyto(b, a)
    t0 = time.perf_counter()
    for _ in range(4):
        np.copyto(b, a)
    return 4 * a.nbytes / 1e6 / (time.perf_counter() - t0)


def tcp_mbps() -> tuple[float, str]:
    if shutil.which("iperf3"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", "3", "-J"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            bps = json.loads(out)["end"]["sum_received"]["bits_per_second"]
            return bps / 8 / 1e6, "iperf3, one stream, 3 s"
        finally:
            server.kill()
            server.wait()
    # fallback: one Python socket pair over loopback
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    total = 2 * GIB
    got = [0]

    def sink() -> None:
        conn, _ = srv.accept()
        buf = bytearray(4 * MIB)
        while got[0] < total:
            n = conn.recv_into(buf)
            if not n:
                break
            got[0] += n
        conn.close()

    th = threading.Thread(target=sink)
    th.start()
    c = socket.create_connection(srv.getsockname())
    chunk = bytes(4 * MIB)
    t0 = time.perf_counter()
    for _ in range(total // len(chunk)):
        c.sendall(chunk)
    c.close()
    th.join()
    srv.close()
    return total / 1e6 / (time.perf_counter() - t0), "Python socket pair (iperf3 not installed)"


# --- targets ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    endpoint: str
    pid: int | None = None
    proc: subprocess.Popen | None = None
    tmp: str | None = None
    log: list[str] = field(default_factory=list)


def start_binary(name: str, spec: str) -> Target:
    """`spec`: the binary's path, then any server arguments (`PATH --transport arrow`)."""
    binary, *extra = shlex.split(spec)
    tmp = tempfile.mkdtemp(prefix=f"foc-sbs-{name}-")
    proc, url = launch(
        [binary, "--endpoint", "grpc://127.0.0.1:0", "--storage", os.path.join(tmp, "store"),
         "--max-memory", "16G", *extra],
        {**os.environ, "HOME": tmp},
    )
    return Target(name, url, proc.pid, proc, tmp)


def parse_target(text: str) -> Target:
    name, _, rest = text.partition("=")
    parts = rest.split(",")
    pid = None
    for p in parts[1:]:
        if p.startswith("pid="):
            pid = int(p[4:])
    return Target(name, parts[0], pid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", default=[], help="NAME=URL[,pid=PID]")
    ap.add_argument("--binary", action="append", default=[], help="NAME=PATH [ARGS] of our server binary to start, e.g. 'arrow=PATH --transport arrow'")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="per scenario, target and round")
    ap.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--list", action="store_true", help="print the scenario names and exit")
    ap.add_argument("--json", help="also write all results to this file")
    args = ap.parse_args()

    scenarios = all_scenarios()
    if args.list:
        print("\n".join(s.name for s in scenarios))
        return
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        unknown = wanted - {s.name for s in scenarios}
        if unknown:
            raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))} (see --list)")
        scenarios = [s for s in scenarios if s.name in wanted]

    targets = [parse_target(t) for t in args.target]
    try:
        targets += [start_binary(*b.split("=", 1)) for b in args.binary]
        if not targets:
            raise SystemExit("name at least one --target or --binary")

        mem = memcpy_mbps()
        tcp, how = tcp_mbps()
        print(f"# side by side, {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"yardsticks: memcpy {mem:.0f} MB/s; loopback TCP {tcp:.0f} MB/s ({how})\n")

        raw: dict[str, dict[str, list[dict]]] = {s.name: {t.name: [] for t in targets} for s in scenarios}
        for r in range(args.rounds):
            order = targets[r % len(targets):] + targets[: r % len(targets)]
            for sc in scenarios:
                for t in order:
                    res = run_scenario(t.endpoint, t.pid, sc, args.seconds, f"r{r}-{t.name}")
                    if res is not None:
                        raw[sc.name][t.name].append(res)
                        print(f"round {r + 1} {sc.name:28s} {t.name:10s} {res['value']:10.1f} "
                              f"{sc.unit}  {res['extra']}", file=sys.stderr, flush=True)

        first = targets[0].name
        head = " | ".join(t.name for t in targets)
        ratios = " | ".join(f"{t.name}/{first}" for t in targets[1:])
        print(f"| scenario | unit | {head} |" + (f" {ratios} |" if ratios else ""))
        print("|---|---|" + "---|" * len(targets) + "---|" * (len(targets) - 1))
        for sc in scenarios:
            med = {}
            for t in targets:
                vals = [x["value"] for x in raw[sc.name][t.name]]
                med[t.name] = statistics.median(vals) if vals else None
            cells = " | ".join("n/a" if med[t.name] is None else f"{med[t.name]:.1f}" for t in targets)
            rs = []
            for t in targets[1:]:
                a, b = med[first], med[t.name]
                rs.append("n/a" if not a or b is None else f"{b / a:.2f}×")
            print(f"| {sc.name} | {sc.unit} | {cells} |" + (f" {' | '.join(rs)} |" if rs else ""))
        print("\nraw rounds (value; latency):")
        for sc in scenarios:
            for t in targets:
                vals = ", ".join(f"{x['value']:.1f} ({x['extra']})" for x in raw[sc.name][t.name])
                print(f"  {sc.name} {t.name}: {vals}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"memcpy_mbps": mem, "tcp_mbps": tcp, "raw": raw}, f, indent=1)
    finally:
        for t in targets:
            if t.proc is not None:
                t.proc.terminate()
                try:
                    t.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    t.proc.kill()
                shutil.rmtree(t.tmp or "", ignore_errors=True)


if __name__ == "__main__":
    main()
