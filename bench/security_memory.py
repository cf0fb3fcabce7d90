#!/usr/bin/env python3
"""Benchmark (not a test): the server's memory under the attacks of issue 12, holes 1 and 2.

Runs the server binary (one fresh process per attack) and reports VmRSS and VmHWM from
/proc/<pid>/status after each attack:

  extra-columns  20 puts whose schema carries a 50 MiB column next to a 1-byte `data` cell,
                 against --storage none --max-memory 64M (hole 1);
  large-upload   one upload of --large-gib GiB in 4 MiB rows against --storage none
                 --max-memory 64M (hole 2); it must be refused with RESOURCE_EXHAUSTED;
  concurrent     four concurrent uploads of 1 GiB in 4 MiB rows against a disk store with
                 cache.limits.upload_memory (default 256M) (hole 2); each is written to a
                 temporary file as it arrives (docs/storage.md, "Large uploads");
  disk-upload    one upload of --disk-gib GiB in 4 MiB rows against a disk store with
                 max_memory 64M and upload_memory 32M (--disk-upload-memory): spooled,
                 stored, then read back and
                 compared (the peak is taken before the read, which maps the file).

    .venv/bin/python bench/security_memory.py --binary build/release/src/server/flame-object-cache
    .venv/bin/python bench/security_memory.py --only disk-upload,concurrent

The regression tests (tests/python/test_security_memory.py) check the same attacks with generous
margins; the figures here go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight

MiB = 1 << 20
OPAQUE = pa.schema([("version", pa.uint64()), ("data", pa.binary())])


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def start(binary: str, args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([binary, "--endpoint", "grpc://127.0.0.1:0", "--log-level", "warn", *args],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"listening on (\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, m.group(1)
    raise SystemExit("server did not start")


def upload_rows(endpoint: str, key: str, row: bytes, count: int) -> str:
    client = flight.connect(endpoint)
    batch = pa.record_batch([pa.array([0], pa.uint64()), pa.array([row])], schema=OPAQUE)
    try:
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(key), OPAQUE)
        for _ in range(count):
            writer.write_batch(batch)
        writer.done_writing()
        reader.read()
        writer.close()
        return "stored"
    except (flight.FlightError, pa.ArrowException, OSError) as exc:
        return "refused" if "RESOURCE_EXHAUSTED" in str(exc) else f"error: {str(exc)[:80]}"
    finally:
        client.close()


def report(name: str, proc: subprocess.Popen, base: dict[str, int], outcome: str, seconds: float) -> None:
    s = status(proc.pid)
    print(f"{name:15s} idle RSS {base['VmRSS'] / MiB:7.1f} MiB   after: RSS {s['VmRSS'] / MiB:7.1f} MiB"
          f"   peak (VmHWM) {s['VmHWM'] / MiB:7.1f} MiB   {outcome}   {seconds:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="build/release/src/server/flame-object-cache")
    ap.add_argument("--large-gib", type=float, default=2.3)
    ap.add_argument("--upload-memory", default="256M")
    ap.add_argument("--disk-gib", type=float, default=1.0)
    ap.add_argument("--disk-upload-memory", default="32M",
                    help="cache.limits.upload_memory of the disk-upload attack")
    ap.add_argument("--only", default="extra-columns,large-upload,concurrent,disk-upload",
                    help="comma-separated attacks to run")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if "extra-columns" in only:
        extra_columns(args)
    if "large-upload" in only:
        large_upload(args)
    if "concurrent" in only:
        concurrent(args)
    if "disk-upload" in only:
        disk_upload(args)


def extra_columns(args: argparse.Namespace) -> None:
    proc, ep = start(args.binary, ["--storage", "none", "--max-memory", "64M"])
    base = status(proc.pid)
    t = time.monotonic()
    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary()), ("extra", pa.binary())])
    client = flight.connect(ep)
    filler = b"\xab" * (50 * MiB)
    for i in range(20):
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(f"app/s/o{i}"), schema)
        writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()), pa.array([b"x"]),
                                            pa.array([filler])], schema=schema))
        writer.done_writing()
        reader.read()
        writer.close()
    client.close()
    report("extra-columns", proc, base, "20 stored", time.monotonic() - t)
    proc.terminate()
    proc.wait()


def large_upload(args: argparse.Namespace) -> None:
    proc, ep = start(args.binary, ["--storage", "none", "--max-memory", "64M"])
    base = status(proc.pid)
    t = time.monotonic()
    outcome = upload_rows(ep, "app/s/big", b"\x01" * (4 * MiB), int(args.large_gib * 256))
    report("large-upload", proc, base, outcome, time.monotonic() - t)
    proc.terminate()
    proc.wait()


def concurrent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "c.yaml"
        cfg.write_text(f"cache:\n  storage: fs://{d}/store\n  eviction:\n    max_memory: 64M\n"
                       f"  limits:\n    upload_memory: {args.upload_memory}\n")
        proc, ep = start(args.binary, ["-c", str(cfg)])
        base = status(proc.pid)
        t = time.monotonic()
        outcomes: list[str] = []
        threads = [threading.Thread(target=lambda i=i: outcomes.append(
            upload_rows(ep, f"app/s/c{i}", bytes([i]) * (4 * MiB), 256))) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        report("concurrent", proc, base, ",".join(sorted(outcomes)), time.monotonic() - t)
        proc.terminate()
        proc.wait()


def disk_upload(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "c.yaml"
        cfg.write_text(f"cache:\n  storage: fs://{d}/store\n  eviction:\n    max_memory: 64M\n"
                       f"  limits:\n    upload_memory: {args.disk_upload_memory}\n")
        proc, ep = start(args.binary, ["-c", str(cfg)])
        base = status(proc.pid)
        rows = int(args.disk_gib * 256)
        block = os.urandom(4 * MiB)
        t = time.monotonic()
        outcome = upload_rows(ep, "app/s/big", block, rows)
        seconds = time.monotonic() - t
        report("disk-upload", proc, base, outcome, seconds)
        if outcome != "stored":
            proc.terminate()
            proc.wait()
            return
        print(f"{'':15s} {rows * 4 / seconds:.0f} MiB/s upload (client, loopback, spool, commit, fsync)")
        client = flight.connect(ep)
        t = time.monotonic()
        table = client.do_get(flight.Ticket(b"app/s/big:0")).read_all()
        cells = [c.as_buffer() for chunk in table.column("data").chunks for c in chunk]
        same = len(cells) == 1 and cells[0].size == rows * 4 * MiB and all(
            cells[0][i * 4 * MiB:(i + 1) * 4 * MiB].equals(pa.py_buffer(block)) for i in range(rows))
        print(f"{'':15s} read back in {time.monotonic() - t:.1f} s: {'bit-exact' if same else 'DIFFERENT'}")
        client.close()
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
