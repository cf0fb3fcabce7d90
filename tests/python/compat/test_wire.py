"""The wire shape, checked with plain pyarrow.flight (and plain gRPC where the raw status or
the message count matters): what flamepy 0.6.0 relies on, per upstream-server.md §2–§5."""

from __future__ import annotations

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import flamepy.core.cache as fc
import pytest
from flamepy.core.cache import ObjectRef, get_object, put_object

from . import wire
from conftest import LISTED_ACTIONS

from .conftest import forget_local_cache

RESPONSE_SCHEMA = pa.schema(wire.RESPONSE_FIELDS)


def build(raw, key="app/s/obj", patches=3) -> str:
    """base v1 + patches v2..v(1+patches) under `key`."""
    assert wire.put_path(raw, key, b"base").doc["version"] == 1
    for i in range(patches):
        assert wire.patch(raw, key, f"p{i}".encode()).doc["version"] == i + 2
    return key


def test_put_result_is_one_bson_message(flame, raw):
    reply = wire.put_path(raw, "app/s", b"hello")
    assert reply.count == 1
    types = wire.bson_types(reply.raw)
    assert list(types)[:3] == ["endpoint", "key", "version"]
    assert types["endpoint"] == 0x02 and types["key"] == 0x02
    assert types["version"] == 0x12  # int64
    assert set(types) <= {"endpoint", "key", "version", "epoch"}
    assert types.get("epoch") == 0x02
    doc = reply.doc
    assert doc["endpoint"] == flame.endpoint
    assert doc["key"].startswith("app/s/") and doc["version"] == 1

    for r in (wire.put_path(raw, doc["key"], b"v2"), wire.patch(raw, doc["key"], b"d")):
        assert r.count == 1 and wire.bson_types(r.raw)["version"] == 0x12
        assert (r.doc["endpoint"], r.doc["key"], r.doc["epoch"]) == (
            flame.endpoint, doc["key"], doc["epoch"])
    assert r.doc["version"] == 3


def test_epoch_is_per_server_instance(start_server, raw):
    other = start_server()
    client = flight.connect(other.endpoint)
    try:
        mine = wire.put_path(raw, "app/s/o", b"x").doc["epoch"]
        theirs = wire.put_path(client, "app/s/o", b"x").doc["epoch"]
    finally:
        client.close()
    assert mine and theirs and mine != theirs
    assert wire.get(raw, "app/s/o:0").schema.metadata[wire.EPOCH_KEY] == mine.encode()


def test_response_schema(flame, raw):
    epoch = wire.put_path(raw, "app/s/o", b"x").doc["epoch"]
    reply = wire.get(raw, "app/s/o:0")
    assert reply.schema.equals(RESPONSE_SCHEMA)  # names, types, non-nullable
    assert [(f.name, f.type, f.nullable) for f in reply.schema] == [
        ("version", pa.uint64(), False), ("kind", pa.utf8(), False), ("data", pa.binary(), False)]
    assert reply.schema.metadata == {wire.EPOCH_KEY: epoch.encode()}


def test_full_response_is_base_then_patches_one_row_per_batch(raw):
    key = build(raw)
    reply = wire.get(raw, f"{key}:0")
    assert [b.num_rows for b in reply.batches] == [1, 1, 1, 1]
    assert reply.rows == [(1, "base", b"base"), (2, "patch", b"p0"), (3, "patch", b"p1"),
                          (4, "patch", b"p2")]
    assert wire.get(raw, key).rows == reply.rows          # bare key = version 0
    assert wire.get(raw, f"{key}:99").rows == reply.rows  # ahead of the server: full


def test_not_modified_is_schema_only(flame, raw):
    key = build(raw)
    reply = wire.get(raw, f"{key}:4")
    assert reply.batches == []
    assert reply.schema.equals(RESPONSE_SCHEMA)
    # Exactly one FlightData message (the schema) on the gRPC wire, then OK.
    code, _, messages = wire.grpc_do_get(flame.endpoint, f"{key}:4".encode())
    assert (code, messages) == (grpc.StatusCode.OK, 1)


def test_patch_only_rows_ascending(raw):
    key = build(raw)
    assert wire.get(raw, f"{key}:1").rows == [(2, "patch", b"p0"), (3, "patch", b"p1"),
                                              (4, "patch", b"p2")]
    assert wire.get(raw, f"{key}:2").rows == [(3, "patch", b"p1"), (4, "patch", b"p2")]
    reply = wire.get(raw, f"{key}:3")
    assert reply.rows == [(4, "patch", b"p2")]
    assert [b.num_rows for b in reply.batches] == [1]


def test_decision_table_after_update(raw):
    key = build(raw)  # versions 1..4
    assert wire.put_path(raw, key, b"new base").doc["version"] == 5
    for c in (0, 1, 3, 4):  # any older version: the new base alone
        assert wire.get(raw, f"{key}:{c}").rows == [(5, "base", b"new base")]
    assert wire.get(raw, f"{key}:5").batches == []
    assert wire.patch(raw, key, b"q").doc["version"] == 6
    assert wire.get(raw, f"{key}:5").rows == [(6, "patch", b"q")]
    assert wire.get(raw, f"{key}:4").rows == [(5, "base", b"new base"), (6, "patch", b"q")]


def test_list_actions(raw):
    assert [(a.type, a.description) for a in raw.list_actions()][:2] == [
        ("DELETE", "Delete objects by key prefix"),  # upstream's only action
        ("MEMBERS", "Endpoints of the cluster's live servers, one result each")]  # ours
    assert [a.type for a in raw.list_actions()] == LISTED_ACTIONS  # ours


def test_delete_answers_one_ok(raw):
    build(raw, "app/s/o", patches=1)
    for body in (b"app/s/o", b"app/s/o", b"app/s", b"app/*", b"none/*"):
        results = list(raw.do_action(flight.Action("DELETE", body)))
        assert [r.body.to_pybytes() for r in results] == [b"OK"]
    with pytest.raises(pa.ArrowKeyError):
        wire.get(raw, "app/s/o:0")


def test_get_flight_info(flame, raw):
    key = build(raw, patches=1)
    info = raw.get_flight_info(flight.FlightDescriptor.for_path(key))
    assert len(info.endpoints) == 1
    ep = info.endpoints[0]
    assert [loc.uri.decode() for loc in ep.locations] == [flame.endpoint]
    assert info.descriptor.path == [key.encode()]
    assert info.total_records == -1
    assert info.schema.remove_metadata().equals(RESPONSE_SCHEMA)  # standard IPC form parses
    # The ticket it hands out reads the whole object.
    got = [(v, k) for v, k, _ in wire.get(raw, ep.ticket.ticket.decode()).rows]
    assert got == [(1, "base"), (2, "patch")]
    # Path elements are joined with '/'; existence is not required (flamepy local storage).
    info = raw.get_flight_info(flight.FlightDescriptor.for_path("app", "s", "not-yet"))
    assert [loc.uri.decode() for loc in info.endpoints[0].locations] == [flame.endpoint]


def test_get_flight_info_and_schema_of_a_native_table(raw, flame):
    table = pa.table({"a": [1, 2], "s": ["x", "y"]})
    ref = put_object("app/t", table)
    info = raw.get_flight_info(flight.FlightDescriptor.for_path(ref.key))
    assert info.schema.names == ["a", "s"]
    assert info.schema.metadata[b"flame.cache.format"] == b"arrow-table-v1"
    schema = raw.get_schema(flight.FlightDescriptor.for_path(ref.key)).schema
    assert schema.remove_metadata().equals(table.schema)


def test_list_flights(flame, raw):
    keys = {build(raw, f"app/s/o{i}", patches=i) for i in range(3)}
    raw.do_action(flight.Action("DELETE", b"app/s/o0"))
    listed = {}
    for info in raw.list_flights():
        assert len(info.endpoints) == 1
        ep = info.endpoints[0]
        assert [loc.uri.decode() for loc in ep.locations] == [flame.endpoint]
        listed[info.descriptor.path[0].decode()] = (ep.ticket.ticket.decode(), info.total_bytes)
    assert set(listed) == keys - {"app/s/o0"}
    for key, (ticket, size) in listed.items():
        rows = wire.get(raw, ticket).rows
        assert rows[0][:2] == (1, "base")
        assert size == sum(len(d) for _, _, d in rows)


def test_unimplemented_exchange(raw):
    with pytest.raises(NotImplementedError):
        writer, reader = raw.do_exchange(flight.FlightDescriptor.for_path("app/s/o"))
        reader.read_all()


def test_keys_with_colons_are_readable(flame, raw):
    key = "app/s:1/obj:v:2"
    wire.put_path(raw, key, b"colons")
    wire.patch(raw, key, b"more")
    assert wire.get(raw, f"{key}:0").rows == [(1, "base", b"colons"), (2, "patch", b"more")]
    assert wire.get(raw, f"{key}:1").rows == [(2, "patch", b"more")]
    assert wire.get(raw, f"{key}:2").batches == []
    # flamepy sends "<key>:<n>" for such keys too: cold get, then not-modified.
    flame_key = "app/s:1/x:y"
    wire.put_path(raw, flame_key, fc._serialize_object_data({"k": ":"}))
    ref = ObjectRef(flame.endpoint, flame_key, 1)
    first = get_object(ref)
    assert first == {"k": ":"}
    assert get_object(ref) is first  # not modified via "app/s:1/x:y:1"
    assert put_object("app/s:1", "via put").key.startswith("app/s:1/")


def test_versions_strictly_increase_per_key_and_are_independent(raw):
    a = [wire.put_path(raw, "app/s/a", b"a").doc["version"]]
    b = [wire.put_path(raw, "app/s/b", b"b").doc["version"]]
    for i in range(5):
        a.append(wire.patch(raw, "app/s/a", b"x").doc["version"])
        a.append(wire.put_path(raw, "app/s/a", b"y").doc["version"])
    assert a == list(range(1, 12))
    assert b == [1]


def test_flamepy_local_storage_put_learns_the_endpoint_from_get_flight_info(
        flame, monkeypatch, tmp_path):
    # FLAME_CACHE_STORAGE switches put_object to writing an Arrow IPC file itself and asking
    # GetFlightInfo for the endpoint; the ref must carry the server's advertised location.
    storage = tmp_path / "storage"
    monkeypatch.setenv("FLAME_CACHE_STORAGE", str(storage))
    fc._context_cache = None
    ref = put_object("app/local", {"x": 1})
    assert ref.endpoint == flame.endpoint and ref.version == 1
    app, session, obj = ref.key.split("/")
    assert (storage / app / session / f"{obj}.arrow").exists()
    forget_local_cache()
