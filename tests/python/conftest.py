"""Fixtures that start the real flame-object-cache binary for the Python tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FOC_SERVER_BINARY", ROOT / "build/release/src/server/flame-object-cache"))
LISTEN_RE = re.compile(r"listening on (\S+)")


class ServerProcess:
    """A flame-object-cache process on a free loopback port; stopped by the fixture."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, timeout: float = 30.0):
        if not BINARY.exists():
            pytest.fail(f"server binary {BINARY} is missing: build it first (scripts/test.sh does)")
        self.args = [str(BINARY), *args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
        )
        self.output: list[str] = []
        self.endpoint = ""
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                m = LISTEN_RE.search(line)
                if m and not ready.is_set():
                    self.endpoint = m.group(1)
                    ready.set()
            ready.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not ready.wait(timeout) or not self.endpoint:
            self.stop()
            pytest.fail("server did not start:\n" + "".join(self.output))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(5)
        return self.proc.returncode


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0"])
    yield proc
    proc.stop()


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Starts servers with extra command-line arguments (e.g. `--max-memory`, `--storage`) on a
    free loopback port; every server started through it is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*extra_args: str) -> ServerProcess:
        proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", *extra_args])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()
