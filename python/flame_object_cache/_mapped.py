"""Same-machine zero copy: map an object's immutable Arrow IPC files instead of receiving them.

A client on the server's machine (a node tier, or any server with disk storage) asks with the
Flight action ``MAP`` for the files of an object's current version (docs/protocol.md, "MAP"),
opens them with ``pyarrow.memory_map`` (read-only) and decodes the payload from the mapping:
numpy arrays, Arrow arrays and tables are views of the page cache, shared by every process
that maps the same version. Nothing is copied over gRPC and nothing is copied in this process.

Safety: the server never modifies a file in place (a new version is a new file, renamed into
place) and an opened file's pages stay until the last mapping is gone, even after the server
unlinks its name (POSIX). Between the ``MAP`` reply and ``open()`` a name may have been
replaced or removed; each opened file's footer (``flame.cache.version`` and
``flame.cache.checksum``) is compared with the reply, and on any mismatch the client asks
again (three attempts), then reads over gRPC.

Fallback is transparent: when the endpoint is not a loopback address, ``FLAME_CACHE_ZERO_COPY``
is ``0``/``false``/``off``, the server refuses ``MAP`` (not the same machine, ``cache.zero_copy:
false``, no local files, a server that does not know ``MAP``), or the files cannot be opened
(another user, another mount namespace), :func:`map_object` returns what ``get_object`` returns
(``raw=True``: as a ``pyarrow.Buffer``). :func:`map_stats` counts both paths.

Checksums: the footer checksum is compared as recorded (it identifies the bytes the server
wrote); the bytes are not hashed again on this path, which would read every page. The server
verifies checksums whenever it reads a file itself.
"""

from __future__ import annotations

import ipaddress
import json
import os
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc as ipc

from . import serialization as ser
from .endpoints import parse_endpoint
from .errors import CacheError

if TYPE_CHECKING:
    from .client import Client, ObjectRef

MAP_ACTION = "MAP"
_META_CHECKSUM = b"flame.cache.checksum"
_META_VERSION = b"flame.cache.version"
_ATTEMPTS = 3
_stats_lock = threading.Lock()


class _Stale(Exception):
    """A file no longer holds what the MAP reply listed (replaced or removed since)."""


@dataclass
class MappedFiles:
    """The mapped version of one object: its base and deltas as buffers over the mapping."""

    key: str
    version: int
    base: Optional[pa.Buffer]  # opaque base payload (None for a native table)
    table: Optional[pa.Table]  # native table (None for an opaque object)
    deltas: List[pa.Buffer]
    paths: List[str]


def enabled() -> bool:
    """False when ``FLAME_CACHE_ZERO_COPY`` turns the mapped path off."""
    return os.environ.get("FLAME_CACHE_ZERO_COPY", "1").strip().lower() not in ("0", "false", "off", "no")


def is_loopback_endpoint(endpoint: str) -> bool:
    """True if ``endpoint``'s host is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    try:
        host = parse_endpoint(endpoint).host
    except Exception:  # noqa: BLE001 - a bad endpoint is not ours to report here
        return False
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _open_file(entry: dict[str, Any]) -> tuple[ipc.RecordBatchFileReader, Any]:
    path = str(entry["path"])
    try:
        mapped = pa.memory_map(path, "r")
    except FileNotFoundError as exc:
        raise _Stale(path) from exc
    if mapped.size() != int(entry["bytes"]):
        raise _Stale(path)
    reader = ipc.open_file(mapped)
    meta = reader.metadata or {}
    want_sum = str(entry.get("checksum") or "").encode()
    if want_sum and meta.get(_META_CHECKSUM) != want_sum:
        raise _Stale(path)
    recorded = meta.get(_META_VERSION)
    if recorded is not None and int(recorded) != int(entry["version"]):
        raise _Stale(path)
    return reader, mapped


def _opaque_payload(reader: ipc.RecordBatchFileReader, version: int) -> pa.Buffer:
    """The payload of an opaque file: a slice of the mapping when it is one row (what the
    server writes); other shapes (several rows or batches) are concatenated (a copy)."""
    parts: list[pa.Buffer] = []
    for b in range(reader.num_record_batches):
        batch = reader.get_batch(b)
        if batch.num_rows == 0:
            continue
        if not parts and int(batch.column(0)[0].as_py() or 0) not in (version, 0):
            raise _Stale("version column")
        col = batch.column(1)
        wide = pa.types.is_large_binary(col.type) or pa.types.is_large_string(col.type)
        offsets, data = col.buffers()[1], col.buffers()[2]
        size = 8 if wide else 4
        fmt = "<q" if wide else "<i"
        for row in range(batch.num_rows):
            if col.null_count and not col[row].is_valid:
                continue
            i = col.offset + row
            start = struct.unpack_from(fmt, offsets, i * size)[0]
            end = struct.unpack_from(fmt, offsets, (i + 1) * size)[0]
            parts.append(data.slice(start, end - start) if data is not None else pa.py_buffer(b""))
    if len(parts) == 1:
        return parts[0]
    return pa.py_buffer(b"".join(p.to_pybytes() for p in parts))


def _map_once(client: Client, endpoint: str, key: str) -> MappedFiles:
    def call(c: flight.FlightClient) -> list[Any]:
        return list(c.do_action(flight.Action(MAP_ACTION, key.encode()), client._options()))

    results = client._call(endpoint, call, idempotent=True)
    if len(results) != 1:
        raise CacheError(f"MAP {key}: expected one result, got {len(results)}")
    reply = json.loads(results[0].body.to_pybytes())
    files = reply["files"]
    if not files or reply["key"] != key:
        raise CacheError(f"MAP {key}: malformed reply")
    base_reader, _ = _open_file(files[0])
    if reply.get("native"):
        table = base_reader.read_all()
        if len(files) != 1:
            raise CacheError(f"MAP {key}: a native table with deltas")
        return MappedFiles(key, int(reply["version"]), None, table, [], [files[0]["path"]])
    base = _opaque_payload(base_reader, int(files[0]["version"]))
    deltas = []
    for f in files[1:]:
        reader, _ = _open_file(f)
        deltas.append(_opaque_payload(reader, int(f["version"])))
    return MappedFiles(key, int(reply["version"]), base, None, deltas, [str(f["path"]) for f in files])


def try_map(client: Client, ref: ObjectRef) -> MappedFiles | None:
    """The mapped files of ``ref``'s object, or None when the mapped path is not available."""
    endpoint = ref.endpoint or client.endpoint
    if not enabled() or not is_loopback_endpoint(endpoint):
        return None
    for _ in range(_ATTEMPTS):
        try:
            return _map_once(client, endpoint, ref.key)
        except _Stale:
            continue  # changed between the reply and open(): ask again
        except (CacheError, OSError, pa.ArrowException, ValueError, KeyError, TypeError):
            return None  # refused, unreadable, not ours: read over gRPC
    return None


def _count(client: Client, name: str) -> None:
    with _stats_lock:
        stats = client.__dict__.setdefault("_map_stats", {"mapped": 0, "fallback": 0})
        stats[name] += 1


def map_stats(client: Client) -> dict[str, int]:
    """How many :func:`map_object` calls were served by mapping (``mapped``) and over gRPC
    (``fallback``)."""
    with _stats_lock:
        return dict(client.__dict__.get("_map_stats", {"mapped": 0, "fallback": 0}))


def map_object(client: Client, ref: ObjectRef, deserializer: Optional[Callable[[Any, List[Any]], Any]] = None,
               *, raw: bool = False) -> Any:
    """``get_object`` through the mapped path when possible (see the module documentation).

    Without ``raw`` the result is what ``get_object`` returns, decoded from the mapping
    (numpy arrays and Arrow values are read-only views of it). ``raw=True``: the base as a
    ``pyarrow.Buffer`` (a native table as a ``pyarrow.Table``), or ``deserializer(base,
    [deltas...])`` of buffers. The mapping stays alive as long as anything decoded from it.
    Never served from, nor stored in, the client-side cache: the page cache is the cache."""
    mapped = try_map(client, ref)
    if mapped is None:
        _count(client, "fallback")
        value = client.get_object(ref, deserializer, raw=raw)
        if raw and deserializer is None and isinstance(value, bytes):
            return pa.py_buffer(value)
        return value
    _count(client, "mapped")
    if mapped.table is not None:
        return ser.strip_cache_metadata(mapped.table) if raw else ser.decode_native(mapped.table)
    assert mapped.base is not None
    if raw:
        return mapped.base if deserializer is None else deserializer(mapped.base, list(mapped.deltas))
    base = ser.decode_data(mapped.base)
    if deserializer is None:
        return base
    return deserializer(base, [ser.decode_data(d) for d in mapped.deltas])
