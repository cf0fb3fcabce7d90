"""The two gRPC servers under Arrow Flight (`cache.transport`): the callback transport
(src/transport/, the default for local storage) and Arrow Flight's own. The same calls, made
byte by byte with grpcio, must get the same replies, codes, messages and trailers from both
(docs/protocol.md; every other test runs against the default)."""

from __future__ import annotations

import os
import time

import bson
import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ServerProcess
from flight_wire import patch, put

SERVICE = "/arrow.flight.protocol.FlightService/"
PATH = b"\x08\x01"  # FlightDescriptor.type = PATH (a varint enum, field 1)


def field(number: int, value: bytes) -> bytes:
    """A length-delimited protobuf field (value shorter than 128 bytes)."""
    assert len(value) < 128
    return bytes([(number << 3) | 2, len(value)]) + value


def call(channel: grpc.Channel, method: str, request: bytes) -> tuple:
    """(reply messages, code, details, trailers without the varying ones) of a
    unary-request call."""
    stream = channel.unary_stream(SERVICE + method)(request, timeout=30)
    messages: list[bytes] = []
    try:
        for message in stream:
            messages.append(message)
    except grpc.RpcError as e:
        trailers = sorted((m.key, m.value) for m in (e.trailing_metadata() or ()))
        return messages, e.code(), e.details(), trailers
    return messages, grpc.StatusCode.OK, None, []


def start(transport: str, *extra: str) -> ServerProcess:
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--transport", transport, *extra])
    assert f"transport {transport}" in "\n".join(server.output)
    return server


@pytest.fixture
def both():
    servers = {t: start(t) for t in ("callback", "arrow")}
    yield servers
    for s in servers.values():
        assert s.stop() == 0


def scrub(value, epoch: str):
    """`value` with the server's epoch (a random UUID, in every reply schema) blanked."""
    if isinstance(value, bytes):
        return value.replace(epoch.encode(), b"E" * len(epoch))
    if isinstance(value, str):
        return value.replace(epoch, "E" * len(epoch))
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v, epoch) for v in value)
    return value


def normalise(info: flight.FlightInfo, endpoint: str) -> tuple:
    return (info.schema, info.descriptor, info.total_records, info.total_bytes,
            [(e.ticket.ticket, [str(loc).replace(endpoint, "ENDPOINT") for loc in e.locations])
             for e in info.endpoints])


def test_both_transports_answer_alike(both):
    answers: dict[str, list] = {}
    unparsed: dict[str, grpc.StatusCode] = {}
    payload = os.urandom(200_000)  # a reply body large enough to be sent zero copy
    for transport, server in both.items():
        client = flight.connect(server.endpoint)
        written = put(client, "app/s/k", payload)
        patched = patch(client, "app/s/k", b"delta")
        target = server.endpoint.removeprefix("grpc://")
        got: list = [(written["key"], written["version"], patched["version"])]
        with grpc.insecure_channel(target) as channel:
            for ticket in ("app/s/k:0", f"app/s/k:{written['version']}",
                           f"app/s/k:{patched['version']}", "app/s/k", "app/s/missing:0",
                           "no-key", "app/s/k:xyz"):
                got.append(call(channel, "DoGet", field(1, ticket.encode())))
            # A request that is not a Ticket: gRPC's parser answers INTERNAL under Arrow's
            # server; ours reads it and says why (docs/security.md, "Malformed requests").
            unparsed[transport] = call(channel, "DoGet", b"\xff\xff")[1]
            got.append(call(channel, "ListActions", b""))
            got.append(call(channel, "GetSchema", PATH + field(3, b"app/s/k")))
            got.append(call(channel, "DoAction", field(1, b"NOPE")))
            got.append(call(channel, "PollFlightInfo", PATH + field(3, b"app")))
            got.append(call(channel, "Handshake", b""))
            info = call(channel, "GetFlightInfo", PATH + field(3, b"app/s/k"))
            got.append(normalise(flight.FlightInfo.deserialize(info[0][0]), server.endpoint))
            listed = call(channel, "ListFlights", b"")
            got.append([normalise(flight.FlightInfo.deserialize(m), server.endpoint)
                        for m in listed[0]])
            got.append(call(channel, "DoAction", field(1, b"DELETE") + field(2, b"app/s")))
            got.append(call(channel, "DoGet", field(1, b"app/s/k:0")))
        client.close()
        answers[transport] = scrub(got, written["epoch"])
    for i, (ours, theirs) in enumerate(zip(answers["callback"], answers["arrow"])):
        assert ours == theirs, f"answer {i} differs"
    assert unparsed == {"callback": grpc.StatusCode.INVALID_ARGUMENT,
                        "arrow": grpc.StatusCode.INTERNAL}


def test_uploads_beyond_the_inline_size_stream_through_a_worker(tmp_path):
    server = start("callback", "--storage", str(tmp_path / "store"))
    try:
        client = flight.connect(server.endpoint)
        schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
        rows = [os.urandom(1 << 20) for _ in range(24)]  # 24 MiB in 1 MiB rows: spooled too
        writer, reader = client.do_put(flight.FlightDescriptor.for_path("app/s/big"), schema)
        for row in rows:
            writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()),
                                                pa.array([row], pa.binary())], schema=schema))
        writer.done_writing()
        result = bson.decode(reader.read().to_pybytes())
        writer.close()
        table = client.do_get(flight.Ticket(b"app/s/big:0")).read_all()
        assert table.column("version")[0].as_py() == result["version"]
        assert table.column("data")[0].as_py() == b"".join(rows)
        client.close()
    finally:
        assert server.stop() == 0


def test_a_client_that_never_ends_its_upload_does_not_hold_the_server():
    """An upload below the inline size whose client never half-closes stays buffered; the
    server answers everyone else meanwhile, and stores nothing when the call ends (here by
    the client's deadline)."""
    server = start("callback")
    try:
        schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
        stuck = flight.connect(server.endpoint)
        began = time.monotonic()
        writer, _ = stuck.do_put(flight.FlightDescriptor.for_path("app/s/stuck"), schema,
                                 flight.FlightCallOptions(timeout=2))
        writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()),
                                            pa.array([b"x" * 1000], pa.binary())], schema=schema))
        other = flight.connect(server.endpoint)
        for i in range(20):
            put(other, f"app/s/k{i}", b"v")
        with pytest.raises(pa.ArrowKeyError):
            other.do_get(flight.Ticket(b"app/s/stuck:0")).read_all()  # nothing stored
        time.sleep(max(0.0, began + 3 - time.monotonic()))  # past the deadline
        with pytest.raises(pa.ArrowKeyError):
            other.do_get(flight.Ticket(b"app/s/stuck:0")).read_all()
        other.close()
    finally:
        assert server.stop() == 0


def test_auto_picks_callback_for_local_storage_and_arrow_for_a_node_tier():
    upstream = ServerProcess(["--endpoint", "grpc://127.0.0.1:0"])
    try:
        assert "transport callback" in "\n".join(upstream.output)
        tier = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--upstream", upstream.endpoint])
        try:
            assert "transport arrow" in "\n".join(tier.output)
        finally:
            assert tier.stop() == 0
    finally:
        assert upstream.stop() == 0
