#!/usr/bin/env python3
"""Benchmark (not a test): a get through the WATCH-subscribed client cache versus the
conditional get, and the subscribed cache's staleness window.

Starts the server binary on a free loopback port (memory-only) unless --endpoint is given, puts
one object, and reports the median and p99 latency of ``get_object`` of the unchanged object:

* conditional get   a plain client: one ``<key>:<version>`` round trip ("not modified") + decode
* subscribed get    a client with ``subscribe_cache``: no round trip while the push stream is healthy

and the push delay as the subscribed cache sees it: time from another client's ``update_object``
returning until the subscribed client's ``get_object`` of its old ref returns the new value
(spinning; until the push arrives its gets are answered from the cache with the old value).

    python bench/python_watch_get.py --binary build/release/src/server/flame-object-cache
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

import flame_object_cache as foc  # noqa: E402
from bench_server import samples, start  # noqa: E402


def timed(fn, n: int) -> tuple[float, float]:
    """Median and p99 in µs."""
    us = [s * 1e6 for s in samples(fn, n)]
    return statistics.median(us), us[int(0.99 * (len(us) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/release/src/server/flame-object-cache")
    ap.add_argument("--endpoint", default="")
    ap.add_argument("--gets", type=int, default=2000)
    ap.add_argument("--changes", type=int, default=200)
    args = ap.parse_args()
    proc = None
    endpoint = args.endpoint
    if not endpoint:
        proc, endpoint = start(args.binary, "--storage", "none")
    try:
        writer = foc.Client(endpoint)
        plain = foc.Client(endpoint)
        subscribed = foc.Client(endpoint)
        sub = subscribed.subscribe_cache("bench/*", heartbeat=1.0)
        assert sub.wait_ready(30)
        ref = writer.put_object("bench/s", b"x" * 1024)
        plain.get_object(ref)
        subscribed.get_object(ref)
        print("| get of an unchanged 1 KiB object | p50 µs | p99 µs |\n|---|---|---|")
        p50, p99 = timed(lambda: plain.get_object(ref), args.gets)
        print(f"| conditional get (round trip) | {p50:.0f} | {p99:.0f} |")
        before = subscribed.cache_stats()["requests"]
        p50, p99 = timed(lambda: subscribed.get_object(ref), args.gets)
        assert subscribed.cache_stats()["requests"] == before, "subscribed gets made round trips"
        print(f"| subscribed get (no round trip) | {p50:.0f} | {p99:.0f} |")
        delays = []
        reader_ref = ref  # the reader keeps its old ref: only the push can tell it of the change
        for i in range(args.changes):
            value = b"%d" % i
            ref = writer.update_object(ref, value)
            t = time.perf_counter()
            while subscribed.get_object(reader_ref) != value:
                pass
            delays.append((time.perf_counter() - t) * 1e3)
        delays.sort()
        print(f"\npush delay seen by the subscribed cache (update acknowledged -> get returns it), "
              f"{args.changes} updates: p50 {statistics.median(delays):.3f} ms, "
              f"p99 {delays[int(0.99 * (len(delays) - 1))]:.3f} ms, max {delays[-1]:.3f} ms")
        for c in (writer, plain, subscribed):
            c.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
