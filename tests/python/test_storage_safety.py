"""Storage safety through the real binary: one server per storage directory, foreign
directories refused and left untouched, corrupted bytes never served."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import BINARY, hermetic_env
from flight_wire import get as get_table, patch, put


def get(client: flight.FlightClient, key: str) -> bytes:
    return b"".join(get_table(client, key).column("data").to_pylist())


def run_server_expecting_refusal(storage: Path) -> subprocess.CompletedProcess[str]:
    """Starts the binary on `storage`; it must exit by itself (it refuses to start)."""
    return subprocess.run(
        [str(BINARY), "--endpoint", "grpc://127.0.0.1:0", "--storage", str(storage)],
        capture_output=True,
        text=True,
        timeout=60,
        env=hermetic_env(),
    )


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_second_server_on_the_same_directory_refuses_naming_the_holder(tmp_path: Path, start_server) -> None:
    root = tmp_path / "store"
    first = start_server("--storage", str(root))
    client = flight.connect(first.endpoint)
    put(client, "app/s/o", b"one")

    second = run_server_expecting_refusal(root)
    out = second.stdout + second.stderr
    assert second.returncode != 0, out
    assert str(root) in out and "in use by another flame-object-cache process" in out, out
    assert f"pid {first.proc.pid}" in out, out

    # The first server is unaffected and keeps issuing versions alone.
    assert put(client, "app/s/o", b"two")["version"] == 2
    assert get(client, "app/s/o") == b"two"
    client.close()
    first.stop()
    # The lock dies with its holder (also on SIGKILL: it is a flock, not a pid file).
    again = start_server("--storage", str(root))
    client = flight.connect(again.endpoint)
    assert get(client, "app/s/o") == b"two"
    client.close()


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path, start_server) -> None:
    root = tmp_path / "store"
    first = start_server("--storage", str(root))
    client = flight.connect(first.endpoint)
    put(client, "app/s/o", b"kept")
    client.close()
    first.stop(signal.SIGKILL)
    second = start_server("--storage", str(root))
    client = flight.connect(second.endpoint)
    assert get(client, "app/s/o") == b"kept"
    client.close()


@pytest.mark.parametrize(
    "files",
    [
        {"notes.txt": b"my notes"},
        {"photos/2024/cat.jpg": b"\xff\xd8jpeg", "photos/readme": b"hi"},
        {"projects/src/main.arrow.bak": b"x"},
        # Upstream-shaped but with an operator's file in a session directory: refused as a
        # whole (fix it by hand), not half-quarantined.
        {"app/ssn/o.arrow": b"ARROW1", "app/ssn/notes.txt": b"not an object"},
    ],
)
def test_non_empty_foreign_directory_is_refused_and_left_untouched(tmp_path: Path, files: dict[str, bytes]) -> None:
    root = tmp_path / "home"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    before = tree(root)

    refused = run_server_expecting_refusal(root)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0, out
    assert str(root) in out and "not a flame-object-cache store" in out, out
    assert tree(root) == before  # nothing moved to quarantine, nothing created
    assert not (root / ".flame-cache").exists()


def test_upstream_shaped_directory_without_marker_is_served(tmp_path: Path, start_server) -> None:
    """What upstream (and flamepy's local mode) leave: <app>/<session>/<object>.arrow."""
    root = tmp_path / "upstream"
    (root / "app" / "s").mkdir(parents=True)
    schema = pa.schema([pa.field("version", pa.uint64(), False), pa.field("data", pa.binary(), False)])
    table = pa.table({"version": pa.array([4], pa.uint64()), "data": pa.array([b"upstream"])}, schema=schema)
    with pa.ipc.new_file(str(root / "app" / "s" / "o.arrow"), schema) as w:
        w.write_table(table)
    server = start_server("--storage", str(root))
    client = flight.connect(server.endpoint)
    assert get(client, "app/s/o") == b"upstream"
    client.close()
    assert (root / ".flame-cache").is_dir()  # marked as ours from now on


def flip_byte(path: Path, offset_from_payload: int, payload: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.find(payload)
    assert at >= 0
    data[at + offset_from_payload] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("restart", [False, True])
def test_flipped_payload_bytes_are_never_served(tmp_path: Path, start_server, restart: bool) -> None:
    root = tmp_path / "store"
    # --max-memory small enough that reads go to disk instead of the memory cache.
    args = ("--storage", str(root), "--max-memory", "1K")
    server = start_server(*args)
    client = flight.connect(server.endpoint)
    payload = b"precious-bytes-" * 200
    put(client, "app/s/base", payload)
    put(client, "app/s/other", b"fine" * 300)
    put(client, "app/s/delta", b"b" * 3000)
    delta = b"appended-delta-" * 200
    patch(client, "app/s/delta", delta)
    if restart:
        client.close()
        server.stop()

    flip_byte(root / "app" / "s" / "base.arrow", 100, payload)
    flip_byte(root / "app" / "s" / "delta.deltas" / "0.arrow", 7, delta)

    if restart:
        server = start_server(*args)
        client = flight.connect(server.endpoint)
    for key in ("app/s/base", "app/s/delta"):
        with pytest.raises(pa.ArrowKeyError) as err:  # NOT_FOUND, never the wrong bytes
            get(client, key)
        assert "checksum" in str(err.value) or "not found" in str(err.value), str(err.value)
    assert get(client, "app/s/other") == b"fine" * 300
    quarantined = [p.name for p in (root / ".flame-cache" / "quarantine").rglob("*.arrow")]
    assert "base.arrow" in quarantined and "delta.arrow" in quarantined
    # The key can be written again, above every version it had.
    again = put(client, "app/s/base", b"new")
    assert again["version"] > 1
    assert get(client, "app/s/base") == b"new"
    client.close()


def test_version_overflow_is_refused_not_wrapped(tmp_path: Path, start_server) -> None:
    """A stored version of 2^64-1 (written by another writer): the next write is refused
    with RESOURCE_EXHAUSTED and the object keeps its version, instead of wrapping to 0."""
    root = tmp_path / "store"
    (root / "app" / "s").mkdir(parents=True)
    top = 2**64 - 1
    schema = pa.schema([pa.field("version", pa.uint64(), False), pa.field("data", pa.binary(), False)])
    table = pa.table({"version": pa.array([top], pa.uint64()), "data": pa.array([b"top"])}, schema=schema)
    with pa.ipc.new_file(str(root / "app" / "s" / "o.arrow"), schema) as w:
        w.write_table(table)
    server = start_server("--storage", str(root))
    client = flight.connect(server.endpoint)
    with pytest.raises(flight.FlightError) as err:
        put(client, "app/s/o", b"next")
    assert "largest version" in str(err.value), str(err.value)
    with pytest.raises(flight.FlightError):
        patch(client, "app/s/o", b"+d")
    assert get(client, "app/s/o") == b"top"
    assert get_table(client, "app/s/o").column("version").to_pylist() == [top]
    client.close()
