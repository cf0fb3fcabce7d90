"""Issue 12, holes 1 and 2: no upload can push the server's memory past its limits.

Against the real binary, with raw pyarrow.flight as an attacker would: the resident set and its
high-water mark are read from /proc/<pid>/status. The margins are generous (the point is the
order of magnitude the old server reached: 1.26 GB for hole 1, 4.2 GB for hole 2); precise
figures are in bench/security_memory.py and docs/benchmarks.md.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flight_wire import OPAQUE_SCHEMA, get, put, rows

MiB = 1 << 20
# What the server may use beyond its limits: the binary, Arrow, gRPC's buffers and threads,
# allocator slack. Measured overhead is far below (docs/benchmarks.md).
MARGIN = 400 * MiB


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def refused_for_memory(exc: BaseException) -> bool:
    return "RESOURCE_EXHAUSTED" in str(exc)


def test_extra_columns_cannot_pin_received_messages(start_server):
    """Hole 1: 20 puts whose schema carries a 50 MiB column next to a 1-byte `data` cell used to
    be kept zero-copy (the 1-byte slice pinned the whole message): RSS 1.26 GB with 5 KB charged."""
    server = start_server("--storage", "none", "--max-memory", "64M")
    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary()), ("extra", pa.binary())])
    filler = b"\xab" * (50 * MiB)
    client = flight.connect(server.endpoint)
    for i in range(20):
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(f"app/s/o{i}"), schema)
        writer.write_batch(pa.record_batch(
            [pa.array([0], pa.uint64()), pa.array([b"x"], pa.binary()), pa.array([filler], pa.binary())],
            schema=schema))
        writer.done_writing()
        assert reader.read() is not None
        writer.close()
    rss = proc_status(server.proc.pid)["VmRSS"]
    assert rss < 64 * MiB + MARGIN, f"RSS {rss / MiB:.0f} MiB after 20 x 50 MiB messages"
    for i in range(20):
        assert rows(get(client, f"app/s/o{i}"))[0][2] == b"x"
    client.close()


def upload_rows(client: flight.FlightClient, key: str, row: bytes, count: int) -> BaseException | None:
    """Streams `count` rows of `row` as one upload; returns the error that ended it, if any."""
    batch = pa.record_batch([pa.array([0], pa.uint64()), pa.array([row], pa.binary())],
                            schema=OPAQUE_SCHEMA)
    try:
        writer, reader = client.do_put(flight.FlightDescriptor.for_path(key), OPAQUE_SCHEMA)
        for _ in range(count):
            writer.write_batch(batch)
        writer.done_writing()
        reader.read()
        writer.close()
    except (flight.FlightError, pa.ArrowException, OSError) as exc:
        return exc
    return None


def test_large_upload_is_refused_as_it_arrives(start_server):
    """Hole 2: an upload in 4 MiB rows far above --max-memory used to be buffered whole (2.3 GiB
    peaked at 4.2 GB RSS) before it was refused. Now the running total is admitted batch by batch
    and the upload refused with RESOURCE_EXHAUSTED as soon as it cannot be kept."""
    server = start_server("--storage", "none", "--max-memory", "64M")
    client = flight.connect(server.endpoint)
    put(client, "app/s/keep", b"kept")
    error = upload_rows(client, "app/s/big", b"\x01" * (4 * MiB), 256)  # 1 GiB
    assert error is not None and refused_for_memory(error), error
    peak = proc_status(server.proc.pid)["VmHWM"]
    assert peak < 64 * MiB + MARGIN, f"peak RSS {peak / MiB:.0f} MiB for a refused 1 GiB upload"
    # Nothing was stored, nothing was lost, the server keeps serving.
    assert rows(get(client, "app/s/keep"))[0][2] == b"kept"
    with pytest.raises(KeyError):
        get(client, "app/s/big")
    client.close()


def test_concurrent_uploads_share_one_memory_budget(start_server, tmp_path):
    """Hole 2: four concurrent 1 GiB uploads peaked at 6.1 GB (and left 3.4 GB resident). With
    disk storage, what all uploads in flight hold is bounded by cache.limits.upload_memory."""
    config = tmp_path / "flame-cluster.yaml"
    config.write_text(f"cache:\n  storage: fs://{tmp_path / 'store'}\n  eviction:\n    max_memory: 64M\n"
                      "  limits:\n    upload_memory: 128M\n")
    server = start_server("-c", str(config))
    errors: list[BaseException | None] = [None] * 4

    def upload(i: int) -> None:
        client = flight.connect(server.endpoint)
        errors[i] = upload_rows(client, f"app/s/big{i}", bytes([i]) * (4 * MiB), 128)  # 512 MiB
        client.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(e is not None and refused_for_memory(e) for e in errors), errors
    status = proc_status(server.proc.pid)
    assert status["VmHWM"] < 2 * 128 * MiB + MARGIN, f"peak RSS {status['VmHWM'] / MiB:.0f} MiB"
    # Within the budget an upload still goes through, and is stored whole.
    client = flight.connect(server.endpoint)
    assert upload_rows(client, "app/s/fits", b"\x07" * (4 * MiB), 8) is None
    data = b"".join(r[2] for r in rows(get(client, "app/s/fits")))
    assert data == b"\x07" * (32 * MiB)
    client.close()
