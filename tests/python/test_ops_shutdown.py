"""SIGTERM during an upload: the call in flight finishes (or is cancelled at the grace
deadline), new calls are refused, the server exits 0, and no object is torn."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ServerProcess
from flight_wire import OPAQUE_SCHEMA as SCHEMA, get

CHUNK = b"c" * (256 * 1024)


def batch(data: bytes) -> pa.RecordBatch:
    return pa.record_batch([pa.array([0], pa.uint64()), pa.array([data], pa.binary())], schema=SCHEMA)


def read_all(endpoint: str, key: str) -> bytes:
    client = flight.connect(endpoint)
    table = get(client, key)
    client.close()
    return b"".join(v.as_py() for v in table.column("data"))


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_sigterm_lets_an_upload_in_flight_finish(tmp_path: Path, kind: str) -> None:
    storage = "none" if kind == "memory" else str(tmp_path / "store")
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", storage])
    client = flight.connect(server.endpoint)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("app/s/big"), SCHEMA)
    chunks = 20
    for i in range(chunks):
        writer.write_batch(batch(CHUNK))
        if i == 4:
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            # Draining: a new connection's call is refused.
            fresh = flight.connect(server.endpoint)
            with pytest.raises(flight.FlightError):
                list(fresh.list_actions(options=flight.FlightCallOptions(timeout=5)))
            fresh.close()
        time.sleep(0.05)
    writer.done_writing()
    ack = reader.read()
    assert ack is not None  # acknowledged during the grace period
    writer.close()
    client.close()
    assert server.stop(timeout=30) == 0
    assert any("no new calls" in line for line in server.output)
    assert any("stopped" in line for line in server.output)
    if kind == "disk":
        again = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", storage])
        try:
            assert read_all(again.endpoint, "app/s/big") == CHUNK * chunks
        finally:
            assert again.stop() == 0


# Found by this test: when gRPC cancels a DoPut (shutdown deadline, or a client that vanishes
# mid-stream), Arrow's FlightMessageReader reports a normal end of stream, and DoPut stores the
# partial upload as a complete object. Needs a `context.is_cancelled()` check in
# FlightService::DoPut before the store write (src/flight/flight_service.cc, the lead's file).
@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_upload_past_the_grace_period_is_cancelled_not_torn(tmp_path: Path, kind: str) -> None:
    storage = "none" if kind == "memory" else str(tmp_path / "store")
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", storage],
                           env={"FLAME_CACHE_SHUTDOWN_GRACE_SECONDS": "1"})
    client = flight.connect(server.endpoint)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("app/s/slow"), SCHEMA)
    writer.write_batch(batch(CHUNK))
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    with pytest.raises((flight.FlightError, OSError, pa.ArrowException)):
        for _ in range(100):  # would take 10 s; the server cancels after ~1 s
            writer.write_batch(batch(CHUNK))
            time.sleep(0.1)
        writer.done_writing()
        reader.read()
    rc = server.proc.wait(30)
    assert rc == 0
    assert time.monotonic() - started < 10
    try:
        writer.close()
    except Exception:
        pass
    client.close()
    server.stop()
    if kind == "disk":
        again = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", storage])
        try:
            with pytest.raises((flight.FlightError, KeyError)):
                read_all(again.endpoint, "app/s/slow")
        finally:
            assert again.stop() == 0
