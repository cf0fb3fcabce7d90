"""Raw-protocol helpers for the compatibility suite: pyarrow.flight calls that bypass flamepy,
a minimal BSON element-type reader, and plain gRPC calls that expose the real status code."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import bson
import grpc
import pyarrow as pa
import pyarrow.flight as flight

UPLOAD_SCHEMA = pa.schema([pa.field("version", pa.uint64()), pa.field("data", pa.binary())])
RESPONSE_FIELDS = [
    pa.field("version", pa.uint64(), nullable=False),
    pa.field("kind", pa.utf8(), nullable=False),
    pa.field("data", pa.binary(), nullable=False),
]
EPOCH_KEY = b"flame.cache.epoch"


@dataclass
class PutReply:
    doc: dict            # decoded BSON
    raw: bytes           # the app_metadata bytes
    count: int           # how many PutResult messages arrived


@dataclass
class GetReply:
    schema: pa.Schema
    batches: list[pa.RecordBatch]

    @property
    def rows(self) -> list[tuple[int, str, bytes]]:
        """(version, kind, data) of every row, in stream order."""
        out = []
        for b in self.batches:
            d = b.to_pydict()
            out += list(zip(d["version"], d["kind"], d["data"]))
        return out


def put(client: flight.FlightClient, descriptor: flight.FlightDescriptor, chunks: list[bytes],
        schema: pa.Schema = UPLOAD_SCHEMA) -> PutReply:
    """DoPut of opaque chunks (one one-row batch each); reads every PutResult until the end."""
    writer, reader = client.do_put(descriptor, schema)
    for chunk in chunks:
        writer.write_batch(pa.record_batch(
            [pa.array([0], pa.uint64()), pa.array([chunk], schema.field(1).type)], schema=schema))
    writer.done_writing()
    metas = []
    while True:
        buf = reader.read()
        if buf is None:
            break
        metas.append(bytes(buf))
    writer.close()
    assert metas, "no PutResult"
    return PutReply(bson.decode(metas[0]), metas[0], len(metas))


def put_path(client: flight.FlightClient, path: str, *chunks: bytes) -> PutReply:
    return put(client, flight.FlightDescriptor.for_path(path), list(chunks))


def patch(client: flight.FlightClient, key: str, data: bytes) -> PutReply:
    return put(client, flight.FlightDescriptor.for_command(f"PATCH:{key}".encode()), [data])


def get(client: flight.FlightClient, ticket: str) -> GetReply:
    """DoGet, keeping batch boundaries (read_all would merge them)."""
    reader = client.do_get(flight.Ticket(ticket.encode()))
    schema = reader.schema
    batches = [chunk.data for chunk in reader]
    return GetReply(schema, batches)


def bson_types(doc: bytes) -> dict[str, int]:
    """Element name -> BSON type byte of a top-level BSON document (strings/ints only)."""
    (length,) = struct.unpack_from("<i", doc, 0)
    assert length == len(doc)
    out, pos = {}, 4
    sizes = {0x10: 4, 0x12: 8, 0x01: 8, 0x08: 1}
    while doc[pos] != 0:
        kind = doc[pos]
        end = doc.index(b"\x00", pos + 1)
        name = doc[pos + 1:end].decode()
        pos = end + 1
        out[name] = kind
        if kind == 0x02:
            (n,) = struct.unpack_from("<i", doc, pos)
            pos += 4 + n
        else:
            pos += sizes[kind]
    return out


# --- plain gRPC: the status code as sent on the wire ---------------------------------------

def _field(number: int, value: bytes) -> bytes:
    """A length-delimited protobuf field."""
    n, varint = len(value), b""
    while True:
        b = n & 0x7F
        n >>= 7
        varint += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return bytes([(number << 3) | 2]) + varint + value


def grpc_status(endpoint: str, method: str, request: bytes) -> tuple[grpc.StatusCode, str, int]:
    """Calls a server-streaming Flight method with a hand-encoded request; returns the final
    gRPC status code, its details, and how many response messages arrived."""
    target = endpoint.split("://", 1)[1]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_stream(f"/arrow.flight.protocol.FlightService/{method}",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
        responses = 0
        try:
            for _ in call(request, timeout=30):
                responses += 1
        except grpc.RpcError as e:
            return e.code(), e.details(), responses
        return grpc.StatusCode.OK, "", responses


def grpc_do_get(endpoint: str, ticket: bytes) -> tuple[grpc.StatusCode, str, int]:
    return grpc_status(endpoint, "DoGet", _field(1, ticket))


def grpc_do_action(endpoint: str, kind: str, body: bytes) -> tuple[grpc.StatusCode, str, int]:
    return grpc_status(endpoint, "DoAction", _field(1, kind.encode()) + _field(2, body))


def grpc_get_flight_info(endpoint: str, *, path: list[str] | None = None,
                         cmd: bytes | None = None) -> tuple[grpc.StatusCode, str]:
    """GetFlightInfo is unary; FlightDescriptor{type=1, cmd=2, path=3}."""
    if path is not None:
        desc = b"\x08\x01" + b"".join(_field(3, p.encode()) for p in path)
    else:
        desc = b"\x08\x02" + _field(2, cmd or b"")
    target = endpoint.split("://", 1)[1]
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/arrow.flight.protocol.FlightService/GetFlightInfo",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        try:
            call(desc, timeout=30)
        except grpc.RpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, ""
