#!/usr/bin/env python3
"""Benchmark (not a test): where a small call's time goes, and the floor under it.

Runs the same pyarrow Flight clients (separate `spawn`ed processes) against

  * `ours`: flame-object-cache (release build; disk storage in a temp dir), on its default
    transport for disk storage, the callback transport (src/transport/); name a second build
    `arrow=PATH --transport arrow` for Arrow Flight's synchronous gRPC server;
  * `floor`: foc-grpc-floor (bench/grpc_floor.cc), which answers every DoGet with the same
    reply bytes, pre-encoded, on gRPC's callback API (Debian's libgrpc++), no Arrow Flight
    and none of our code in the process — the cost of the transport alone;
  * any `--target NAME=URL,pid=PID` (upstream's server, a previous build of ours).

and reports, per scenario and target: ops/s, p50/p99 latency, and from /proc the server's
CPU time, voluntary and involuntary context switches (all threads) per call, the client
processes' CPU per call, and the server's thread count. Scenarios: `notmod` (a conditional
get of a 1 KiB object at its current version: the schema message only) and `get1k` (a full
get of a 1 KiB object: schema and one row), at 1 and 4 clients. Rounds alternate the
targets; medians are printed with the raw rounds.

    .venv/bin/python bench/small_call_floor.py \\
        --binary build/release/src/server/flame-object-cache \\
        --floor build/release/bench/foc-grpc-floor --rounds 3 --seconds 5
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import re
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from bench_server import launch

KEY = "bench/floor/obj"
KEY_BIG = "bench/floor/big"
BIG = 64 << 20


@dataclass
class Target:
    name: str
    url: str
    pid: int
    proc: subprocess.Popen | None = None


def _start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Target:
    proc, url = launch(argv, env)
    return Target(name, url, proc.pid, proc)


def _reply_files(tmp: str, large: bool = False) -> dict[str, str]:
    """The reply bytes `ours` sends for each scenario, as IPC messages pyarrow writes
    (`large`: also `get64m`, a full get of a 64 MiB object)."""
    import pyarrow as pa

    schema = pa.schema(
        [("version", pa.uint64(), False), ("kind", pa.utf8(), False), ("data", pa.binary(), False)],
        metadata={"flame.cache.epoch": "0123456789abcdef0123456789abcdef"},
    )
    row = pa.record_batch(
        [pa.array([1], pa.uint64()), pa.array(["base"]), pa.array([os.urandom(1024)], pa.binary())],
        schema=schema,
    )
    big = pa.record_batch(
        [pa.array([1], pa.uint64()), pa.array(["base"]), pa.array([os.urandom(BIG)], pa.binary())],
        schema=schema,
    ) if large else None
    out = {}
    for name, batches in (("notmod", []), ("get1k", [row])) + ((("get64m", [big]),) if large else ()):
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, schema) as w:
            for b in batches:
                w.write_batch(b)
        path = os.path.join(tmp, f"{name}.bin")
        with open(path, "wb") as f:
            for m in pa.ipc.MessageReader.open_stream(pa.py_buffer(sink.getvalue())):
                h = m.metadata.to_pybytes()
                body = m.body.to_pybytes() if m.body is not None else b""
                f.write(struct.pack("<I", len(h)) + h + struct.pack("<Q", len(body)) + body)
        out[name] = path
    return out


def _server_counters(pid: int) -> dict[str, float]:
    vcs = ivcs = threads = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/status").read()
        except FileNotFoundError:
            continue
        threads += 1
        vcs += int(re.search(r"\nvoluntary_ctxt_switches:\s+(\d+)", s).group(1))  # type: ignore[union-attr]
        ivcs += int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", s).group(1))  # type: ignore[union-attr]
    st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    return {"vcs": vcs, "ivcs": ivcs, "threads": threads, "cpu": cpu}


def _client(url: str, ticket: bytes, seconds: float, ready, go, out) -> None:
    import resource

    import pyarrow.flight as flight

    client = flight.connect(url)
    client.do_get(flight.Ticket(ticket)).read_all()  # connected, warm
    ready.release()
    go.wait()
    lat: list[float] = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t_end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        client.do_get(flight.Ticket(ticket)).read_all()
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if t1 >= t_end:
            break
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out.put((lat, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime))
    client.close()


def _prepare_ours(url: str, large: bool = False) -> int:
    """Stores the 1 KiB object (and with `large` the 64 MiB one); returns the 1 KiB one's
    version."""
    import bson
    import pyarrow as pa
    import pyarrow.flight as flight

    client = flight.connect(url)
    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(*KEY.split("/")), schema)
    writer.write_batch(
        pa.record_batch([pa.array([0], pa.uint64()), pa.array([os.urandom(1024)], pa.binary())], schema=schema)
    )
    writer.done_writing()
    version = int(bson.decode(reader.read().to_pybytes())["version"])
    writer.close()
    if large:
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(*KEY_BIG.split("/")), schema)
        writer.write_batch(
            pa.record_batch([pa.array([0], pa.uint64()), pa.array([os.urandom(BIG)], pa.binary())],
                            schema=schema)
        )
        writer.done_writing()
        reader.read()
        writer.close()
    client.close()
    return version


def run(target: Target, ticket: bytes, clients: int, seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out, ready, go = ctx.Queue(), ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=_client, args=(target.url, ticket, seconds, ready, go, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    a = _server_counters(target.pid)
    go.set()
    results = [out.get() for _ in procs]
    b = _server_counters(target.pid)
    for p in procs:
        p.join()
    lat = sorted(x for r in results for x in r[0])
    n = len(lat)
    return {
        "ops_s": n / seconds,
        "p50_us": lat[n // 2] * 1e6,
        "p99_us": lat[min(n - 1, int(n * 0.99))] * 1e6,
        "server_cpu_us": (b["cpu"] - a["cpu"]) / n * 1e6,
        "vcs": (b["vcs"] - a["vcs"]) / n,
        "ivcs": (b["ivcs"] - a["ivcs"]) / n,
        "client_cpu_us": sum(r[1] for r in results) / n * 1e6,
        "threads": b["threads"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", default=[], help="[NAME=]PATH [ARGS] of a flame-object-cache build, e.g. 'arrow=PATH --transport arrow'")
    ap.add_argument("--floor", help="path of foc-grpc-floor")
    ap.add_argument("--target", action="append", default=[], help="NAME=URL,pid=PID (a running server)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--scenarios", default="notmod,get1k",
                    help="comma-separated: notmod, get1k, get64m (a full get of 64 MiB: MB/s = ops/s x 67.1)")
    ap.add_argument("--json", help="also write the raw rounds here")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="foc-floor-")
    scenarios = args.scenarios.split(",")
    large = "get64m" in scenarios
    replies = _reply_files(tmp, large)
    ours: list[Target] = []
    for spec in args.binary:
        name, _, rest = spec.partition("=") if "=" in spec.split()[0] else ("", "", spec)
        path, *extra = shlex.split(rest)
        store = os.path.join(tmp, f"store-{len(ours)}")
        ours.append(_start(name or "ours",
                           [path, "--endpoint", "grpc://127.0.0.1:0", "--storage", store, *extra],
                           env={**os.environ, "HOME": tmp}))
    others = []
    for spec in args.target:
        name, _, rest = spec.partition("=")
        url, _, pid = rest.partition(",pid=")
        others.append(Target(name, url, int(pid)))
    tickets: dict[str, dict[str, bytes]] = {}
    for t in ours + others:
        v = _prepare_ours(t.url, large)
        tickets[t.name] = {"notmod": f"{KEY}:{v}".encode(), "get1k": f"{KEY}:0".encode(),
                           "get64m": f"{KEY_BIG}:0".encode()}
    floors: dict[str, Target] = {}
    if args.floor:
        for scen, path in replies.items():
            floors[scen] = _start(f"floor-{scen}", [args.floor, "--reply", path])
    names = [t.name for t in ours + others] + (["floor"] if floors else [])

    load = os.getloadavg()
    print(f"# small_call_floor {time.strftime('%Y-%m-%d %H:%M')} loadavg {load[0]:.2f} "
          f"rounds {args.rounds} x {args.seconds:g} s, {os.cpu_count()} cpus")
    rounds: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    try:
        for r in range(args.rounds):
            for scen in scenarios:
                for c in (int(x) for x in args.clients.split(",")):
                    order = names[r % len(names):] + names[: r % len(names)]
                    for name in order:
                        if name == "floor":
                            tgt, ticket = floors[scen], f"{KEY}:1".encode()
                        else:
                            tgt = next(t for t in ours + others if t.name == name)
                            ticket = tickets[name][scen]
                        rounds.setdefault((scen, name, c), []).append(run(tgt, ticket, c, args.seconds))
    finally:
        for t in ours + list(floors.values()):
            if t.proc:
                t.proc.terminate()
                t.proc.wait()
    cols = ["ops_s", "p50_us", "p99_us", "server_cpu_us", "vcs", "ivcs", "client_cpu_us", "threads"]
    print("\n| scenario | clients | target | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for (scen, name, c), rs in sorted(rounds.items(), key=lambda kv: (kv[0][0], kv[0][2], names.index(kv[0][1]))):
        med = {k: statistics.median(x[k] for x in rs) for k in cols}
        cells = [f"{med[k]:,.0f}" if k in ("ops_s", "p50_us", "p99_us", "threads") else f"{med[k]:.1f}"
                 if k.endswith("_us") else f"{med[k]:.2f}" for k in cols]
        print(f"| {scen} | {c} | {name} | " + " | ".join(cells) + " |")
    print("\nraw rounds (ops/s):")
    for (scen, name, c), rs in sorted(rounds.items()):
        print(f"  {scen} c{c} {name}: " + ", ".join(f"{x['ops_s']:,.0f}" for x in rs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{s}|{n}|{c}": rs for (s, n, c), rs in rounds.items()}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
