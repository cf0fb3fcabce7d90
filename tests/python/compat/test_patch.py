"""patch_object through flamepy 0.6.0: deltas, their order and their fidelity."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from flamepy.core.cache import ObjectRef, get_object, patch_object, put_object, update_object

from . import wire
from .conftest import forget_local_cache


def collect(base, deltas):
    return base, list(deltas)


def test_single_patch(flame):
    ref = put_object("app/s", {"base": 0})
    new = patch_object(ref, {"d": 1})
    assert (new.key, new.endpoint, new.version) == (ref.key, ref.endpoint, 2)
    assert get_object(new, collect) == ({"base": 0}, [{"d": 1}])
    assert get_object(new) == {"base": 0}  # without a deserializer: the base only


def test_several_patches_in_order(flame):
    ref = put_object("app/s", [])
    versions = []
    for i in range(5):
        ref = patch_object(ref, f"delta-{i}")
        versions.append(ref.version)
    assert versions == [2, 3, 4, 5, 6]
    forget_local_cache()
    assert get_object(ref, collect) == ([], [f"delta-{i}" for i in range(5)])


def test_deltas_are_applied_by_the_deserializer(flame):
    ref = put_object("app/s", [1, 2])
    for d in ([3], [4, 5], [6]):
        ref = patch_object(ref, d)
    merged = get_object(ref, lambda base, deltas: base + [x for d in deltas for x in d])
    assert merged == [1, 2, 3, 4, 5, 6]


def test_sixty_patches_in_order_with_consecutive_versions(flame):
    ref = put_object("app/many", {"n": 0})
    for i in range(60):
        new = patch_object(ref, {"i": i})
        assert new.version == ref.version + 1
        ref = new
    assert ref.version == 61
    forget_local_cache()
    base, deltas = get_object(ref, collect)
    assert base == {"n": 0}
    assert deltas == [{"i": i} for i in range(60)]


def test_incremental_gets_between_patches(flame):
    ref = put_object("app/s", "b")
    expected = []
    for i in range(10):
        ref = patch_object(ref, i)
        expected.append(i)
        assert get_object(ref, collect) == ("b", expected)


@pytest.mark.parametrize(
    "delta",
    [
        {"level1": {"level2": {"level3": [1, {"x": (2, 3)}]}}},
        b"\x00\x01\x02\xff" * 1000,
        None,
        {"key": None, "list": [None, 1, None]},
        "",
        0,
        np.arange(100, dtype=np.int64),
        pa.table({"a": [1, 2], "b": ["x", "y"]}),
        pa.record_batch([pa.array([1.5, 2.5])], names=["f"]),
    ],
    ids=["nested", "binary", "none", "none-values", "empty-str", "zero", "numpy", "table", "batch"],
)
def test_delta_fidelity(flame, delta):
    ref = put_object("app/s", "base")
    ref = patch_object(ref, delta)
    forget_local_cache()
    base, deltas = get_object(ref, collect)
    assert base == "base" and len(deltas) == 1
    got = deltas[0]
    if isinstance(delta, np.ndarray):
        assert got.dtype == delta.dtype and np.array_equal(got, delta)
    elif isinstance(delta, (pa.Table, pa.RecordBatch)):
        assert type(got) is type(delta) and got.equals(delta)
    else:
        assert got == delta


class Counter:
    def __init__(self, n):
        self.n = n


def test_class_instance_deltas(flame):
    ref = put_object("app/s", Counter(0))
    for n in (1, 2, 3):
        ref = patch_object(ref, Counter(n))
    forget_local_cache()
    total = get_object(ref, lambda base, deltas: base.n + sum(d.n for d in deltas))
    assert total == 6


def test_patch_of_a_missing_object_is_not_found(flame):
    ref = put_object("app/s", 1)
    missing = ObjectRef(ref.endpoint, "app/s/no-such-object", 1)
    with pytest.raises(KeyError) as exc:  # pyarrow.lib.ArrowKeyError: gRPC NOT_FOUND
        patch_object(missing, "delta")
    assert type(exc.value).__name__ == "ArrowKeyError"
    assert "not found" in str(exc.value)
    assert "NOT_FOUND" in str(exc.value)


def test_patch_of_a_native_table_is_refused(flame):
    # Upstream accepts it and the delta is invisible forever; we refuse it clearly (issue 3).
    ref = put_object("app/s", pa.table({"a": [1]}))
    with pytest.raises(ValueError) as exc:  # ArrowInvalid: INVALID_ARGUMENT
        patch_object(ref, {"x": 1})
    assert "native" in str(exc.value)
    assert get_object(ObjectRef(ref.endpoint, ref.key, 0)).equals(pa.table({"a": [1]}))


def test_delta_limit_is_1000_per_object(flame, raw):
    ref = put_object("app/limit", "base")
    for _ in range(1000):
        last = wire.patch(raw, ref.key, b"d").doc["version"]
    assert last == 1001
    with pytest.raises(ValueError, match="maximum delta count"):  # INVALID_ARGUMENT
        patch_object(ref, "one too many")
    ref = update_object(ref, "collapsed")  # an update collapses the history
    assert patch_object(ref, "fresh").version == ref.version + 1
