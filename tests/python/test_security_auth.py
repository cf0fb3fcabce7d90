"""Issue 12, Deliver 1 and 2: bearer tokens, mTLS identities and per-app grants, against the real
binary with raw pyarrow.flight (the `authorization` header) and with the SDK."""

from __future__ import annotations

import hashlib
import signal
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import Pki, ServerProcess
from flight_wire import get, put, rows

TOKENS = {"reader": "r-secret", "writer": "w-secret", "admin": "a-secret", "other": "o-secret"}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_file(path: Path, extra: str = "") -> Path:
    path.write_text(
        "identities:\n"
        f"  - name: reader\n    token_sha256: {digest(TOKENS['reader'])}\n    grants: {{train: read}}\n"
        f"  - name: writer\n    token_sha256: {digest(TOKENS['writer'])}\n    grants: {{train: write}}\n"
        f"  - name: admin\n    token_sha256: {digest(TOKENS['admin'])}\n    grants: {{'*': admin}}\n"
        f"  - name: other\n    token_sha256: {digest(TOKENS['other'])}\n    grants: {{'other-*': write}}\n"
        + extra)
    return path


def start_auth(start_server, tmp_path: Path, anonymous: str = "none", extra: str = "",
               more: str = "") -> ServerProcess:
    tokens = tokens_file(tmp_path / "tokens.yaml", extra)
    config = tmp_path / "flame-cluster.yaml"
    config.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n"
                      "  metrics:\n    port: 0\n    bind: 127.0.0.1\n"
                      f"  auth:\n    tokens_file: {tokens}\n    anonymous: {anonymous}\n" + more)
    return start_server("-c", str(config))


def as_(token: str | None) -> flight.FlightCallOptions:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return flight.FlightCallOptions(headers=headers, timeout=30)


def put_as(client, token, path: str, data: bytes):
    schema = pa.schema([("version", pa.uint64()), ("data", pa.binary())])
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(path), schema, as_(token))
    writer.write_batch(pa.record_batch([pa.array([0], pa.uint64()), pa.array([data])], schema=schema))
    writer.done_writing()
    meta = reader.read()
    writer.close()
    return meta


def get_as(client, token, key: str) -> bytes:
    table = client.do_get(flight.Ticket(f"{key}:0".encode()), as_(token)).read_all()
    return table.column("data")[0].as_py()


def delete_as(client, token, pattern: str):
    return list(client.do_action(flight.Action("DELETE", pattern.encode()), as_(token)))


def listed(client, token) -> list[str]:
    return sorted(i.descriptor.path[0].decode() for i in client.list_flights(options=as_(token)))


def test_anonymous_refused_and_tokens_checked(start_server, tmp_path):
    server = start_auth(start_server, tmp_path)
    c = flight.connect(server.endpoint)
    put_as(c, TOKENS["writer"], "train/s/k", b"v1")
    with pytest.raises(flight.FlightUnauthenticatedError, match="train/s/k.*needs read"):
        get_as(c, None, "train/s/k")
    with pytest.raises(flight.FlightUnauthenticatedError):
        put_as(c, None, "train/s/k", b"anon")
    with pytest.raises(flight.FlightUnauthenticatedError, match="not known"):
        get_as(c, "wrong-token", "train/s/k")
    assert get_as(c, TOKENS["reader"], "train/s/k") == b"v1"
    # A read token cannot write; the refusal names the key and the missing right.
    with pytest.raises(flight.FlightUnauthorizedError, match="train/s/k.*needs write.*reader"):
        put_as(c, TOKENS["reader"], "train/s/k", b"nope")
    with pytest.raises(flight.FlightUnauthorizedError, match="needs write"):
        c.do_put(flight.FlightDescriptor.for_command(b"PATCH:train/s/k"),
                 pa.schema([("version", pa.uint64()), ("data", pa.binary())]),
                 as_(TOKENS["reader"]))[1].read()
    # A write token cannot delete the app or a session, only single objects.
    with pytest.raises(flight.FlightUnauthorizedError, match="DELETE train/\\*.*needs admin"):
        delete_as(c, TOKENS["writer"], "train/*")
    with pytest.raises(flight.FlightUnauthorizedError, match="needs admin"):
        delete_as(c, TOKENS["writer"], "train/s")
    assert get_as(c, TOKENS["reader"], "train/s/k") == b"v1"  # nothing was deleted
    delete_as(c, TOKENS["admin"], "train/*")
    with pytest.raises(KeyError):
        get_as(c, TOKENS["reader"], "train/s/k")
    body = urllib.request.urlopen(server.metrics_url, timeout=30).read().decode()
    assert 'foc_auth_refused_total{code="UNAUTHENTICATED"} 3' in body
    assert 'foc_auth_refused_total{code="PERMISSION_DENIED"} 4' in body
    c.close()


def test_listing_shows_only_readable_apps(start_server, tmp_path):
    server = start_auth(start_server, tmp_path)
    c = flight.connect(server.endpoint)
    put_as(c, TOKENS["writer"], "train/s/a", b"1")
    put_as(c, TOKENS["other"], "other-app/s/b", b"2")
    assert listed(c, TOKENS["other"]) == ["other-app/s/b"]
    assert listed(c, TOKENS["reader"]) == ["train/s/a"]
    assert listed(c, TOKENS["admin"]) == ["other-app/s/b", "train/s/a"]
    with pytest.raises(flight.FlightUnauthorizedError):
        get_as(c, TOKENS["other"], "train/s/a")
    with pytest.raises(flight.FlightUnauthorizedError):
        c.get_flight_info(flight.FlightDescriptor.for_path("train/s/a"), as_(TOKENS["other"]))
    assert listed(c, None) == []  # anonymous: none
    c.close()


def test_anonymous_read(start_server, tmp_path):
    server = start_auth(start_server, tmp_path, anonymous="read")
    c = flight.connect(server.endpoint)
    put_as(c, TOKENS["writer"], "train/s/k", b"v")
    assert get_as(c, None, "train/s/k") == b"v"
    with pytest.raises(flight.FlightUnauthenticatedError, match="needs write"):
        put_as(c, None, "train/s/k", b"x")
    c.close()


def test_sighup_reloads_tokens(start_server, tmp_path):
    server = start_auth(start_server, tmp_path)
    c = flight.connect(server.endpoint)
    put_as(c, TOKENS["writer"], "train/s/k", b"v")
    with pytest.raises(flight.FlightUnauthenticatedError):
        get_as(c, "new-token", "train/s/k")
    tokens_file(tmp_path / "tokens.yaml",
                f"  - name: newcomer\n    token_sha256: {digest('new-token')}\n    grants: {{train: read}}\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while not any("tokens file reloaded" in line for line in server.output):
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.1)
    assert get_as(c, "new-token", "train/s/k") == b"v"
    # A broken file is refused and the previous tokens stay in force.
    (tmp_path / "tokens.yaml").write_text("identities: [ {name: x, grants: {a: fly}} ]\n")
    server.proc.send_signal(signal.SIGHUP)
    while not any("not reloaded" in line for line in server.output):
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.1)
    assert get_as(c, "new-token", "train/s/k") == b"v"
    assert server.proc.poll() is None
    c.close()


def test_no_auth_section_is_todays_behaviour(start_server):
    server = start_server("--storage", "none")
    c = flight.connect(server.endpoint)
    put(c, "any/s/k", b"v")
    assert rows(get(c, "any/s/k"))[0][2] == b"v"
    c.close()


def test_mtls_identity_mapped_to_grants(tmp_path, pki: Pki):
    tokens = tokens_file(tmp_path / "tokens.yaml",
                         "  - name: cert-client\n    tls_identity: client\n    grants: {train: write}\n")
    config = tmp_path / "flame-cluster.yaml"
    config.write_text(
        "cache:\n  endpoint: grpcs://127.0.0.1:0\n  storage: none\n  tls:\n"
        f"    cert_file: {pki.path('server.crt')}\n    key_file: {pki.path('server.key')}\n"
        f"    ca_file: {pki.ca}\n"
        f"  auth:\n    tokens_file: {tokens}\n    anonymous: none\n")
    server = ServerProcess(["-c", str(config)])
    try:
        c = flight.connect(server.endpoint, tls_root_certs=pki.read("ca.crt"),
                           cert_chain=pki.read("client.crt"), private_key=pki.read("client.key"))
        put_as(c, None, "train/s/k", b"by certificate")
        assert get_as(c, None, "train/s/k") == b"by certificate"
        with pytest.raises(flight.FlightUnauthorizedError, match="cert-client"):
            put_as(c, None, "other/s/k", b"x")
        # A token still takes precedence over the certificate.
        with pytest.raises(flight.FlightUnauthorizedError, match="reader"):
            put_as(c, TOKENS["reader"], "train/s/k", b"x")
        c.close()
    finally:
        assert server.stop() == 0


def test_sdk_and_cli_send_the_token(start_server, tmp_path, monkeypatch):
    import os
    import subprocess

    from flame_object_cache import CacheAuthError, Client

    server = start_auth(start_server, tmp_path)
    with Client(server.endpoint, token=TOKENS["writer"]) as writer:
        ref = writer.put_object("train/s", {"w": 1})
        assert writer.get_object(ref) == {"w": 1}
    with Client(server.endpoint) as anonymous:
        with pytest.raises(CacheAuthError):
            anonymous.get_object(ref)
    monkeypatch.setenv("FLAME_CACHE_TOKEN", TOKENS["reader"])
    with Client(server.endpoint) as reader:
        assert reader.get_object(ref) == {"w": 1}
        with pytest.raises(CacheAuthError):
            reader.put_object("train/s", 2)
    monkeypatch.delenv("FLAME_CACHE_TOKEN")
    token_path = tmp_path / "token"
    token_path.write_text(TOKENS["admin"] + "\n")
    with Client(server.endpoint, token_file=token_path) as admin:
        admin.delete_objects("train/*")

    cli = Path(os.environ.get("FOC_CLI_BINARY", Path(__file__).resolve().parents[2]
                              / "build/release/tools/flame-cache"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAME_")}
    base = [str(cli), "--endpoint", server.endpoint]
    put_args = ["put", "train/s/cli", "-"]
    refused = subprocess.run(base + put_args, input=b"x", capture_output=True, env=env, timeout=60)
    assert refused.returncode != 0 and b"UNAUTHENTICATED" in refused.stderr + refused.stdout
    done = subprocess.run(base + ["--token", TOKENS["writer"]] + put_args, input=b"x",
                          capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    env["FLAME_CACHE_TOKEN"] = TOKENS["reader"]
    got = subprocess.run(base + ["get", "train/s/cli"], capture_output=True, env=env, timeout=60)
    assert got.returncode == 0 and got.stdout == b"x", got.stderr


def test_info_needs_read_on_every_app(start_server, tmp_path):
    """INFO (server status) reports aggregates of every app: an identity with read on `*` (an
    operator, a monitor) gets it; a tenant limited to its apps and anonymous callers do not."""
    monitor = "m-secret"
    server = start_auth(start_server, tmp_path, extra=(
        f"  - name: monitor\n    token_sha256: {digest(monitor)}\n    grants: {{'*': read}}\n"))
    c = flight.connect(server.endpoint)
    put_as(c, TOKENS["writer"], "train/s/k", b"v1")
    for token in (monitor, TOKENS["admin"]):
        (result,) = list(c.do_action(flight.Action("INFO", b""), as_(token)))
        assert b'"objects":1' in result.body.to_pybytes()
    with pytest.raises(flight.FlightUnauthorizedError, match="INFO.*needs read on app '\\*'"):
        list(c.do_action(flight.Action("INFO", b""), as_(TOKENS["writer"])))
    with pytest.raises(flight.FlightUnauthenticatedError, match="INFO"):
        list(c.do_action(flight.Action("INFO", b""), as_(None)))
