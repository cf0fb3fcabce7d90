#!/usr/bin/env python3
"""Benchmark (not a test): a cached get of an unchanged object versus a full get.

Starts the server binary on a free loopback port (memory-only) unless --endpoint is given, puts
one object of --mib MiB, and reports the median latency of:

* raw DoGet           pyarrow's own ``do_get(...).read_all()`` of the same object, no SDK
* full get            ``get_object`` with ``version=0`` (the whole object crosses the wire,
                      decoded); "SDK / raw" is its ratio to the raw DoGet (issue 13: ≤ 1.3)
* cached get          ``get_object`` of the unchanged object (not-modified round trip + decode)
* patch-only get      after a 1 KiB patch by another client, with a deserializer
* max_staleness get   a client with ``max_staleness=60`` (no round trip)
* flamepy cached get  flamepy 0.6.0's ``get_object`` on the same object (for comparison)

for two payloads: a numpy float64 array (Arrow tensor path, decoded zero-copy) and ``bytes``
(cloudpickle path, decoded into a fresh object on every get).

    python bench/python_cached_get.py --binary build/release/src/server/flame-object-cache
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

from bench_server import start


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.environ.get("FOC_SERVER_BINARY", "build/release/src/server/flame-object-cache"))
    ap.add_argument("--endpoint", help="use a running server instead of starting one")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    proc = None
    endpoint = args.endpoint
    if endpoint is None:
        proc, endpoint = start(args.binary, "--max-memory", str(4 << 30))
    os.environ["HOME"] = tempfile.mkdtemp()
    os.environ["FLAME_CACHE_ENDPOINT"] = endpoint
    os.environ.pop("FLAME_CACHE_STORAGE", None)
    from flamepy.core import cache as fp

    from flame_object_cache import Client, ObjectRef

    try:
        n = args.mib << 20
        payloads = {"numpy float64": np.random.default_rng(0).random(n // 8), "bytes": os.urandom(n)}
        print(f"# {args.mib} MiB object, median of {args.repeat}, endpoint {endpoint}")
        print("| payload | raw DoGet ms | full get ms | SDK / raw | cached get ms | patch-only get ms "
              "| max_staleness get ms | flamepy cached get ms |")
        print("|---|---|---|---|---|---|---|---|")
        import pyarrow.flight as flight

        raw_client = flight.connect(endpoint)
        for name, value in payloads.items():
            c = Client(endpoint)
            ref = c.put_object("bench/s", value)
            zero = ObjectRef(ref.endpoint, ref.key, 0)
            ticket = flight.Ticket(f"{ref.key}:0".encode())
            raw = median_ms(lambda: raw_client.do_get(ticket).read_all(), args.repeat)
            full = median_ms(lambda: c.get_object(zero), args.repeat)
            cached = median_ms(lambda: c.get_object(ref), args.repeat)
            received = c.cache_stats()["bytes_received"]
            c.get_object(ref)
            assert c.cache_stats()["bytes_received"] == received, "cached get transferred data"
            writer = Client(endpoint)

            def patched() -> None:
                writer.patch_object(ref, b"p" * 1024)
                c.get_object(ref, lambda b, d: len(d))

            patch_only = median_ms(patched, args.repeat)
            lazy = Client(endpoint, max_staleness=60.0)
            stale = median_ms(lambda: lazy.get_object(ref), args.repeat)
            fref = fp.ObjectRef(ref.endpoint, ref.key, ref.version)
            flamepy = median_ms(lambda: fp.get_object(fref), args.repeat)
            print(f"| {name} | {raw:.1f} | {full:.1f} | {full / raw:.2f} | {cached:.2f} | {patch_only:.2f} (incl. the patch write) "
                  f"| {stale:.3f} | {flamepy:.2f} |")
            c.close()
            writer.close()
            lazy.close()
        raw_client.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
