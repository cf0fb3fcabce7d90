"""Fixtures and helpers for the Python SDK tests, imported by the test modules.

Not a conftest.py: tests/python/conftest.py is imported as the module `conftest` by other suites, and
a second conftest.py would shadow it. The `server` fixture itself lives there."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import pytest
from conftest import ServerProcess

import flame_object_cache as foc


def port_of(endpoint: str) -> int:
    port = urlparse(endpoint).port
    assert port is not None, endpoint
    return port


def start_server(port: int = 0, *extra: str) -> ServerProcess:
    return ServerProcess(["--endpoint", f"grpc://127.0.0.1:{port}", *extra])


@pytest.fixture
def client(server: ServerProcess) -> Iterator[foc.Client]:
    c = foc.Client(server.endpoint)
    yield c
    c.close()


@pytest.fixture
def flame_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: ServerProcess) -> Iterator[ServerProcess]:
    """An empty $HOME and FLAME_CACHE_ENDPOINT pointing at the server, for the module functions
    and for flamepy (whose context singleton is reset)."""
    from flamepy.core import cache as fp

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", server.endpoint)
    for var in ("FLAME_CACHE_STORAGE", "FLAME_CA_FILE", "FLAME_CACHE_CERT_FILE", "FLAME_CACHE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    fp._context_cache = None
    foc.set_default_client(None)
    yield server
    foc.set_default_client(None)
    fp._context_cache = None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    import threading

    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                accepted.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join(2)
    for conn in accepted:
        conn.close()
    sock.close()


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
