"""s3:// storage against a real S3 server (Versity S3 Gateway on loopback): objects outlive
the server process, an S3 outage makes writes fail UNAVAILABLE while resident objects are
still served, a second server on the same prefix is refused, and bad settings fail clearly."""

from __future__ import annotations

import subprocess

import pyarrow.flight as flight
import pytest

from conftest import (BINARY, S3Gateway, ServerProcess, free_loopback_port, hermetic_env,
                      new_s3_prefix)
from flight_wire import get, patch, put, rows


def start(gw: S3Gateway, url: str, env: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", url],
                         env=env if env is not None else gw.env)


def run_to_exit(url: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Runs a server that is expected to refuse to start."""
    return subprocess.run([str(BINARY), "--endpoint", "grpc://127.0.0.1:0", "--storage", url],
                          env=hermetic_env(env), capture_output=True, text=True, timeout=120)


def test_objects_survive_a_restart(s3_gateway: S3Gateway) -> None:
    url = s3_gateway.url(new_s3_prefix("restart"))
    srv = start(s3_gateway, url)
    client = flight.connect(srv.endpoint)
    key = put(client, "app/sess/obj", b"base")["key"]
    patch(client, key, b"+delta")
    client.close()
    assert srv.stop() == 0
    srv = start(s3_gateway, url)
    try:
        client = flight.connect(srv.endpoint)
        got = rows(get(client, key))
        assert [(kind, data) for _, kind, data in got] == [("base", b"base"), ("patch", b"+delta")]
        # Versions continue above what the bucket holds, also after a delete.
        version = got[-1][0]
        list(client.do_action(flight.Action("DELETE", key.encode())))
        assert put(client, "app/sess/obj", b"again")["version"] > version
        client.close()
    finally:
        srv.stop()
    assert any("objects indexed" in line for line in srv.output)


def test_outage_fails_writes_unavailable_and_serves_resident_objects(
        tmp_path, request) -> None:
    gw = S3Gateway(tmp_path / "gw")  # our own: this test stops it
    request.addfinalizer(gw.stop)
    srv = start(gw, gw.url(new_s3_prefix("outage")))
    try:
        client = flight.connect(srv.endpoint)
        key = put(client, "app/sess/resident", b"kept in memory")["key"]
        other = put(client, "app/sess/patched", b"base")["key"]
        gw.stop()
        with pytest.raises(flight.FlightUnavailableError, match="S3 storage unavailable"):
            put(client, "app/sess/new", b"x", timeout=60)
        # Objects in the memory tier are still served.
        assert rows(get(client, key, timeout=30))[0][2] == b"kept in memory"
        # A failed write may or may not have reached S3 (a timeout after the PUT landed):
        # the store forgets the object's memory copy, so it reads S3's state next time.
        with pytest.raises(flight.FlightUnavailableError, match="S3 storage unavailable"):
            patch(client, other, b"+d", timeout=60)
        with pytest.raises(flight.FlightUnavailableError, match="S3 storage unavailable"):
            get(client, other, timeout=30)
        gw.start()
        new_key = put(client, "app/sess/new", b"after the outage", timeout=60)["key"]
        patch(client, other, b"+d", timeout=60)
        assert rows(get(client, new_key))[0][2] == b"after the outage"
        assert [d for _, _, d in rows(get(client, other))] == [b"base", b"+d"]
        assert rows(get(client, key))[0][2] == b"kept in memory"
        client.close()
    finally:
        srv.stop()


def test_a_second_server_on_the_prefix_is_refused(s3_gateway: S3Gateway) -> None:
    url = s3_gateway.url(new_s3_prefix("lease"), lease_seconds=2)
    first = start(s3_gateway, url)
    try:
        proc = run_to_exit(url, s3_gateway.env)
        assert proc.returncode != 0
        assert "in use by another running server" in proc.stdout + proc.stderr
        assert "two servers must not share an S3 prefix" in proc.stdout + proc.stderr
    finally:
        assert first.stop() == 0
    # Stopped cleanly, the first server released the lease: a new one starts at once.
    again = start(s3_gateway, url)
    assert again.stop() == 0


@pytest.mark.parametrize("case", ["no-bucket", "bad-credentials", "unreachable", "no-bucket-name"])
def test_bad_settings_fail_at_start_with_the_reason(s3_gateway: S3Gateway, case: str) -> None:
    env = dict(s3_gateway.env)
    url = s3_gateway.url(new_s3_prefix("bad"))
    expect = "S3 storage unavailable"
    if case == "no-bucket":
        url = url.replace("s3://foc-test/", "s3://no-such-bucket/")
        expect = "does not exist"
    elif case == "bad-credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    elif case == "unreachable":
        url = url.replace(f":{s3_gateway.port}", f":{free_loopback_port()}")
    else:
        url = "s3://"
        expect = "no bucket"
    proc = run_to_exit(url, env)
    assert proc.returncode != 0
    assert expect in proc.stdout + proc.stderr, proc.stdout + proc.stderr
