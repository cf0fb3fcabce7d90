"""The node-local tier (`--upstream`, docs/node-tier.md) between real server processes:
writes land at the upstream with its versions, reads are the upstream's data, hits cost no
upstream round trip while the tier's WATCH subscription is healthy, a kill -9 of the tier
loses nothing, and an unreachable upstream is a clear UNAVAILABLE.

(The flamepy 0.6.0 compatibility suite runs against a tier too: tests/python/compat, the
`tier` parameter of its `server` fixture.)"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from typing import Iterator

import bson
import pyarrow.flight as flight
import pytest
from conftest import BINARY, ServerProcess, hermetic_env, raw_get

import flame_object_cache as foc
from flame_object_cache import Client


def upstream_doget_calls(server: ServerProcess) -> int:
    with urllib.request.urlopen(server.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    return sum(int(float(n)) for n in re.findall(r'^foc_rpc_requests_total\{rpc="DoGet",[^}]*\} (\S+)$',
                                                 text, re.M))


@pytest.fixture
def upstream() -> Iterator[ServerProcess]:
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--metrics-port", "0"])
    yield proc
    proc.stop()


@pytest.fixture
def tier(upstream: ServerProcess) -> Iterator[ServerProcess]:
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--upstream", upstream.endpoint])
    yield proc
    proc.stop()


def test_writes_land_upstream_with_the_upstreams_versions(upstream: ServerProcess, tier: ServerProcess) -> None:
    with Client(tier.endpoint) as via_tier, Client(upstream.endpoint) as direct:
        ref = via_tier.put_object("app/s", {"w": [1, 2, 3]})
        assert ref.endpoint == tier.endpoint and ref.version == 1  # follow-up gets come to the tier
        ref = via_tier.patch_object(ref, "d")
        assert ref.version == 2
        assert raw_get(upstream.endpoint, ref.key, 0) == (2, 2)  # base + delta, version 2
        assert direct.get_object(foc.ObjectRef(upstream.endpoint, ref.key, 0)) is not None
        # And the other way round: written at the upstream, read through the tier.
        other = direct.put_object("app/s", "written upstream")
        assert via_tier.get_object(foc.ObjectRef(tier.endpoint, other.key, 0)) == "written upstream"
        assert {o.key for o in via_tier.list_objects("app")} == {ref.key, other.key}
    assert "node tier of upstream " + upstream.endpoint in "".join(tier.output)


def test_hits_cost_no_upstream_round_trip_while_the_tier_is_subscribed(upstream: ServerProcess,
                                                                      tier: ServerProcess) -> None:
    with Client(tier.endpoint) as c:
        ref = c.put_object("app/s", b"x" * 1000)
    # The tier's subscription to `app/*` starts with that put; once it has its snapshot,
    # not-modified checks are answered by the tier alone.
    deadline = time.monotonic() + 60
    while True:
        before = upstream_doget_calls(upstream)
        for _ in range(50):
            assert raw_get(tier.endpoint, ref.key, ref.version) == (0, ref.version)  # not modified
        if upstream_doget_calls(upstream) == before:
            break
        assert time.monotonic() < deadline, "every tier hit still asked the upstream"
        time.sleep(0.2)


def test_a_change_at_the_upstream_reaches_the_tiers_clients(upstream: ServerProcess, tier: ServerProcess) -> None:
    with Client(tier.endpoint) as via_tier, Client(upstream.endpoint) as direct:
        ref = via_tier.put_object("app/s", "v1")
        assert raw_get(tier.endpoint, ref.key, ref.version)[0] == 0
        newer = direct.patch_object(foc.ObjectRef(upstream.endpoint, ref.key, ref.version), "delta")
        # Pushed by WATCH to the tier (or found by its conditional get): the tier's client
        # is answered with the delta only, at the upstream's version.
        deadline = time.monotonic() + 30
        while raw_get(tier.endpoint, ref.key, ref.version) != (1, newer.version):
            assert time.monotonic() < deadline, "the tier kept serving the old version"
            time.sleep(0.01)


def test_kill_9_of_the_tier_loses_no_acknowledged_write(upstream: ServerProcess, tier: ServerProcess) -> None:
    acknowledged = {}
    with Client(tier.endpoint) as via_tier:
        for i in range(100):
            ref = via_tier.put_object("app/s", i)
            acknowledged[ref.key] = (ref.version, i)
    assert tier.stop(signal.SIGKILL) == -signal.SIGKILL
    with Client(upstream.endpoint) as direct:
        for key, (version, value) in acknowledged.items():
            assert direct.get_object(foc.ObjectRef(upstream.endpoint, key, 0)) == value
            assert raw_get(upstream.endpoint, key, 0)[1] == version


def test_an_unreachable_upstream_is_unavailable(upstream: ServerProcess, tier: ServerProcess) -> None:
    with Client(tier.endpoint) as via_tier:
        ref = via_tier.put_object("app/s", "kept upstream")
        upstream.stop()
        with pytest.raises(foc.CacheUnavailable):
            via_tier.put_object("app/s", "nowhere to go")
        # A fresh client (no local copy) cannot read either: the tier never serves a
        # version it cannot check... unless its subscription still vouched for it, which
        # ends within two heartbeats of the upstream going away.
        time.sleep(2.5)
        with Client(tier.endpoint) as fresh, pytest.raises(foc.CacheUnavailable):
            fresh.get_object(foc.ObjectRef(tier.endpoint, ref.key, 0))


def test_watch_on_a_tier_is_refused_with_a_clear_status(tier: ServerProcess) -> None:
    fc = flight.connect(tier.endpoint)
    writer, reader = fc.do_exchange(flight.FlightDescriptor.for_command(b"WATCH:" + bson.encode({"patterns": ["a/*"]})))
    with pytest.raises(NotImplementedError, match="node-local tier.*watch its upstream"):
        reader.read_chunk()
    fc.close()


def test_config_names_the_upstream(upstream: ServerProcess) -> None:
    ok = subprocess.run([str(BINARY), "--check-config", "--upstream", upstream.endpoint],
                        capture_output=True, text=True, env=hermetic_env(None), timeout=60)
    assert ok.returncode == 0 and f"upstream: {upstream.endpoint}" in ok.stdout
    bad = subprocess.run([str(BINARY), "--check-config"], capture_output=True, text=True, timeout=60,
                         env=hermetic_env({"FLAME_CACHE_UPSTREAM": "ftp://nowhere"}))
    assert bad.returncode != 0 and "FLAME_CACHE_UPSTREAM" in bad.stderr
