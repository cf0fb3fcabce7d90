"""TLS and mTLS from the client's side, with certificates generated here by openssl.

The peer is a pyarrow Flight server with TLS that answers DELETE (what `delete_objects` needs):
the server binary has no TLS options yet (operations issue 5). Once it has, point `tls_server`
at the binary; the assertions stay the same.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pyarrow.flight as flight
import pytest

import flame_object_cache as foc
from flame_object_cache import Client


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", f"{name}.crt", cwd=d)
    # a CA that did not sign anything here
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other-ca",
            "-keyout", "other.key", "-out", "other.crt", cwd=d)
    return d


class DeleteOnly(flight.FlightServerBase):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("grpc+tls://127.0.0.1:0", **kwargs)
        self.deletes: list[bytes] = []

    def do_action(self, context: Any, action: flight.Action) -> Iterator[flight.Result]:
        self.deletes.append(action.body.to_pybytes())
        yield flight.Result(b"OK")


def serve(certs: Path, mtls: bool) -> DeleteOnly:
    pair = flight.CertKeyPair(cert=(certs / "server.crt").read_bytes(), key=(certs / "server.key").read_bytes())
    kwargs: dict[str, Any] = {"tls_certificates": [pair]}
    if mtls:
        kwargs.update(verify_client=True, root_certificates=(certs / "ca.crt").read_bytes())
    server = DeleteOnly(**kwargs)
    threading.Thread(target=server.serve, daemon=True).start()
    return server


@pytest.fixture
def tls_server(certs: Path) -> Iterator[DeleteOnly]:
    server = serve(certs, mtls=False)
    yield server
    server.shutdown()


@pytest.fixture
def mtls_server(certs: Path) -> Iterator[DeleteOnly]:
    server = serve(certs, mtls=True)
    yield server
    server.shutdown()


def test_tls_with_custom_ca(tls_server: DeleteOnly, certs: Path) -> None:
    for scheme in ("grpc+tls", "grpcs"):
        endpoint = f"{scheme}://127.0.0.1:{tls_server.port}"
        Client(endpoint, tls_root_certs=(certs / "ca.crt").read_bytes(), timeout=5).delete_objects("app/s")
    assert tls_server.deletes == [b"app/s", b"app/s"]


def test_tls_refuses_an_unknown_ca(tls_server: DeleteOnly, certs: Path) -> None:
    endpoint = f"grpcs://127.0.0.1:{tls_server.port}"
    for roots in (None, (certs / "other.crt").read_bytes()):
        with pytest.raises(foc.CacheError):
            Client(endpoint, tls_root_certs=roots, timeout=3, retries=0).delete_objects("app/s")
    with pytest.raises(foc.CacheError):  # plaintext to a TLS port
        Client(f"grpc://127.0.0.1:{tls_server.port}", timeout=3, retries=0).delete_objects("app/s")
    assert tls_server.deletes == []


def test_mtls(mtls_server: DeleteOnly, certs: Path) -> None:
    endpoint = f"grpcs://127.0.0.1:{mtls_server.port}"
    ca = (certs / "ca.crt").read_bytes()
    with pytest.raises(foc.CacheError):
        Client(endpoint, tls_root_certs=ca, timeout=3, retries=0).delete_objects("app/s")
    assert mtls_server.deletes == []
    Client(endpoint, tls_root_certs=ca, cert_chain=(certs / "client.crt").read_bytes(),
           private_key=(certs / "client.key").read_bytes(), timeout=5).delete_objects("app/s")
    assert mtls_server.deletes == [b"app/s"]
    with pytest.raises(ValueError):
        Client(endpoint, cert_chain=b"x")


def test_default_client_reads_tls_files_from_config(mtls_server: DeleteOnly, certs: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".flame").mkdir(parents=True)
    (home / ".flame" / "flame.yaml").write_text(
        "current-context: tls\ncontexts:\n  - name: tls\n    cache:\n"
        f"      endpoint: grpcs://127.0.0.1:{mtls_server.port}\n"
        f"      tls:\n        ca_file: {certs / 'ca.crt'}\n"
        f"        cert_file: {certs / 'client.crt'}\n        key_file: {certs / 'client.key'}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    for var in ("FLAME_CACHE_ENDPOINT", "FLAME_CA_FILE", "FLAME_CACHE_CERT_FILE", "FLAME_CACHE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    foc.set_default_client(None)
    try:
        foc.delete_objects("app/*")
        assert mtls_server.deletes == [b"app/*"]
    finally:
        foc.set_default_client(None)
    # FLAME_CA_FILE alone (no file) is used for a grpcs:// endpoint from the environment
    (home / ".flame" / "flame.yaml").unlink()
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", f"grpcs://127.0.0.1:{mtls_server.port}")
    monkeypatch.setenv("FLAME_CA_FILE", str(certs / "ca.crt"))
    monkeypatch.setenv("FLAME_CACHE_CERT_FILE", str(certs / "client.crt"))
    monkeypatch.setenv("FLAME_CACHE_KEY_FILE", str(certs / "client.key"))
    try:
        foc.delete_objects("app/s")
        assert mtls_server.deletes == [b"app/*", b"app/s"]
    finally:
        foc.set_default_client(None)
