"""put_object / get_object / update_object through the unchanged flamepy 0.6.0.

How a get was answered is observed through flamepy itself: a not-modified answer returns the
client-side cached instance (`is`), a patch-only answer keeps the cached base instance and
appends deltas, a full answer builds new instances. `_fetch_object_data` is flamepy's own
parser of one DoGet round trip (the upstream e2e tests use it the same way).
"""

from __future__ import annotations

import re

import flamepy
import flamepy.cache
import flamepy.core
import flamepy.core.cache as fc
import numpy as np
import pyarrow as pa
import pytest
from flamepy.core.cache import FetchMode, ObjectRef, get_object, patch_object, put_object, update_object

from . import wire
from .conftest import forget_local_cache

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def collect(base, deltas):
    return base, list(deltas)


def test_put_then_cold_get(flame):
    value = {"a": 1, "b": [1, 2, 3], "c": "ünïcödé"}
    ref = put_object("test-app/test-session-001", value)
    assert ref.endpoint == flame.endpoint
    app, session, obj = ref.key.split("/")
    assert (app, session) == ("test-app", "test-session-001")
    assert UUID_RE.match(obj), obj
    assert ref.version == 1
    forget_local_cache()
    assert get_object(ref) == value


def test_each_put_to_a_prefix_creates_a_new_object(flame):
    r1 = put_object("app/s", "first")
    patch_object(r1, "delta")
    r2 = put_object("app/s", "second")
    assert r1.key != r2.key and r2.version == 1
    assert get_object(r2, collect) == ("second", [])
    assert get_object(r1, collect) == ("first", ["delta"])


def test_not_modified_returns_the_cached_instance(flame):
    ref = put_object("app/s", {"payload": list(range(100))})
    first = get_object(ref)
    assert fc._fetch_object_data(ref, 1) is None  # the server answered "not modified"
    second = get_object(ref)
    assert second is first  # no new download: flamepy reused its cached base
    assert second == {"payload": list(range(100))}


def test_not_modified_after_patches(flame):
    ref = put_object("app/s", [0])
    ref = patch_object(ref, 1)
    ref = patch_object(ref, 2)
    assert ref.version == 3
    a = get_object(ref, collect)
    assert a == ([0], [1, 2])
    assert fc._fetch_object_data(ref, 3) is None
    assert get_object(ref, collect) is a  # memoised result of the not-modified entry


def test_patch_only_get_appends_remote_patches_to_the_cached_base(flame, raw):
    ref = put_object("app/s", {"base": True})
    base, deltas = get_object(ref, collect)
    assert deltas == []

    # Another writer patches (raw Flight, so this process's cache is not invalidated).
    reply = wire.patch(raw, ref.key, fc._serialize_object_data({"delta": 1}))
    assert reply.doc["version"] == 2
    fetched = fc._fetch_object_data(ref, 1)
    assert fetched.mode == FetchMode.PATCHES and fetched.version == 2
    assert [(p.version, p.data) for p in fetched.patches] == [(2, {"delta": 1})]

    base2, deltas2 = get_object(ref, collect)
    assert base2 is base  # patch-only: the cached base was kept, only the delta travelled
    assert deltas2 == [{"delta": 1}]

    wire.patch(raw, ref.key, fc._serialize_object_data({"delta": 2}))
    fetched = fc._fetch_object_data(ref, 2)
    assert fetched.mode == FetchMode.PATCHES and fetched.version == 3
    assert [p.version for p in fetched.patches] == [3]
    base3, deltas3 = get_object(ref, collect)
    assert base3 is base
    assert deltas3 == [{"delta": 1}, {"delta": 2}]
    assert fc._cache_get((ref.endpoint, ref.key)).version == 3


def test_version_zero_forces_a_full_response(flame):
    ref = put_object("app/s", "base")
    ref = patch_object(ref, "p1")
    ref = patch_object(ref, "p2")
    cached_base, _ = get_object(ref, collect)

    full = fc._fetch_object_data(ref, 0)
    assert full.mode == FetchMode.FULL and full.version == 3
    assert full.base == "base"
    assert [(p.version, p.data) for p in full.patches] == [(2, "p1"), (3, "p2")]

    zero = ObjectRef(endpoint=ref.endpoint, key=ref.key, version=0)
    base, deltas = get_object(zero, collect)
    assert (base, deltas) == ("base", ["p1", "p2"])
    assert fc._cache_get((ref.endpoint, ref.key)).version == 3


def test_version_zero_bypasses_the_cache(flame):
    ref = put_object("app/s", ["x"])
    cached = get_object(ref)
    again = get_object(ObjectRef(ref.endpoint, ref.key, 0))
    assert again == cached and again is not cached  # downloaded again in full


def test_full_response_after_a_remote_update(flame, raw):
    ref = put_object("app/s", "old")
    assert get_object(ref) == "old"
    reply = wire.put_path(raw, ref.key, fc._serialize_object_data("new"))
    assert reply.doc["key"] == ref.key and reply.doc["version"] == 2
    fetched = fc._fetch_object_data(ref, 1)
    assert fetched.mode == FetchMode.FULL and fetched.version == 2
    assert fetched.base == "new" and fetched.patches == []
    assert get_object(ref) == "new"
    assert fc._cache_get((ref.endpoint, ref.key)).version == 2


def test_update_keeps_key_and_endpoint(flame):
    ref = put_object("app/s", {"v": 1})
    assert get_object(ref) == {"v": 1}
    new = update_object(ref, {"v": 2})
    assert (new.key, new.endpoint, new.version) == (ref.key, ref.endpoint, 2)
    assert get_object(new) == {"v": 2}
    newer = update_object(new, {"v": 3})
    assert newer.version == 3
    assert get_object(newer) == {"v": 3}


def test_update_clears_deltas(flame):
    ref = put_object("app/s", [1])
    for i in range(3):
        ref = patch_object(ref, i)
    assert get_object(ref, collect) == ([1], [0, 1, 2])
    ref = update_object(ref, [9])
    assert ref.version == 5
    assert get_object(ref, collect) == ([9], [])
    forget_local_cache()
    assert get_object(ref, collect) == ([9], [])


class Point:  # defined at module level of a test module: cloudpickle pickles it by reference
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_complex_objects_round_trip(flame):
    class Local:  # pickled by value
        def __init__(self, items):
            self.items = items

        def total(self):
            return sum(self.items)

    ref = put_object("app/s", Local([1, 2, 3]))
    forget_local_cache()
    got = get_object(ref)
    assert got.total() == 6

    value = {
        "text": "日本語 ünïcode", "float": 3.14159, "int": 2**62, "neg": -7, "none": None,
        "bool": [True, False], "bytes": b"\x00\xff" * 10, "nested": {"a": [{"b": (1, 2)}]},
        "point": Point(1, 2), "set": {1, 2}, "empty": [],
    }
    ref = put_object("app/s", value)
    forget_local_cache()
    got = get_object(ref)
    assert {k: v for k, v in got.items() if k != "point"} == {k: v for k, v in value.items() if k != "point"}
    assert (got["point"].x, got["point"].y) == (1, 2)


def test_numpy_and_arrow_values_round_trip(flame):
    values = [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.arange(10, dtype=np.int32),
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        np.arange(20)[::2],  # non-contiguous: cloudpickle path
    ]
    refs = [put_object("app/np", v) for v in values]
    arr_ref = put_object("app/np", pa.array([1, None, 3]))
    forget_local_cache()
    for v, r in zip(values, refs):
        got = get_object(r)
        assert got.dtype == v.dtype and np.array_equal(got, v)
    assert get_object(arr_ref).equals(pa.array([1, None, 3]))


def test_objectref_bson_travels_between_processes(flame):
    ref = put_object("app/s", "shared")
    decoded = ObjectRef.decode(ref.encode())
    assert decoded == ref
    forget_local_cache()
    assert get_object(decoded) == "shared"


def test_top_level_exports_reach_the_server(flame):
    ref = flamepy.put_object("app/exports", 1)
    ref = flamepy.update_object(ref, 2)
    ref = flamepy.cache.patch_object(ref, 3)
    assert flamepy.get_object(ref, collect) == (2, [3])
    assert flamepy.core.get_object(ref, collect) == (2, [3])
    flamepy.cache.delete_objects("app/exports")
    assert ref.version == 3


def test_stale_ref_with_a_newer_version_still_reads(flame):
    ref = put_object("app/s", "v1")
    # A ref claiming a version the server never issued: flamepy asks :0 (no local entry).
    bogus = ObjectRef(ref.endpoint, ref.key, 99)
    assert get_object(bogus) == "v1"


def test_unicode_and_long_keys(flame, tmp_path):
    ref = put_object("äpp/séssion 1", {"ü": "文件"})
    assert ref.key.startswith("äpp/séssion 1/")
    forget_local_cache()
    assert get_object(ref) == {"ü": "文件"}
    f = tmp_path / "f"
    f.write_bytes(b"x")
    long_id = "o" * 200  # the longest component the server takes (key.h)
    assert flamepy.core.upload_object(f"app/s/{long_id}", str(f)).key == f"app/s/{long_id}"
    with pytest.raises(ValueError, match="longer than 200"):
        flamepy.core.upload_object(f"app/s/{long_id}o", str(f))
