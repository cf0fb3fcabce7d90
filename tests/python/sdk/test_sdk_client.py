"""The Client against the real server: every call, and the client-side cache's paths."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from conftest import ServerProcess
from sdk_support import client, flame_env, silent_port  # noqa: F401 - fixtures

import flame_object_cache as foc
from flame_object_cache import Client, ObjectRef


def raw_get(endpoint: str, key: str, version: int) -> pa.Table:
    """What the server answers to a ticket, read with plain pyarrow (server-side evidence)."""
    client = flight.connect(endpoint)
    try:
        return client.do_get(flight.Ticket(f"{key}:{version}".encode())).read_all()
    finally:
        client.close()


VALUES: list[Any] = [
    {"a": 1, "nested": {"b": [1, 2, 3]}},
    [1, "two", None],
    "hello",
    42,
    None,
    b"\x00\x01bytes",
    np.arange(100, dtype=np.float64).reshape(10, 10),
    np.array([True, False]),
    np.array(["x", "yz"]),
    pa.array([1, 2, 3]),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_put_get_round_trip(client: Client, value: Any) -> None:
    ref = client.put_object("app/s1", value)
    assert ref.key.startswith("app/s1/") and ref.version == 1
    assert ref.endpoint == client.endpoint
    got = client.get_object(ref)
    if isinstance(value, np.ndarray):
        assert got.dtype == value.dtype and np.array_equal(got, value)
    elif isinstance(value, pa.Array):
        assert got.equals(value)
    else:
        assert got == value


def test_native_tables_round_trip(client: Client) -> None:
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    got = client.get_object(client.put_object("app/native", table))
    assert isinstance(got, pa.Table) and got.equals(table)
    assert not any(k.startswith(b"flame.cache.") for k in (got.schema.metadata or {}))
    batch = pa.record_batch({"a": [1.0]})
    got = client.get_object(client.put_object("app/native", batch))
    assert isinstance(got, pa.RecordBatch) and got.equals(batch)
    df = pd.DataFrame({"a": [1, 2], "b": ["p", "q"]})
    got = client.get_object(client.put_object("app/native", df))
    assert isinstance(got, pd.DataFrame) and got.equals(df)
    pdf = pl.DataFrame({"a": [1, 2], "b": ["p", "q"]})
    got = client.get_object(client.put_object("app/native", pdf))
    assert isinstance(got, pl.DataFrame) and got.equals(pdf)
    assert client.get_object(client.put_object("app/native", df), lambda b, d: (type(b), d)) == (pd.DataFrame, [])
    # native replies carry the version, so the second get is a not-modified hit
    ref = client.put_object("app/native", table)
    client.get_object(ref)
    before = client.cache_stats()
    assert client.get_object(ref).equals(table)
    after = client.cache_stats()
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]


def test_update_replaces_and_keeps_key(client: Client) -> None:
    ref = client.put_object("app/s", {"v": 1})
    assert client.get_object(ref) == {"v": 1}
    new = client.update_object(ref, {"v": 2})
    assert (new.key, new.endpoint, new.version) == (ref.key, ref.endpoint, 2)
    assert client.get_object(ref) == {"v": 2}  # the old ref reads the current object
    table = pa.table({"c": [1]})
    new = client.update_object(new, table)
    assert new.version == 3 and client.get_object(new).equals(table)


def test_patch_and_deserializer(client: Client) -> None:
    ref = client.put_object("app/s", [1])
    for i in range(2, 6):
        ref = client.patch_object(ref, [i])
        assert ref.version == i
    assert client.get_object(ref) == [1]  # without a deserializer: the base (flamepy's rule)
    merged = client.get_object(ref, lambda base, deltas: base + [x for d in deltas for x in d])
    assert merged == [1, 2, 3, 4, 5]
    ref = client.update_object(ref, [9])
    assert client.get_object(ref, lambda b, d: (b, d)) == ([9], [])


def test_delete_and_not_found(client: Client) -> None:
    refs = [client.put_object("delapp/s1", i) for i in range(3)] + [client.put_object("delapp/s2", 9)]
    other = client.put_object("delapp2/s1", "keep")
    for r in refs:
        client.get_object(r)
    client.delete_objects(refs[0].key)
    with pytest.raises(foc.ObjectNotFound) as exc:
        client.get_object(refs[0])
    assert isinstance(exc.value, KeyError)
    assert client.get_object(refs[1]) == 1
    client.delete_objects("delapp/s1")
    with pytest.raises(KeyError):
        client.get_object(refs[2])
    assert client.get_object(refs[3]) == 9
    client.delete_objects("delapp/*")
    with pytest.raises(foc.ObjectNotFound):
        client.get_object(refs[3])
    assert client.get_object(other) == "keep"
    client.delete_objects("nothing/here")  # deleting nothing succeeds
    assert client.cache_stats()["entries"] == 1


def test_errors(client: Client) -> None:
    ghost = ObjectRef(client.endpoint, "app/s/does-not-exist", 1)
    with pytest.raises(foc.ObjectNotFound):
        client.get_object(ghost)
    with pytest.raises(foc.ObjectNotFound):
        client.patch_object(ghost, 1)
    for bad in ("app", "app/s/x/y", "app/*", "a/../b"):
        with pytest.raises(ValueError):
            client.put_object(bad, 1)
    with pytest.raises(ValueError):
        client.get_object(ObjectRef(client.endpoint, "app/s", 1))
    with pytest.raises(ValueError):
        client.delete_objects("app")
    table_ref = client.put_object("app/s", pa.table({"a": [1]}))
    with pytest.raises(foc.CacheError):  # our server refuses deltas on native tables
        client.patch_object(table_ref, 1)


# -- the client-side cache -------------------------------------------------------------------


def test_unchanged_object_is_not_transferred(client: Client, server: ServerProcess) -> None:
    payload = np.random.default_rng(1).random(1 << 19)  # 4 MiB
    ref = client.put_object("app/big", payload)
    assert np.array_equal(client.get_object(ref), payload)
    s1 = client.cache_stats()
    assert s1["misses"] == 1 and s1["bytes_received"] >= payload.nbytes
    for _ in range(5):
        assert np.array_equal(client.get_object(ref), payload)
    s2 = client.cache_stats()
    assert s2["hits"] == 5 and s2["requests"] == s1["requests"] + 5
    assert s2["bytes_received"] == s1["bytes_received"]  # five round trips, zero payload bytes
    # server-side evidence: the ticket our client sends gets a zero-row reply
    assert raw_get(server.endpoint, ref.key, 1).num_rows == 0
    assert raw_get(server.endpoint, ref.key, 0).num_rows == 1


def test_patch_only_reply_is_applied_incrementally(server: ServerProcess) -> None:
    reader, writer = Client(server.endpoint), Client(server.endpoint)
    base = list(range(1 << 18))  # ~1 MiB pickled
    ref = writer.put_object("app/p", base)
    assert reader.get_object(ref) == base
    full_bytes = reader.cache_stats()["bytes_received"]
    ref = writer.patch_object(ref, [-1])  # another client: no local invalidation in `reader`
    ref = writer.patch_object(ref, [-2])
    assert raw_get(server.endpoint, ref.key, 1)["kind"].to_pylist() == ["patch", "patch"]
    merged = reader.get_object(ref, lambda b, ds: b + [x for d in ds for x in d])
    assert merged == base + [-1, -2]
    s = reader.cache_stats()
    assert s["patched"] == 1 and s["misses"] == 1
    assert s["bytes_received"] - full_bytes < 4096  # only the two deltas crossed the wire
    ref = writer.patch_object(ref, [-3])
    assert reader.get_object(ref, lambda b, ds: len(ds)) == 3
    assert reader.cache_stats()["patched"] == 2
    # a replacement by another client arrives as a full reply
    writer.update_object(ref, ["new"])
    assert reader.get_object(ref) == ["new"]
    assert reader.cache_stats()["misses"] == 2


def test_version_zero_bypasses_cache(client: Client) -> None:
    ref = client.put_object("app/v0", {"x": 1})
    client.get_object(ref)
    client.get_object(ref)
    s = client.cache_stats()
    assert (s["hits"], s["misses"]) == (1, 1)
    zero = ObjectRef(ref.endpoint, ref.key, 0)
    assert client.get_object(zero) == {"x": 1}
    s2 = client.cache_stats()
    assert s2["misses"] == 2 and s2["hits"] == 1
    assert s2["bytes_received"] > s["bytes_received"]


def test_local_writes_invalidate(client: Client) -> None:
    ref = client.put_object("app/inv", 1)
    client.get_object(ref)
    assert client.cache_stats()["entries"] == 1
    client.update_object(ref, 2)
    assert client.cache_stats()["entries"] == 0
    assert client.get_object(ref) == 2
    client.patch_object(ref, 3)
    assert client.cache_stats()["entries"] == 0
    assert client.get_object(ref, lambda b, d: [b, *d]) == [2, 3]
    client.delete_objects("app/inv")
    assert client.cache_stats()["entries"] == 0


def test_byte_and_entry_bounds(server: ServerProcess) -> None:
    mib = 1 << 20
    c = Client(server.endpoint, cache_max_bytes=3 * mib + mib // 2)
    refs = [c.put_object("app/bound", np.full(mib // 8, i, dtype=np.float64)) for i in range(6)]
    for ref in refs:
        c.get_object(ref)
        assert c.cache_stats()["bytes"] <= 3 * mib + mib // 2
    s = c.cache_stats()
    assert s["entries"] == 3 and s["evictions"] == 3
    # the most recently used survive: a get of refs[5] is a hit, refs[0] a miss
    c.get_object(refs[5])
    assert c.cache_stats()["hits"] == 1
    c.get_object(refs[0])
    assert c.cache_stats()["misses"] == 7
    # an object larger than the whole cache is returned but not kept
    huge = c.put_object("app/bound", np.zeros(mib, dtype=np.float64))  # 8 MiB
    assert c.get_object(huge).shape == (mib,)
    assert c.cache_stats()["bytes"] <= 3 * mib + mib // 2
    c2 = Client(server.endpoint, cache_max_entries=2)
    for ref in refs:
        c2.get_object(ref)
    assert c2.cache_stats()["entries"] == 2


def test_deserializer_on_hit_is_memoised_and_cannot_be_corrupted(client: Client) -> None:
    calls = []

    def merge(base: dict[str, Any], deltas: list[dict[str, Any]]) -> dict[str, Any]:
        calls.append(1)
        for d in deltas:
            base.update(d)  # mutates its input, as real deserializers do
        return base

    ref = client.put_object("app/memo", {"a": 1})
    ref = client.patch_object(ref, {"b": 2})
    first = client.get_object(ref, merge)
    assert first == {"a": 1, "b": 2} and len(calls) == 1
    first["evil"] = True  # the caller owns what it got
    second = client.get_object(ref, merge)
    assert second == {"a": 1, "b": 2}
    assert len(calls) == 1  # served from the memo on a not-modified hit
    assert client.cache_stats()["hits"] == 1
    assert client.get_object(ref) == {"a": 1}  # the base was not changed by merge()
    second["evil"] = 1
    assert client.get_object(ref, merge) == {"a": 1, "b": 2}
    # a new delta invalidates the memo; the deserializer sees fresh inputs again
    client.patch_object(ref, {"c": 3})
    assert client.get_object(ref, merge) == {"a": 1, "b": 2, "c": 3}
    assert len(calls) == 2
    # unhashable callables work (memoised by identity)

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, base: Any, deltas: list[Any]) -> int:
            return len(deltas)

    fn = Unhashable()
    assert client.get_object(ref, fn) == 2
    assert client.get_object(ref, fn) == 2


def test_incremental_deserializer_sees_only_new_deltas(server: ServerProcess) -> None:
    seen: list[int] = []

    def append(state: list[int], deltas: list[list[int]]) -> list[int]:
        seen.append(len(deltas))
        for d in deltas:
            state.extend(d)  # mutates the state it is given
        return state

    writer, reader = Client(server.endpoint), Client(server.endpoint)
    ref = writer.put_object("app/inc", [0])
    for i in range(1, 6):
        ref = writer.patch_object(ref, [i])
    fold = foc.Incremental(append)
    got = reader.get_object(ref, fold)
    assert got == [0, 1, 2, 3, 4, 5] and seen == [5]
    got.append(99)  # the caller's copy
    assert reader.get_object(ref, foc.Incremental(append)) == [0, 1, 2, 3, 4, 5]  # memo hit
    assert seen == [5]
    for i in range(6, 8):
        ref = writer.patch_object(ref, [i])
    assert reader.get_object(ref, fold) == list(range(8))
    assert seen == [5, 2]  # only the two new deltas were folded in
    assert reader.cache_stats()["patched"] == 1
    assert reader.get_object(ref, lambda b, ds: b + [x for d in ds for x in d]) == list(range(8))
    writer.update_object(ref, [42])
    assert reader.get_object(ref, fold) == [42] and seen == [5, 2, 0]


def test_memo_is_bounded(client: Client) -> None:
    ref = client.put_object("app/memo2", [0])
    for i in range(50):  # a fresh lambda per call: upstream's memo grows without bound
        assert client.get_object(ref, lambda b, d, i=i: b + [i]) == [0, i]
    from flame_object_cache._cache import MEMO_PER_ENTRY

    entry = client._cache.get((ref.endpoint, ref.key))
    assert entry is not None and len(entry.memo) <= MEMO_PER_ENTRY
    assert client.cache_stats()["bytes"] == entry.charge


def test_mutating_returned_values_does_not_leak(client: Client) -> None:
    ref = client.put_object("app/mut", {"list": [1, 2]})
    got = client.get_object(ref)
    got["list"].append(3)
    got["new"] = 1
    assert client.get_object(ref) == {"list": [1, 2]}
    tup_ref = client.put_object("app/mut", ("a", [1]))  # a tuple is not immutable if its items are not
    client.get_object(tup_ref)[1].append(2)
    assert client.get_object(tup_ref) == ("a", [1])
    blob_ref = client.put_object("app/mut", b"x" * 1000)
    assert client.get_object(blob_ref) is client.get_object(blob_ref)  # immutable: kept decoded
    arr_ref = client.put_object("app/mut", np.arange(4.0))
    arr = client.get_object(arr_ref)
    with pytest.raises(ValueError):
        arr[0] = 99.0  # numpy arrays come back read-only (shared with the cache, zero-copy)
    writable = client.get_object(arr_ref).copy()
    writable[0] = 99.0
    assert client.get_object(arr_ref)[0] == 0.0
    df_ref = client.put_object("app/mut", pd.DataFrame({"a": [1, 2]}))
    df = client.get_object(df_ref)
    df.loc[0, "a"] = 100
    assert client.get_object(df_ref)["a"].tolist() == [1, 2]


def test_max_staleness(server: ServerProcess) -> None:
    writer = Client(server.endpoint)
    lazy = Client(server.endpoint, max_staleness=60.0)
    ref = writer.put_object("app/stale", 1)
    assert lazy.get_object(ref) == 1
    requests = lazy.cache_stats()["requests"]
    writer.update_object(ref, 2)
    assert lazy.get_object(ref) == 1  # allowed: verified less than 60 s ago
    s = lazy.cache_stats()
    assert s["stale_hits"] == 1 and s["requests"] == requests
    lazy.update_object(ref, 3)  # its own write invalidates
    assert lazy.get_object(ref) == 3
    strict = Client(server.endpoint)
    assert strict.get_object(ref) == 3
    writer.update_object(ref, 4)
    assert strict.get_object(ref) == 4


def test_single_flight_one_request_for_sixteen_threads(server: ServerProcess) -> None:
    """16 threads get one key at once: one DoGet. The leader's request is held until the 15
    others are waiting on it, so the test does not depend on timing."""
    release = threading.Event()

    class Gated(Client):
        def _fetch(self, ref: ObjectRef, version: int) -> Any:  # type: ignore[override]
            release.wait(30)
            return super()._fetch(ref, version)

    writer = Client(server.endpoint)
    value = {"blob": b"x" * (1 << 20)}
    ref = writer.put_object("app/sf", value)
    c = Gated(server.endpoint)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(c.get_object(ref))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(16)]
    for t in threads:
        t.start()
    import time

    deadline = time.monotonic() + 30
    while c.cache_stats()["coalesced"] < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(results) == 16 and all(r == value for r in results)
    assert len({id(r) for r in results}) == 16  # every caller got its own copy
    s = c.cache_stats()
    assert s["requests"] == 1 and s["coalesced"] == 15 and s["misses"] == 1


def test_joining_an_older_request_does_not_return_an_older_version(server: ServerProcess) -> None:
    """Thread A's reply (version 1) is held after it arrived; meanwhile the object is updated
    and thread B, holding the new ref (version 2), joins A's request. B must not settle for
    version 1."""
    arrived, release = threading.Event(), threading.Event()
    gate_first = [True]

    class Gated(Client):
        def _fetch(self, ref: ObjectRef, version: int) -> Any:  # type: ignore[override]
            reply = super()._fetch(ref, version)
            if gate_first[0]:
                gate_first[0] = False
                arrived.set()
                release.wait(30)
            return reply

    writer = Client(server.endpoint)
    v1 = writer.put_object("app/join", "one")
    c = Gated(server.endpoint)
    out: dict[str, Any] = {}
    a = threading.Thread(target=lambda: out.__setitem__("a", c.get_object(v1)))
    a.start()
    assert arrived.wait(30)
    v2 = writer.update_object(v1, "two")
    b = threading.Thread(target=lambda: out.__setitem__("b", c.get_object(v2)))
    b.start()
    import time

    deadline = time.monotonic() + 30
    while c.cache_stats()["coalesced"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    a.join(30)
    b.join(30)
    assert out == {"a": "one", "b": "two"}
    assert c.cache_stats()["requests"] == 2


def test_sixteen_threads_with_concurrent_patches(server: ServerProcess) -> None:
    writer = Client(server.endpoint)
    reader = Client(server.endpoint)
    ref = writer.put_object("app/conc", [0])
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[list[int]] = []

    def merge(base: list[int], deltas: list[list[int]]) -> list[int]:
        return base + [x for d in deltas for x in d]

    def read() -> None:
        try:
            last = 0
            while not stop.is_set():
                got = reader.get_object(ref, merge)
                assert got == list(range(len(got))), got  # always a consistent prefix
                assert len(got) >= last  # never goes backwards
                last = len(got)
            seen.append(got)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(16)]
    for t in threads:
        t.start()
    r = ref
    for i in range(1, 41):
        r = writer.patch_object(r, [i])
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    assert reader.get_object(ref, merge) == list(range(41))
    s = reader.cache_stats()
    assert s["patched"] >= 1 and s["misses"] <= s["requests"]


def test_module_functions_use_the_configuration(flame_env: ServerProcess, tmp_path: Any) -> None:
    ref = foc.put_object("mod/s", {"m": 1})
    assert ref.endpoint == flame_env.endpoint
    assert foc.get_object(ref) == {"m": 1}
    ref = foc.patch_object(ref, {"n": 2})
    assert foc.get_object(ref, lambda b, d: [b, *d]) == [{"m": 1}, {"n": 2}]
    ref = foc.update_object(ref, "new")
    assert foc.get_object(ref) == "new"
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc" * 1000)
    up = foc.upload_object("mod/files/f.bin", str(src))
    assert up.key == "mod/files/f.bin"
    foc.download_object(up, str(tmp_path / "out" / "f.bin"))
    assert (tmp_path / "out" / "f.bin").read_bytes() == src.read_bytes()
    assert foc.cache_stats()["entries"] >= 1
    foc.delete_objects("mod/*")
    with pytest.raises(KeyError):
        foc.get_object(ref)
    with pytest.raises(FileNotFoundError):
        foc.upload_object("mod/s", str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        foc.upload_object("mod/*", str(src))


def test_configuration_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".flame").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FLAME_CACHE_ENDPOINT", raising=False)
    monkeypatch.delenv("FLAME_CA_FILE", raising=False)
    assert foc.load_config().endpoint == "grpc://127.0.0.1:9090"
    cfg = home / ".flame" / "flame.yaml"
    cfg.write_text(
        "current-context: c1\ncontexts:\n  - name: c0\n    cache:\n      endpoint: grpc://wrong:1\n"
        "  - name: c1\n    cache:\n      endpoint: grpcs://cache:9090\n      tls:\n        ca_file: /ca.pem\n"
    )
    c = foc.load_config()
    assert (c.endpoint, c.ca_file) == ("grpcs://cache:9090", "/ca.pem")
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", "grpc://env:1")
    monkeypatch.setenv("FLAME_CA_FILE", "/other.pem")
    c = foc.load_config()
    assert (c.endpoint, c.ca_file) == ("grpc://env:1", "/ca.pem")  # env endpoint wins, file CA wins
    cfg.write_text("contexts: []\n")
    with pytest.raises(ValueError):
        foc.load_config()
