"""The client-side object cache: byte- and entry-bounded LRU of server replies.

Invariants (all guarded by ``ObjectCache.lock``):

* An entry holds what the server sent for one ``(endpoint, key)``: the payload bytes of the base
  and of every patch (``pyarrow.Buffer`` slices of the received messages, never copied), or the
  received native table; the version; the server's epoch; when it was last verified.
* Payload fields of an entry never change after it is published (only ``verified_at`` and the
  memo do, under the lock). Applying patch-only replies
  publishes a *new* entry, so a reader holding an entry always sees a consistent snapshot.
* ``bytes`` is the sum of the entries' charges: payload bytes plus an estimate for memoised
  deserializer results (each charged the entry's payload size). After every insertion
  ``bytes <= max_bytes`` and ``len(entries) <= max_entries``; the least recently used entries go
  first. An entry larger than ``max_bytes`` on its own is returned to the caller but not kept.
* A fetch in flight for a key is poisoned when the key is invalidated (update, patch, delete,
  clear); a poisoned fetch still answers the callers that started before the invalidation, but
  its result is not stored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import pyarrow as pa

CacheKey = tuple[str, str]

MEMO_PER_ENTRY = 4


@dataclass(eq=False)
class Entry:
    version: int
    epoch: str | None
    base: pa.Buffer | None = None  # opaque base payload
    native: pa.Table | None = None  # native-table reply (schema metadata intact)
    patches: tuple[tuple[int, pa.Buffer], ...] = ()
    verified_at: float = 0.0  # time.monotonic() of the last server confirmation
    memo: OrderedDict[Any, Any] = field(default_factory=OrderedDict, compare=False, repr=False)

    @property
    def payload_bytes(self) -> int:
        size: int = sum(int(p.size) for _, p in self.patches)
        if self.base is not None:
            size += int(self.base.size)
        if self.native is not None:
            size += self.native.get_total_buffer_size()
        return size

    @property
    def charge(self) -> int:
        return self.payload_bytes * (1 + len(self.memo))

    def with_patches(self, version: int, patches: list[tuple[int, pa.Buffer]], now: float,
                     carry: Callable[[Any], bool]) -> Entry:
        """A new entry with ``patches`` appended. Memo values whose key satisfies ``carry`` (the
        decoded base; incremental states, which know how many patches they include) are carried
        over. Call with the cache lock held (the memo may change under other threads)."""
        entry = Entry(
            version=version,
            epoch=self.epoch,
            base=self.base,
            native=self.native,
            patches=self.patches + tuple(patches),
            verified_at=now,
        )
        for key, value in self.memo.items():
            if carry(key):
                entry.memo[key] = value
        return entry


class InFlight:
    """One fetch in progress for a key (single-flight)."""

    __slots__ = ("done", "error", "poisoned", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Entry | None = None
        self.error: BaseException | None = None
        self.poisoned = False


class ObjectCache:
    def __init__(self, max_bytes: int, max_entries: int) -> None:
        if max_bytes < 0 or max_entries < 0:
            raise ValueError("cache bounds must be >= 0")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._inflight: dict[CacheKey, InFlight] = {}
        self.bytes = 0
        self.counters: dict[str, int] = {
            "hits": 0,  # answered from the cache: server said not modified
            "stale_hits": 0,  # answered from the cache without a round trip (max_staleness)
            "watch_hits": 0,  # answered from the cache without a round trip (kept current by WATCH)
            "patched": 0,  # patch-only reply applied to the cached copy
            "misses": 0,  # full reply (no usable cached copy)
            "coalesced": 0,  # waited for another thread's identical request (single-flight)
            "epoch_changes": 0,  # cached copy discarded: the server's epoch differed
            "evictions": 0,
            "requests": 0,  # DoGet calls made
            "bytes_received": 0,  # reply bytes (Arrow buffers) received by DoGet
        }

    # -- counters -------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    def stats(self) -> dict[str, int]:
        with self.lock:
            out = dict(self.counters)
            out["bytes"] = self.bytes
            out["entries"] = len(self._entries)
            out["max_bytes"] = self.max_bytes
            out["max_entries"] = self.max_entries
            return out

    # -- entries --------------------------------------------------------------------------
    def get(self, key: CacheKey) -> Entry | None:
        with self.lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _drop(self, key: CacheKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.charge

    def _evict(self) -> None:
        while self._entries and (self.bytes > self.max_bytes or len(self._entries) > self.max_entries):
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.charge
            self.counters["evictions"] += 1

    def store(self, key: CacheKey, entry: Entry, flight: InFlight | None) -> None:
        """Publishes ``entry`` (replacing any other) unless the fetch was poisoned or the entry
        cannot fit at all. A full reply always replaces, even with a lower version: it is the
        server's truth (a server without epochs that lost its state looks exactly like that)."""
        with self.lock:
            if flight is not None and flight.poisoned:
                return
            self._drop(key)
            if entry.charge > self.max_bytes or self.max_entries == 0:
                return
            self._entries[key] = entry
            self.bytes += entry.charge
            self._evict()

    def extend(self, key: CacheKey, cached: Entry, version: int, patches: list[tuple[int, pa.Buffer]],
               when: float, carry: Callable[[Any], bool], flight: InFlight | None) -> Entry:
        """Publishes ``cached`` plus a patch-only reply's patches as a new entry."""
        with self.lock:
            entry = cached.with_patches(version, patches, when, carry)
        self.store(key, entry, flight)
        return entry

    def touch(self, key: CacheKey, entry: Entry, flight: InFlight | None, when: float) -> bool:
        """Records that the server confirmed ``entry``; False if it is no longer published
        (evicted or invalidated meanwhile)."""
        with self.lock:
            if self._entries.get(key) is not entry or (flight is not None and flight.poisoned):
                return False
            entry.verified_at = when
            self._entries.move_to_end(key)
            return True

    def remove(self, key: CacheKey) -> None:
        with self.lock:
            self._drop(key)
            flight = self._inflight.get(key)
            if flight is not None:
                flight.poisoned = True

    def remove_matching(self, match: Callable[[CacheKey], bool]) -> None:
        with self.lock:
            for key in [k for k in self._entries if match(k)]:
                self._drop(key)
            for key, flight in self._inflight.items():
                if match(key):
                    flight.poisoned = True

    def clear(self) -> None:
        with self.lock:
            self._entries.clear()
            self.bytes = 0
            for flight in self._inflight.values():
                flight.poisoned = True

    # -- memo -----------------------------------------------------------------------------
    def memo_get(self, entry: Entry, memo_key: Any) -> tuple[bool, Any]:
        with self.lock:
            if memo_key in entry.memo:
                entry.memo.move_to_end(memo_key)
                return True, entry.memo[memo_key]
            return False, None

    def memo_put(self, key: CacheKey, entry: Entry, memo_key: Any, value: Any) -> None:
        with self.lock:
            published = self._entries.get(key) is entry
            before = entry.charge
            entry.memo[memo_key] = value
            entry.memo.move_to_end(memo_key)
            while len(entry.memo) > MEMO_PER_ENTRY:
                entry.memo.popitem(last=False)
            if entry.charge > self.max_bytes:
                entry.memo.clear()  # the memo would not fit: do not memoise for this entry
            if published:
                self.bytes += entry.charge - before
                self._evict()

    # -- single-flight --------------------------------------------------------------------
    def join_or_lead(self, key: CacheKey) -> tuple[InFlight, bool]:
        with self.lock:
            flight = self._inflight.get(key)
            if flight is not None:
                return flight, False
            flight = InFlight()
            self._inflight[key] = flight
            return flight, True

    def finish(self, key: CacheKey, flight: InFlight) -> None:
        with self.lock:
            if self._inflight.get(key) is flight:
                del self._inflight[key]
        flight.done.set()


def now() -> float:
    return time.monotonic()
