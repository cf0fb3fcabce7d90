"""Shared setup of the Python benchmarks (not a test): start the server binary on a free
loopback port and time a call repeatedly. Used by python_watch_get.py, python_zero_copy.py and
python_cached_get.py."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

LISTEN_RE = re.compile(r"listening on (\S+)")


def start(binary: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `binary --endpoint grpc://127.0.0.1:0 *args` with a fresh HOME; returns the process
    and the endpoint it printed."""
    env = dict(os.environ, HOME=tempfile.mkdtemp(prefix="foc-bench-"))
    proc = subprocess.Popen([binary, "--endpoint", "grpc://127.0.0.1:0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = LISTEN_RE.search(line)
        if m:
            return proc, m.group(1)
    raise SystemExit("server did not start")


def samples(fn: Callable[[], Any], n: int) -> list[float]:
    """Seconds taken by each of `n` calls of `fn`, sorted."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return sorted(out)
