"""Errors as flamepy and raw clients see them; status codes checked on the gRPC wire."""

from __future__ import annotations

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flamepy.core.cache import ObjectRef, get_object, put_object

from . import wire

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_get_of_a_missing_object(flame):
    ref = put_object("app/s", 1)
    missing = ObjectRef(ref.endpoint, "app/s/missing", 0)
    with pytest.raises(pa.ArrowKeyError) as exc:
        get_object(missing)
    assert isinstance(exc.value, KeyError)
    assert "app/s/missing" in str(exc.value) and "not found" in str(exc.value)
    code, details, n = wire.grpc_do_get(flame.endpoint, b"app/s/missing:0")
    assert (code, n) == (NOT_FOUND, 0)
    assert "app/s/missing" in details


def test_missing_object_through_raw_flight(raw):
    with pytest.raises(pa.ArrowKeyError):
        wire.get(raw, "app/none/x:0")
    with pytest.raises(pa.ArrowKeyError):
        wire.get(raw, "app/none/x")  # bare key = version 0


def test_patch_of_a_missing_object_through_raw_flight(raw):
    with pytest.raises(pa.ArrowKeyError, match="not found"):
        wire.patch(raw, "app/none/x", b"delta")


BAD_TICKETS = [
    b"app/s",                  # two components
    b"app/s/o/extra:0",        # four components
    b"app//o:0",               # empty component
    b"/s/o:0",
    b"app/s/:0",
    b"app/../o:0",             # dot-dot
    b"app/s/a..b:0",
    b"app/./o:0",              # dot component
    b"app/s/.hidden:0",        # leading dot
    b"app/s\\x/o:0",           # backslash
    b"app/s/o\x00x:0",         # NUL
    b"app/s/o\x01:0",          # control character
    b"app/s/o\x7f:0",
    b"app/*/o:0",              # wildcard outside a delete pattern
    b"*/s/o:0",
    b"app/s/*:0",
    b"app/s/o:abc",            # bad version
    b"app/s/o:-1",
    b"app/s/o:",
    b"app/s/o:18446744073709551616",  # > u64
    b"app/s/o:\xff",           # not UTF-8
    b"",
]


@pytest.mark.parametrize("ticket", BAD_TICKETS, ids=[repr(t) for t in BAD_TICKETS])
def test_bad_tickets_are_invalid_argument(flame, ticket):
    code, details, n = wire.grpc_do_get(flame.endpoint, ticket)
    assert code == INVALID, (code, details)
    assert n == 0 and details


BAD_PUT_PATHS = ["app", "app/*", "app/*/o", "app/s/o/extra", "app/../o", "app/s/.x", "app/s/*",
                 "app/s/a\\b", "app/s/o\x01", "app//o", "/s"]


@pytest.mark.parametrize("path", BAD_PUT_PATHS, ids=repr)
def test_bad_put_paths_are_invalid_argument(raw, path):
    with pytest.raises(pa.ArrowInvalid) as exc:
        wire.put_path(raw, path, b"x")
    assert "INVALID_ARGUMENT" in str(exc.value)


@pytest.mark.parametrize("key", ["app/s", "app/*", "app/s/o/x", "app/s/..", "app/s/*"], ids=repr)
def test_bad_patch_keys_are_invalid_argument(raw, key):
    with pytest.raises(pa.ArrowInvalid) as exc:
        wire.patch(raw, key, b"x")
    assert "INVALID_ARGUMENT" in str(exc.value)


BAD_DELETE_BODIES = [b"app", b"a/b/c/d", b"*/s", b"*/*", b"app/*/o", b"app/s/*", b"app/..",
                     b"app/.s", b"", b"app/s\x00", b"\xff/s"]


@pytest.mark.parametrize("body", BAD_DELETE_BODIES, ids=repr)
def test_bad_delete_patterns_are_invalid_argument(flame, body):
    code, details, n = wire.grpc_do_action(flame.endpoint, "DELETE", body)
    assert code == INVALID, (code, details)
    assert n == 0


def test_flamepy_put_to_a_wildcard_prefix_is_refused_by_the_server(flame):
    # flamepy's ObjectKey.from_prefix accepts "app/*"; only the server can refuse it.
    with pytest.raises(pa.ArrowInvalid, match=r"\*"):
        put_object("app/*", {"x": 1})


@pytest.mark.parametrize(
    "schema",
    [
        pa.schema([("version", pa.uint64()), ("data", pa.string())]),
        pa.schema([("version", pa.int64()), ("data", pa.binary())]),
        pa.schema([("only", pa.binary())]),
    ],
    ids=["utf8-data", "int64-version", "one-column"],
)
def test_wrong_upload_columns_are_invalid_argument_not_internal(raw, schema):
    writer, reader = raw.do_put(flight.FlightDescriptor.for_path("app/s/o"), schema)
    cols = [pa.array([0] * 1, f.type) if pa.types.is_integer(f.type) else pa.array(["x"], f.type)
            for f in schema]
    with pytest.raises(pa.ArrowInvalid) as exc:
        writer.write_batch(pa.record_batch(cols, schema=schema))
        writer.done_writing()
        reader.read()
        writer.close()
    assert "INVALID_ARGUMENT" in str(exc.value)


def test_large_binary_upload_is_accepted(raw):
    schema = pa.schema([("version", pa.uint64()), ("data", pa.large_binary())])
    reply = wire.put(raw, flight.FlightDescriptor.for_path("app/s/lb"), [b"ab", b"cd"], schema)
    assert reply.doc["version"] == 1
    assert wire.get(raw, "app/s/lb:0").rows == [(1, "base", b"abcd")]


def test_unknown_action_is_invalid_argument(flame, raw):
    code, details, _ = wire.grpc_do_action(flame.endpoint, "GET", b"app/s/o")
    assert code == INVALID and "GET" in details
    code, _, _ = wire.grpc_do_action(flame.endpoint, "delete", b"app/s")  # case-sensitive
    assert code == INVALID
    with pytest.raises(pa.ArrowInvalid):
        list(raw.do_action(flight.Action("NOPE", b"")))


def test_unknown_doput_command_is_invalid_argument(raw):
    with pytest.raises(pa.ArrowInvalid):
        wire.put(raw, flight.FlightDescriptor.for_command(b"MERGE:app/s/o"), [b"x"])


def test_get_flight_info_without_path_is_invalid_argument(flame):
    assert wire.grpc_get_flight_info(flame.endpoint, cmd=b"app/s/o")[0] == INVALID
    assert wire.grpc_get_flight_info(flame.endpoint, path=["app/s/o"])[0] == grpc.StatusCode.OK
