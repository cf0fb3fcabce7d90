"""Never stale (delete + re-create, memory-only restart), deadlines, retries, file transfers."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ServerProcess
from flamepy.core import cache as fp
from sdk_support import client, port_of, silent_port, start_server  # noqa: F401 - fixtures

import flame_object_cache as foc
from flame_object_cache import Client, ObjectRef


def test_never_stale_after_delete_and_recreate(server: ServerProcess) -> None:
    reader, other = Client(server.endpoint), Client(server.endpoint)
    key = ObjectRef(server.endpoint, "app/s/fixed", 0)
    ref = other.update_object(key, "first")
    ref = other.patch_object(ref, "delta")
    assert reader.get_object(ref, lambda b, d: [b, *d]) == ["first", "delta"]
    other.delete_objects("app/s/fixed")  # by another client: `reader` is not told
    new = other.update_object(key, "second")
    assert new.version > ref.version  # the server never reuses a version for a key
    assert reader.get_object(ref, lambda b, d: [b, *d]) == ["second"]
    assert reader.get_object(ref) == "second"
    assert reader.cache_stats()["entries"] == 1
    other.delete_objects("app/*")
    with pytest.raises(foc.ObjectNotFound):
        reader.get_object(ref)
    assert reader.cache_stats()["entries"] == 0  # a NOT_FOUND reply drops the cached copy


def test_never_stale_after_memory_only_restart() -> None:
    first = start_server()
    port = port_of(first.endpoint)
    second: ServerProcess | None = None
    try:
        endpoint = first.endpoint
        key = ObjectRef(endpoint, "app/s/fixed", 0)
        reader = Client(endpoint)
        ref = Client(endpoint).update_object(key, "before restart")
        assert ref.version == 1
        assert reader.get_object(ref) == "before restart"
        assert reader.get_object(ref) == "before restart"
        fp_ref = fp.ObjectRef(ref.endpoint, ref.key, ref.version)
        assert fp.get_object(fp_ref) == "before restart"
        first.stop()

        second = start_server(port)
        assert second.endpoint == endpoint
        again = Client(endpoint).update_object(key, "after restart")
        assert (again.key, again.version) == (ref.key, ref.version)  # same key, same version
        # The server answers `<key>:1` with "not modified"; only the epoch tells them apart.
        assert reader.get_object(ref) == "after restart"
        stats = reader.cache_stats()
        assert stats["epoch_changes"] == 1 and stats["hits"] == 1
        assert reader.get_object(ref) == "after restart"
        # flamepy 0.6.0, with the same cached state, returns the old object: the hazard is real.
        fp._client_pool.clear()  # (a fresh channel, so gRPC reconnect backoff does not interfere)
        assert fp.get_object(fp_ref) == "before restart"
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_deadline_against_a_server_that_never_answers(silent_port: int) -> None:
    endpoint = f"grpc://127.0.0.1:{silent_port}"
    c = Client(endpoint, timeout=1.0, retries=0, transfer_timeout=1.0)
    ref = ObjectRef(endpoint, "app/s/o", 1)
    calls = [
        lambda: c.get_object(ref),
        lambda: c.put_object("app/s", 1),
        lambda: c.update_object(ref, 1),
        lambda: c.patch_object(ref, 1),
        lambda: c.delete_objects("app/s"),
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(foc.CacheTimeout) as exc:
            call()
        assert isinstance(exc.value, TimeoutError)
        assert time.monotonic() - start < 5


def test_unavailable_is_retried_for_idempotent_calls(server: ServerProcess) -> None:
    endpoint = server.endpoint
    port = port_of(endpoint)
    server.stop()
    with pytest.raises(foc.CacheUnavailable):
        Client(endpoint, retries=0).delete_objects("app/s")
    with pytest.raises(foc.CacheUnavailable):
        Client(endpoint, retries=8, retry_backoff=0.05).put_object("app/s", 1)  # never retried
    started: list[ServerProcess] = []

    def start_later() -> None:
        time.sleep(0.5)
        started.append(start_server(port))

    t = threading.Thread(target=start_later)
    t.start()
    try:
        c = Client(endpoint, retries=8, retry_backoff=0.1)
        c.delete_objects("app/s")  # fails until the server is back, then succeeds
        t.join()
        ref = c.put_object("app/s", "back")
        assert c.get_object(ref) == "back"
        # a get is retried too: during the outage it keeps trying, and reaches the restarted
        # (memory-only, so empty) server: NOT_FOUND, not UNAVAILABLE
        started.pop().stop()
        with pytest.raises(foc.CacheUnavailable):
            Client(endpoint, retries=0).get_object(ref)
        t = threading.Thread(target=start_later)
        t.start()
        with pytest.raises(foc.ObjectNotFound):
            c.get_object(ref)
        t.join()
        assert c.cache_stats()["entries"] == 0
        Client(endpoint).update_object(ObjectRef(endpoint, ref.key, 0), "rewritten")
        assert c.get_object(ref) == "rewritten"
    finally:
        t.join()
        for s in started:
            s.stop()


# -- files ------------------------------------------------------------------------------------


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_download_multi_mib(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(5 * (1 << 20) + 17))
    ref = client.upload_object("app/files", str(src), progress=True)
    assert ref.key.startswith("app/files/") and ref.version == 1
    dest = tmp_path / "deep" / "er" / "model.bin"
    client.download_object(ref, str(dest), progress=True)
    assert sha(dest) == sha(src)
    named = client.upload_object("app/files/model.bin", str(src))
    assert named.key == "app/files/model.bin"
    dest.write_bytes(b"old")
    client.download_object(named, str(dest))  # replaces an existing file
    assert sha(dest) == sha(src)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]  # no temp files left


def test_empty_file(client: Client, tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    ref = client.upload_object("app/files/empty", str(src))
    dest = tmp_path / "out"
    client.download_object(ref, str(dest))
    assert dest.read_bytes() == b""


def test_failed_download_leaves_no_partial_file(client: Client, tmp_path: Path) -> None:
    dest = tmp_path / "d" / "file"
    with pytest.raises(foc.ObjectNotFound):
        client.download_object(ObjectRef(client.endpoint, "app/files/missing", 0), str(dest))
    assert list(dest.parent.iterdir()) == []
    dest.write_bytes(b"precious")
    patched = client.patch_object(client.put_object("app/files", b"base"), b"delta")
    with pytest.raises(foc.ProtocolError):
        client.download_object(patched, str(dest))
    table = client.put_object("app/files", pa.table({"a": [1]}))
    with pytest.raises(foc.ProtocolError):
        client.download_object(table, str(dest))
    assert dest.read_bytes() == b"precious"  # untouched: data goes to a temp file first
    assert [p.name for p in dest.parent.iterdir()] == ["file"]


def test_upload_errors(client: Client, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        client.upload_object("app/files", str(tmp_path / "nope"))
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for bad in ("app", "app/*", "a/b/c/d", "app/../x"):
        with pytest.raises(ValueError):
            client.upload_object(bad, str(src))


def test_memory_only_server_limits() -> None:
    """A memory-only server with 3 MiB: a 4 MiB write is refused (CacheFull, not retried as an
    outage); older objects are evicted and reported as such (ObjectNotFound), and the client
    drops its copies of them."""
    server = start_server(0, "--max-memory", str(3 << 20))
    try:
        c = Client(server.endpoint)
        with pytest.raises(foc.CacheFull) as full:
            c.put_object("app/s", os.urandom(4 << 20))
        assert isinstance(full.value, ValueError)
        assert str(full.value).startswith("RESOURCE_EXHAUSTED")
        assert "gRPC client debug context" not in str(full.value)  # pyarrow's decorations removed
        first = c.put_object("app/s", os.urandom(1 << 20))
        c.get_object(first)
        assert c.cache_stats()["entries"] == 1
        for _ in range(4):
            c.put_object("app/s", os.urandom(1 << 20))
        with pytest.raises(foc.ObjectNotFound) as gone:
            c.get_object(first)
        assert "evicted" in str(gone.value)
        assert c.cache_stats()["entries"] == 0
    finally:
        server.stop()
