"""Writes keys.json and endpoints.json, the shared rule tables (see README.md here).

Edit the cases below, run `python tests/rules/generate.py`, commit both files. The C++ tests
(src/key/key_rules_test.cc, src/protocol/endpoint_rules_test.cc) and the Python SDK tests
(tests/python/sdk/test_sdk_rules.py) read the JSON files, never this script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def ok(rule: str, text: str) -> dict[str, Any]:
    return {"rule": rule, "input": text, "valid": True}


def bad(rule: str, text: str, error: str) -> dict[str, Any]:
    return {"rule": rule, "input": text, "valid": False, "error": error}


def bad_bytes(rule: str, data: bytes, error: str) -> dict[str, Any]:
    """Input that is not valid UTF-8 (no JSON or Python string can hold it)."""
    return {"rule": rule, "input_hex": data.hex(), "valid": False, "error": error}


KEYS: list[dict[str, Any]] = [
    # rule "key": a full key <app>/<session>/<object> (get, update, patch, download).
    ok("key", "a/b/c"),
    ok("key", "app/ssn/550e8400-e29b-41d4-a716-446655440000"),
    ok("key", "my-app/session_1/pkg.tar.gz"),
    ok("key", "a/b/c:d"),
    ok("key", "a/b/with space"),
    ok("key", "\u00e9t\u00e9/s/\u65e5"),
    ok("key", "a/b/x*y"),
    ok("key", "a/b/v1.2"),
    ok("key", "a/b/trailing."),
    ok("key", "a/b/" + "x" * 200),
    ok("key", "a/b/" + "\u00e9" * 100),  # 200 bytes of UTF-8
    bad("key", "", "expected '<app>/<session>/<object>'"),
    bad("key", "a", "expected '<app>/<session>/<object>'"),
    bad("key", "a/b", "expected '<app>/<session>/<object>'"),
    bad("key", "a/b/c/d", "expected '<app>/<session>/<object>'"),
    bad("key", "a//c", "empty component"),
    bad("key", "/b/c", "empty component"),
    bad("key", "a/b/", "empty component"),
    bad("key", "../etc/passwd", "must not start with '.'"),
    bad("key", "app/../object", "must not start with '.'"),
    bad("key", "app/../other/object", "expected '<app>/<session>/<object>'"),
    bad("key", "app/session/..", "must not start with '.'"),
    bad("key", "a/./c", "must not start with '.'"),
    bad("key", "a/b/.", "must not start with '.'"),
    bad("key", "a/b/.hidden", "must not start with '.'"),
    bad("key", "app/.hidden/obj", "must not start with '.'"),
    bad("key", ".app/s/o", "must not start with '.'"),
    bad("key", "a/b/x..y", "must not contain '..'"),
    bad("key", "a/x..y/c", "'x..y'"),
    bad("key", "a/b/c\\d", "must not contain '\\'"),
    bad("key", "*/b/c", "'*' is only allowed"),
    bad("key", "a/*/c", "'*' is only allowed"),
    bad("key", "a/b/*", "'*' is only allowed"),
    bad("key", "a/b/\u0001", "control characters"),
    bad("key", "a/b/c\u0000d", "control characters"),
    bad("key", "a/b/tab\there", "control characters"),
    bad("key", "a/b/\u007f", "control characters"),
    bad("key", "a/b/" + "x" * 201, "longer than 200 bytes"),
    bad("key", "a/" + "s" * 300 + "/c", "longer than 200 bytes"),
    bad("key", "a/b/" + "\u00e9" * 101, "longer than 200 bytes"),  # 101 characters, 202 bytes
    bad_bytes("key", b"a/b/\xc3", "not valid UTF-8"),
    bad_bytes("key", b"a/b/\xc0\xaf", "not valid UTF-8"),  # overlong '/'
    bad_bytes("key", b"a/b/\xed\xa0\x80", "not valid UTF-8"),  # a surrogate
    # rule "put_path": what a put or upload names, <app>/<session> or a full key.
    ok("put_path", "app/ssn"),
    ok("put_path", "app/ssn/obj"),
    ok("put_path", "app/s*"),
    bad("put_path", "app/*", "'*' is only allowed"),
    bad("put_path", "app", "expected '<app>/<session>' or '<app>/<session>/<object>'"),
    bad("put_path", "a/b/c/d", "expected '<app>/<session>' or '<app>/<session>/<object>'"),
    bad("put_path", "../bad", "must not start with '.'"),
    bad("put_path", "app/.s", "must not start with '.'"),
    bad("put_path", "app/" + "s" * 201, "longer than 200 bytes"),
    # rule "pattern": what a delete names, <app>/*, <app>/<session> or a full key.
    ok("pattern", "app/*"),
    ok("pattern", "app/s"),
    ok("pattern", "app/s/x"),
    ok("pattern", "app/s*"),
    bad("pattern", "*/s", "'*' is only allowed"),
    bad("pattern", "app/*/x", "the wildcard session '*' cannot have an object id"),
    bad("pattern", "app/s/*", "'*' is only allowed"),
    bad("pattern", "app/s*/x/y", "expected '<app>/*', '<app>/<session>' or '<app>/<session>/<object>'"),
    bad("pattern", "app", "expected '<app>/*', '<app>/<session>' or '<app>/<session>/<object>'"),
    bad("pattern", ".app/*", "must not start with '.'"),
    bad("pattern", "app/.s", "must not start with '.'"),
]


def dial(text: str, location: str, tls: bool) -> dict[str, Any]:
    return {"input": text, "valid": True, "location": location, "tls": tls}


def refuse(text: str, error: str) -> dict[str, Any]:
    return {"input": text, "valid": False, "error": error}


ENDPOINTS: list[dict[str, Any]] = [
    # Plaintext: grpc, grpc+tcp, http. TLS: grpcs, grpc+tls, https (docs/operations.md).
    dial("grpc://127.0.0.1:9090", "grpc://127.0.0.1:9090", False),
    dial("grpc+tcp://127.0.0.1:9090", "grpc://127.0.0.1:9090", False),
    dial("http://127.0.0.1:9090", "grpc://127.0.0.1:9090", False),
    dial("http://127.0.0.1:9090/", "grpc://127.0.0.1:9090", False),
    dial("grpcs://cache.example:443", "grpc+tls://cache.example:443", True),
    dial("grpc+tls://cache.example:443", "grpc+tls://cache.example:443", True),
    dial("https://cache.example:443", "grpc+tls://cache.example:443", True),
    dial("GRPC+TLS://[::1]:0", "grpc+tls://[::1]:0", True),
    dial("grpcs://flame-object-cache", "grpc+tls://flame-object-cache:9090", True),
    dial("grpc://localhost", "grpc://localhost:9090", False),
    dial("grpc://[fd00::2]:7000", "grpc://[fd00::2]:7000", False),
    dial("grpc+tcp://0.0.0.0:1", "grpc://0.0.0.0:1", False),
    dial("grpc://my_host-1.example.org:65535", "grpc://my_host-1.example.org:65535", False),
    refuse("127.0.0.1:9090", "is not of the form scheme://host:port"),
    refuse("", "is not of the form scheme://host:port"),
    refuse("ftp://h:1", "unsupported scheme 'ftp'"),
    refuse("grpc+unix:///tmp/sock", "unsupported scheme 'grpc+unix'"),
    refuse("tcp://h:1", "unsupported scheme 'tcp'"),
    refuse("grpc://:9090", "no host"),
    refuse("grpc://", "no host"),
    refuse("grpc://h:70000", "invalid port '70000'"),
    refuse("grpc://h:-1", "invalid port '-1'"),
    refuse("grpc://h:x", "invalid port 'x'"),
    refuse("grpc://h:", "empty port"),
    refuse("grpc://h:1/path", "must be scheme://host[:port] only"),
    refuse("grpc://h:1?q=1", "must be scheme://host[:port] only"),
    refuse("grpc://user@h:1", "must be scheme://host[:port] only"),
    refuse("grpc://[nope]:1", "is not an IPv6 address"),
    refuse("grpc://[::1", "unterminated '['"),
    refuse("grpc://a b:1", "invalid host 'a b'"),
    refuse("grpc://fd00::zz", "invalid host"),
]

HEADER = ("Shared rule table: generated by tests/rules/generate.py, read by the C++ tests and the "
          "Python SDK tests (see tests/rules/README.md).")


def main() -> None:
    for name, cases in (("keys.json", KEYS), ("endpoints.json", ENDPOINTS)):
        lines = ",\n".join("  " + json.dumps(case, ensure_ascii=True) for case in cases)
        text = '{\n "about": ' + json.dumps(HEADER) + ',\n "cases": [\n' + lines + "\n ]\n}\n"
        json.loads(text)  # one case per line, still JSON
        (HERE / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
