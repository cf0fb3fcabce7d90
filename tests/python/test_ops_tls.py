"""TLS and mTLS of the server binary, with the certificates of the shared `pki` fixture (conftest)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.flight as flight
import pytest

from conftest import BINARY, LISTED_ACTIONS, Pki, ServerProcess, tls_config


def actions(client: flight.FlightClient) -> list[str]:
    return [a.type for a in client.list_actions(options=flight.FlightCallOptions(timeout=10))]


@pytest.mark.parametrize("scheme", ["grpcs", "grpc+tls"])
def test_tls_both_schemes_advertise_grpc_tls(tmp_path: Path, pki: Pki, scheme: str) -> None:
    server = ServerProcess(["-c", str(tls_config(tmp_path, pki, scheme, mtls=False))])
    try:
        assert server.endpoint.startswith("grpc+tls://127.0.0.1:")
        client = flight.connect(server.endpoint, tls_root_certs=pki.read("ca.crt"))
        assert actions(client) == LISTED_ACTIONS
        client.close()
    finally:
        assert server.stop() == 0


def test_plaintext_client_is_refused_by_tls_server(tmp_path: Path, pki: Pki) -> None:
    server = ServerProcess(["-c", str(tls_config(tmp_path, pki, "grpcs", mtls=False))])
    try:
        plain = server.endpoint.replace("grpc+tls://", "grpc://")
        client = flight.connect(plain)
        with pytest.raises(flight.FlightError):
            actions(client)
        client.close()
        # A client that does not trust the server's CA is refused too.
        client = flight.connect(server.endpoint, tls_root_certs=pki.read("other-ca.crt"))
        with pytest.raises(flight.FlightError):
            actions(client)
        client.close()
    finally:
        assert server.stop() == 0


def test_mtls_requires_a_client_certificate_signed_by_ca_file(tmp_path: Path, pki: Pki) -> None:
    server = ServerProcess(["-c", str(tls_config(tmp_path, pki, "grpcs", mtls=True))])
    try:
        assert any("client certificates required" in line for line in server.output)
        roots = pki.read("ca.crt")
        anonymous = flight.connect(server.endpoint, tls_root_certs=roots)
        with pytest.raises(flight.FlightError):
            actions(anonymous)
        anonymous.close()
        intruder = flight.connect(server.endpoint, tls_root_certs=roots,
                                  cert_chain=pki.read("intruder.crt"),
                                  private_key=pki.read("intruder.key"))
        with pytest.raises(flight.FlightError):
            actions(intruder)
        intruder.close()
        client = flight.connect(server.endpoint, tls_root_certs=roots,
                                cert_chain=pki.read("client.crt"),
                                private_key=pki.read("client.key"))
        assert actions(client) == LISTED_ACTIONS
        client.close()
    finally:
        assert server.stop() == 0


def test_unreadable_certificate_is_a_configuration_error(tmp_path: Path, pki: Pki) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"cache:\n  endpoint: grpcs://127.0.0.1:0\n  storage: none\n  tls:\n"
                   f"    cert_file: {tmp_path / 'nope.crt'}\n    key_file: {pki.path('server.key')}\n")
    out = subprocess.run([str(BINARY), "-c", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "cannot read cache.tls.cert_file" in out.stdout + out.stderr
