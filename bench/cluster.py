#!/usr/bin/env python3
"""Benchmark (not a test): one server versus a three-server cluster, in one run.

Starts etcd (Debian's etcd-server), a Versity S3 Gateway (scripts/bootstrap.sh builds it) and
four servers: a single server with `s3://` storage (the same durable tier as the cluster) and
three cluster members (docs/cluster.md). Through the Python SDK — one endpoint for the single
server, the routing client (`Client("a,b,c")`) for the cluster — it measures, median of
`--rounds`:

* PUT and full GET latency, 1 KiB and 4 MiB (the GET from the serving server's memory tier);
* not-modified checks per second (a cached get: one round trip, nothing transferred), one
  thread, `--seconds` long;
* PATCH commit latency (the cluster: S3 PUT of the delta + etcd transaction);
* the watch lag: a PATCH through one member until another member serves it;
* aggregate memory: every server has `--max-memory` (default 64 MiB); 1 MiB objects in many
  sessions, 3 x that limit in total, are written and read back; reported are the servers' summed
  `foc_resident_bytes` (/metrics) and the time to read everything back once more.

    .venv/bin/python bench/cluster.py --binary build/release/src/server/flame-object-cache
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from s3_tiers import ACCESS, BUCKET, SECRET, Server, free_port  # noqa: E402

import flame_object_cache as foc  # noqa: E402
from flame_object_cache import Client  # noqa: E402

MiB = 1 << 20


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def resident_bytes(metrics_port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("foc_resident_bytes "):
            return int(float(line.split()[1]))
    raise SystemExit("no foc_resident_bytes in /metrics")


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:.2f}"


def measure(name: str, client: Client, rounds: int, seconds: float) -> dict[str, str]:
    out: dict[str, str] = {}
    for size, label in ((1024, "1 KiB"), (4 * MiB, "4 MiB")):
        data = os.urandom(size)
        puts, gets = [], []
        for r in range(rounds):
            t = time.perf_counter()
            ref = client.put_object(f"bench-{name}/s{size}-{r}", data)
            puts.append(time.perf_counter() - t)
            t = time.perf_counter()
            got = client.get_object(foc.ObjectRef(ref.endpoint, ref.key, 0))  # a full read
            gets.append(time.perf_counter() - t)
            assert got == data
        out[f"PUT {label} ms"] = median_ms(puts)
        out[f"GET {label} ms"] = median_ms(gets)
    ref = client.put_object(f"bench-{name}/nm", b"x" * 1024)
    client.get_object(ref)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        client.get_object(ref)
        n += 1
    out["not-modified checks/s"] = f"{n / (time.perf_counter() - t0):.0f}"
    patches = []
    for i in range(rounds * 4):
        t = time.perf_counter()
        ref = client.patch_object(ref, i)
        patches.append(time.perf_counter() - t)
    out["PATCH ms"] = median_ms(patches)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "build/release/src/server/flame-object-cache"))
    ap.add_argument("--versitygw", default=str(ROOT / ".tools/versitygw-v1.8.0/bin/versitygw"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--max-memory-mib", type=int, default=64)
    args = ap.parse_args()
    etcd_bin = shutil.which("etcd")
    if etcd_bin is None:
        raise SystemExit("etcd is missing (Debian's etcd-server)")

    tmp = Path(tempfile.mkdtemp(prefix="foc-bench-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    servers: list[Server] = []
    try:
        (tmp / "gw" / BUCKET).mkdir(parents=True)
        gw_port = free_port()
        procs.append(subprocess.Popen([args.versitygw, "--access", ACCESS, "--secret", SECRET, "--port",
                                       f"127.0.0.1:{gw_port}", "posix", str(tmp / "gw")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        procs.append(subprocess.Popen([etcd_bin, "--name=bench", f"--data-dir={tmp}/etcd",
                                       f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                                       f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                                       f"--initial-cluster=bench={peer}", f"--log-outputs={tmp}/etcd.log", "--logger=zap"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(gw_port)
        wait_port(client_port)

        def s3(prefix: str) -> str:
            return f"s3://{BUCKET}/{prefix}?endpoint_override=127.0.0.1:{gw_port}&scheme=http"

        memory = f"{args.max_memory_mib}M"
        metrics = [free_port() for _ in range(4)]
        single = Server(args.binary, "--storage", s3("single"), "--max-memory", memory,
                        "--metrics-port", str(metrics[0]))
        servers.append(single)
        config = tmp / "cluster.yaml"
        config.write_text(yaml.safe_dump({"cache": {"storage": s3("cluster"),
                                                    "cluster": {"etcd": [etcd_url], "prefix": "/bench"}}}))
        members = [Server(args.binary, "--config", str(config), "--max-memory", memory,
                          "--metrics-port", str(metrics[i + 1])) for i in range(3)]
        servers.extend(members)
        endpoints = [m.endpoint for m in members]
        load = os.getloadavg()[0]
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
              f"load average {load:.1f} at start; {args.rounds} rounds, medians")

        with Client(single.endpoint) as one, Client(",".join(endpoints)) as routed:
            a = measure("single", one, args.rounds, args.seconds)
            b = measure("cluster", routed, args.rounds, args.seconds)
            print("| measure | single server (s3://) | 3-server cluster, routed SDK |")
            print("|---|---|---|")
            for k in a:
                print(f"| {k} | {a[k]} | {b[k]} |")

            # The watch lag: a PATCH through member 0 until member 1 serves it.
            with Client(endpoints[0]) as c0, Client(endpoints[1]) as c1:
                ref = c0.put_object("bench-lag/s", 0)
                lags = []
                for i in range(1, args.rounds + 1):
                    ref = c0.patch_object(ref, i)
                    t = time.perf_counter()
                    while True:
                        got = c1.get_object(foc.ObjectRef(endpoints[1], ref.key, ref.version),
                                            lambda base, deltas: len(deltas))
                        if got == i:
                            break
                    lags.append(time.perf_counter() - t)
                print(f"\nwatch lag (PATCH through A acknowledged → B serves it): median {median_ms(lags)} ms, "
                      f"max {max(lags) * 1e3:.2f} ms over {len(lags)}")

            # Aggregate memory: 3 x max_memory of 1 MiB objects, one per session.
            total = 3 * args.max_memory_mib
            payload = os.urandom(MiB - 4096)
            rows = []
            for name, client, ports in (("single server", one, metrics[:1]),
                                        ("3-server cluster", routed, metrics[1:])):
                refs = [client.put_object(f"bench-mem-{name[0]}/s{i}", payload) for i in range(total)]
                client.clear_cache()
                for r in refs:
                    client.get_object(foc.ObjectRef(r.endpoint, r.key, 0))
                t = time.perf_counter()
                for r in refs:
                    client.get_object(foc.ObjectRef(r.endpoint, r.key, 0))
                reread = time.perf_counter() - t
                resident = sum(resident_bytes(p) for p in ports)
                rows.append((name, resident, reread, len(refs)))
            print(f"\naggregate memory: {total} objects of 1 MiB, max_memory {memory} per server")
            print("| setup | resident bytes (sum) | re-read all, s | MiB/s |")
            print("|---|---|---|---|")
            for name, resident, reread, n in rows:
                print(f"| {name} | {resident / MiB:.0f} MiB | {reread:.2f} | {n / reread:.0f} |")
        print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        for p in procs:
            p.terminate()
            p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
