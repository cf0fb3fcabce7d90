"""The server serves a storage directory written the way upstream (Rust, ZSTD) and pyarrow
write it: deltas, upstream's version-0 deltas, several-row bases, a native table; a foreign
and a corrupt file are quarantined while the rest is served."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc

from conftest import ServerProcess
from flight_wire import get, patch, put, rows


def write_file(path: Path, version_rows: list[tuple[int, bytes | None]], *, zstd: bool,
               nullable: bool, large: bool = False) -> None:
    schema = pa.schema([pa.field("version", pa.uint64(), nullable),
                        pa.field("data", pa.large_binary() if large else pa.binary(), nullable)])
    batch = pa.record_batch([pa.array([v for v, _ in version_rows], pa.uint64()),
                             pa.array([d for _, d in version_rows], schema.field("data").type)],
                            schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = ipc.IpcWriteOptions(compression="zstd" if zstd else None)
    with ipc.new_file(str(path), schema, options=options) as writer:
        writer.write_batch(batch)


def make_store(root: Path) -> None:
    s = root / "app" / "ssn"
    # Upstream (Rust server, bc3a462a era): ZSTD, non-nullable, deltas carrying version 0.
    write_file(s / "legacy.arrow", [(1, b"legacy-base")], zstd=True, nullable=False)
    write_file(s / "legacy.deltas" / "0.arrow", [(0, b"-p0")], zstd=True, nullable=False)
    write_file(s / "legacy.deltas" / "1.arrow", [(0, b"-p1")], zstd=True, nullable=False)
    # Upstream HEAD: server versions in the deltas.
    write_file(s / "head.arrow", [(4, b"head-base")], zstd=True, nullable=False)
    write_file(s / "head.deltas" / "0.arrow", [(5, b"-d5")], zstd=True, nullable=False)
    # pyarrow: uncompressed, nullable, large_binary, several rows.
    write_file(s / "rows.arrow", [(7, b"ab"), (7, None), (7, b"cd")], zstd=False, nullable=True,
               large=True)
    # A native table, as flamepy's local-storage mode writes it.
    table = pa.table({"x": [1, 2, 3], "s": ["a", "b", "c"]}).replace_schema_metadata(
        {"flame.cache.format": "arrow-table-v1", "flame.cache.version": "2",
         "flame.cache.logical_type": "pyarrow.table"})
    (root / "app" / "tables").mkdir(parents=True)
    with ipc.new_file(str(root / "app" / "tables" / "t.arrow"), table.schema,
                      options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    # A corrupt base. (A foreign file such as notes.txt would make the server refuse the
    # unmarked directory and leave it untouched: test_storage_safety.py.)
    (s / "broken.arrow").write_bytes(b"ARROW1 and then garbage")


def test_server_serves_an_upstream_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    make_store(root)
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", str(root)])
    try:
        client = flight.connect(server.endpoint)
        assert rows(get(client, "app/ssn/legacy")) == [
            (1, "base", b"legacy-base"), (2, "patch", b"-p0"), (3, "patch", b"-p1")]
        assert rows(get(client, "app/ssn/legacy", 2)) == [(3, "patch", b"-p1")]
        assert get(client, "app/ssn/legacy", 3).num_rows == 0  # not modified
        assert rows(get(client, "app/ssn/head")) == [(4, "base", b"head-base"), (5, "patch", b"-d5")]
        assert rows(get(client, "app/ssn/rows")) == [(7, "base", b"abcd")]
        native = get(client, "app/tables/t")
        assert native.column("x").to_pylist() == [1, 2, 3]
        assert native.schema.metadata[b"flame.cache.version"] == b"2"
        listed = {f.descriptor.path[0].decode() for f in client.list_flights()}
        assert {"app/ssn/legacy", "app/ssn/head", "app/ssn/rows", "app/tables/t"} <= listed
        assert "app/ssn/broken" not in listed
        # Writes continue the stored versions.
        assert patch(client, "app/ssn/legacy", b"-p2")["version"] == 4
        assert put(client, "app/ssn/head", b"new")["version"] == 6
        client.close()
    finally:
        server.stop()
    log = "".join(server.output)
    assert "quarantined" in log and "broken.arrow" in log
    assert not (root / "app" / "ssn" / "broken.arrow").exists()
    assert list((root / ".flame-cache" / "quarantine").rglob("broken.arrow"))
    # The replaced object's deltas are gone; the patched one has a new delta file in place.
    assert not (root / "app" / "ssn" / "head.deltas").exists()
    assert (root / "app" / "ssn" / "legacy.deltas" / "2.arrow").exists()

    # And everything is still there after a restart.
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", str(root)])
    try:
        client = flight.connect(server.endpoint)
        assert rows(get(client, "app/ssn/legacy"))[-1] == (4, "patch", b"-p2")
        assert rows(get(client, "app/ssn/head")) == [(6, "base", b"new")]
        client.close()
    finally:
        server.stop()
