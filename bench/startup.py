#!/usr/bin/env python3
"""Benchmark (not a test): server start-up on a disk store of many small objects.

Writes N objects (default 100,000 of 1 KiB) into a fresh storage directory in the upstream
layout with pyarrow (Arrow IPC files, as upstream and flamepy's local mode write them), then
starts the server binary on it and reports the time until it serves (the "listening on" line,
then a successful ListActions and a DoGet of one object) and its resident memory (VmRSS, VmHWM)
at that point. `--cold` empties the page cache before each start (`sync`, then
`echo 3 > /proc/sys/vm/drop_caches`: needs root), so the files are read from the disk. Start-up must index keys and versions without reading payloads, so neither the
time nor the memory should follow the stored bytes.

    .venv/bin/python bench/startup.py --binary build/release/src/server/flame-object-cache
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time

import pyarrow as pa
import pyarrow.flight as flight

LISTEN_RE = re.compile(r"listening on (\S+)")


def write_store(root: str, count: int, size: int, per_session: int) -> None:
    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
    payload = os.urandom(size)
    for i in range(count):
        session_dir = os.path.join(root, "bench", f"s{i // per_session:05d}")
        if i % per_session == 0:
            os.makedirs(session_dir, exist_ok=True)
        batch = pa.record_batch([pa.array([1], pa.uint64()), pa.array([payload], pa.binary())], schema=schema)
        with pa.OSFile(os.path.join(session_dir, f"o{i:07d}.arrow"), "wb") as sink:
            with pa.ipc.new_file(sink, schema) as writer:
                writer.write_batch(batch)


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/release/src/server/flame-object-cache")
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--per-session", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each start (root)")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="foc-startup-")
    try:
        t0 = time.monotonic()
        write_store(root, args.count, args.size, args.per_session)
        print(f"wrote {args.count} objects of {args.size} B in {time.monotonic() - t0:.1f} s")
        print(f"page cache: {'dropped before each start' if args.cold else 'warm'}")
        print("| run | ready (s) | first get (s) | VmRSS (MiB) | VmHWM (MiB) |")
        print("|---|---|---|---|---|")
        for run in range(args.runs):
            if args.cold:
                os.sync()
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
            t0 = time.monotonic()
            proc = subprocess.Popen([args.binary, "--endpoint", "grpc://127.0.0.1:0", "--storage", root],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            endpoint = ""
            assert proc.stdout is not None
            for line in proc.stdout:
                m = LISTEN_RE.search(line)
                if m:
                    endpoint = m.group(1)
                    break
            client = flight.connect(endpoint)
            list(client.list_actions())
            ready = time.monotonic() - t0
            client.do_get(flight.Ticket(b"bench/s00042/o0042000:0")).read_all()
            first_get = time.monotonic() - t0
            rss = status_kib(proc.pid, "VmRSS") / 1024
            hwm = status_kib(proc.pid, "VmHWM") / 1024
            print(f"| {run + 1} | {ready:.2f} | {first_get:.2f} | {rss:.0f} | {hwm:.0f} |", flush=True)
            client.close()
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
