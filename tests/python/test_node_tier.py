"""The node-local tier (`--upstream`, docs/node-tier.md) between real server processes:
writes land at the upstream with its versions, reads are the upstream's data, hits cost no
upstream round trip while the tier's WATCH subscription is healthy, a kill -9 of the tier
loses nothing, and an unreachable upstream is a clear UNAVAILABLE.

(The flamepy 0.6.0 compatibility suite runs against a tier too: tests/python/compat, the
`tier` parameter of its `server` fixture.)"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pyarrow.flight as flight
import pytest
from conftest import BINARY, Pki, ServerProcess, hermetic_env, raw_get, tls_config, tls_stored_keys

import flame_object_cache as foc
from flame_object_cache import Client, ObjectRef, _watch


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


def next_change(sub: _watch.Subscription) -> _watch.Change:
    while True:
        change = sub.next_event()
        if change is not None:
            return change


def next_change_or_ready(sub: _watch.Subscription) -> bool:
    """Reads up to `ready` (True) or a change (False)."""
    while not sub.ready:
        if sub.next_event() is not None:
            return False
    return True


def test_watch_on_a_tier_republishes_the_upstreams_changes(upstream: ServerProcess, tier: ServerProcess) -> None:
    with Client(upstream.endpoint) as direct, Client(tier.endpoint) as via_tier:
        old = direct.put_object("app/s", "before")
        fc = flight.connect(tier.endpoint)
        try:
            sub = _watch.Subscription(fc, ["app/*"], {old.key: 0}, snapshot=False, timeout=60)
            # The resume snapshot (the upstream's listing), then ready.
            first = next_change(sub)
            assert (first.key, first.version, first.kind) == (old.key, old.version, "current")
            assert next_change_or_ready(sub) and sub.ready and first.epoch == sub.epoch
            # Changes written at the upstream by someone else, and through the tier, arrive
            # with the upstream's versions and kinds, in commit order per key.
            ref = direct.put_object("app/s", "v1")
            ref2 = direct.patch_object(ref, "d")
            mine = via_tier.put_object("app/t", "through the tier")
            direct.delete_objects(ref.key)
            seen = [next_change(sub) for _ in range(4)]
            assert [(c.key, c.version, c.kind) for c in seen] == [
                (ref.key, ref.version, "put"), (ref.key, ref2.version, "patch"),
                (mine.key, mine.version, "put"), (ref.key, ref2.version, "delete")]
            assert {c.epoch for c in seen} == {sub.epoch}  # the upstream's data set
            sub.close()
        finally:
            fc.close()
        # The SDK's wait_for_change through the tier.
        ref = via_tier.put_object("app/s", "x")
        newer = direct.update_object(ObjectRef(upstream.endpoint, ref.key, ref.version), "y")
        got = via_tier.wait_for_change(ObjectRef(tier.endpoint, ref.key, ref.version), timeout=30)
        assert got is not None and got.version == newer.version


def test_tier_watchers_resync_when_the_upstream_restarts(tmp_path: Path) -> None:
    store = tmp_path / "store"
    up = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", f"fs://{store}"])
    port = up.endpoint.rsplit(":", 1)[1]
    tier = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--upstream", up.endpoint])
    try:
        with Client(tier.endpoint) as c:
            ref = c.put_object("app/s", "v1")
            fc = flight.connect(tier.endpoint)
            sub = _watch.Subscription(fc, ["app/*"], snapshot=True, timeout=120)
            assert next_change(sub).version == ref.version
            up.stop()
            # The tier's subscription at the upstream ended: its watchers are told to resync.
            with pytest.raises(foc.WatchDropped):
                while True:
                    sub.next_event()
            fc.close()
            up = ServerProcess(["--endpoint", f"grpc://127.0.0.1:{port}", "--storage", f"fs://{store}"])
            # Resuming at the tier from the version held works again once the upstream is back.
            w = c.watch("app/*", since={ref.key: ref.version})
            try:
                with Client(up.endpoint) as direct:
                    newer = direct.update_object(ObjectRef(up.endpoint, ref.key, ref.version), "v2")
                change = next(iter(w))
                assert (change.key, change.version) == (ref.key, newer.version)
            finally:
                w.close()
    finally:
        tier.stop()
        up.stop()


# --- upstream credentials ----------------------------------------------------------------------


def test_tier_dials_an_upstream_with_auth_using_its_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "identities:\n"
        f"  - name: tier\n    token_sha256: {hashlib.sha256(b'tier-secret').hexdigest()}\n"
        "    grants: {'*': admin}\n")
    up_cfg = tmp_path / "upstream.yaml"
    up_cfg.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n"
                      f"  auth:\n    tokens_file: {tokens}\n    anonymous: none\n")
    up = ServerProcess(["-c", str(up_cfg)])
    token_file = tmp_path / "upstream.token"
    token_file.write_text("tier-secret\n")
    with_token = tmp_path / "tier.yaml"
    with_token.write_text(f"cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n"
                          f"  upstream: {up.endpoint}\n  upstream_token_file: {token_file}\n")
    tier = ServerProcess(["-c", str(with_token)])
    anonymous = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--upstream", up.endpoint])
    try:
        with Client(tier.endpoint) as c:
            ref = c.put_object("app/s", "through an authenticated tier")
            assert c.get_object(ObjectRef(tier.endpoint, ref.key, 0)) == "through an authenticated tier"
            w = c.watch("app/*", since={ref.key: 0})
            try:
                assert next(iter(w)).version == ref.version
            finally:
                w.close()
        with Client(up.endpoint, token="tier-secret") as direct:
            assert direct.get_object(ObjectRef(up.endpoint, ref.key, 0)) == "through an authenticated tier"
        # The same tier without a token is refused by the upstream, and says so.
        with Client(anonymous.endpoint) as c, pytest.raises(foc.CacheAuthError):
            c.put_object("app/s", "no token")
    finally:
        for p in (anonymous, tier, up):
            p.stop()


def test_tier_dials_a_tls_upstream_with_a_private_ca_and_client_certificate(tmp_path: Path, pki: Pki) -> None:
    up = ServerProcess(["-c", str(tls_config(tmp_path, pki, mtls=True))])
    cfg = tmp_path / "tier.yaml"
    cfg.write_text(f"cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n  upstream: {up.endpoint}\n"
                   f"  upstream_ca_file: {pki.ca}\n  upstream_cert_file: {pki.path('client.crt')}\n"
                   f"  upstream_key_file: {pki.path('client.key')}\n")
    tier = ServerProcess(["-c", str(cfg)])
    # Without the private CA the tier cannot verify the upstream: UNAVAILABLE.
    no_ca = tmp_path / "no-ca.yaml"
    no_ca.write_text(f"cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n  upstream: {up.endpoint}\n")
    blind = ServerProcess(["-c", str(no_ca)])
    try:
        with Client(tier.endpoint) as c:
            ref = c.put_object("app/s", "over mTLS")
            assert c.get_object(ObjectRef(tier.endpoint, ref.key, 0)) == "over mTLS"
        assert tls_stored_keys(up, pki) == [ref.key]
        with Client(blind.endpoint, retries=0) as c, pytest.raises(foc.CacheUnavailable):
            c.put_object("app/s", "unverified")
    finally:
        for p in (blind, tier, up):
            p.stop()


def test_upstream_credentials_are_checked_at_start(tmp_path: Path) -> None:
    def check(yaml: str) -> subprocess.CompletedProcess[str]:
        cfg = tmp_path / "c.yaml"
        cfg.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n" + yaml)
        return subprocess.run([str(BINARY), "--check-config", "-c", str(cfg)], capture_output=True,
                              text=True, env=hermetic_env(None), timeout=60)

    ok = check("  upstream: grpcs://10.0.0.5:9090\n  upstream_ca_file: /etc/ca.pem\n"
               "  upstream_token_file: /etc/t\n")
    assert ok.returncode == 0 and "upstream_ca_file: /etc/ca.pem" in ok.stdout, ok.stderr
    bad = check("  upstream_token_file: /etc/t\n")
    assert bad.returncode != 0 and "need cache.upstream" in bad.stderr
    bad = check("  upstream: grpc://10.0.0.5:9090\n  upstream_ca_file: /etc/ca.pem\n")
    assert bad.returncode != 0 and "need a TLS upstream" in bad.stderr
    bad = check("  upstream: grpcs://10.0.0.5:9090\n  upstream_cert_file: /etc/c.pem\n")
    assert bad.returncode != 0 and "both required" in bad.stderr
    # A token file that cannot be read stops the tier at start, naming the key.
    missing = tmp_path / "missing.yaml"
    missing.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n"
                       f"  upstream: grpc://127.0.0.1:1\n  upstream_token_file: {tmp_path}/nope\n")
    run = subprocess.run([str(BINARY), "-c", str(missing)], capture_output=True, text=True,
                         env=hermetic_env(None), timeout=60)
    assert run.returncode != 0 and "cache.upstream_token_file" in run.stdout + run.stderr


def test_config_names_the_upstream(upstream: ServerProcess) -> None:
    ok = subprocess.run([str(BINARY), "--check-config", "--upstream", upstream.endpoint],
                        capture_output=True, text=True, env=hermetic_env(None), timeout=60)
    assert ok.returncode == 0 and f"upstream: {upstream.endpoint}" in ok.stdout
    bad = subprocess.run([str(BINARY), "--check-config"], capture_output=True, text=True, timeout=60,
                         env=hermetic_env({"FLAME_CACHE_UPSTREAM": "ftp://nowhere"}))
    assert bad.returncode != 0 and "FLAME_CACHE_UPSTREAM" in bad.stderr


def wait_for_version(endpoint: str, key: str, version: int, what: str) -> None:
    """Waits (bounded, never timed) until `endpoint` serves `key` at `version`."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if raw_get(endpoint, key, 0)[1] == version:
                return
        except flight.FlightUnavailableError:  # a tier reconnecting to its upstream
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def retry_unavailable(what: str, call):
    """`call()`, again while it fails UNAVAILABLE (bounded): after the upstream restarts, a
    tier's channel to it is in gRPC's reconnect backoff for up to a few seconds and the tier
    answers UNAVAILABLE (retry), as while the upstream is away (see
    test_an_unreachable_upstream_is_unavailable)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return call()
        except flight.FlightUnavailableError:
            assert time.monotonic() < deadline, what
            time.sleep(0.1)


def test_flamepy_through_one_tier_is_read_through_another_across_restarts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11's scenario: two node tiers in front of one upstream. flamepy 0.6.0 writes and
    patches through tier A; tier B's clients get each new version (pushed by the upstream's
    WATCH; waited for, not timed). After the upstream restarts (disk storage, same port) and
    after tier B restarts, B still serves the latest version and new writes through A still
    reach it."""
    import flamepy.core.cache as fc
    from compat.conftest import reset_flamepy
    from conftest import free_loopback_port

    def collect(base, deltas):  # flamepy's deserializer hook: base and deltas as they are
        return base, list(deltas)

    upstream_args = ["--endpoint", f"grpc://127.0.0.1:{free_loopback_port()}",
                     "--storage", str(tmp_path / "upstream"), "--metrics-port", "0"]
    upstream = ServerProcess(upstream_args)
    tier_args = ["--endpoint", "grpc://127.0.0.1:0", "--upstream", upstream.endpoint]
    a, b = ServerProcess(tier_args), ServerProcess(tier_args)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", a.endpoint)
    reset_flamepy()
    try:
        ref = fc.put_object("rl/policy", {"weights": 0})
        assert ref.endpoint == a.endpoint
        wait_for_version(b.endpoint, ref.key, ref.version, "tier B never served the put")
        for i in range(1, 4):
            ref = fc.patch_object(ref, {"step": i})
            wait_for_version(b.endpoint, ref.key, ref.version, f"tier B never served patch {i}")
        at_b = fc.ObjectRef(endpoint=b.endpoint, key=ref.key, version=0)
        expected = ({"weights": 0}, [{"step": i} for i in range(1, 4)])
        assert fc.get_object(at_b, collect) == expected

        # The upstream restarts on the same address, with its disk store.
        upstream.stop()
        upstream = ServerProcess(upstream_args)
        reset_flamepy()
        got = retry_unavailable("tier B never reached the restarted upstream",
                                lambda: fc.get_object(at_b, collect))
        assert got == expected
        # Only a refused connection is retried: a patch that reached the upstream would show
        # as a duplicate delta below.
        at_a = fc.ObjectRef(endpoint=a.endpoint, key=ref.key, version=ref.version)
        ref = retry_unavailable("tier A never reached the restarted upstream",
                                lambda: fc.patch_object(at_a, {"step": 4}))
        wait_for_version(b.endpoint, ref.key, ref.version,
                         "after the upstream restarted, tier B never served the new patch")

        # Tier B restarts (empty: it refills from the upstream).
        b.stop()
        b = ServerProcess(["--endpoint", b.endpoint, "--upstream", upstream.endpoint])
        reset_flamepy()
        assert fc.get_object(fc.ObjectRef(endpoint=b.endpoint, key=ref.key, version=0), collect) == (
            {"weights": 0}, [{"step": i} for i in range(1, 5)])
        ref = fc.patch_object(fc.ObjectRef(endpoint=a.endpoint, key=ref.key, version=ref.version),
                              {"step": 5})
        wait_for_version(b.endpoint, ref.key, ref.version,
                         "after tier B restarted, it never served the new patch")
    finally:
        reset_flamepy()
        for proc in (a, b, upstream):
            proc.stop()
