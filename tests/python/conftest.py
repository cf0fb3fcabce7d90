"""Fixtures that start the real flame-object-cache binary for the Python tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FOC_SERVER_BINARY", ROOT / "build/release/src/server/flame-object-cache"))
LISTEN_RE = re.compile(r"listening on (\S+)")
METRICS_RE = re.compile(r"flame-object-cache metrics at (\S+)")


def hermetic_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without the developer's Flame settings: FLAME_* and RUST_LOG
    are dropped and HOME points at a fresh empty directory (so ~/.flame is not read), unless
    `env` sets them."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FLAME_") and k != "RUST_LOG"}
    full["HOME"] = tempfile.mkdtemp(prefix="foc-home-")
    full.update(env or {})
    return full


class ServerProcess:
    """A flame-object-cache process on a free loopback port; stopped by the fixture."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        binary: Path | None = None,
    ):
        binary = binary or BINARY
        if not binary.exists():
            pytest.fail(f"server binary {binary} is missing: build it first (scripts/test.sh does)")
        # The servers of the tests are memory-only unless they name a storage or a config file:
        # the built-in default is a disk store under $HOME/.flame/cache (HOME is a fresh
        # temporary directory here, see hermetic_env).
        if not {"--storage", "--config", "-c", "--check-config"} & set(args):
            args = [*args, "--storage", "none"]
        self.args = [str(binary), *args]
        full_env = hermetic_env(env)
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
        )
        self.output: list[str] = []
        self.endpoint = ""
        self.metrics_url = ""
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                mm = METRICS_RE.search(line)
                if mm:
                    self.metrics_url = mm.group(1)
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
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"])
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
