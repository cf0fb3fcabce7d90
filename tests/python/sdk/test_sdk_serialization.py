"""Payload encoding is byte-identical to flamepy 0.6.0's and decodes flamepy's output."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from flamepy.core import cache as fp

from flame_object_cache import ObjectKey, ObjectRef
from flame_object_cache import serialization as ser


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


SAME_BYTES = [
    {"a": 1, "b": [1, 2, 3]},
    [1, "two", 3.0, None],
    "text",
    12345,
    None,
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.arange(10, dtype=np.int32),
    np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
    np.arange(10)[::2],  # not contiguous: cloudpickle in both
    pa.table({"x": [1, 2], "y": ["a", "b"]}),
    pa.record_batch({"x": [1.5, 2.5]}),
    pa.array([1, 2, 3]),
    pa.chunked_array([[1, 2], [3]]),
]


@pytest.mark.parametrize("value", SAME_BYTES, ids=lambda v: type(v).__name__)
def test_encoding_is_byte_identical_to_flamepy(value: object) -> None:
    ours = ser.encode_data(value)
    theirs = fp._serialize_object_data(value)
    assert ours == theirs
    assert ours[:4] == theirs[:4]
    assert ours[:3] == b"FLM"


def _equal(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (pa.Table, pa.RecordBatch, pa.Array, pa.ChunkedArray)):
        return a.equals(b)  # type: ignore[arg-type]
    return a == b


@pytest.mark.parametrize("value", SAME_BYTES, ids=lambda v: type(v).__name__)
def test_both_decoders_read_both_encoders(value: object) -> None:
    assert _equal(value, ser.decode_data(fp._serialize_object_data(value)))
    assert _equal(value, fp._deserialize_object_data(ser.encode_data(value)))
    assert _equal(value, ser.decode_data(pa.py_buffer(ser.encode_data(value))))


def test_tags() -> None:
    assert ser.encode_data({"x": 1})[:4] == b"FLM\x00"
    assert ser.encode_data(np.zeros(3))[:4] == b"FLM\x01"
    assert ser.encode_data(pa.table({"a": [1]}))[:4] == b"FLM\x02"
    assert ser.encode_data(pa.array([1]))[:4] == b"FLM\x03"
    assert ser.encode_data(pa.record_batch({"a": [1]}))[:4] == b"FLM\x04"


def test_untagged_cloudpickle_is_read() -> None:
    import cloudpickle

    assert ser.decode_data(cloudpickle.dumps({"legacy": True})) == {"legacy": True}


@pytest.mark.parametrize(
    "value",
    [
        np.array([True, False, True]),
        np.array(["a", "bc"]),
        np.array([{"a": 1}, None], dtype=object),
        np.array([1 + 2j, 3j]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.arange(4, dtype=">f8"),
    ],
    ids=["bool", "str", "object", "complex", "datetime", "big-endian"],
)
def test_non_numeric_numpy_falls_back_to_cloudpickle(value: np.ndarray) -> None:
    data = ser.encode_data(value)
    assert data[:4] == b"FLM\x00"
    back = ser.decode_data(data)
    assert back.dtype == value.dtype and (back == value).all()
    assert (fp._deserialize_object_data(data) == value).all()


def test_the_upstream_defects_we_fix_are_real() -> None:
    # flamepy sends these through Arrow tensors: strings fail, bools come back as uint8,
    # big-endian values come back wrong (reference: upstream-client.md §8 item 3).
    with pytest.raises(pa.ArrowNotImplementedError):
        fp._serialize_object_data(np.array(["a", "bc"]))
    assert fp._deserialize_object_data(fp._serialize_object_data(np.array([True]))).dtype == np.uint8
    big = np.arange(1, 4, dtype=">f8")
    assert not (fp._deserialize_object_data(fp._serialize_object_data(big)) == big).all()


def test_numpy_decoded_from_tensor_is_read_only() -> None:
    arr = ser.decode_data(ser.encode_data(np.arange(5.0)))
    assert not arr.flags.writeable


def test_opaque_batch_matches_flamepy() -> None:
    ours = ser.opaque_batch(ser.encode_data({"k": "v"}))
    theirs = fp._serialize_object({"k": "v"})
    assert ours.schema.equals(theirs.schema, check_metadata=True)
    assert ours.equals(theirs)


NATIVE = [
    pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}),
    pa.record_batch({"a": [1.0, 2.0]}),
    pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}),
    pa.table({"a": pa.array([], type=pa.int64())}),
]


@pytest.mark.parametrize("value", NATIVE, ids=lambda v: type(v).__name__)
def test_native_payload_matches_flamepy(value: object) -> None:
    schema, batches = ser.native_payload(value)  # type: ignore[misc]
    theirs = fp._prepare_cache_payload(value)
    assert theirs.native_arrow
    assert schema.equals(theirs.schema, check_metadata=True)
    assert len(batches) == len(theirs.batches)
    for ours_b, theirs_b in zip(batches, theirs.batches):
        assert ours_b.equals(theirs_b)
        assert ours_b.schema.equals(theirs_b.schema, check_metadata=True)


def test_native_decode_by_logical_type() -> None:
    df = pd.DataFrame({"a": [1, 2]})
    schema, batches = ser.native_payload(df)  # type: ignore[misc]
    table = pa.Table.from_batches(batches, schema=schema)
    back = ser.decode_native(table)
    assert isinstance(back, pd.DataFrame) and back.equals(df)
    schema, batches = ser.native_payload(pa.record_batch({"a": [1]}))  # type: ignore[misc]
    back = ser.decode_native(pa.Table.from_batches(batches, schema=schema))
    assert isinstance(back, pa.RecordBatch)
    assert not any(k.startswith(b"flame.cache.") for k in (back.schema.metadata or {}))


def test_non_tabular_values_are_not_native() -> None:
    for value in ({"a": 1}, np.zeros(3), pa.array([1]), datetime.date.today()):
        assert ser.native_payload(value) is None


def test_object_ref_bson_is_identical_to_flamepy() -> None:
    for version in (0, 1, 2**40):
        ours = ObjectRef("grpc://10.0.0.1:9090", "app/s/obj", version)
        theirs = fp.ObjectRef("grpc://10.0.0.1:9090", "app/s/obj", version)
        assert ours.encode() == theirs.encode()
        assert ObjectRef.decode(theirs.encode()) == ours
        assert fp.ObjectRef.decode(ours.encode()) == theirs


@pytest.mark.parametrize("path", ["a", "a/b/c/d", "/b", "a//c", "a/../c", "a/b\\c", "*/b", "a/*/c",
                                  "a/b/*", "a/./c", "a/b\x00/c", "a/b/c\n"])
def test_invalid_keys_are_rejected(path: str) -> None:
    with pytest.raises(ValueError):
        ObjectKey.from_path(path)


def test_key_matching_is_component_exact() -> None:
    assert ObjectKey.from_path("app/*").matches_key("app/s/o")
    assert not ObjectKey.from_path("app/*").matches_key("app2/s/o")
    assert ObjectKey.from_path("app/s").matches_key("app/s/o")
    assert not ObjectKey.from_path("app/s").matches_key("app/s2/o")
    assert ObjectKey.from_path("app/s/o").matches_key("app/s/o")
    assert not ObjectKey.from_path("app/s/o").matches_key("app/s/o2")
    assert not ObjectKey.from_path("app/s").matches_key("app/s/o/x")
