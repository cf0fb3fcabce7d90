"""Fixtures of the flamepy 0.6.0 compatibility suite.

Every test gets its own server process (the `server` fixture below, run twice: memory only
and with `s3://` storage on a Versity S3 Gateway) and an flamepy that talks to it: HOME is an empty temporary directory (so no ~/.flame/flame.yaml
is read), FLAME_CACHE_ENDPOINT names the test's server, and flamepy's process-wide state
(the cached FlameContext, the pool of Flight clients, the client-side object cache) is reset
before and after the test, so no test sees another test's server or cached objects.
"""

from __future__ import annotations

from typing import Callable, Iterator

import flamepy.core.cache as fc
import pyarrow.flight as flight
import pytest

from conftest import S3Gateway, ServerProcess, cluster_member, new_s3_prefix

# Variables that would change which endpoint or mode flamepy uses.
_FLAME_ENV = ("FLAME_CACHE_ENDPOINT", "FLAME_CACHE_STORAGE", "FLAME_CA_FILE", "FLAME_ENDPOINT")


def reset_flamepy() -> None:
    """Forgets flamepy's module-level state: config context, Flight clients, object cache."""
    fc._context_cache = None
    with fc._client_pool_lock:
        clients = list(fc._client_pool.values())
        fc._client_pool.clear()
    for client in clients:
        client.close()
    with fc._cache_lock:
        fc._object_cache.clear()


def forget_local_cache() -> None:
    """Drops flamepy's client-side object cache only, so the next get reads from the server."""
    with fc._cache_lock:
        fc._object_cache.clear()


class TieredServer(ServerProcess):
    """A node-local tier (`--upstream`) in front of a memory-only upstream: flamepy talks to
    the tier, which forwards writes and serves reads at the upstream's versions."""

    def __init__(self) -> None:
        self.upstream = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"])
        super().__init__(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none",
                          "--upstream", self.upstream.endpoint])

    def stop(self, *args, **kwargs) -> int:
        rc = super().stop(*args, **kwargs)
        self.upstream.stop()
        return rc


@pytest.fixture(params=["none", "s3", "tier", "cluster"])
def server(request) -> Iterator[ServerProcess]:
    """The test's server: memory only, again with S3 storage (a fresh prefix of the
    session's versitygw), as a node tier in front of a memory-only upstream, and as a
    member of a cluster (etcd + S3), so the whole suite runs against every kind of store."""
    if request.param == "none":
        proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"])
    elif request.param == "tier":
        proc = TieredServer()
    elif request.param == "cluster":
        proc = cluster_member(request.getfixturevalue("etcd"), request.getfixturevalue("s3_gateway"),
                              new_s3_prefix(request.node.name))
    else:
        gw: S3Gateway = request.getfixturevalue("s3_gateway")
        proc = ServerProcess(
            ["--endpoint", "grpc://127.0.0.1:0", "--storage",
             gw.url(new_s3_prefix(request.node.name))], env=gw.env)
    yield proc
    proc.stop()


@pytest.fixture
def use_server(tmp_path, monkeypatch) -> Iterator[Callable[[ServerProcess], ServerProcess]]:
    """Returns a function that points flamepy at a given server (fresh flamepy state)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in _FLAME_ENV:
        monkeypatch.delenv(var, raising=False)

    def use(srv: ServerProcess) -> ServerProcess:
        monkeypatch.setenv("FLAME_CACHE_ENDPOINT", srv.endpoint)
        reset_flamepy()
        return srv

    yield use
    reset_flamepy()


@pytest.fixture
def flame(server: ServerProcess, use_server) -> ServerProcess:
    """The test's server, with flamepy configured to use it."""
    return use_server(server)


@pytest.fixture
def raw(flame: ServerProcess) -> Iterator[flight.FlightClient]:
    """A plain pyarrow Flight client to the test's server (flamepy is configured too)."""
    client = flight.connect(flame.endpoint)
    yield client
    client.close()
