"""Minimal wire helpers for the storage tests: the exact calls flamepy 0.6.0 makes."""

from __future__ import annotations

import bson
import pyarrow as pa
import pyarrow.flight as flight

OPAQUE_SCHEMA = pa.schema([("version", pa.uint64()), ("data", pa.binary())])


def _put(client: flight.FlightClient, descriptor: flight.FlightDescriptor, data: bytes,
         timeout: float | None = None) -> dict:
    options = flight.FlightCallOptions(timeout=timeout)
    writer, reader = client.do_put(descriptor, OPAQUE_SCHEMA, options)
    writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()), pa.array([data], pa.binary())],
                                       schema=OPAQUE_SCHEMA))
    writer.done_writing()
    meta = reader.read()
    writer.close()
    assert meta is not None, "no PutResult"
    return bson.decode(meta.to_pybytes())


def put(client: flight.FlightClient, path: str, data: bytes, timeout: float | None = None) -> dict:
    """PUT (DoPut, path descriptor `<app>/<session>[/<id>]`); returns the BSON PutResult."""
    return _put(client, flight.FlightDescriptor.for_path(path), data, timeout)


def patch(client: flight.FlightClient, key: str, data: bytes, timeout: float | None = None) -> dict:
    """PATCH (DoPut, command descriptor `PATCH:<key>`); returns the BSON PutResult."""
    return _put(client, flight.FlightDescriptor.for_command(f"PATCH:{key}".encode()), data, timeout)


def get(client: flight.FlightClient, key: str, version: int = 0,
        timeout: float | None = None) -> pa.Table:
    """DoGet with ticket `<key>:<version>`."""
    options = flight.FlightCallOptions(timeout=timeout)
    return client.do_get(flight.Ticket(f"{key}:{version}".encode()), options).read_all()


def rows(table: pa.Table) -> list[tuple[int, str, bytes]]:
    """(version, kind, data) per row of an opaque GET reply."""
    d = table.to_pydict()
    return list(zip(d["version"], d["kind"], d["data"]))
