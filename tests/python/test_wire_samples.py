"""The golden wire samples of tests/wire/ (written by our C++ encoders, pinned byte for byte by
src/protocol/wire_samples_test.cc), read here by the other side: pyarrow's IPC reader and the
`bson` module flamepy decodes PutResults with. Then the real server's replies, which must have
the samples' shape, and pyarrow writing the opaque samples' content back to the same bytes."""

from __future__ import annotations

from pathlib import Path

import bson
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc

from conftest import ServerProcess

WIRE = Path(__file__).resolve().parents[2] / "tests/wire"
EPOCH = b"epoch-1"
RESPONSE_FIELDS = [("version", pa.uint64()), ("kind", pa.utf8()), ("data", pa.binary())]


def read(name: str) -> pa.Table:
    with ipc.open_stream(pa.BufferReader((WIRE / name).read_bytes())) as reader:
        return reader.read_all()


def rows(table: pa.Table) -> list[tuple[int, str, bytes]]:
    return list(zip(*(table.column(n).to_pylist() for n in ("version", "kind", "data"))))


def check_response_schema(schema: pa.Schema) -> None:
    assert [(f.name, f.type) for f in schema] == RESPONSE_FIELDS
    assert not any(f.nullable for f in schema)  # as upstream
    assert schema.metadata is not None and b"flame.cache.epoch" in schema.metadata


def test_reply_shapes_read_with_pyarrow() -> None:
    expected = {
        "reply_not_modified.arrows": [],
        "reply_full.arrows": [(1, "base", b"hello"), (2, "patch", b" world"), (3, "patch", b"!")],
        "reply_patch_only.arrows": [(3, "patch", b"!")],
        "reply_empty_payload.arrows": [(1, "base", b"")],
    }
    for name, want in expected.items():
        table = read(name)
        check_response_schema(table.schema)
        assert table.schema.metadata[b"flame.cache.epoch"] == EPOCH
        assert rows(table) == want, name


def test_native_reply_reads_with_pyarrow() -> None:
    table = read("reply_native.arrows")
    assert table.column("x").to_pylist() == [1, 2, 3]
    assert table.column("y").to_pylist() == ["a", "b", None]
    md = table.schema.metadata
    assert md[b"flame.cache.format"] == b"arrow-table-v1"
    assert md[b"flame.cache.version"] == b"4"
    assert md[b"flame.cache.epoch"] == EPOCH


def test_put_results_decode_with_bson() -> None:
    doc = bson.decode((WIRE / "put_result.bson").read_bytes())
    assert doc == {"endpoint": "grpc://127.0.0.1:9090", "key": "app/ses/obj", "version": 3}
    assert list(doc) == ["endpoint", "key", "version"]  # upstream's field order
    with_epoch = bson.decode((WIRE / "put_result_epoch.bson").read_bytes())
    assert list(with_epoch) == ["endpoint", "key", "version", "epoch"]
    assert with_epoch["epoch"] == "epoch-1"


def test_pyarrow_writes_the_opaque_samples_byte_for_byte() -> None:
    # The same Arrow library underneath (pyarrow's wheel is what the server links): a batch
    # per row under the response schema gives the committed bytes.
    for name in ("reply_not_modified.arrows", "reply_full.arrows", "reply_patch_only.arrows"):
        table = read(name)
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            for version, kind, data in rows(table):
                writer.write_batch(
                    pa.record_batch(
                        [pa.array([version], pa.uint64()), pa.array([kind]), pa.array([data], pa.binary())],
                        schema=table.schema,
                    )
                )
        assert sink.getvalue().to_pybytes() == (WIRE / name).read_bytes(), name


def test_server_replies_have_the_samples_shape(server: ServerProcess) -> None:
    client = flight.connect(server.endpoint)
    try:
        schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
        writer, reader = client.do_put(flight.FlightDescriptor.for_path("app/ses/obj"), schema)
        writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()), pa.array([b"hello"])], schema=schema))
        writer.done_writing()
        put = bson.decode(reader.read().to_pybytes())
        writer.close()
        assert put["key"] == "app/ses/obj" and put["version"] == 1
        assert list(put)[:3] == ["endpoint", "key", "version"]
        for delta in (b" world", b"!"):
            cmd = flight.FlightDescriptor.for_command(b"PATCH:app/ses/obj")
            writer, reader = client.do_put(cmd, schema)
            writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()), pa.array([delta])], schema=schema))
            writer.done_writing()
            reader.read()
            writer.close()

        def get(version: int) -> pa.Table:
            return client.do_get(flight.Ticket(f"app/ses/obj:{version}".encode())).read_all()

        for version, sample in ((0, "reply_full.arrows"), (2, "reply_patch_only.arrows"), (3, "reply_not_modified.arrows")):
            got = get(version)
            check_response_schema(got.schema)
            assert rows(got) == rows(read(sample)), sample
    finally:
        client.close()
