#!/usr/bin/env python3
"""Benchmark (not a test): a 1 GiB read by a same-machine process through the mapped path (MAP,
``Client.map_object``) versus gRPC (``get_object``), against memcpy in the same run.

Starts the server binary on a free loopback port (a disk store in a temporary directory, or with
``--tier`` a memory-only upstream plus a node tier in front of it, read through the tier), puts
one object of ``--size`` MiB of random bytes (``raw`` bytes, so nothing is decoded), and reports,
best and median of ``--runs`` reads from a fresh client each (no client-side cache):

* memcpy            ``numpy.copyto`` of the same size, in this process (the yardstick)
* gRPC get          ``get_object(raw=True)``: the bytes cross the loopback socket into this process
                    (and, as ``raw`` returns ``bytes``, are copied once more into them)
* mapped, open      ``map_object(raw=True)``: MAP round trip, open + mmap, footer checks; no page
                    touched yet (what a reader pays before it uses the data)
* mapped, read all  the same, then every 8-byte word read (``numpy.sum``): page faults on the
                    page cache included, the fair comparison with gRPC, whose bytes are all in
                    memory when it returns

    python bench/python_zero_copy.py --binary build/release/src/server/flame-object-cache [--tier]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

import numpy as np  # noqa: E402

import flame_object_cache as foc  # noqa: E402
from bench_server import samples, start  # noqa: E402

MiB = 1 << 20


def timed(fn, runs: int) -> tuple[float, float]:
    """Best and median in seconds."""
    s = samples(fn, runs)
    return s[0], statistics.median(s)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/release/src/server/flame-object-cache")
    ap.add_argument("--size", type=int, default=1024, help="MiB")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tier", action="store_true", help="read through a node tier")
    args = ap.parse_args()
    size = args.size * MiB
    store = tempfile.mkdtemp(prefix="foc-bench-store-")
    procs = []
    try:
        if args.tier:
            up, up_endpoint = start(args.binary, "--storage", "none", "--max-memory", f"{3 * args.size}M")
            procs.append(up)
            tier, endpoint = start(args.binary, "--upstream", up_endpoint, "--max-memory", f"{3 * args.size}M")
            procs.append(tier)
        else:
            server, endpoint = start(args.binary, "--storage", f"fs://{store}", "--max-memory",
                                     f"{3 * args.size}M")
            procs.append(server)
        data = os.urandom(size)
        # Raw bytes (upload_object), so that the payload is exactly the data.
        with tempfile.NamedTemporaryFile(dir=store) as f:
            f.write(data)
            f.flush()
            with foc.Client(endpoint, transfer_timeout=600) as w:
                ref = w.upload_object("bench/s/object", f.name)
        expected = int(np.frombuffer(data, dtype=np.uint64).sum(dtype=np.uint64))
        src = np.frombuffer(data, dtype=np.uint8)
        dst = np.empty_like(src)
        del data

        def memcpy() -> None:
            np.copyto(dst, src)

        def grpc_get() -> None:
            with foc.Client(endpoint, cache_max_bytes=0, transfer_timeout=600) as c:
                got = c.get_object(ref, raw=True)
                assert len(got) == size

        def mapped_open() -> None:
            with foc.Client(endpoint, cache_max_bytes=0) as c:
                buf = c.map_object(ref, raw=True)
                assert buf.size == size and c.map_stats()["mapped"] == 1

        def mapped_read() -> None:
            with foc.Client(endpoint, cache_max_bytes=0) as c:
                buf = c.map_object(ref, raw=True)
                assert int(np.frombuffer(buf, dtype=np.uint64).sum(dtype=np.uint64)) == expected

        t = time.perf_counter()
        mapped_open()  # a tier writes its file on the first MAP; a disk server has it already
        first = time.perf_counter() - t
        print(f"{args.size} MiB, {'through a node tier' if args.tier else 'disk server'}, "
              f"best / median of {args.runs}, load average {os.getloadavg()[0]:.1f}; "
              f"first map_object of the version: {first:.3f} s\n")
        print("| path | best s | median s | GiB/s (best) |\n|---|---|---|---|")
        for name, fn in (("memcpy (numpy.copyto)", memcpy), ("gRPC get_object(raw=True)", grpc_get),
                         ("mapped, open (map_object(raw=True))", mapped_open),
                         ("mapped, open + read every byte", mapped_read)):
            best, median = timed(fn, args.runs)
            print(f"| {name} | {best:.3f} | {median:.3f} | {size / best / (1 << 30):.2f} |")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(60)
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
