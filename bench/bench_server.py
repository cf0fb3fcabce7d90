"""Shared setup of the Python benchmarks (not a test): start the server binary on a free
loopback port and time a call repeatedly. Used by python_watch_get.py, python_zero_copy.py,
python_cached_get.py, side_by_side.py and small_call_floor.py."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

LISTEN_RE = re.compile(r"listening on (\S+)")


def launch(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Starts `argv`, a server that prints "listening on URL" (ours, foc-grpc-floor), waits up to
    60 s for that line and then keeps reading its output (so that a full pipe never blocks its
    logging); returns the process and the URL."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    out = proc.stdout
    deadline = time.time() + 60
    while time.time() < deadline:
        line = out.readline()
        if not line:
            break
        m = LISTEN_RE.search(line)
        if m:
            threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
            return proc, m.group(1)
    proc.kill()
    raise SystemExit(f"{argv[0]} did not start")


def start(binary: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `binary --endpoint grpc://127.0.0.1:0 *args` with a fresh HOME; returns the process
    and the endpoint it printed."""
    env = dict(os.environ, HOME=tempfile.mkdtemp(prefix="foc-bench-"))
    return launch([binary, "--endpoint", "grpc://127.0.0.1:0", *args], env)


def samples(fn: Callable[[], Any], n: int) -> list[float]:
    """Seconds taken by each of `n` calls of `fn`, sorted."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return sorted(out)
