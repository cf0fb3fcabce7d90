"""Exceptions raised by the SDK and how server status codes map to them.

Every error from a call is a :class:`CacheError`. Each subclass also derives from the built-in
exception a caller would naturally catch, so code written for flamepy (which raises ``ValueError``
and leaks pyarrow's ``KeyError``/``ValueError`` subclasses) keeps working:

======================================  ==========================  ============================
Server status (gRPC / Arrow)            Exception                   Also a
======================================  ==========================  ============================
NOT_FOUND (``ArrowKeyError``)           :class:`ObjectNotFound`     ``KeyError``
INVALID_ARGUMENT, FAILED_PRECONDITION,  :class:`InvalidRequest`     ``ValueError``
OUT_OF_RANGE (``ArrowInvalid``)
RESOURCE_EXHAUSTED, or UNAVAILABLE      :class:`CacheFull`          ``ValueError``
whose message starts with it (capacity)
UNAVAILABLE, connection refused         :class:`CacheUnavailable`   ``ConnectionError``
DEADLINE_EXCEEDED                       :class:`CacheTimeout`       ``TimeoutError``
UNAUTHENTICATED, PERMISSION_DENIED      :class:`CacheAuthError`     ``PermissionError``
UNIMPLEMENTED                           :class:`CacheError`         -
INTERNAL, UNKNOWN, anything else        :class:`ServerError`        -
malformed reply from the server         :class:`ProtocolError`      ``ValueError``
bytes not in the SDK's format           :class:`DecodeError`        ``ValueError``
======================================  ==========================  ============================

Invalid keys raise a plain ``ValueError`` before any network access (as in flamepy). The original
pyarrow exception is kept as the ``original`` attribute, not as ``__cause__``, so that an uncaught
error prints the SDK's frames and the server's message, not a chain of pyarrow internals.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.flight as flight

__all__ = [
    "CacheError",
    "ObjectNotFound",
    "InvalidRequest",
    "CacheFull",
    "CacheUnavailable",
    "CacheTimeout",
    "CacheAuthError",
    "ServerError",
    "ProtocolError",
    "DecodeError",
    "map_error",
]


class CacheError(Exception):
    """Base class of every error raised by a cache call. ``original``: the pyarrow/Flight
    exception it translates, if any (its message is cleaned into this one)."""

    original: BaseException | None = None


class ObjectNotFound(CacheError, KeyError):
    """The object (or the patch target) does not exist on the server."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "object not found"


class InvalidRequest(CacheError, ValueError):
    """The server refused the request as invalid (bad key, empty upload, ...)."""


class CacheFull(InvalidRequest):
    """The server refused a write because it has no room (RESOURCE_EXHAUSTED)."""


class CacheUnavailable(CacheError, ConnectionError):
    """The server could not be reached (after the retries allowed for the call)."""


class CacheTimeout(CacheError, TimeoutError):
    """The call's deadline expired."""


class CacheAuthError(CacheError, PermissionError):
    """TLS client authentication or authorisation failed."""


class ServerError(CacheError):
    """The server failed internally."""


class ProtocolError(CacheError, ValueError):
    """The server's reply does not follow the protocol."""


class DecodeError(CacheError, ValueError):
    """The object's bytes are not in the SDK's format (e.g. written by ``flame-cache put``):
    read them with ``get_object(ref, raw=True)``."""


_FLIGHT_PREFIX = re.compile(r"^Flight returned [a-z ]+ error, with message: ")


def _clean(message: str) -> str:
    """The server's message without pyarrow's transport decorations (kept in ``original``)."""
    message = _FLIGHT_PREFIX.sub("", message)
    for marker in (". gRPC client debug context:", " gRPC client debug context:", ". Detail: ", " Detail: "):
        cut = message.find(marker)
        if cut > 0:
            message = message[:cut]
    return message.strip()


def map_error(exc: BaseException) -> BaseException:
    """Translates a pyarrow/Flight exception into the SDK's; returns others unchanged."""
    if isinstance(exc, CacheError):
        return exc
    message = _clean(str(exc))
    mapped: CacheError
    raw = str(exc)
    # Some calls (get_schema, list_flights) raise a plain OSError "Flight returned timeout error".
    if (isinstance(exc, flight.FlightTimedOutError) or "DEADLINE_EXCEEDED" in raw
            or raw.startswith("Flight returned timeout error")):
        mapped = CacheTimeout(message)
    elif isinstance(exc, pa.ArrowCapacityError) or "RESOURCE_EXHAUSTED" in raw:
        # Our server signals "no room" as UNAVAILABLE with this prefix (Flight cannot send
        # RESOURCE_EXHAUSTED); it must not be retried like a connection failure.
        mapped = CacheFull(message)
    elif isinstance(exc, flight.FlightUnavailableError) or raw.startswith("Flight returned unavailable error"):
        mapped = CacheUnavailable(message)
    elif isinstance(exc, (flight.FlightUnauthenticatedError, flight.FlightUnauthorizedError)):
        mapped = CacheAuthError(message)
    elif isinstance(exc, flight.FlightCancelledError):
        mapped = CacheError(message)
    elif isinstance(exc, pa.ArrowKeyError):
        mapped = ObjectNotFound(message)
    elif isinstance(exc, pa.ArrowInvalid):
        mapped = InvalidRequest(message)
    elif isinstance(exc, (NotImplementedError, pa.ArrowNotImplementedError)):
        mapped = CacheError(message)
    elif isinstance(exc, (flight.FlightError, pa.ArrowException)):
        mapped = ServerError(message)
    else:
        return exc
    mapped.original = exc
    return mapped
