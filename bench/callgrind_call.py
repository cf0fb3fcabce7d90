#!/usr/bin/env python3
"""Benchmark (not a test): instructions per small call, by shared object, under callgrind.

Starts a server binary under `valgrind --tool=callgrind` twice, drives it with one pyarrow
client making --calls-low, then --calls-high, identical calls (after 200 warm-up calls), and
reports (Ir(high) - Ir(low)) / (high - low): the instructions one call costs the server,
startup and warm-up cancelled out, split by shared object (libarrow_flight = gRPC and Arrow
Flight's transport, libc = mostly malloc/free, ld-linux = thread-local storage look-ups,
the server binary = our code). Instruction counts do not depend on what else the machine
is doing, unlike times (docs/benchmarks.md, "Where a small call's time goes").

    .venv/bin/python bench/callgrind_call.py --binary build/release/src/server/flame-object-cache
    # the transport floor: gRPC's callback API answering with the same reply bytes
    .venv/bin/python bench/callgrind_call.py --floor build/release/bench/foc-grpc-floor

Calls: `notmod` (a conditional get at the current version, the default) or `get1k`.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

KEY = "bench/floor/obj"

CLIENT = r"""
import os, sys, pyarrow as pa, pyarrow.flight as fl, bson
url, n, kind, ours = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
c = fl.connect(url)
key = "%s"
v = 1
if ours:
    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
    w, r = c.do_put(fl.FlightDescriptor.for_path(*key.split("/")), schema)
    w.write_batch(pa.record_batch([pa.array([0], pa.uint64()), pa.array([os.urandom(1024)], pa.binary())],
                                  schema=schema))
    w.done_writing(); v = int(bson.decode(r.read().to_pybytes())["version"]); w.close()
t = fl.Ticket(f"{key}:{v if kind == 'notmod' else 0}".encode())
for _ in range(200 + n):
    c.do_get(t).read_all()
""" % KEY


def one_run(argv: list[str], calls: int, kind: str, ours: bool, tmp: str) -> str:
    out = os.path.join(tmp, f"cg.{calls}")
    log = open(os.path.join(tmp, f"cg.{calls}.log"), "w+")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": tmp})
    url = ""
    for _ in range(600):
        log.seek(0)
        m = re.search(r"listening on (grpc://[0-9.:]+)", log.read())
        if m:
            url = m.group(1)
            break
        time.sleep(0.1)
    if not url:
        proc.kill()
        raise SystemExit(f"{argv[0]} did not start under valgrind")
    subprocess.run([sys.executable, "-c", CLIENT, url, str(calls), kind, "1" if ours else "0"], check=True)
    proc.terminate()
    proc.wait()
    return out


def by_object(path: str) -> dict[str, int]:
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    totals: dict[str, int] = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) .*\[([^\]]+)\]\s*$", line)
        if m:
            totals[os.path.basename(m.group(2))] += int(m.group(1).replace(",", ""))
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="a flame-object-cache build (disk storage in a temp dir)")
    ap.add_argument("--transport", choices=["auto", "callback", "arrow"], default="auto",
                    help="the server's cache.transport")
    ap.add_argument("--floor", help="foc-grpc-floor instead (answers every DoGet the same)")
    ap.add_argument("--kind", choices=["notmod", "get1k"], default="notmod")
    ap.add_argument("--calls-low", type=int, default=500)
    ap.add_argument("--calls-high", type=int, default=2500)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="foc-cg-")
    if args.floor:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from small_call_floor import _reply_files

        argv, ours = [args.floor, "--reply", _reply_files(tmp)[args.kind]], False
    elif args.binary:
        argv, ours = [args.binary, "--endpoint", "grpc://127.0.0.1:0", "--storage", os.path.join(tmp, "store"),
                      "--transport", args.transport], True
    else:
        raise SystemExit("--binary or --floor")
    low = by_object(one_run(argv, args.calls_low, args.kind, ours, tmp))
    high = by_object(one_run(argv, args.calls_high, args.kind, ours, tmp))
    n = args.calls_high - args.calls_low
    per = {k: (high.get(k, 0) - low.get(k, 0)) / n for k in set(low) | set(high)}
    total = sum(per.values())
    print(f"# {os.path.basename(argv[0])} {args.kind}: {total:,.0f} instructions per call "
          f"((Ir of {args.calls_high} calls - Ir of {args.calls_low}) / {n})")
    print("| shared object | Ir per call | share |\n|---|---|---|")
    for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
        if abs(v) >= 50:
            print(f"| {k} | {v:,.0f} | {v / total:.0%} |")


if __name__ == "__main__":
    main()
