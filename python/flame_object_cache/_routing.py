"""Rendezvous hashing: which cluster member a key goes to.

The exact rule is specified once, in ``src/protocol/routing.h``; this module implements the same
rule for the Python SDK, and ``tests/rules/rendezvous.json`` holds the vectors that both the C++
tests and the Python tests check, so the two never disagree about a key's owner.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1


def _fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & _MASK
    return h


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK
    x ^= x >> 31
    return x


def rendezvous_score(member: str, key: str) -> int:
    """score(member, key) = mix(h(member) ^ mix(h(key))), h = FNV-1a 64 of the UTF-8 bytes."""
    return _mix(_fnv1a64(member.encode()) ^ _mix(_fnv1a64(key.encode())))


def routing_key(key: str) -> str:
    """``<app>/<session>`` of ``<app>/<session>/<object>``; a shorter key is returned whole."""
    first = key.find("/")
    if first < 0:
        return key
    second = key.find("/", first + 1)
    return key if second < 0 else key[:second]


def rendezvous_order(key: str, members: list[str]) -> list[str]:
    """Members by preference for ``key``: owner first, then the failover order."""
    routed = routing_key(key)
    return sorted(members, key=lambda m: (-rendezvous_score(m, routed), m))
