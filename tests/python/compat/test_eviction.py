"""Memory-only storage under a small --max-memory: nothing is lost silently. An evicted object
reports NOT_FOUND saying it was evicted; a write that can never fit is refused with
RESOURCE_EXHAUSTED (sent as gRPC UNAVAILABLE with a "RESOURCE_EXHAUSTED: " message prefix,
flight/status.h); listings do not show evicted objects; versions keep counting."""

from __future__ import annotations

import os

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from flamepy.core.cache import ObjectRef, get_object, patch_object, put_object, update_object

from . import wire

KiB = 1024
LIMIT = 1024 * KiB


@pytest.fixture
def small(start_server, use_server):
    srv = use_server(start_server("--max-memory", str(LIMIT)))
    client = flight.connect(srv.endpoint)
    yield srv, client
    client.close()


def fill(n: int, size: int = 300 * KiB) -> list[tuple[ObjectRef, bytes]]:
    out = []
    for _ in range(n):
        data = os.urandom(size)
        out.append((put_object("app/pressure", data), data))
    return out


def test_evicted_object_reports_evicted(small):
    srv, raw = small
    objs = fill(8)  # 2.4 MiB into 1 MiB
    evicted = [(r, d) for r, d in objs if not _present(raw, r.key)]
    resident = [(r, d) for r, d in objs if _present(raw, r.key)]
    assert evicted and resident
    assert objs[0] in evicted and objs[-1] in resident  # least recently used goes first
    for ref, _ in evicted:
        with pytest.raises(pa.ArrowKeyError, match="evicted"):
            get_object(ObjectRef(ref.endpoint, ref.key, 0))
        code, details, _ = wire.grpc_do_get(srv.endpoint, f"{ref.key}:0".encode())
        assert code == grpc.StatusCode.NOT_FOUND and "evicted" in details
        with pytest.raises(pa.ArrowKeyError, match="evicted"):
            patch_object(ref, "delta")
    for ref, data in resident:
        assert get_object(ObjectRef(ref.endpoint, ref.key, 0)) == data


def _present(raw, key: str) -> bool:
    try:
        wire.get(raw, f"{key}:0")
        return True
    except pa.ArrowKeyError as e:
        assert "evicted" in str(e)
        return False


def test_listing_does_not_show_evicted_objects(small):
    _, raw = small
    objs = fill(8)
    listed = {info.descriptor.path[0].decode() for info in raw.list_flights()}
    present = {r.key for r, _ in objs if _present(raw, r.key)}
    assert listed == present


def test_rewriting_an_evicted_key_continues_its_versions(small):
    _, raw = small
    ref = put_object("app/pressure", b"x" * 100)
    ref = patch_object(ref, b"y")
    assert ref.version == 2
    fill(8)
    with pytest.raises(pa.ArrowKeyError, match="evicted"):
        get_object(ObjectRef(ref.endpoint, ref.key, 0))
    again = update_object(ref, "rewritten")
    assert again.version > ref.version
    assert get_object(again) == "rewritten"
    # A client still at version 2 must not be told "not modified".
    assert wire.get(raw, f"{ref.key}:2").rows[0][:2] == (again.version, "base")


def test_object_larger_than_memory_is_refused_not_lost(small):
    _, raw = small
    with pytest.raises(flight.FlightUnavailableError) as exc:
        put_object("app/pressure", os.urandom(2 * LIMIT))
    msg = str(exc.value)
    assert msg.startswith("RESOURCE_EXHAUSTED: ") and "UNAVAILABLE:RESOURCE_EXHAUSTED: " in msg
    # The refusal left nothing behind and the server keeps working.
    assert list(raw.list_flights()) == []
    ref = put_object("app/pressure", "small")
    assert get_object(ref) == "small"


def test_updated_object_that_fits_alone_is_kept(small):
    _, raw = small
    ref = put_object("app/lone", os.urandom(400 * 1000))
    new_value = os.urandom(700 * 1000)
    ref = update_object(ref, new_value)
    assert ref.version == 2
    assert get_object(ObjectRef(ref.endpoint, ref.key, 0)) == new_value


def test_patched_object_that_fits_alone_is_not_evicted(small):
    srv, raw = small
    # The only object on the server: 400 KB base + 300 KB delta = 700 KB of a 1 MiB limit.
    ref = put_object("app/lone", os.urandom(400 * 1000))
    ref = patch_object(ref, os.urandom(300 * 1000))
    assert ref.version == 2  # acknowledged
    rows = wire.get(raw, f"{ref.key}:0").rows  # fails: NOT_FOUND "... was evicted ..."
    assert [(v, k) for v, k, _ in rows] == [(1, "base"), (2, "patch")]


def test_patch_that_can_never_fit_is_refused_and_leaves_the_object_intact(small):
    _, raw = small
    wire.put_path(raw, "app/s/big", b"b" * 600_000)
    with pytest.raises(flight.FlightUnavailableError, match="^RESOURCE_EXHAUSTED: "):
        wire.patch(raw, "app/s/big", b"p" * 600_000)
    assert wire.get(raw, "app/s/big:0").rows == [(1, "base", b"b" * 600_000)]
    assert wire.patch(raw, "app/s/big", b"small").doc["version"] == 2
