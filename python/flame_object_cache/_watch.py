"""WATCH: changes pushed by the server (docs/protocol.md, "WATCH"; docs/python-sdk.md).

A subscription is one Flight ``DoExchange`` call whose command descriptor is ``WATCH:`` followed
by a BSON request. The server answers with metadata-only messages (BSON): ``change`` (key,
version, kind, epoch), ``ready`` (the resume snapshot is complete), ``heartbeat`` (sent when
idle) and ``resync`` (the subscriber fell behind and is dropped; the call then ends with
UNAVAILABLE ``RESOURCE_EXHAUSTED: ...``).

Used by :meth:`Client.watch`, :meth:`Client.wait_for_change` and :meth:`Client.subscribe_cache`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

import bson
import pyarrow.flight as flight
from bson.int64 import Int64

from .errors import CacheError, CacheTimeout, CacheUnavailable, map_error

if TYPE_CHECKING:  # pragma: no cover
    from ._cache import Entry
    from .client import Client

WATCH_PREFIX = b"WATCH:"
KIND_PUT, KIND_PATCH, KIND_DELETE, KIND_CURRENT = "put", "patch", "delete", "current"


@dataclass(frozen=True)
class Change:
    """One change of one key: ``kind`` is ``put``, ``patch``, ``delete`` (``version`` is the
    version that is gone) or ``current`` (the version found when the subscription started or
    resumed; intermediate versions were coalesced). ``epoch`` identifies the server's data set."""

    key: str
    version: int
    kind: str
    epoch: str

    @property
    def deleted(self) -> bool:
        return self.kind == KIND_DELETE


class WatchDropped(CacheUnavailable):
    """The server dropped the subscription because it fell behind (its queue overflowed):
    changes were not delivered. Subscribe again naming the versions you have (``since``)."""


def encode_request(patterns: Iterable[str], since: Mapping[str, int] | None = None, *,
                   snapshot: bool = True, max_queue: int = 0, heartbeat_ms: int = 0) -> bytes:
    """The DoExchange command of a WATCH call."""
    doc: dict[str, Any] = {"patterns": list(patterns)}
    if since:
        doc["since"] = [{"key": k, "version": Int64(v)} for k, v in since.items()]
    doc["snapshot"] = bool(snapshot)
    if max_queue:
        doc["max_queue"] = Int64(max_queue)
    if heartbeat_ms:
        doc["heartbeat_ms"] = Int64(heartbeat_ms)
    return WATCH_PREFIX + bson.encode(doc)


def _matches(pattern: str, key: str) -> bool:
    parts = pattern.split("/")
    if len(parts) == 2 and parts[1] == "*":
        return key.startswith(parts[0] + "/")
    if len(parts) == 2:
        return key.startswith(pattern + "/")
    return key == pattern


class Subscription:
    """One WATCH call. Iterating yields :class:`Change` s; heartbeats and ``ready`` are
    consumed (``ready`` sets :attr:`ready` and :attr:`epoch`). Raises :class:`WatchDropped`
    when the server drops a slow subscriber, :class:`CacheUnavailable` when the connection
    or the server goes away, :class:`CacheTimeout` when ``timeout`` (a deadline for the whole
    call) passes."""

    def __init__(self, client: flight.FlightClient, patterns: Iterable[str],
                 since: Mapping[str, int] | None = None, *, snapshot: bool = True,
                 max_queue: int = 0, heartbeat_ms: int = 0, timeout: float | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.patterns = list(patterns)
        command = encode_request(self.patterns, since, snapshot=snapshot, max_queue=max_queue,
                                 heartbeat_ms=heartbeat_ms)
        options = flight.FlightCallOptions(timeout=timeout, headers=headers or [])
        self.ready = False
        self.epoch = ""
        self.last_message = time.monotonic()
        self._closed = False
        try:
            self._writer, self._reader = client.do_exchange(
                flight.FlightDescriptor.for_command(command), options)
        except Exception as exc:
            raise map_error(exc) from exc

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        while True:
            change = self.next_event()
            if change is not None:
                return change

    def next_event(self) -> Change | None:
        """The next message: a :class:`Change`, or None for ``ready`` and heartbeats (so a
        caller can act on liveness). StopIteration at the end of the stream."""
        try:
            chunk = self._reader.read_chunk()
        except StopIteration:
            raise
        except Exception as exc:
            if self._closed:
                raise StopIteration from None
            mapped = map_error(exc)
            if "fell behind" in str(exc):
                raise WatchDropped(str(mapped)) from exc
            raise mapped from exc
        self.last_message = time.monotonic()
        if chunk.app_metadata is None:
            return None
        msg = bson.decode(chunk.app_metadata.to_pybytes())
        kind = msg.get("type")
        if kind == "change":
            return Change(str(msg["key"]), int(msg.get("version", 0)), str(msg.get("kind", "")),
                          str(msg.get("epoch", "")))
        if kind == "ready":
            self.ready = True
            self.epoch = str(msg.get("epoch", ""))
        elif kind == "resync":
            self.close()
            raise WatchDropped(str(msg.get("reason", "watch subscriber dropped; resync")))
        return None  # heartbeat, or a type added later

    def close(self) -> None:
        """Ends the call (safe from another thread, and more than once)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._reader.cancel()
        except Exception:  # noqa: BLE001 - already ended
            pass
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - a cancelled call ends with an error
            pass

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Watch:
    """``Client.watch(pattern)``: an endless iterator of :class:`Change` s that survives drops
    and reconnects. The subscription is established before ``Client.watch`` returns, so every
    change committed after that is reported. It remembers the version it last handed out per
    key and resubscribes with them (``since``), so nothing is missed: versions committed while
    it was disconnected arrive coalesced as one ``current`` change per key (after a
    reconnect, keys it never saw are reported as ``current`` too)."""

    def __init__(self, client: Client, endpoint: str, patterns: list[str],
                 since: Mapping[str, int] | None, snapshot: bool, max_queue: int,
                 heartbeat_ms: int, retry_backoff: float) -> None:
        self._client = client
        self._endpoint = endpoint
        self._target = endpoint  # what the current subscription dialled
        self._patterns = patterns
        self.versions: dict[str, int] = dict(since or {})
        self._snapshot = snapshot
        self._max_queue = max_queue
        self._heartbeat_ms = heartbeat_ms
        self._backoff = retry_backoff
        self._sub: Subscription | None = None
        self._pending: deque[Change] = deque()
        self._failures = 0
        self._closed = False
        self.resyncs = 0
        self._open()

    def _open(self) -> None:
        """Subscribes and reads up to ``ready``, keeping the snapshot's changes."""
        self._target = self._client._watch_target(self._endpoint, self._patterns[0])
        sub = Subscription(self._client._flight(self._target), self._patterns, self.versions,
                           headers=self._client._headers,
                           snapshot=self._snapshot, max_queue=self._max_queue,
                           heartbeat_ms=self._heartbeat_ms)
        try:
            while not sub.ready:
                change = sub.next_event()
                if change is not None:
                    self._pending.append(change)
        except BaseException:
            sub.close()
            raise
        self._sub = sub

    def __iter__(self) -> Iterator[Change]:
        return self

    def __next__(self) -> Change:
        while not self._closed:
            if not self._pending:
                try:
                    if self._sub is None:
                        self._open()
                        continue
                    change = next(self._sub)
                except (CacheUnavailable, StopIteration):
                    if self._closed:
                        break
                    if self._sub is not None:
                        self._sub.close()
                    self._sub = None
                    self._client._watch_failed(self._target)
                    self._snapshot = True  # keys created while away must be reported as well
                    self.resyncs += 1
                    self._pause()
                    continue
                self._pending.append(change)
            self._failures = 0
            change = self._pending.popleft()
            if change.deleted:
                self.versions.pop(change.key, None)
            else:
                self.versions[change.key] = change.version
            return change
        raise StopIteration

    def _pause(self) -> None:
        delay = min(self._backoff * (2 ** min(self._failures, 6)), 2.0)
        self._failures += 1
        time.sleep(delay * (0.5 + random.random() / 2))

    def close(self) -> None:
        self._closed = True
        if self._sub is not None:
            self._sub.close()


class CacheSubscription:
    """Keeps a client's cache current by WATCH (``Client.subscribe_cache``).

    A background thread holds one subscription to ``patterns`` on ``endpoint`` (with the full
    snapshot, so it knows the current version of every matching key) and records each key's
    latest version. While the subscription is healthy, a get of a matching key whose cached
    entry has exactly that version (same epoch) is answered from the cache with no round trip.
    Healthy means: ``ready`` received and a message (a change or a heartbeat) received within
    the last ``2 * heartbeat`` seconds. A hit can therefore miss a change only while that change
    is on its way (the push delay), or, if the stream silently stalls, for at most ``2 *
    heartbeat`` seconds. Whenever the subscription is not healthy, gets fall back to the usual
    conditional round trip; the thread resubscribes with backoff."""

    def __init__(self, client: Client, endpoint: str, patterns: list[str],
                 heartbeat: float, retry_backoff: float) -> None:
        self._client = client
        self.endpoint = endpoint
        self.patterns = patterns
        self.heartbeat = heartbeat
        self._backoff = retry_backoff
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._epoch = ""
        self._sub: Subscription | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.resubscribes = 0
        self._thread = threading.Thread(target=self._run, name="foc-watch-cache", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Waits until the subscription is established (snapshot received)."""
        return self._ready.wait(timeout)

    @property
    def healthy(self) -> bool:
        with self._lock:
            sub = self._sub
            return (sub is not None and sub.ready
                    and time.monotonic() - sub.last_message <= 2 * self.heartbeat)

    def covers(self, endpoint: str, key: str) -> bool:
        return endpoint == self.endpoint and any(_matches(p, key) for p in self.patterns)

    def vouches(self, endpoint: str, key: str, entry: Entry) -> bool:
        """True if ``entry`` is the current version of ``key`` as far as the push stream says."""
        if not self.covers(endpoint, key) or not self.healthy:
            return False
        with self._lock:
            return self._versions.get(key) == entry.version and entry.epoch == self._epoch

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            member = self._client._watch_target(self.endpoint, self.patterns[0])
            try:
                sub = Subscription(self._client._flight(member), self.patterns, None,
                                   headers=self._client._headers,
                                   snapshot=True, heartbeat_ms=int(self.heartbeat * 1000))
            except CacheError:
                self._client._watch_failed(member)
                failures += 1
                self._stop.wait(min(self._backoff * 2 ** min(failures, 6), 2.0))
                continue
            versions: dict[str, int] = {}  # the snapshot, installed at `ready`
            installed = False
            with self._lock:
                self._sub = sub
            try:
                while not self._stop.is_set():
                    change = sub.next_event()
                    if change is None:
                        if sub.ready and not installed:
                            with self._lock:
                                self._versions = versions
                                self._epoch = sub.epoch
                            installed = True
                            failures = 0
                            self._ready.set()
                        continue
                    with self._lock:
                        target = self._versions if installed else versions
                        if change.deleted:
                            target.pop(change.key, None)
                        else:
                            target[change.key] = change.version
            except (CacheError, StopIteration):
                pass
            finally:
                with self._lock:
                    self._sub = None
                    self._versions = {}
                sub.close()
            if not self._stop.is_set():
                self.resubscribes += 1
                self._client._watch_failed(member)
                failures += 1
                self._stop.wait(min(self._backoff * 2 ** min(failures, 6), 2.0))

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            sub = self._sub
        if sub is not None:
            sub.close()
        self._thread.join(5)


def wait_for_change(client: Client, endpoint: str, key: str, version: int,
                    timeout: float | None) -> tuple[int, bool] | None:
    """Blocks until ``key`` has a version other than ``version`` (or is deleted), or until
    ``timeout`` seconds pass (then None). Returns ``(version, deleted)``. Survives a dropped
    subscription or a server restart within the timeout by subscribing again."""
    deadline = None if timeout is None else time.monotonic() + timeout
    failures = 0
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return None
        target = client._watch_target(endpoint, key)
        try:
            with Subscription(client._flight(target), [key], {key: version}, headers=client._headers,
                              snapshot=False,
                              timeout=remaining) as sub:
                for change in sub:
                    if change.key != key or (change.deleted and change.version == version == 0):
                        continue  # version 0: the key does not exist yet; wait for it
                    if change.deleted or change.version != version:
                        return change.version, change.deleted
        except CacheTimeout:
            return None
        except CacheUnavailable:
            client._watch_failed(target)
        failures += 1
        time.sleep(min(0.05 * 2 ** min(failures, 6), 1.0))
