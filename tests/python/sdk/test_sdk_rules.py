"""The shared rule tables (tests/rules/*.json), run against the Python SDK; the C++ tests run the
same files (src/key/key_test.cc, src/protocol/endpoint_test.cc)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

import flame_object_cache as foc
from flame_object_cache.endpoints import parse_endpoint
from flame_object_cache.keys import ObjectKey

RULES = Path(__file__).resolve().parents[2] / "rules"


def cases(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((RULES / name).read_text(encoding="utf-8"))["cases"]
    return loaded


def case_id(case: dict[str, Any]) -> str:
    text = case.get("input", case.get("input_hex", ""))
    return f"{case.get('rule', 'endpoint')}:{text[:48]!r}"


KEY_CASES = cases("keys.json")
PARSERS: dict[str, Callable[[str], ObjectKey]] = {
    "key": ObjectKey.from_key,
    "put_path": ObjectKey.from_put_path,
    "pattern": ObjectKey.from_path,
}


def test_tables_are_not_empty() -> None:
    assert len(KEY_CASES) > 50
    assert {c["rule"] for c in KEY_CASES} == set(PARSERS)
    assert len(cases("endpoints.json")) > 20


@pytest.mark.parametrize("case", KEY_CASES, ids=case_id)
def test_key_rule(case: dict[str, Any]) -> None:
    parse = PARSERS[case["rule"]]
    if "input_hex" in case:
        # Not valid UTF-8: no str can hold these bytes, so the SDK can never send them.
        data = bytes.fromhex(case["input_hex"])
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        # Python's closest spelling (lone surrogates) is refused with the server's reason.
        with pytest.raises(ValueError, match=case["error"]):
            parse(data.decode("utf-8", "surrogateescape"))
        return
    if case["valid"]:
        parsed = parse(case["input"])
        assert str(parsed) == case["input"]
    else:
        with pytest.raises(ValueError) as info:
            parse(case["input"])
        assert case["error"] in str(info.value)


@pytest.mark.parametrize("case", cases("endpoints.json"), ids=case_id)
def test_endpoint_rule(case: dict[str, Any]) -> None:
    if case["valid"]:
        endpoint = parse_endpoint(case["input"])
        assert endpoint.location == case["location"]
        assert endpoint.tls == case["tls"]
        foc.Client(case["input"]).close()  # a client accepts it (connections are lazy)
    else:
        with pytest.raises(ValueError) as info:
            parse_endpoint(case["input"])
        assert case["error"] in str(info.value)
        with pytest.raises(foc.InvalidRequest, match="invalid cache endpoint"):
            foc.Client(case["input"])
