"""What the server says about objects without sending them: ``list_objects``, ``stat``, ``exists``.

Our server puts ``version=<N>;kind=opaque|table;deltas=<D>`` in the ``app_metadata`` of every
``ListFlights`` entry and of ``GetFlightInfo`` for an existing key (docs/protocol.md), with the
payload size in ``total_bytes``: ``stat`` is one ``GetFlightInfo`` and transfers no payload.
Upstream's server sends no metadata; then existence and kind come from ``GetSchema`` (NOT_FOUND
for a missing key; a native table's schema carries its version) and the size from the listing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.flight as flight

from . import serialization as ser
from .keys import ObjectKey, validate_component

__all__ = ["ObjectInfo", "parse_list_prefix", "listed", "schema_info", "flight_info"]


@dataclass(frozen=True)
class ObjectInfo:
    """One object as the server describes it.

    ``size``: payload bytes as the server counts them (an opaque object: its base and deltas; a
    table: its buffers). ``kind``: ``"opaque"`` (bytes: pickled, raw or a file) or ``"table"`` (a
    native Arrow table). ``version``: the current version. ``deltas``: the number of deltas.
    ``kind``, ``version`` and ``deltas`` are ``None`` when the server does not report them
    (upstream's server; there ``stat`` still learns ``kind`` and a table's version)."""

    key: str
    size: int
    endpoint: str
    kind: str | None = None
    version: int | None = None
    deltas: int | None = None


def parse_metadata(app_metadata: bytes | str | None) -> dict[str, str] | None:
    """``version=<N>;kind=…;deltas=<D>`` as a dict; ``None`` when there is no ``version=``."""
    if not app_metadata:
        return None
    text = app_metadata.decode("utf-8", "replace") if isinstance(app_metadata, bytes) else app_metadata
    if not text.startswith("version="):
        return None
    out: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            out[name] = value
    return out


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _info(info: flight.FlightInfo, key: str, endpoint: str) -> ObjectInfo:
    where = endpoint
    if info.endpoints and info.endpoints[0].locations:
        uri = info.endpoints[0].locations[0].uri
        where = uri.decode() if isinstance(uri, bytes) else str(uri)
    md = parse_metadata(info.app_metadata) or {}
    return ObjectInfo(key=key, size=max(int(info.total_bytes), 0), endpoint=where, kind=md.get("kind"),
                      version=_int(md.get("version")), deltas=_int(md.get("deltas")))


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
        out.append(_info(info, key, endpoint))
    out.sort(key=lambda o: o.key)
    return out


def flight_info(client: flight.FlightClient, options: flight.FlightCallOptions, endpoint: str,
                key: str) -> ObjectInfo | None:
    """``key`` from one ``GetFlightInfo`` (metadata only); ``None`` when the server reports no
    version (the key is absent, or the server is upstream's)."""
    info = client.get_flight_info(flight.FlightDescriptor.for_path(key), options)
    if parse_metadata(info.app_metadata) is None:
        return None
    found = _info(info, key, endpoint)
    if found.kind is None:
        schema = info.schema
        found = ObjectInfo(key=found.key, size=found.size, endpoint=found.endpoint,
                           kind="table" if ser.is_native_schema(schema) else "opaque",
                           version=found.version, deltas=found.deltas)
    return found


def schema_info(client: flight.FlightClient, options: flight.FlightCallOptions,
                key: str) -> tuple[str, int | None]:
    """``(kind, version)`` of ``key`` from ``GetSchema``; raises NOT_FOUND if it is missing."""
    schema = client.get_schema(flight.FlightDescriptor.for_path(key), options).schema
    if ser.is_native_schema(schema):
        return "table", ser.schema_version(schema)
    return "opaque", None
