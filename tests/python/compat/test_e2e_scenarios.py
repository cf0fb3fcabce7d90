"""The scenarios of upstream's e2e/tests/test_cache.py (upstream-client.md §7.2: cache
pressure, edge cases, integrity, session isolation), written anew for this suite. Each
object is verified twice: through flamepy's normal path (client-side cache, versioned get)
and after dropping flamepy's local cache, so the bytes really come from the server."""

from __future__ import annotations

import os

from flamepy.core.cache import ObjectRef, get_object, put_object, update_object

from .conftest import forget_local_cache

KB = 1000


def payload(tag: int, size: int = 100 * KB) -> dict:
    return {"tag": tag, "blob": os.urandom(size)}


def assert_all(pairs) -> None:
    for ref, expected in pairs:
        assert get_object(ref) == expected
    forget_local_cache()
    for ref, expected in pairs:
        assert get_object(ref) == expected


def test_objects_remain_retrievable_after_many_writes(flame):
    pairs = [(put_object("e2e/pressure", v), v) for v in (payload(i) for i in range(15))]
    assert_all(pairs)


def test_accessed_objects_remain_retrievable_after_more_writes(flame):
    pairs = []
    for i in range(15):
        v = payload(i)
        pairs.append((put_object("e2e/pressure", v), v))
        if i % 3 == 0:
            assert get_object(pairs[i // 2][0]) == pairs[i // 2][1]
    assert_all(pairs)


def test_early_object_remains_retrievable_after_many_writes(flame):
    first = payload(-1)
    ref = put_object("e2e/pressure", first)
    others = [put_object("e2e/pressure", payload(i)) for i in range(20)]
    assert len({r.key for r in others} | {ref.key}) == 21
    assert_all([(ref, first)])


def test_repeatedly_accessed_object_remains_retrievable(flame):
    hot = payload(-1)
    ref = put_object("e2e/pressure", hot)
    for i in range(20):
        put_object("e2e/pressure", payload(i))
        assert get_object(ref) == hot
    assert_all([(ref, hot)])


def test_single_large_object(flame):
    v = payload(0, 500 * KB)
    assert_all([(put_object("e2e/edge", v), v)])


def test_many_small_objects(flame):
    pairs = [(put_object("e2e/small", v), v) for v in (payload(i, KB) for i in range(100))]
    assert len({r.key for r, _ in pairs}) == 100
    assert all(r.version == 1 for r, _ in pairs)
    assert_all(pairs)


def test_updated_object_keeps_its_new_value_after_more_writes(flame):
    ref = put_object("e2e/edge", payload(0))
    new_value = payload(1)
    ref = update_object(ref, new_value)
    assert ref.version == 2
    for i in range(10):
        put_object("e2e/edge", payload(i + 2))
    assert_all([(ref, new_value)])
    assert get_object(ObjectRef(ref.endpoint, ref.key, 0)) == new_value


def test_session_isolation(flame):
    a = [(put_object("e2e/session-a", ("a", i)), ("a", i)) for i in range(5)]
    b = [(put_object("e2e/session-b", ("b", i)), ("b", i)) for i in range(5)]
    assert all(r.key.startswith("e2e/session-a/") for r, _ in a)
    assert all(r.key.startswith("e2e/session-b/") for r, _ in b)
    assert not {r.key for r, _ in a} & {r.key for r, _ in b}
    assert_all(a + b)


def test_data_integrity_after_many_writes(flame):
    value = {"unicode": "héllo wörld 你好 🚀", "float": 3.141592653589793, "neg": -1e-300,
             "list": [1, "two", 3.0, None], "dict": {"nested": {"deep": [True, False]}},
             "none": None, "bool": True, "int": -(2**63), "bytes": bytes(range(256))}
    ref = put_object("e2e/integrity", value)
    for i in range(20):
        put_object("e2e/integrity", payload(i))
    assert_all([(ref, value)])


def test_retrieval_after_multiple_write_cycles(flame):
    target = {"target": os.urandom(1000)}
    ref = put_object("e2e/integrity", target)
    for cycle in range(3):
        for i in range(10):
            put_object("e2e/integrity", payload(cycle * 10 + i))
        assert get_object(ref) == target
    assert_all([(ref, target)])


def test_mixed_access_pattern_preserves_data(flame):
    markers = [(put_object("e2e/mixed", {"marker": i}), {"marker": i}) for i in range(5)]
    for i in range(15):
        put_object("e2e/mixed", payload(i))
        ref, v = markers[i % 5]
        assert get_object(ref) == v
    assert_all(markers)
