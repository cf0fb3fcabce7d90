"""Native Arrow tables, record batches and pandas DataFrames through flamepy 0.6.0."""

from __future__ import annotations

import datetime as dt
import decimal

import pandas as pd
import pyarrow as pa
import pytest
from flamepy.core.cache import ObjectRef, get_object, put_object, update_object

from . import wire
from .conftest import forget_local_cache


def rich_table() -> pa.Table:
    schema = pa.schema(
        [
            pa.field("i64", pa.int64(), nullable=False, metadata={b"unit": b"count"}),
            pa.field("f64", pa.float64()),
            pa.field("s", pa.string()),
            pa.field("ls", pa.large_string()),
            pa.field("b", pa.bool_()),
            pa.field("bin", pa.binary()),
            pa.field("ts", pa.timestamp("us", tz="UTC")),
            pa.field("d", pa.date32()),
            pa.field("dec", pa.decimal128(10, 3)),
            pa.field("lst", pa.list_(pa.int32())),
            pa.field("st", pa.struct([("x", pa.int8()), ("y", pa.string())])),
        ],
        metadata={b"owner": b"compat-suite", b"note": "ünï".encode()},
    )
    return pa.table(
        {
            "i64": [1, 2, 3],
            "f64": [1.5, None, -0.0],
            "s": ["a", None, "ü"],
            "ls": ["x" * 100, "", None],
            "b": [True, False, None],
            "bin": [b"\x00\xff", None, b""],
            "ts": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), None,
                   dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)],
            "d": [dt.date(2020, 2, 29), None, dt.date(1999, 12, 31)],
            "dec": [decimal.Decimal("1.234"), None, decimal.Decimal("-9999999.999")],
            "lst": [[1, 2], [], None],
            "st": [{"x": 1, "y": "a"}, None, {"x": -1, "y": None}],
        },
        schema=schema,
    )


def strip(schema: pa.Schema) -> dict:
    return {k: v for k, v in (schema.metadata or {}).items() if not k.startswith(b"flame.cache.")}


def test_table_round_trip_keeps_types_and_metadata(flame):
    table = rich_table()
    ref = put_object("app/tables", table)
    assert ref.version == 1
    forget_local_cache()
    got = get_object(ref)
    assert isinstance(got, pa.Table)
    assert got.equals(table)
    assert got.schema.equals(table.schema, check_metadata=True)
    assert not any(k.startswith(b"flame.cache.") for k in (got.schema.metadata or {}))
    assert got.schema.field("i64").metadata == {b"unit": b"count"}


def test_table_wire_shape(flame, raw):
    table = pa.Table.from_batches(
        [pa.record_batch({"a": list(range(i * 10, i * 10 + 10))}) for i in range(3)])
    ref = put_object("app/tables", table)
    reply = wire.get(raw, f"{ref.key}:0")
    md = reply.schema.metadata
    assert md[b"flame.cache.format"] == b"arrow-table-v1"
    assert md[b"flame.cache.logical_type"] == b"pyarrow.table"
    assert md[b"flame.cache.version"] == b"1"
    assert md[wire.EPOCH_KEY]
    assert [b.num_rows for b in reply.batches] == [10, 10, 10]  # batch boundaries kept
    assert pa.Table.from_batches(reply.batches).column("a").to_pylist() == list(range(30))
    # A client at the current version gets "not modified": schema only, no batch.
    nm = wire.get(raw, f"{ref.key}:1")
    assert nm.batches == []


def test_table_not_modified_reuses_the_cached_table(flame):
    ref = put_object("app/tables", pa.table({"a": [1, 2]}))
    first = get_object(ref)
    assert get_object(ref) is first


def test_record_batch_round_trip(flame):
    batch = pa.record_batch({"x": [1, 2, 3], "y": ["a", "b", None]})
    ref = put_object("app/batches", batch)
    forget_local_cache()
    got = get_object(ref)
    assert isinstance(got, pa.RecordBatch)
    assert got.equals(batch)


def test_pandas_dataframe_round_trip(flame):
    df = pd.DataFrame(
        {
            "i": pd.Series([1, 2, 3], dtype="int64"),
            "f": [0.5, float("nan"), 2.0],
            "s": ["x", "y", "z"],
            "t": pd.to_datetime(["2024-01-01", "2024-06-30", "1999-12-31"]),
            "b": [True, False, True],
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )
    ref = put_object("app/frames", df)
    forget_local_cache()
    got = get_object(ref)
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, df)


def test_pandas_categorical_column(flame):
    # Categoricals become dictionary-encoded Arrow columns (upstream cannot store them).
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", "a", None]), "n": [1, 2, 3, 4]})
    ref = put_object("app/frames", df)
    forget_local_cache()
    pd.testing.assert_frame_equal(get_object(ref), df)


def test_update_of_a_native_table_may_change_its_schema(flame):
    ref = put_object("app/tables", pa.table({"a": [1, 2, 3]}))
    assert get_object(ref).column_names == ["a"]
    new_table = pa.table({"b": ["x", "y"], "c": [1.0, 2.0]})
    new = update_object(ref, new_table)
    assert (new.key, new.endpoint, new.version) == (ref.key, ref.endpoint, 2)
    got = get_object(new)
    assert got.equals(new_table)
    assert get_object(new) is got  # flame.cache.version = 2: not modified afterwards


def test_switching_between_native_and_opaque(flame):
    ref = put_object("app/mixed", pa.table({"a": [1]}))
    ref = update_object(ref, {"now": "opaque"})
    assert get_object(ref) == {"now": "opaque"}
    ref = update_object(ref, pd.DataFrame({"z": [1, 2]}))
    assert ref.version == 3
    pd.testing.assert_frame_equal(get_object(ref), pd.DataFrame({"z": [1, 2]}))


@pytest.mark.parametrize("kind", ["table", "frame"])
def test_empty_native_table(flame, kind):
    # Upstream rejects zero-row native uploads ("No data received"); we keep the schema.
    table = pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    obj = table if kind == "table" else table.to_pandas()
    ref = put_object("app/empty", obj)
    forget_local_cache()
    got = get_object(ObjectRef(ref.endpoint, ref.key, 0))
    if kind == "table":
        assert got.num_rows == 0 and got.schema.equals(table.schema)
    else:
        assert len(got) == 0 and list(got.columns) == ["a", "s"]
