#!/usr/bin/env python3
"""Benchmark (not a test): the three storage tiers side by side in one run.

Starts a Versity S3 Gateway (the one scripts/bootstrap.sh builds, POSIX backend in a temporary
directory) and three servers: memory only (`storage: none`), disk (a temporary directory) and
S3 (`s3://` on the gateway). For 1 KiB, 4 MiB and 64 MiB objects it alternates rounds over
the three servers and reports median PUT and GET latency and throughput. The disk and S3
servers run with `--max-memory 1`, so that every GET reads the durable tier (disk: a
memory-mapped file; S3: a GetObject) instead of the memory tier.

Then start-up: N objects (default 100,000 of 1 KiB) are written straight into the gateway's
POSIX directory in the S3 engine's layout (what a server would have PUT), and a server is
started on that prefix; "ready" is the time until it answers ListActions.

    .venv/bin/python bench/s3_tiers.py --binary build/release/src/server/flame-object-cache
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/python"))
from flight_wire import get, put  # noqa: E402

LISTEN_RE = re.compile(r"listening on (\S+)")
BUCKET = "bench"
ACCESS, SECRET = "bench-access", "bench-secret-key"
ENV = {"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
       "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, *args: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLAME_")}
        env.update(ENV)
        env["HOME"] = tempfile.mkdtemp(prefix="foc-bench-home-")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([binary, "--endpoint", "grpc://127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.endpoint = ""
        ready = threading.Event()
        self.output: list[str] = []

        def pump() -> None:
            for line in self.proc.stdout:
                self.output.append(line)
                m = LISTEN_RE.search(line)
                if m and not ready.is_set():
                    self.endpoint = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(600)
        if not self.endpoint:
            raise SystemExit("server did not start:\n" + "".join(self.output))
        self.client = flight.connect(self.endpoint)
        list(self.client.list_actions())
        self.ready_s = time.monotonic() - self.t0

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "build/release/src/server/flame-object-cache"))
    ap.add_argument("--versitygw", default=str(ROOT / ".tools/versitygw-v1.8.0/bin/versitygw"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--startup-count", type=int, default=100_000)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="foc-bench-s3-"))
    gw_root = tmp / "gw"
    (gw_root / BUCKET).mkdir(parents=True)
    port = free_port()
    gw = subprocess.Popen([args.versitygw, "--access", ACCESS, "--secret", SECRET, "--port",
                           f"127.0.0.1:{port}", "posix", str(gw_root)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)

        def s3_url(prefix: str) -> str:
            return f"s3://{BUCKET}/{prefix}?endpoint_override=127.0.0.1:{port}&scheme=http"

        servers = {
            "memory": Server(args.binary, "--storage", "none"),
            "disk": Server(args.binary, "--storage", str(tmp / "disk"), "--max-memory", "1"),
            "s3": Server(args.binary, "--storage", s3_url("tiers"), "--max-memory", "1"),
        }
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
              f"{os.getloadavg()[0]:.1f}, {args.rounds} rounds, medians")
        print("| size | tier | PUT ms | PUT MiB/s | GET ms | GET MiB/s |")
        print("|---|---|---|---|---|---|")
        for size in (1024, 4 << 20, 64 << 20):
            data = os.urandom(size)
            times = {name: ([], []) for name in servers}
            for r in range(args.rounds):
                for name, srv in servers.items():
                    t = time.perf_counter()
                    key = put(srv.client, f"bench/s{size}/o{r}", data, timeout=600)["key"]
                    times[name][0].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    table = get(srv.client, key, timeout=600)
                    times[name][1].append(time.perf_counter() - t)
                    assert table.column(1)[0].as_py() is not None
            label = {1024: "1 KiB", 4 << 20: "4 MiB", 64 << 20: "64 MiB"}[size]
            for name in servers:
                p = statistics.median(times[name][0])
                g = statistics.median(times[name][1])
                mib = size / (1 << 20)
                print(f"| {label} | {name} | {p * 1e3:.2f} | {mib / p:.1f} | {g * 1e3:.2f} | "
                      f"{mib / g:.1f} |")
        for srv in servers.values():
            srv.stop()

        # Start-up on a prefix holding N objects, written in the engine's layout.
        n = args.startup_count
        schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
        payload = os.urandom(1024)
        batch = pa.record_batch([pa.array([1], pa.uint64()), pa.array([payload], pa.binary())],
                                schema=schema)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, schema) as writer:
            writer.write_batch(batch)
        body = sink.getvalue().to_pybytes()
        t = time.monotonic()
        for i in range(n):
            d = gw_root / BUCKET / "startup" / "bench" / f"s{i // 1000:05d}"
            if i % 1000 == 0:
                d.mkdir(parents=True, exist_ok=True)
            (d / f"o{i:07d}.{1:020d}.base.arrow").write_bytes(body)
        print(f"\nstart-up: {n} objects of 1 KiB written in {time.monotonic() - t:.1f}s")
        for run in range(1, 4):
            srv = Server(args.binary, "--storage", s3_url("startup"))
            indexed = next((line.strip() for line in srv.output if "objects indexed" in line), "")
            print(f"| s3 | {run} | ready {srv.ready_s:.2f} s | {indexed[-80:]} |")
            srv.stop()
    finally:
        gw.terminate()
        gw.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
