"""Rendezvous routing in the Python SDK agrees with the C++ rule (src/protocol/routing.h).

Both languages check the same vectors, tests/rules/rendezvous.json.
"""

from __future__ import annotations

import collections
import json
import pathlib

from flame_object_cache._routing import rendezvous_order, rendezvous_score, routing_key

RULES = pathlib.Path(__file__).resolve().parents[2] / "rules" / "rendezvous.json"


def vectors() -> dict:
    return json.loads(RULES.read_text())


def test_scores_match_the_shared_vectors() -> None:
    cases = vectors()["scores"]
    assert cases
    for c in cases:
        assert str(rendezvous_score(c["member"], c["key"])) == c["score"], c


def test_routing_keys_and_orders_match_the_shared_vectors() -> None:
    v = vectors()
    for c in v["routing_keys"]:
        assert routing_key(c["key"]) == c["routed"]
    assert v["orders"]
    for c in v["orders"]:
        assert rendezvous_order(c["key"], c["members"]) == c["order"], c


def test_spread_and_minimal_movement() -> None:
    three = ["grpc://h1:9090", "grpc://h2:9090", "grpc://h3:9090"]
    two = ["grpc://h1:9090", "grpc://h3:9090"]
    owners = collections.Counter()
    for i in range(3000):
        key = f"app/s{i}/obj"
        before = rendezvous_order(key, three)[0]
        owners[before] += 1
        if before != "grpc://h2:9090":
            assert rendezvous_order(key, two)[0] == before
    for n in owners.values():
        assert 3000 // 4 < n < 3000 * 5 // 12
