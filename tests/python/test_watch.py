"""WATCH against the real server binary: the DoExchange protocol with plain pyarrow, and the
SDK on top of it (watch iterator, wait_for_change, the subscribed client cache)."""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.request
from typing import Any, Iterator

import bson
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from bson.int64 import Int64
from conftest import ServerProcess

import flame_object_cache as foc
from flame_object_cache import Client, ObjectRef
from flame_object_cache._watch import Subscription, encode_request


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    c = Client(server.endpoint)
    yield c
    c.close()


def own_connection(endpoint: str) -> flight.FlightClient:
    """A client on a TCP connection of its own (gRPC shares subchannels per process, and the
    server's connection watchdog closes a connection whose stream stalls), whose HTTP/2
    window stays at its initial 64 KiB: gRPC's bandwidth-delay probing otherwise grows it to
    several MiB, so a reader that stops reading is "slow" for the server only after tens of
    thousands of changes, a count that varies from run to run (docs/protocol.md, WATCH,
    message 5). A test that waited for a drop after a fixed number of writes hung that way."""
    return flight.connect(endpoint, generic_options=[("grpc.use_local_subchannel_pool", 1),
                                                     ("grpc.http2.bdp_probe", 0)])


def open_raw(endpoint: str, request: dict[str, Any]) -> tuple[flight.FlightClient, Any, Any]:
    """A raw WATCH call on its own connection (a raw subscriber that stops reading must not
    share its connection with the SDK client of the same test)."""
    fc = own_connection(endpoint)
    writer, reader = fc.do_exchange(flight.FlightDescriptor.for_command(b"WATCH:" + bson.encode(request)))
    return fc, writer, reader


def messages(reader: Any) -> Iterator[dict[str, Any]]:
    """Server messages, heartbeats skipped."""
    while True:
        chunk = reader.read_chunk()
        assert chunk.data is None  # WATCH sends metadata only
        msg = bson.decode(chunk.app_metadata.to_pybytes())
        if msg["type"] != "heartbeat":
            yield msg


def until_ready(it: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for msg in it:
        if msg["type"] == "ready":
            return out
        out.append(msg)
    raise AssertionError("stream ended before ready")


def test_wire_subscriber_sees_every_version_of_a_key_patched_1000_times(server: ServerProcess,
                                                                        client: Client) -> None:
    ref = client.put_object("app/s", "base")
    fc, writer, reader = open_raw(server.endpoint, {
        "patterns": [ref.key], "since": [{"key": ref.key, "version": Int64(ref.version)}]})
    it = messages(reader)
    assert until_ready(it) == []
    epoch = None

    def patch_all() -> None:
        r = ref
        for i in range(1000):
            r = client.patch_object(r, i)

    writer_thread = threading.Thread(target=patch_all)
    writer_thread.start()
    for expected in range(ref.version + 1, ref.version + 1001):
        msg = next(it)
        assert (msg["type"], msg["key"], msg["version"], msg["kind"]) == ("change", ref.key, expected, "patch")
        epoch = epoch or msg["epoch"]
        assert msg["epoch"] == epoch
    writer_thread.join()
    client.delete_objects(ref.key)
    msg = next(it)
    assert (msg["kind"], msg["version"]) == ("delete", ref.version + 1000)
    reader.cancel()
    fc.close()


def test_wire_resume_after_reconnect_reports_what_changed(server: ServerProcess, client: Client) -> None:
    a = client.put_object("app/s", "a")
    b = client.put_object("app/s", "b")
    fc, writer, reader = open_raw(server.endpoint, {"patterns": ["app/s"], "snapshot": True})
    snap = until_ready(messages(reader))
    assert sorted((m["key"], m["version"], m["kind"]) for m in snap) == sorted(
        [(a.key, 1, "current"), (b.key, 1, "current")])
    reader.cancel()
    fc.close()
    # Disconnected: a patched twice, b deleted, c created.
    a2 = client.patch_object(client.patch_object(a, 1), 2)
    client.delete_objects(b.key)
    c = client.put_object("app/s", "c")
    fc, writer, reader = open_raw(server.endpoint, {
        "patterns": ["app/s"], "snapshot": True,
        "since": [{"key": a.key, "version": Int64(1)}, {"key": b.key, "version": Int64(1)}]})
    snap = until_ready(messages(reader))
    assert sorted((m["key"], m["version"], m["kind"]) for m in snap) == sorted(
        [(a.key, a2.version, "current"), (b.key, 1, "delete"), (c.key, 1, "current")])
    reader.cancel()
    fc.close()


def metric(server: ServerProcess, name: str) -> float:
    with urllib.request.urlopen(server.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, text
    return float(m.group(1))


def test_wire_slow_subscriber_is_bounded_and_dropped_with_a_clear_status() -> None:
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--metrics-port", "0"])
    try:
        with Client(server.endpoint) as c:
            fc, writer, reader = open_raw(server.endpoint, {"patterns": ["app/*"], "max_queue": Int64(4)})
            it = messages(reader)
            assert until_ready(it) == []
            fast = c.watch("app/*")
            # The slow subscriber reads nothing; writes go on until the server has dropped it.
            puts = 0
            while metric(server, "foc_watch_dropped_total") < 1:
                assert puts < 200_000, "the slow subscriber was never dropped"
                for _ in range(200):
                    c.put_object(f"app/s{puts % 7}", b"x")
                    puts += 1
            c.put_object("app/t", "after the drop")
            assert next(fast).key.startswith("app/")  # the other subscriber goes on
            fast.close()
            received = 0
            last: dict[str, Any] = {}
            with pytest.raises(flight.FlightUnavailableError, match="RESOURCE_EXHAUSTED: watch subscriber fell behind"):
                for last in it:
                    if last["type"] == "change":
                        received += 1
                    else:
                        assert last["type"] == "resync"
            assert last["type"] == "resync" and "resync" in last["reason"]
            assert received < puts
            fc.close()
            # The SDK reports it as WatchDropped (a CacheUnavailable). Writes go on until the
            # server has dropped it, not for a fixed count (see own_connection); the call's
            # deadline turns a subscriber that is never dropped into a failure, not a hang.
            own = own_connection(server.endpoint)
            sub = Subscription(own, ["app/*"], snapshot=False, max_queue=1, timeout=300)
            assert sub.next_event() is None and sub.ready
            i = 0
            while metric(server, "foc_watch_dropped_total") < 2:
                assert i < 200_000, "the SDK subscriber was never dropped"
                for _ in range(200):
                    c.put_object("app/u", i)
                    i += 1
            with pytest.raises(foc.WatchDropped):
                while True:
                    sub.next_event()
            sub.close()
            own.close()
    finally:
        server.stop()


def test_wire_refuses_bad_requests(server: ServerProcess) -> None:
    fc = flight.connect(server.endpoint)
    for request, text in [({"patterns": []}, "no key pattern"),
                          ({"patterns": ["app/../x"]}, "Invalid"),
                          ({"patterns": ["a/s"], "since": [{"key": "b/s/o", "version": 1}]}, "matches none"),
                          ({"patterns": ["a/*"] * 65}, "at most 64")]:
        writer, reader = fc.do_exchange(flight.FlightDescriptor.for_command(b"WATCH:" + bson.encode(request)))
        with pytest.raises(pa.ArrowInvalid, match=text):
            reader.read_chunk()
    writer, reader = fc.do_exchange(flight.FlightDescriptor.for_path("a/s/o"))
    with pytest.raises(NotImplementedError, match="DoExchange serves only WATCH"):
        reader.read_chunk()
    fc.close()


def test_shutdown_ends_watches_promptly_with_unavailable() -> None:
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--shutdown-grace", "600"])
    try:
        fc, writer, reader = open_raw(server.endpoint, {"patterns": ["app/*"]})
        until_ready(messages(reader))
        # With a 600 s grace period, only ending the watches lets the server exit.
        assert server.stop(signal.SIGTERM, timeout=60) == 0
        with pytest.raises(flight.FlightUnavailableError, match="shutting down"):
            list(messages(reader))
        fc.close()
    finally:
        server.stop()


# -- SDK ---------------------------------------------------------------------------------------


def test_sdk_watch_iterator_sees_puts_patches_and_deletes(server: ServerProcess, client: Client) -> None:
    watch = client.watch("app/s")  # subscribed when it returns
    ref = client.put_object("app/s", "v1")
    ref = client.patch_object(ref, "d")
    client.delete_objects(ref.key)
    client.put_object("other/s", "not watched")
    got = [next(watch) for _ in range(3)]
    assert [(c.key, c.version, c.kind) for c in got] == [
        (ref.key, 1, "put"), (ref.key, 2, "patch"), (ref.key, 2, "delete")]
    assert got[2].deleted and got[0].epoch
    assert watch.versions == {}
    watch.close()


def test_sdk_watch_resumes_with_since(server: ServerProcess, client: Client) -> None:
    ref = client.put_object("app/s", "v1")
    ref2 = client.patch_object(ref, "d")
    watch = client.watch(ref.key, since={ref.key: 1})
    change = next(watch)
    assert (change.key, change.version, change.kind) == (ref.key, ref2.version, "current")
    client.update_object(ref2, "v3")
    change = next(watch)
    assert (change.version, change.kind) == (3, "put")
    assert watch.versions == {ref.key: 3}
    watch.close()


def test_sdk_watch_survives_a_server_restart() -> None:
    first = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"])
    port = first.endpoint.rsplit(":", 1)[1]
    second = None
    try:
        with Client(first.endpoint, retry_backoff=0.02) as c:
            ref = c.put_object("app/s", "v1")
            watch = c.watch("app/s", since={ref.key: 1})
            first.stop()
            second = ServerProcess(["--endpoint", f"grpc://127.0.0.1:{port}", "--storage", "none"])
            # Memory-only restart: the key is gone, which the resume reports as a delete.
            change = next(watch)
            assert (change.key, change.kind) == (ref.key, "delete")
            assert watch.resyncs >= 1
            new = c.put_object("app/s", "fresh")
            change = next(watch)
            assert (change.key, change.version, change.kind) == (new.key, 1, "put")
            watch.close()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_sdk_wait_for_change(server: ServerProcess, client: Client) -> None:
    ref = client.put_object("app/s", "v1")
    assert client.wait_for_change(ref, timeout=0.2) is None  # nothing changes: times out
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(client.wait_for_change(ref, timeout=60)))
    t.start()
    time.sleep(0.1)
    new = client.update_object(ref, "v2")
    t.join(60)
    assert result == [ObjectRef(ref.endpoint, ref.key, new.version)]
    # Already newer than the caller's version: returns at once.
    assert client.wait_for_change(ref, timeout=60) == ObjectRef(ref.endpoint, ref.key, new.version)
    # Version 0 waits for the object to exist.
    later = ObjectRef(ref.endpoint, "app/s/later", 0)
    assert client.wait_for_change(later, timeout=0.2) is None
    client.delete_objects(ref.key)
    with pytest.raises(foc.ObjectNotFound):
        client.wait_for_change(new, timeout=60)


def test_subscribed_cache_answers_hits_without_round_trips(server: ServerProcess, client: Client) -> None:
    writer = Client(server.endpoint)
    try:
        ref = writer.put_object("app/s", {"w": 1})
        sub = client.subscribe_cache("app/*", heartbeat=0.5)
        assert sub.wait_ready(30)
        assert client.get_object(ref) == {"w": 1}
        requests = client.cache_stats()["requests"]
        for _ in range(20):
            assert client.get_object(ref) == {"w": 1}
        stats = client.cache_stats()
        assert stats["requests"] == requests  # zero round trips
        assert stats["watch_hits"] == 20
        # A write elsewhere is pushed: the next gets make one round trip and see it.
        new = writer.update_object(ref, {"w": 2})
        deadline = time.monotonic() + 30
        while client.get_object(ref) != {"w": 2}:
            assert time.monotonic() < deadline, "the pushed change never reached the cache"
            time.sleep(0.01)
        assert client.get_object(new) == {"w": 2}
        requests = client.cache_stats()["requests"]
        client.get_object(ref)
        assert client.cache_stats()["requests"] == requests
        # Without the subscription, every get asks the server again (conditional get).
        sub.close()
        client.get_object(ref)
        assert client.cache_stats()["requests"] == requests + 1
    finally:
        writer.close()


def test_flamepy_writes_are_pushed_to_watchers(server: ServerProcess, client: Client,
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import flamepy.core.cache as fc

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", server.endpoint)
    fc._context_cache = None
    with fc._client_pool_lock:
        fc._client_pool.clear()
    ref = fc.put_object("app/s", {"weights": 0})
    watch = client.watch(ref.key, since={ref.key: ref.version})
    new = fc.update_object(ref, {"weights": 1})
    change = next(watch)
    assert (change.key, change.version) == (ref.key, new.version)
    watch.close()
    fc._context_cache = None
