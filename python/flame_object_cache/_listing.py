"""What the server says about objects without sending them: ``list_objects``, ``stat``, ``exists``.

The protocol has no metadata-only read of an object's version (docs/protocol.md): listing uses
``ListFlights`` (every readable object with its payload size), existence and kind use
``GetSchema`` (NOT_FOUND for a missing key; a native table's schema carries its version).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.flight as flight

from . import serialization as ser
from .keys import ObjectKey, validate_component

__all__ = ["ObjectInfo", "parse_list_prefix", "listed", "schema_info"]


@dataclass(frozen=True)
class ObjectInfo:
    """One object as the server describes it.

    ``size``: payload bytes as the server counts them (an opaque object: its base and deltas; a
    table: its buffers). ``kind``: ``"object"`` (opaque bytes: pickled or raw) or ``"table"`` (a
    native Arrow table); ``None`` in :func:`list_objects` results. ``version``: the current
    version when the server reports it without sending the object (native tables), else
    ``None``."""

    key: str
    size: int
    endpoint: str
    kind: str | None = None
    version: int | None = None


def parse_list_prefix(prefix: str | None) -> ObjectKey | str | None:
    """``None``/``""``: everything; ``<app>``: an app (a ``str``); ``<app>/*``,
    ``<app>/<session>`` or a full key: that pattern (matched by whole components)."""
    if not prefix:
        return None
    if "/" not in prefix:
        validate_component(prefix, "app")
        return prefix
    return ObjectKey.from_path(prefix)


def _matches(selector: ObjectKey | str | None, key: str) -> bool:
    if selector is None:
        return True
    if isinstance(selector, str):
        return key.split("/", 1)[0] == selector
    return selector.matches_key(key)


def listed(client: flight.FlightClient, options: flight.FlightCallOptions, endpoint: str,
           selector: ObjectKey | str | None) -> list[ObjectInfo]:
    """The objects ``ListFlights`` reports that ``selector`` matches, sorted by key."""
    out: list[ObjectInfo] = []
    for info in client.list_flights(options=options):
        path = info.descriptor.path or []
        key = "/".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in path)
        if not _matches(selector, key):
            continue
        where = endpoint
        if info.endpoints and info.endpoints[0].locations:
            uri = info.endpoints[0].locations[0].uri
            where = uri.decode() if isinstance(uri, bytes) else str(uri)
        out.append(ObjectInfo(key=key, size=max(int(info.total_bytes), 0), endpoint=where))
    out.sort(key=lambda o: o.key)
    return out


def schema_info(client: flight.FlightClient, options: flight.FlightCallOptions,
                key: str) -> tuple[str, int | None]:
    """``(kind, version)`` of ``key`` from ``GetSchema``; raises NOT_FOUND if it is missing."""
    schema = client.get_schema(flight.FlightDescriptor.for_path(key), options).schema
    if ser.is_native_schema(schema):
        return "table", ser.schema_version(schema)
    return "object", None


