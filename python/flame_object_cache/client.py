"""The cache client: Flight calls, the version-checked client-side cache, transfers."""

from __future__ import annotations

import copy
import functools
import os
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, TypeVar, cast

import bson
import pyarrow as pa
import pyarrow.flight as flight

from . import _mapped, _watch
from . import serialization as ser
from ._cache import CacheKey, Entry, InFlight, ObjectCache, now
from ._listing import ObjectInfo, flight_info, listed, parse_list_prefix, schema_info
from ._routing import rendezvous_order
from .config import load_config
from .endpoints import parse_endpoint
from .errors import CacheError, CacheUnavailable, InvalidRequest, ObjectNotFound, ProtocolError, map_error
from .keys import ObjectKey

__all__ = ["Client", "ObjectRef", "ObjectInfo", "Deserializer"]

Deserializer = Callable[[Any, List[Any]], Any]
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _public(method: F) -> F:
    """Short tracebacks for the errors a call reports (the server's, a timeout, ...): a
    CacheError leaves the SDK starting from the public method, not from the frames of the
    retry loop, single flight and reply parsing it went through."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except CacheError as exc:
            raise exc.with_traceback(None) from None

    return cast(F, call)

DEFAULT_CACHE_MAX_BYTES = 1 << 30
DEFAULT_CACHE_MAX_ENTRIES = 10_000
CHUNK_SIZE = 1 << 20  # upload rows, like flamepy
MIN_TRANSFER_RATE = 8 << 20
"""Bytes per second a put/update/patch is given on top of ``timeout``: a 500 MiB object gets
30 s + 62 s by default (measured: ~20 s over loopback)."""
_GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
_SCALARS = (str, bytes, int, float, complex, bool, type(None))
_ARROW = (pa.Table, pa.RecordBatch, pa.Array, pa.ChunkedArray, pa.Tensor, pa.Scalar)
_BASE = object()  # memo key of the decoded base (kept only when it is immutable)


@dataclass
class ObjectRef:
    """Reference to a cached object, as returned by the server (``endpoint`` is where later
    calls for it go). ``version=0`` asks :meth:`Client.get_object` for a full, uncached read.

    ``encode()`` gives the same BSON bytes as flamepy's ``ObjectRef.encode()``; ``decode()``
    reads those (unknown fields are ignored)."""

    endpoint: str
    key: str
    version: int = 0

    def encode(self) -> bytes:
        return bytes(bson.encode(asdict(self)))

    @classmethod
    def decode(cls, data: bytes) -> ObjectRef:
        doc = bson.decode(bytes(data))
        return cls(endpoint=str(doc["endpoint"]), key=str(doc["key"]), version=int(doc.get("version", 0)))


def _normalize_endpoint(endpoint: str) -> str:
    """The location Arrow dials for any accepted spelling (see :mod:`.endpoints`)."""
    try:
        return parse_endpoint(endpoint).location
    except ValueError as exc:
        raise InvalidRequest(f"invalid cache endpoint '{endpoint}': {exc}") from None


# The cache-key "endpoint" of every entry of a client that routes over a cluster: the
# cluster's versions are the same on every member, so one copy per key, whoever served it.
_CLUSTER = "<cluster>"
# How long a member that failed with UNAVAILABLE is tried only after the others.
_DOWN_SECONDS = 5.0


def _split_endpoints(endpoint: str | Sequence[str]) -> list[str]:
    """``"a,b,c"`` or ``["a", "b"]`` → the endpoints, in order, without blanks or repeats."""
    parts = endpoint.split(",") if isinstance(endpoint, str) else list(endpoint)
    out: list[str] = []
    for part in parts:
        part = part.strip()
        if part and part not in out:
            out.append(part)
    if not out:
        _normalize_endpoint(endpoint if isinstance(endpoint, str) else "")  # raises the usual error
        raise InvalidRequest(f"invalid cache endpoint {endpoint!r}: no endpoint given")
    return out


def _never_sent(exc: CacheUnavailable) -> bool:
    """True when the call cannot have reached the server (the connection was never made), so
    a non-idempotent write may be sent to another member without risk of applying it twice."""
    text = (str(getattr(exc, "original", "")) + " " + str(exc)).lower()
    return "failed to connect" in text or "connection refused" in text


def _read_file(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class _Identity:
    """Memo key for unhashable deserializers (by identity)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


class Incremental:
    """Marks a deserializer as a fold, so that the cache can feed it only new deltas.

    ``fn(base, deltas)`` must satisfy ``fn(fn(base, d[:k]), d[k:]) == fn(base, d)`` (e.g. "append
    each delta", "apply each update"). The cache keeps the result; after a patch-only reply it
    calls ``fn(copy_of_previous_result, new_deltas)`` instead of replaying every delta.
    ``get_object(ref, Incremental(fn))``; instances wrapping the same ``fn`` share the memo."""

    __slots__ = ("fn",)

    def __init__(self, fn: Deserializer) -> None:
        self.fn = fn

    def __call__(self, base: Any, deltas: List[Any]) -> Any:
        return self.fn(base, deltas)

    def __hash__(self) -> int:
        return hash(("Incremental", _memo_key(self.fn)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Incremental) and _memo_key(other.fn) == _memo_key(self.fn)


def _carried(memo_key: Any) -> bool:
    """Memo values that stay valid when deltas are appended."""
    return memo_key is _BASE or isinstance(memo_key, Incremental)


def _memo_key(deserializer: Deserializer) -> Any:
    try:
        hash(deserializer)
    except TypeError:
        return _Identity(deserializer)
    return deserializer


@dataclass
class _Reply:
    """A parsed DoGet reply."""

    kind: str  # "none" (zero rows: not modified), "full", "patches", "native"
    version: int
    epoch: str | None
    base: pa.Buffer | None = None
    native: pa.Table | None = None
    patches: list[tuple[int, pa.Buffer]] | None = None


def _parse_reply(table: pa.Table, schema: pa.Schema) -> _Reply:
    epoch = ser.schema_epoch(schema)
    if ser.is_native_schema(schema):
        return _Reply("native", ser.schema_version(schema), epoch, native=table)
    if table.num_rows == 0:
        return _Reply("none", 0, epoch)
    names = table.column_names
    if ser.FIELD_DATA not in names or ser.FIELD_VERSION not in names:
        raise ProtocolError(f"reply has no '{ser.FIELD_VERSION}'/'{ser.FIELD_DATA}' columns: {names}")
    rows: list[tuple[int, str, pa.Buffer]] = []
    if ser.FIELD_KIND in names:
        for batch in table.to_batches():
            versions, kinds, datas = (batch.column(n) for n in (ser.FIELD_VERSION, ser.FIELD_KIND, ser.FIELD_DATA))
            for i in range(batch.num_rows):
                kind = kinds[i].as_py()
                if kind not in ("base", "patch"):
                    raise ProtocolError(f"Invalid object response row kind: {kind!r}")
                data = datas[i].as_buffer()
                rows.append((int(versions[i].as_py()), kind, data if data is not None else pa.py_buffer(b"")))
    else:  # legacy shape: batch 0 is the base, row 0 of each later batch a patch
        for j, batch in enumerate(b for b in table.to_batches() if b.num_rows):
            data = batch.column(ser.FIELD_DATA)[0].as_buffer()
            rows.append((int(batch.column(ser.FIELD_VERSION)[0].as_py()), "base" if j == 0 else "patch",
                         data if data is not None else pa.py_buffer(b"")))
    bases = [i for i, r in enumerate(rows) if r[1] == "base"]
    patches = [(v, d) for v, k, d in rows if k == "patch"]
    pversions = [v for v, _ in patches]
    if any(b >= a for a, b in zip(pversions[1:], pversions[:-1], strict=True)):
        raise ProtocolError("Patch response rows must have unique increasing versions")
    version = max(r[0] for r in rows)
    if bases:
        if bases != [0]:
            raise ProtocolError("Full object response must start with exactly one base row")
        return _Reply("full", version, epoch, base=rows[0][2], patches=patches)
    return _Reply("patches", version, epoch, patches=patches)


def _resolve_token(token: str | None, token_file: str | os.PathLike[str] | None) -> str | None:
    """The token argument, else ``token_file``, else FLAME_CACHE_TOKEN, else
    FLAME_CACHE_TOKEN_FILE (first line of the file, surrounding whitespace removed)."""
    if token:
        return token.strip()
    path = token_file or None
    if path is None:
        if os.environ.get("FLAME_CACHE_TOKEN"):
            return os.environ["FLAME_CACHE_TOKEN"].strip()
        path = os.environ.get("FLAME_CACHE_TOKEN_FILE") or None
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        line = f.readline().strip()
    if not line:
        raise ValueError(f"token file {path} is empty")
    return line


class Client:
    """A connection to flame-object-cache with a client-side cache.

    Args:
        endpoint: one endpoint, or several (a list, or one string with commas: ``"grpc://a:9090,
            grpc://b:9090"``; ``FLAME_CACHE_ENDPOINT`` takes the same form) of the servers of one
            cluster (docs/cluster.md). With several (or ``discover=True``) the client routes: each
            key goes to one member by rendezvous hashing of its ``<app>/<session>``, and fails over
            to the next member in that key's order on UNAVAILABLE; refs' endpoints are then not
            used for routing. With one, as flamepy: where ``put_object``, ``delete_objects`` and
            ``upload_object`` go: ``grpc://``,
            ``grpc+tcp://``, ``http://`` (plaintext) or ``grpcs://``, ``grpc+tls://``, ``https://``
            (TLS); anything else is an :class:`InvalidRequest` (see :mod:`.endpoints`). Gets,
            updates, patches and downloads go to the
            endpoint in the ref, like flamepy. ``None``: the configuration (see
            :mod:`flame_object_cache.config`), which also supplies TLS files when the arguments
            below are not given.
        tls_root_certs: PEM bytes of the CA that signed the server certificate (default: the
            system roots).
        cert_chain, private_key: PEM bytes of a client certificate and key (mTLS).
        timeout: deadline in seconds for each call (``upload``/``download`` use
            ``transfer_timeout``).
        cache_max_bytes, cache_max_entries: bounds of the client-side cache (LRU). 0 disables it.
        max_staleness: seconds for which a cached copy verified by the server may be returned
            without asking again. 0 (default): every get asks the server.
        retries: attempts after the first for idempotent calls (get, delete, download) that fail
            with UNAVAILABLE; backoff doubles from ``retry_backoff`` seconds.
        transfer_timeout: deadline for ``upload_object``/``download_object``.
        token: bearer token sent as ``authorization: Bearer <token>`` on every call (servers
            with ``cache.auth``, docs/security.md). Default: ``FLAME_CACHE_TOKEN``, else the
            first line of the file named by ``FLAME_CACHE_TOKEN_FILE``, else none.
        token_file: read the token from this file (first line) instead.
        discover: ask the given endpoint(s) for the cluster's live members (the ``MEMBERS``
            action) and route over those; asked again (at most every 5 s) after a member fails.
        linearizable: every ``get_object`` is a linearizable read (see ``get_object``).
    """

    def __init__(
        self,
        endpoint: str | Sequence[str] | None = None,
        *,
        tls_root_certs: bytes | None = None,
        cert_chain: bytes | None = None,
        private_key: bytes | None = None,
        timeout: float = 30.0,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
        cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES,
        max_staleness: float = 0.0,
        retries: int = 3,
        retry_backoff: float = 0.05,
        transfer_timeout: float = 300.0,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        discover: bool = False,
        linearizable: bool = False,
    ) -> None:
        if endpoint is None:
            cfg = load_config()
            endpoint = cfg.endpoint
            if tls_root_certs is None:
                tls_root_certs = _read_file(cfg.ca_file)
            if cert_chain is None and private_key is None:
                cert_chain, private_key = _read_file(cfg.cert_file), _read_file(cfg.key_file)
        if (cert_chain is None) != (private_key is None):
            raise ValueError("cert_chain and private_key must be given together")
        if timeout <= 0 or transfer_timeout <= 0:
            raise ValueError("timeouts must be > 0")
        if max_staleness < 0 or retries < 0:
            raise ValueError("max_staleness and retries must be >= 0")
        seeds = _split_endpoints(endpoint)
        for e in seeds:
            _normalize_endpoint(e)  # a bad endpoint fails here, not at the first call
        self.endpoints: list[str] = seeds
        self.endpoint = seeds[0]
        self.discover = bool(discover)
        self.linearizable = bool(linearizable)
        self._routing = len(seeds) > 1 or self.discover
        self._members: list[str] = list(seeds)
        self._members_at = 0.0 if self.discover else now()  # when _members was last learnt
        self._down: dict[str, float] = {}  # member → when it last failed UNAVAILABLE
        self._members_lock = threading.Lock()
        self.timeout = float(timeout)
        self.transfer_timeout = float(transfer_timeout)
        self.max_staleness = float(max_staleness)
        self.retries = int(retries)
        self.retry_backoff = float(retry_backoff)
        self._tls_root_certs = tls_root_certs
        self._cert_chain = cert_chain
        self._private_key = private_key
        self._cache = ObjectCache(cache_max_bytes, cache_max_entries)
        self._get_options = threading.local()  # (progress, timeout) of the running get_object
        token = _resolve_token(token, token_file)
        self._headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self._pool: dict[str, flight.FlightClient] = {}
        self._pool_lock = threading.Lock()
        self._closed = False
        self._subscriptions: list[_watch.CacheSubscription] = []  # WATCH-kept cache (_watch.py)

    # -- connection -----------------------------------------------------------------------
    def _flight(self, endpoint: str) -> flight.FlightClient:
        location = _normalize_endpoint(endpoint)
        with self._pool_lock:
            if self._closed:
                raise CacheError("client is closed")
            client = self._pool.get(location)
            if client is None:
                kwargs: dict[str, Any] = {"generic_options": _GRPC_OPTIONS}
                if location.startswith("grpc+tls://"):
                    if self._tls_root_certs is not None:
                        kwargs["tls_root_certs"] = self._tls_root_certs
                    if self._cert_chain is not None:
                        kwargs["cert_chain"] = self._cert_chain
                        kwargs["private_key"] = self._private_key
                try:
                    client = flight.FlightClient(location, **kwargs)
                except (pa.ArrowException, OSError) as exc:
                    raise map_error(exc) from None  # the cause is kept as .original
                self._pool[location] = client
            return client

    def _reset(self, endpoint: str) -> None:
        """Drops a pooled connection so the next call dials afresh (no gRPC reconnect backoff).
        It is not closed here: other threads may still be using it; it goes when they are done."""
        with self._pool_lock:
            self._pool.pop(_normalize_endpoint(endpoint), None)

    def _options(self, timeout: float | None = None) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(timeout=timeout or self.timeout, headers=self._headers)

    def _call(self, endpoint: str, fn: Callable[[flight.FlightClient], T], *, idempotent: bool) -> T:
        """Runs ``fn`` with errors mapped; retries UNAVAILABLE with backoff if idempotent."""
        attempt = 0
        while True:
            try:
                return fn(self._flight(endpoint))
            except Exception as exc:  # every error is mapped below
                mapped = map_error(exc)
                if isinstance(mapped, CacheUnavailable):
                    self._reset(endpoint)
                    if idempotent and attempt < self.retries:
                        delay = self.retry_backoff * (2**attempt)
                        time.sleep(delay * (0.5 + random.random() / 2))
                        attempt += 1
                        continue
                if mapped is exc:
                    raise
                raise mapped from None  # short tracebacks: the Flight error is mapped.original

    # -- routing over a cluster (docs/cluster.md) ----------------------------------------------
    def _ck(self, endpoint: str, key: str) -> CacheKey:
        """The client-cache key of ``key`` read through ``endpoint``."""
        return (_CLUSTER if self._routing else endpoint, key)

    def members(self) -> list[str]:
        """The endpoints this client routes over (learnt by ``MEMBERS`` with ``discover``)."""
        if self.discover:
            with self._members_lock:
                stale = self._members_at == 0.0
            if stale:
                self.refresh_members()
        with self._members_lock:
            return list(self._members)

    def refresh_members(self) -> list[str]:
        """Asks the known members (then the given endpoints) for ``MEMBERS``; the first answer
        becomes the member list. Raises :class:`CacheUnavailable` if none answers."""
        with self._members_lock:
            candidates = list(dict.fromkeys(self._members + self.endpoints))
        last: BaseException | None = None
        for endpoint in candidates:
            try:
                found = self.cluster_members(endpoint)
            except CacheUnavailable as exc:
                last = exc
                continue
            with self._members_lock:
                self._members = found
                self._members_at = now()
                self._down = {m: t for m, t in self._down.items() if m in found}
            return found
        assert last is not None
        raise last

    def cluster_members(self, endpoint: str | None = None) -> list[str]:
        """The ``MEMBERS`` action on ``endpoint`` (default: this client's first endpoint): the
        advertised endpoints of the cluster's live servers; a single server answers itself."""
        def members_(client: flight.FlightClient) -> list[str]:
            results = client.do_action(flight.Action("MEMBERS", b""), self._options())
            return [r.body.to_pybytes().decode() for r in results]

        return self._call(endpoint or self.endpoint, members_, idempotent=False)

    def _order(self, key: str) -> list[str]:
        """Members by preference for ``key``: rendezvous order, members that failed lately last."""
        order = rendezvous_order(key, self.members())
        with self._members_lock:
            cutoff = now() - _DOWN_SECONDS
            down = {m for m, t in self._down.items() if t > cutoff}
        return [m for m in order if m not in down] + [m for m in order if m in down]

    def _dispatch(self, endpoint: str, key: str, fn: Callable[[flight.FlightClient], T], *,
                  idempotent: bool, resend: bool = True) -> T:
        """Runs ``fn`` for ``key``: on ``endpoint`` (one server, as flamepy), or, routing, on
        the key's member, failing over along its rendezvous order on UNAVAILABLE. ``resend``
        False (PATCH, PUT of a new object): fail over only when the call cannot have reached
        the failed member, so nothing is applied twice."""
        if not self._routing:
            return self._call(endpoint, fn, idempotent=idempotent)
        attempt = 0
        while True:
            last: CacheUnavailable | None = None
            for member in self._order(key):
                try:
                    return self._call(member, fn, idempotent=False)
                except CacheUnavailable as exc:
                    with self._members_lock:
                        self._down[member] = now()
                        if self.discover and now() - self._members_at > _DOWN_SECONDS:
                            self._members_at = 0.0  # ask MEMBERS again on the next call
                    if not resend and not _never_sent(exc):
                        raise
                    last = exc
            assert last is not None
            if attempt >= self.retries:
                raise last
            time.sleep(self.retry_backoff * (2**attempt) * (0.5 + random.random() / 2))
            attempt += 1
            if self.discover:
                try:
                    self.refresh_members()
                except CacheUnavailable:
                    pass

    def _watch_target(self, endpoint: str, key: str) -> str:
        """Where a WATCH subscription for ``key`` (or a pattern) goes when it (re)subscribes:
        ``endpoint``, or for the routing label the first member of the order (members that
        failed lately come last, so a resubscription moves to a live member)."""
        return self._order(key)[0] if endpoint == _CLUSTER else endpoint

    def _watch_failed(self, target: str) -> None:
        """A WATCH stream on ``target`` ended by failure: dial afresh, and when routing, try
        the other members first for a while."""
        self._reset(target)
        if self._routing:
            with self._members_lock:
                self._down[target] = now()
                if self.discover and now() - self._members_at > _DOWN_SECONDS:
                    self._members_at = 0.0

    def close(self) -> None:
        """Closes the connections; the client cannot be used afterwards."""
        for sub in list(self._subscriptions):
            sub.close()
        with self._pool_lock:
            self._closed = True
            clients, self._pool = list(self._pool.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------
    def _do_put(
        self, endpoint: str, descriptor: flight.FlightDescriptor, schema: pa.Schema,
        batches: Callable[[], Iterable[pa.RecordBatch]] | list[pa.RecordBatch], timeout: float | None = None,
        *, route: str | None = None, resend: bool = True,
    ) -> ObjectRef:
        """``batches``: a list, or a function giving them afresh (each attempt sends them all).
        ``route``: the key (or session) a routing client sends this to."""
        def put(client: flight.FlightClient) -> ObjectRef:
            writer, reader = client.do_put(descriptor, schema, self._options(timeout))
            try:
                for batch in (batches() if callable(batches) else batches):
                    writer.write_batch(batch)
                writer.done_writing()
                meta = reader.read()
            except BaseException:
                writer.close()  # raises the server's status if it refused the call
                raise
            writer.close()
            if meta is None:
                raise ProtocolError("No result metadata received from cache server")
            try:
                doc = bson.decode(bytes(meta))
                return ObjectRef(endpoint=str(doc["endpoint"]), key=str(doc["key"]), version=int(doc["version"]))
            except Exception as exc:  # any decoding failure is a protocol error
                raise ProtocolError(f"Failed to read metadata from cache server: {exc}") from exc

        return self._dispatch(endpoint, route or "", put, idempotent=False, resend=resend)

    @staticmethod
    def _payload(obj: Any, progress: bool = False) -> tuple[pa.Schema, list[pa.RecordBatch]]:
        native = ser.native_payload(obj)
        if native is not None:
            return native
        data = ser.encode_data(obj)
        if progress and len(data) > CHUNK_SIZE:
            # 1 MiB rows (as upload_object sends; the server joins them) so the bar can move.
            return ser.OPAQUE_SCHEMA, [ser.opaque_batch(data[i:i + CHUNK_SIZE])
                                       for i in range(0, len(data), CHUNK_SIZE)]
        return ser.OPAQUE_SCHEMA, [ser.opaque_batch(data)]

    def _write_timeout(self, batches: list[pa.RecordBatch], timeout: float | None) -> float:
        """``timeout`` if given, else the client's ``timeout`` plus size / MIN_TRANSFER_RATE."""
        if timeout is not None:
            return float(timeout)
        size: int = sum(b.nbytes for b in batches)
        return self.timeout + size / MIN_TRANSFER_RATE

    def _write(self, endpoint: str, descriptor: flight.FlightDescriptor,
               payload: tuple[pa.Schema, list[pa.RecordBatch]], progress: bool, timeout: float | None,
               desc: str, route: str, resend: bool) -> ObjectRef:
        schema, batches = payload
        deadline = self._write_timeout(batches, timeout)
        if not progress:
            return self._do_put(endpoint, descriptor, schema, batches, timeout=deadline, route=route,
                                resend=resend)

        def counted() -> Iterator[pa.RecordBatch]:
            bar = _progress(True, sum(b.nbytes for b in batches), desc)
            try:
                for batch in batches:
                    yield batch
                    if bar is not None:
                        bar.update(batch.nbytes)
            finally:
                if bar is not None:
                    bar.close()

        return self._do_put(endpoint, descriptor, schema, counted, timeout=deadline, route=route, resend=resend)

    @_public
    def put_object(self, key_prefix: str, obj: Any, *, progress: bool = False,
                   timeout: float | None = None) -> ObjectRef:
        """Stores ``obj`` as a new object under ``<app>/<session>``; the server picks the id.
        Tables and data frames are stored as native Arrow tables, everything else encoded.
        ``progress`` shows a tqdm bar; ``timeout`` (seconds) overrides the deadline, by default
        ``timeout`` of the client plus the size at MIN_TRANSFER_RATE."""
        key = ObjectKey.from_prefix(key_prefix)
        if key.is_all_sessions():
            raise ValueError(f"Invalid key prefix {key_prefix!r}: '*' is only valid for delete")
        # A new object (the server picks its id): sent again elsewhere only if never sent.
        return self._write(self.endpoint, flight.FlightDescriptor.for_path(key.to_prefix()),
                           self._payload(obj, progress), progress, timeout, f"put {key}", key.to_prefix(),
                           resend=False)

    @_public
    def update_object(self, ref: ObjectRef, new_obj: Any, *, progress: bool = False,
                      timeout: float | None = None) -> ObjectRef:
        """Replaces the object's base and drops its deltas; returns the new ref."""
        ObjectKey.from_key(ref.key)
        payload = self._payload(new_obj, progress)
        try:
            # Replacing a key's whole content is safe to send again (at most a spare version).
            return self._write(ref.endpoint, flight.FlightDescriptor.for_path(ref.key), payload, progress, timeout,
                               f"update {ref.key}", ref.key, resend=True)
        finally:
            self._cache.remove(self._ck(ref.endpoint, ref.key))

    @_public
    def patch_object(self, ref: ObjectRef, delta: Any, *, timeout: float | None = None) -> ObjectRef:
        """Appends ``delta`` (always encoded, never native) to the object; returns the new ref.
        The server keeps at most 1000 deltas per object (then INVALID_ARGUMENT: update it)."""
        ObjectKey.from_key(ref.key)
        batch = ser.opaque_batch(ser.encode_data(delta))
        try:
            # A delta applied twice would be wrong: sent again elsewhere only if never sent.
            return self._write(ref.endpoint, flight.FlightDescriptor.for_command(f"PATCH:{ref.key}".encode()),
                               (ser.OPAQUE_SCHEMA, [batch]), False, timeout, "", ref.key, resend=False)
        finally:
            self._cache.remove(self._ck(ref.endpoint, ref.key))

    @_public
    def delete_objects(self, key_prefix: str) -> None:
        """Deletes ``<app>/*``, ``<app>/<session>`` or one ``<app>/<session>/<id>`` on this
        client's endpoint, and drops matching cached copies (of every endpoint)."""
        pattern = ObjectKey.from_path(key_prefix)
        try:
            def delete(client: flight.FlightClient) -> int:
                return len(list(client.do_action(flight.Action("DELETE", str(pattern).encode()), self._options())))

            # Any member deletes cluster-wide; routed like the pattern's session.
            if self._dispatch(self.endpoint, str(pattern), delete, idempotent=True) == 0:
                raise ProtocolError("No result received from DELETE action")
        finally:
            self._cache.remove_matching(lambda k: pattern.matches_key(k[1]))

    # -- reads ----------------------------------------------------------------------------
    def _fetch(self, ref: ObjectRef, version: int, linearizable: bool | None = None) -> _Reply:
        progress, timeout, linear = getattr(self._get_options, "value", (False, None, False))
        if linearizable is not None:
            linear = linearizable
        # `<key>:L<version>`: the server reads the record from the version authority (etcd)
        # before answering (docs/protocol.md); flamepy never sends it.
        ticket = flight.Ticket(f"{ref.key}:{'L' if linear else ''}{version}".encode())

        def get(client: flight.FlightClient) -> tuple[pa.Table, pa.Schema]:
            reader = client.do_get(ticket, self._options(timeout or self.transfer_timeout))
            if not progress:
                return reader.read_all(), reader.schema
            bar = _progress(True, self._listed_size(ref), f"get {ref.key}")
            batches: list[pa.RecordBatch] = []
            try:
                while True:
                    try:
                        chunk = reader.read_chunk()
                    except StopIteration:
                        break
                    if chunk.data is not None:
                        batches.append(chunk.data)
                        if bar is not None:
                            bar.update(chunk.data.nbytes)
            finally:
                _close(bar)
            return pa.Table.from_batches(batches, schema=reader.schema), reader.schema

        table, schema = self._dispatch(ref.endpoint, ref.key, get, idempotent=True)
        self._cache.count("requests")
        self._cache.count("bytes_received", table.get_total_buffer_size())
        return _parse_reply(table, schema)

    @staticmethod
    def _entry(reply: _Reply, when: float) -> Entry:
        return Entry(version=reply.version, epoch=reply.epoch, base=reply.base, native=reply.native,
                     patches=tuple(reply.patches or ()), verified_at=when)

    def _refresh(self, ref: ObjectRef, ck: CacheKey, flight_: InFlight | None, force_full: bool) -> Entry:
        try:
            return self._refresh_once(ref, ck, flight_, force_full)
        except ObjectNotFound:
            self._cache.remove(ck)  # deleted (or evicted by a memory-only server): forget our copy
            raise

    def _refresh_once(self, ref: ObjectRef, ck: CacheKey, flight_: InFlight | None, force_full: bool) -> Entry:
        cache = self._cache
        cached = None if force_full else cache.get(ck)
        requested = cached.version if cached is not None else 0
        started = now()
        reply = self._fetch(ref, requested)
        if cached is not None and reply.kind in ("none", "patches") and reply.epoch != cached.epoch:
            cache.count("epoch_changes")  # the server lost state since we cached: start over
        elif cached is not None and reply.kind == "none":
            cache.touch(ck, cached, flight_, started)
            cache.count("hits")
            return cached
        elif (cached is not None and reply.kind == "patches" and reply.patches
              and reply.patches[0][0] == requested + 1 and reply.version > requested):
            entry = cache.extend(ck, cached, reply.version, reply.patches, started, _carried, flight_)
            cache.count("patched")
            return entry
        if reply.kind in ("none", "patches"):  # nothing usable to apply it to: read it all
            started = now()
            reply = self._fetch(ref, 0)
        if (cached is not None and self._routing and reply.kind in ("full", "native")
                and reply.epoch == cached.epoch and reply.version < cached.version):
            # A member whose index lags the cluster (failover, watch lag) answered with an
            # older version than we hold: never go backwards; make it catch up.
            cache.count("lagging_replies")
            started = now()
            reply = self._fetch(ref, 0, linearizable=True)
        if reply.kind not in ("full", "native"):
            raise ProtocolError(f"Object not found: {ref.key} (server sent no base for a full read)")
        entry = self._entry(reply, started)
        cache.store(ck, entry, flight_)
        cache.count("misses")
        return entry

    def _lookup(self, ref: ObjectRef) -> Entry:
        ck = self._ck(ref.endpoint, ref.key)
        cache = self._cache
        if ref.version == 0:
            return self._refresh(ref, ck, None, force_full=True)
        if getattr(self._get_options, "value", (False, None, False))[2]:
            # Linearizable: ask the server now, alone (joining another caller's request
            # could return an answer given before this call began).
            return self._refresh(ref, ck, None, force_full=False)
        if self.max_staleness > 0:
            cached = cache.get(ck)
            if (cached is not None and cached.version >= ref.version
                    and now() - cached.verified_at <= self.max_staleness):
                cache.count("stale_hits")
                return cached
        if self._subscriptions:
            cached = cache.get(ck)
            if (cached is not None and cached.version >= ref.version
                    and any(s.vouches(ck[0], ref.key, cached) for s in self._subscriptions)):
                cache.count("watch_hits")  # kept current by WATCH: no round trip
                return cached
        entry, led = self._single_flight(ref, ck)
        if not led and entry.version < ref.version:
            # We joined a request that may have been answered before the version this ref
            # names was written (e.g. the ref was just sent to us by its writer): ask again.
            entry, _ = self._single_flight(ref, ck)
        return entry

    def _single_flight(self, ref: ObjectRef, ck: CacheKey) -> tuple[Entry, bool]:
        """Runs the refresh for ``ck`` or, if another thread is already running it, waits for
        that one and shares its answer. Returns the entry and whether this thread ran it."""
        cache = self._cache
        flight_, leader = cache.join_or_lead(ck)
        if not leader:
            cache.count("coalesced")
            flight_.done.wait()
            if flight_.error is not None:
                raise flight_.error
            assert flight_.result is not None
            return flight_.result, False
        try:
            flight_.result = self._refresh(ref, ck, flight_, force_full=False)
            return flight_.result, True
        except BaseException as exc:
            flight_.error = exc
            raise
        finally:
            cache.finish(ck, flight_)

    @staticmethod
    def _decode_base(entry: Entry) -> Any:
        if entry.native is not None:
            return ser.decode_native(entry.native)
        assert entry.base is not None
        return ser.decode_data(entry.base)

    def _base(self, ref: ObjectRef, entry: Entry) -> Any:
        """The decoded base: decoded afresh for each caller, except immutable values decoded
        by copying (unpickled bytes, strings, tuples of them), which are kept in the memo."""
        found, value = self._cache.memo_get(entry, _BASE)
        if found:
            return value
        value = self._decode_base(entry)
        if entry.native is None and not isinstance(value, _ARROW) and _immutable(value):
            self._cache.memo_put(self._ck(ref.endpoint, ref.key), entry, _BASE, value)
        return value

    @_public
    def get_object(self, ref: ObjectRef, deserializer: Optional[Deserializer] = None, *, raw: bool = False,
                   progress: bool = False, timeout: float | None = None,
                   linearizable: bool | None = None) -> Any:
        """Returns the object: the base, or ``deserializer(base, [deltas...])``.

        Every call asks the server whether its cached copy is current (``<key>:<version>``)
        unless ``max_staleness`` allows a recent one; unchanged objects are not transferred,
        patch-only replies extend the cached copy. ``ref.version == 0`` forces a full read.
        The value returned belongs to the caller: mutating it does not affect the cache (see
        the package documentation for how).

        ``raw=True`` decodes nothing: the base's ``bytes`` (e.g. written by ``flame-cache put``),
        or ``deserializer(base_bytes, [delta_bytes...])``; a native table as a ``pyarrow.Table``.
        Without it, bytes not in the SDK's format raise :class:`DecodeError`. ``progress`` shows
        a tqdm bar for the transfer (its total comes from a listing of the server); ``timeout``
        (seconds) overrides the deadline (default: ``transfer_timeout``, as the reply's size is
        not known before it arrives).

        ``linearizable`` (default: the client's ``linearizable``): the answer reflects every write
        acknowledged, by any server of a cluster, before this call began — the server reads the
        object's record from etcd first (one quorum read) instead of answering from its index,
        which lags etcd by the watch delay (docs/cluster.md, "Staleness bound"). The client
        cache is still used (a not-modified answer costs no transfer), but ``max_staleness``
        and WATCH subscriptions never answer for the server. A single server is always
        linearizable; a node tier refuses (UNIMPLEMENTED)."""
        ObjectKey.from_key(ref.key)
        linear = self.linearizable if linearizable is None else bool(linearizable)
        self._get_options.value = (progress, timeout, linear)
        try:
            entry = self._lookup(ref)
        finally:
            self._get_options.value = (False, None, False)
        if raw:
            if entry.native is not None:
                return ser.strip_cache_metadata(entry.native)
            assert entry.base is not None
            base = entry.base.to_pybytes()
            if deserializer is None:
                return base
            return deserializer(base, [p.to_pybytes() for _, p in entry.patches])
        if deserializer is None:
            return self._base(ref, entry)
        memo_key = _memo_key(deserializer)
        found, value = self._cache.memo_get(entry, memo_key)
        if isinstance(deserializer, Incremental):
            return self._fold(ref, entry, deserializer, value if found else None)
        if found:
            return _copy(value)
        base = self._base(ref, entry)
        deltas = [ser.decode_data(p) for _, p in entry.patches]
        value = deserializer(base, deltas)
        try:
            kept = _copy(value)
        except Exception:  # noqa: BLE001 - not copyable: return it, do not memoise
            return value
        self._cache.memo_put(self._ck(ref.endpoint, ref.key), entry, memo_key, kept)
        return value

    def _fold(self, ref: ObjectRef, entry: Entry, inc: Incremental, memo: tuple[int, Any] | None) -> Any:
        applied, state = memo if memo is not None else (0, None)
        if memo is not None and applied == len(entry.patches):
            return _copy(state)
        state = _copy(state) if memo is not None else self._base(ref, entry)
        result = inc.fn(state, [ser.decode_data(p) for _, p in entry.patches[applied:]])
        try:
            kept = _copy(result)
        except Exception:  # noqa: BLE001 - not copyable: return it, do not memoise
            return result
        self._cache.memo_put(self._ck(ref.endpoint, ref.key), entry, inc, (len(entry.patches), kept))
        return result

    # -- WATCH (_watch.py) ------------------------------------------------------------------
    def watch(self, pattern: str | list[str], *, since: dict[str, int] | None = None,
              snapshot: bool = False, endpoint: str | None = None, max_queue: int = 0,
              heartbeat: float = 1.0) -> _watch.Watch:
        """An endless iterator of :class:`~flame_object_cache._watch.Change` s of the keys
        matching ``pattern`` (``<app>/*``, ``<app>/<session>`` or a full key; or a list).

        ``since`` maps keys to the versions you have: newer versions (and deletions) are
        reported first. ``snapshot=True`` also reports the current version of every other
        matching key. Drops and reconnects are survived by resubscribing with the versions
        seen so far (changes made meanwhile arrive coalesced, as ``current``). ``close()`` it
        when done."""
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        # A routing client subscribes at the first member of the first pattern's order and
        # moves to the next member when that one fails (any member's feed has every commit).
        return _watch.Watch(self, endpoint or (_CLUSTER if self._routing else self.endpoint), patterns, since,
                            snapshot, max_queue,
                            int(heartbeat * 1000), self.retry_backoff)

    def wait_for_change(self, ref: ObjectRef, timeout: float | None = None) -> ObjectRef | None:
        """Blocks until ``ref.key`` has a version other than ``ref.version`` and returns a ref
        to it, or returns None after ``timeout`` seconds. Raises :class:`ObjectNotFound` if the
        object is deleted. ``ref.version == 0`` waits for the object to exist."""
        ObjectKey.from_key(ref.key)
        endpoint = _CLUSTER if self._routing else ref.endpoint
        got = _watch.wait_for_change(self, endpoint, ref.key, ref.version, timeout)
        if got is None:
            return None
        version, deleted = got
        if deleted:
            self._cache.remove(self._ck(ref.endpoint, ref.key))
            raise ObjectNotFound(f"object {ref.key} was deleted")
        return ObjectRef(endpoint=ref.endpoint, key=ref.key, version=version)

    def subscribe_cache(self, *patterns: str, endpoint: str | None = None,
                        heartbeat: float = 1.0) -> _watch.CacheSubscription:
        """Keeps the client cache current by WATCH for keys matching ``patterns``: while the
        subscription is healthy, gets of those keys whose cached copy is current are answered
        with no round trip (never staler than the push delay; ``2 * heartbeat`` seconds if the
        stream stalls unnoticed); otherwise gets make the usual conditional round trip. Call
        ``close()`` on the result (or the client) to stop."""
        if not patterns:
            raise ValueError("subscribe_cache needs at least one pattern")
        if heartbeat < 0.05:
            raise ValueError("heartbeat must be >= 0.05 seconds")
        sub = _watch.CacheSubscription(self, endpoint or (_CLUSTER if self._routing else self.endpoint),
                                       list(patterns), heartbeat,
                                       self.retry_backoff)
        self._subscriptions.append(sub)
        return sub

    # -- listing --------------------------------------------------------------------------
    @_public
    def list_objects(self, prefix: str | None = None, *, timeout: float | None = None) -> list[ObjectInfo]:
        """The objects on this client's endpoint under ``prefix``, sorted by key: ``None`` or
        ``""`` (all), ``<app>``, ``<app>/*``, ``<app>/<session>`` or a full key; matched by whole
        components (``app/s`` does not list ``app/s2/...``). ``ObjectInfo.size`` is the payload
        size the server reports, with ``kind``, ``version`` and ``deltas`` (``None`` from
        upstream's server, which does not report them)."""
        selector = parse_list_prefix(prefix)

        def list_(client: flight.FlightClient) -> list[ObjectInfo]:
            return listed(client, self._options(timeout), self.endpoint, selector)

        return self._dispatch(self.endpoint, "", list_, idempotent=True)

    @_public
    def stat(self, key: str, *, timeout: float | None = None) -> ObjectInfo:
        """What the server knows about ``key`` without sending it: size, kind (``"opaque"`` or
        ``"table"``), version and delta count, from one ``GetFlightInfo`` (no payload is
        transferred). :class:`ObjectNotFound` if it does not exist."""
        ObjectKey.from_key(key)
        return self._stat(self.endpoint, key, timeout)

    def _stat(self, endpoint: str, key: str, timeout: float | None) -> ObjectInfo:
        def stat_(client: flight.FlightClient) -> ObjectInfo:
            options = self._options(timeout)
            found_info = flight_info(client, options, endpoint, key)
            if found_info is not None:
                return found_info
            # No metadata: the key is absent (GetSchema says NOT_FOUND), or the server is
            # upstream's (size from its listing; version only for tables).
            kind, version = schema_info(client, options, key)
            found = listed(client, options, endpoint, ObjectKey.from_key(key))
            if not found:  # deleted between the two calls
                raise ObjectNotFound(f"object {key} not found")
            return ObjectInfo(key=key, size=found[0].size, endpoint=found[0].endpoint, kind=kind, version=version)

        return self._dispatch(endpoint, key, stat_, idempotent=True)

    @_public
    def exists(self, key: str, *, timeout: float | None = None) -> bool:
        """True if ``key`` can be read now (False after a delete or an eviction that lost it)."""
        ObjectKey.from_key(key)
        try:
            self._dispatch(self.endpoint, key, lambda c: schema_info(c, self._options(timeout), key),
                           idempotent=True)
        except ObjectNotFound:
            return False
        return True

    def _listed_size(self, ref: ObjectRef) -> int | None:
        """The size a listing reports for ``ref.key`` (a progress bar's total), None if unknown."""
        try:
            return self._stat(ref.endpoint, ref.key, None).size
        except CacheError:
            return None

    def cache_stats(self) -> dict[str, int]:
        """Counters of the client-side cache: ``bytes``, ``entries``, ``hits`` (not-modified
        replies), ``stale_hits``, ``patched``, ``misses`` (full replies), ``coalesced``,
        ``epoch_changes``, ``evictions``, ``requests``, ``bytes_received``, and the bounds."""
        return self._cache.stats()

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- same-machine zero copy (_mapped.py) ------------------------------------------------
    @_public
    def map_object(self, ref: ObjectRef, deserializer: Optional[Deserializer] = None, *,
                   raw: bool = False) -> Any:
        """``get_object`` without a copy on the server's machine: maps the object's immutable
        files read-only (numpy arrays and Arrow values are views of the page cache, shared by
        every process mapping the same version); reads over gRPC when mapping is not available.
        ``raw=True`` returns a ``pyarrow.Buffer``. See :mod:`flame_object_cache._mapped`."""
        ObjectKey.from_key(ref.key)
        return _mapped.map_object(self, ref, deserializer, raw=raw)

    def map_stats(self) -> dict[str, int]:
        """``mapped``: :meth:`map_object` calls served by mapping; ``fallback``: over gRPC."""
        return _mapped.map_stats(self)

    # -- files ----------------------------------------------------------------------------
    @_public
    def upload_object(self, key_or_prefix: str, file_path: str, *, progress: bool = False) -> ObjectRef:
        """Streams a file's raw bytes in 1 MiB rows. A full key keeps the given object id; a
        prefix lets the server choose one. ``progress`` shows a tqdm bar if tqdm is installed."""
        if not os.path.isfile(file_path):
            raise FileNotFoundError(f"File not found: {file_path}")
        key = ObjectKey.from_put_path(key_or_prefix)
        size = os.path.getsize(file_path)

        def batches() -> Iterator[pa.RecordBatch]:
            bar = _progress(progress, size, f"upload {key}")
            try:
                with open(file_path, "rb") as f:
                    first = True
                    while True:
                        chunk = f.read(CHUNK_SIZE)
                        if not chunk and not first:
                            break
                        first = False
                        yield ser.opaque_batch(chunk)  # an empty file is one empty row
                        if bar is not None:
                            bar.update(len(chunk))
                        if not chunk:
                            break
            finally:
                if bar is not None:
                    bar.close()

        ref = self._do_put(self.endpoint, flight.FlightDescriptor.for_path(str(key)), ser.OPAQUE_SCHEMA,
                           batches, timeout=self.transfer_timeout, route=str(key),
                           resend=key.object_id is not None)  # a full key: replacing it again is safe
        self._cache.remove(self._ck(ref.endpoint, ref.key))
        return ref

    @_public
    def download_object(self, ref: ObjectRef, dest_path: str, *, progress: bool = False) -> None:
        """Streams an uploaded object's bytes into ``dest_path`` (parent directories are
        created). The data goes to a temporary file in the same directory that is renamed into
        place at the end, so a failed download leaves no partial file."""
        ObjectKey.from_key(ref.key)
        dest_dir = os.path.dirname(os.path.abspath(dest_path))
        os.makedirs(dest_dir, exist_ok=True)
        ticket = flight.Ticket(f"{ref.key}:0".encode())

        def download(client: flight.FlightClient) -> None:
            fd, tmp = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
            bar = _progress(progress, self._listed_size(ref) if progress else None, f"download {ref.key}")
            try:
                with os.fdopen(fd, "wb") as f:
                    reader = client.do_get(ticket, self._options(self.transfer_timeout))
                    names = reader.schema.names
                    if ser.is_native_schema(reader.schema) or ser.FIELD_DATA not in names:
                        raise ProtocolError(f"{ref.key} is a table, not an uploaded file")
                    while True:
                        try:
                            chunk = reader.read_chunk()
                        except StopIteration:
                            break
                        batch = chunk.data
                        if batch is None:
                            continue
                        datas = batch.column(ser.FIELD_DATA)
                        kinds = batch.column(ser.FIELD_KIND) if ser.FIELD_KIND in names else None
                        for i in range(batch.num_rows):
                            if kinds is not None and kinds[i].as_py() != "base":
                                raise ProtocolError(f"{ref.key} has deltas; download_object expects a plain file")
                            buf = datas[i].as_buffer()
                            if buf is not None:
                                f.write(memoryview(buf))
                                if bar is not None:
                                    bar.update(buf.size)
                os.replace(tmp, dest_path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
            finally:
                _close(bar)

        self._dispatch(ref.endpoint, ref.key, download, idempotent=True)


def _immutable(value: Any, depth: int = 0) -> bool:
    """True for values nobody can change: scalars, Arrow objects, and tuples/frozensets of them."""
    if isinstance(value, (*_SCALARS, *_ARROW)):
        return True
    if type(value) in (tuple, frozenset) and depth < 4 and len(value) <= 1024:
        return all(_immutable(v, depth + 1) for v in value)
    return False


def _copy(value: Any) -> Any:
    """What a caller gets from the memo: the value itself if immutable, else a deep copy."""
    if _immutable(value):
        return value
    return copy.deepcopy(value)


def _close(bar: Any) -> None:
    """Closes a bar showing what was transferred (the listed total counts payload bytes only)."""
    if bar is not None:
        bar.total = bar.n
        bar.close()


def _progress(enabled: bool, total: int | None, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)
