"""Payload encoding, byte-compatible with flamepy 0.6.0.

Opaque payloads (the ``data`` cell of a ``version: uint64, data: binary`` row) start with a 4-byte tag:

=============  =================================================================
``FLM\\x00``   cloudpickle (pickle protocol ``cloudpickle.DEFAULT_PROTOCOL``)
``FLM\\x01``   numpy array as an Arrow tensor IPC message (numeric dtypes only)
``FLM\\x02``   ``pyarrow.Table`` as an Arrow IPC stream
``FLM\\x03``   ``pyarrow.Array`` as an IPC stream of one batch with one column ``data``
``FLM\\x04``   ``pyarrow.RecordBatch`` as an IPC stream of one batch
=============  =================================================================

Untagged data is read as plain cloudpickle (payloads of older flamepy versions). Anything else
(e.g. the raw bytes of ``flame-cache put``) raises :class:`~flame_object_cache.errors.DecodeError`;
``get_object(ref, raw=True)`` returns such bytes undecoded.

Differences from flamepy, by design: numpy arrays whose dtype Arrow tensors cannot carry (bool,
strings, objects, datetimes, complex, non-native byte order) fall back to cloudpickle instead of
failing. Decoding works on ``pyarrow.Buffer`` slices without copying: Arrow values and numpy
arrays decoded from the tensor path share the (immutable) received buffers, and numpy arrays are
therefore read-only, exactly as with flamepy.

Native tables (``pyarrow.Table``/``RecordBatch``, pandas and polars frames, objects with
``to_arrow()``) are sent as real Arrow streams whose schema carries ``flame.cache.format =
arrow-table-v1``, ``flame.cache.version`` and ``flame.cache.logical_type``.
"""

from __future__ import annotations

import pickle
import sys
from typing import Any, Union

import cloudpickle
import pyarrow as pa

from .errors import DecodeError

TAG_CLOUDPICKLE = b"FLM\x00"
TAG_NUMPY = b"FLM\x01"
TAG_ARROW_TABLE = b"FLM\x02"
TAG_ARROW_ARRAY = b"FLM\x03"
TAG_ARROW_BATCH = b"FLM\x04"
TAG_LEN = 4

FIELD_VERSION = "version"
FIELD_DATA = "data"
FIELD_KIND = "kind"

META_FORMAT = b"flame.cache.format"
META_VERSION = b"flame.cache.version"
META_LOGICAL_TYPE = b"flame.cache.logical_type"
META_EPOCH = b"flame.cache.epoch"
META_PREFIX = b"flame.cache."
FORMAT_ARROW_TABLE = b"arrow-table-v1"

LOGICAL_TABLE = "pyarrow.table"
LOGICAL_RECORD_BATCH = "pyarrow.record_batch"
LOGICAL_PANDAS = "pandas.dataframe"
LOGICAL_POLARS = "polars.dataframe"
LOGICAL_DATASET = "dataset"

#: Schema of opaque uploads (both fields nullable, no metadata), as flamepy sends it.
OPAQUE_SCHEMA = pa.schema([pa.field(FIELD_VERSION, pa.uint64()), pa.field(FIELD_DATA, pa.binary())])

BytesLike = Union[bytes, bytearray, memoryview, pa.Buffer]

_NUMPY_TENSOR_KINDS = frozenset("iuf")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _as_buffer(data: BytesLike) -> pa.Buffer:
    return data if isinstance(data, pa.Buffer) else pa.py_buffer(data)


def _ipc_stream(tag: bytes, schema: pa.Schema, write: Any) -> bytes:
    sink = pa.BufferOutputStream()
    sink.write(tag)
    with pa.ipc.new_stream(sink, schema) as writer:
        write(writer)
    return bytes(sink.getvalue().to_pybytes())


def _tensor_eligible(arr: Any) -> bool:
    dtype = arr.dtype
    return (
        dtype.kind in _NUMPY_TENSOR_KINDS
        and dtype.isnative
        and (arr.flags.c_contiguous or arr.flags.f_contiguous)
    )


def encode_data(obj: Any) -> bytes:
    """Encodes one value as a tagged opaque payload (what goes in a ``data`` cell)."""
    np = _numpy()
    if np is not None and isinstance(obj, np.ndarray) and _tensor_eligible(obj):
        try:
            tensor = pa.Tensor.from_numpy(obj)
        except (pa.ArrowException, TypeError, ValueError):
            pass
        else:
            sink = pa.BufferOutputStream()
            sink.write(TAG_NUMPY)
            pa.ipc.write_tensor(tensor, sink)
            return bytes(sink.getvalue().to_pybytes())
    if isinstance(obj, pa.Table):
        return _ipc_stream(TAG_ARROW_TABLE, obj.schema, lambda w: w.write_table(obj))
    if isinstance(obj, pa.RecordBatch):
        return _ipc_stream(TAG_ARROW_BATCH, obj.schema, lambda w: w.write_batch(obj))
    if isinstance(obj, pa.Array):
        batch = pa.RecordBatch.from_arrays([obj], names=[FIELD_DATA])
        return _ipc_stream(TAG_ARROW_ARRAY, batch.schema, lambda w: w.write_batch(batch))
    return TAG_CLOUDPICKLE + bytes(cloudpickle.dumps(obj, protocol=cloudpickle.DEFAULT_PROTOCOL))


def decode_data(data: BytesLike) -> Any:
    """Decodes a payload produced by :func:`encode_data` (or by flamepy)."""
    buf = _as_buffer(data)
    tag = buf.slice(0, TAG_LEN).to_pybytes() if buf.size >= TAG_LEN else b""
    body = buf.slice(TAG_LEN)
    if tag == TAG_CLOUDPICKLE:
        return cloudpickle.loads(memoryview(body))
    if tag == TAG_NUMPY:
        if _numpy() is None:
            try:
                import numpy  # noqa: F401
            except ImportError as exc:  # pragma: no cover - numpy is normally present
                raise ImportError("numpy is required to decode this object") from exc
        return pa.ipc.read_tensor(pa.BufferReader(body)).to_numpy()
    if tag == TAG_ARROW_TABLE:
        return pa.ipc.open_stream(body).read_all()
    if tag == TAG_ARROW_BATCH:
        return pa.ipc.open_stream(body).read_next_batch()
    if tag == TAG_ARROW_ARRAY:
        return pa.ipc.open_stream(body).read_next_batch().column(0)
    # Untagged: a pickle of an older flamepy starts with the PROTO opcode (0x80).
    if buf.size < 2 or buf.slice(0, 1).to_pybytes() != b"\x80":
        raise _not_ours(buf, "no FLM tag and not a pickle")
    try:
        return cloudpickle.loads(memoryview(buf))
    except (pickle.UnpicklingError, EOFError) as exc:
        raise _not_ours(buf, f"no FLM tag and not a valid pickle ({exc})") from None


def _not_ours(buf: pa.Buffer, why: str) -> Exception:
    head = buf.slice(0, 16).to_pybytes()
    return DecodeError(f"the object's {buf.size} bytes are not in the SDK's format ({why}; they start "
                       f"with {head!r}); read them with get_object(ref, raw=True)")


def opaque_batch(payload: bytes) -> pa.RecordBatch:
    """One ``version=0, data=payload`` row, as flamepy uploads opaque values and deltas."""
    return pa.RecordBatch.from_arrays(
        [pa.array([0], type=pa.uint64()), pa.array([payload], type=pa.binary())], schema=OPAQUE_SCHEMA
    )


def is_native_schema(schema: pa.Schema) -> bool:
    return (schema.metadata or {}).get(META_FORMAT) == FORMAT_ARROW_TABLE


def schema_version(schema: pa.Schema) -> int:
    """``flame.cache.version`` as an int (0 if absent or unparsable, like flamepy)."""
    raw = (schema.metadata or {}).get(META_VERSION)
    try:
        return int(raw.decode()) if raw is not None else 0
    except ValueError:
        return 0


def schema_epoch(schema: pa.Schema) -> str | None:
    raw = (schema.metadata or {}).get(META_EPOCH)
    return raw.decode("utf-8", "replace") if raw is not None else None


def _with_cache_metadata(schema: pa.Schema, logical_type: str) -> pa.Schema:
    metadata = dict(schema.metadata or {})
    metadata[META_FORMAT] = FORMAT_ARROW_TABLE
    metadata[META_VERSION] = b"0"
    metadata[META_LOGICAL_TYPE] = logical_type.encode()
    return schema.with_metadata(metadata)


def native_payload(obj: Any) -> tuple[pa.Schema, list[pa.RecordBatch]] | None:
    """The native-table upload (schema with ``flame.cache.*`` metadata, batches) for tabular
    values, or None for everything else. Detection order is flamepy's."""
    table: pa.Table | None = None
    batch: pa.RecordBatch | None = None
    logical: str | None = None
    pd = sys.modules.get("pandas")
    pl = sys.modules.get("polars")
    if isinstance(obj, pa.Table):
        table, logical = obj, LOGICAL_TABLE
    elif isinstance(obj, pa.RecordBatch):
        batch, logical = obj, LOGICAL_RECORD_BATCH
    elif pd is not None and isinstance(obj, pd.DataFrame):
        table, logical = pa.Table.from_pandas(obj), LOGICAL_PANDAS
    elif pl is not None and isinstance(obj, pl.DataFrame):
        table, logical = obj.to_arrow(), LOGICAL_POLARS
    elif pl is not None and isinstance(obj, pl.LazyFrame):
        table, logical = obj.collect().to_arrow(), LOGICAL_POLARS
    elif hasattr(obj, "to_arrow") and not isinstance(obj, (pa.Array, pa.ChunkedArray, type)):
        try:
            converted = obj.to_arrow()
        except TypeError:
            converted = None
        if isinstance(converted, pa.Table):
            table, logical = converted, LOGICAL_DATASET
        elif isinstance(converted, pa.RecordBatch):
            batch, logical = converted, LOGICAL_DATASET
    if logical is None:
        return None
    if batch is not None:
        schema = _with_cache_metadata(batch.schema, logical)
        return schema, [batch.replace_schema_metadata(schema.metadata)]
    assert table is not None
    schema = _with_cache_metadata(table.schema, logical)
    table = table.replace_schema_metadata(schema.metadata)
    batches = table.to_batches()
    if not batches:
        batches = [pa.RecordBatch.from_pylist([], schema=schema)]
    return schema, batches


def strip_cache_metadata(table: pa.Table) -> pa.Table:
    metadata = {k: v for k, v in (table.schema.metadata or {}).items() if not k.startswith(META_PREFIX)}
    return table.replace_schema_metadata(metadata or None)


def decode_native(table: pa.Table) -> Any:
    """Rebuilds the value of a native-table reply by its logical type (flamepy's rules): a
    RecordBatch if it was one and arrived as one batch, a pandas/polars frame if that library is
    importable, otherwise a ``pyarrow.Table``. ``flame.cache.*`` metadata is removed."""
    logical = (table.schema.metadata or {}).get(META_LOGICAL_TYPE, LOGICAL_TABLE.encode()).decode()
    table = strip_cache_metadata(table)
    if logical == LOGICAL_RECORD_BATCH:
        batches = table.to_batches()
        return batches[0] if len(batches) == 1 else table
    if logical == LOGICAL_PANDAS:
        try:
            import pandas  # noqa: F401
        except ImportError:
            return table
        return table.to_pandas()
    if logical == LOGICAL_POLARS:
        try:
            import polars
        except ImportError:
            return table
        return polars.from_arrow(table)
    return table
