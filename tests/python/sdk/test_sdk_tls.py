"""TLS and mTLS from the SDK's side against the real flame-object-cache binary, with the
certificates of the shared `pki` fixture and servers from `start_tls_server` (tests/python/conftest.py).

What a refusal looks like: gRPC fails the handshake before any call reaches the server, so every
refusal (plaintext to a TLS port, an unknown CA, a missing or foreign client certificate) is a
:class:`CacheUnavailable` (a ``ConnectionError``) naming the address; an untrusted server
certificate also says "certificate verify failed". Nothing is stored by a refused call (checked
on the server with a trusted pyarrow client)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow.flight as flight
import pytest
from conftest import Pki, ServerProcess, tls_stored_keys

import flame_object_cache as foc
from flame_object_cache import Client


def port_of(server: ServerProcess) -> str:
    return server.endpoint.rsplit(":", 1)[1]


@pytest.fixture
def tls_client() -> Iterator[Callable[..., Client]]:
    """Clients closed at teardown."""
    made: list[Client] = []

    def make(*args: object, **kwargs: object) -> Client:
        c = Client(*args, **kwargs)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.mark.parametrize("scheme", ["grpc+tls", "grpcs"])
def test_tls_with_custom_ca(start_tls_server: Callable[..., ServerProcess], pki: Pki,
                            tls_client: Callable[..., Client], tmp_path: Path, scheme: str) -> None:
    server = start_tls_server(scheme)
    endpoint = f"{scheme}://127.0.0.1:{port_of(server)}"
    c = tls_client(endpoint, tls_root_certs=pki.read("ca.crt"), timeout=10)

    ref = c.put_object("app/s", {"a": 1, "b": [1, 2]})
    assert ref.endpoint == server.endpoint  # advertised as grpc+tls://, later calls go there
    assert ref.version == 1
    assert c.get_object(ref) == {"a": 1, "b": [1, 2]}
    ref = c.update_object(ref, np.arange(5))
    assert np.array_equal(c.get_object(ref), np.arange(5))
    assert c.cache_stats()["hits"] == 0
    assert np.array_equal(c.get_object(ref), np.arange(5))  # a not-modified round trip over TLS
    assert c.cache_stats()["hits"] == 1

    src = tmp_path / "blob.bin"
    src.write_bytes(bytes(range(256)) * 4096)
    up = c.upload_object("app/files/blob", str(src))
    c.download_object(up, str(tmp_path / "copy.bin"))
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()
    assert tls_stored_keys(server, pki) == sorted([ref.key, "app/files/blob"])

    c.delete_objects("app/s")
    assert tls_stored_keys(server, pki) == ["app/files/blob"]


def test_plaintext_and_unknown_ca_are_refused(start_tls_server: Callable[..., ServerProcess], pki: Pki,
                                              tls_client: Callable[..., Client]) -> None:
    server = start_tls_server()
    port = port_of(server)
    tls = f"grpcs://127.0.0.1:{port}"
    # gRPC's default roots and an unrelated CA do not trust the server's certificate.
    for roots in (None, pki.read("other-ca.crt")):
        c = tls_client(tls, tls_root_certs=roots, timeout=5, retries=0)
        with pytest.raises(foc.CacheUnavailable) as exc:
            c.put_object("app/s", 1)
        assert "certificate verify failed" in str(exc.value) and f"127.0.0.1:{port}" in str(exc.value)
        assert isinstance(exc.value.original, flight.FlightUnavailableError)
        assert exc.value.__cause__ is None  # short tracebacks: no chained pyarrow internals
        with pytest.raises(foc.CacheUnavailable):
            c.delete_objects("app/s")
    # Plaintext to a TLS port.
    plain = tls_client(f"grpc://127.0.0.1:{port}", timeout=5, retries=0)
    with pytest.raises(foc.CacheUnavailable) as exc:
        plain.put_object("app/s", 1)
    assert f"127.0.0.1:{port}" in str(exc.value)
    with pytest.raises(ConnectionError):  # what flamepy-style code catches
        plain.delete_objects("app/s")
    assert tls_stored_keys(server, pki) == []
    # The server is unharmed by the failed handshakes.
    good = tls_client(tls, tls_root_certs=pki.read("ca.crt"), timeout=10)
    assert good.get_object(good.put_object("app/s", "ok")) == "ok"


def test_mtls(start_tls_server: Callable[..., ServerProcess], pki: Pki,
              tls_client: Callable[..., Client]) -> None:
    server = start_tls_server(mtls=True)
    assert any("client certificates required" in line for line in server.output)
    endpoint = f"grpcs://127.0.0.1:{port_of(server)}"
    ca = pki.read("ca.crt")

    anonymous = tls_client(endpoint, tls_root_certs=ca, timeout=5, retries=0)
    intruder = tls_client(endpoint, tls_root_certs=ca, cert_chain=pki.read("intruder.crt"),
                          private_key=pki.read("intruder.key"), timeout=5, retries=0)
    for refused in (anonymous, intruder):
        with pytest.raises(foc.CacheUnavailable) as exc:
            refused.put_object("app/s", 1)
        assert f"127.0.0.1:{port_of(server)}" in str(exc.value)
        with pytest.raises(foc.CacheUnavailable):
            refused.delete_objects("app/s")
    assert tls_stored_keys(server, pki) == []

    c = tls_client(endpoint, tls_root_certs=ca, cert_chain=pki.read("client.crt"),
                   private_key=pki.read("client.key"), timeout=10)
    ref = c.put_object("app/s", b"mutual")
    assert ref.endpoint == server.endpoint
    ref = c.patch_object(ref, b"+delta")
    assert c.get_object(ref, lambda base, deltas: (base, deltas)) == (b"mutual", [b"+delta"])
    assert tls_stored_keys(server, pki) == [ref.key]
    c.delete_objects("app/s")
    assert tls_stored_keys(server, pki) == []

    with pytest.raises(ValueError):
        Client(endpoint, cert_chain=b"x")
    with pytest.raises(ValueError):
        Client(endpoint, private_key=b"x")


@pytest.fixture
def flame_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty $HOME without any FLAME_* variable; the default client is reset around the test."""
    home = tmp_path / "home"
    (home / ".flame").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for var in ("FLAME_CACHE_ENDPOINT", "FLAME_CA_FILE", "FLAME_CACHE_CERT_FILE", "FLAME_CACHE_KEY_FILE",
                "FLAME_CACHE_STORAGE"):
        monkeypatch.delenv(var, raising=False)
    foc.set_default_client(None)
    yield home
    foc.set_default_client(None)


def round_trip_with_default_client(server: ServerProcess, pki: Pki, session: str) -> None:
    ref = foc.put_object(f"app/{session}", {"session": session})
    assert ref.endpoint == server.endpoint
    assert foc.get_object(ref) == {"session": session}
    assert tls_stored_keys(server, pki) == [ref.key]
    foc.delete_objects("app/*")
    assert tls_stored_keys(server, pki) == []
    foc.set_default_client(None)


def test_default_client_reads_tls_files_from_flame_yaml(
        start_tls_server: Callable[..., ServerProcess], pki: Pki, flame_home: Path) -> None:
    server = start_tls_server(mtls=True)
    (flame_home / ".flame" / "flame.yaml").write_text(
        "current-context: tls\ncontexts:\n  - name: tls\n    cache:\n"
        f"      endpoint: grpcs://127.0.0.1:{port_of(server)}\n"
        f"      tls:\n        ca_file: {pki.ca}\n"
        f"        cert_file: {pki.path('client.crt')}\n        key_file: {pki.path('client.key')}\n"
    )
    round_trip_with_default_client(server, pki, "yaml")

    # The same file without the client certificate: the server refuses the handshake.
    (flame_home / ".flame" / "flame.yaml").write_text(
        "current-context: tls\ncontexts:\n  - name: tls\n    cache:\n"
        f"      endpoint: grpcs://127.0.0.1:{port_of(server)}\n"
        f"      tls:\n        ca_file: {pki.ca}\n"
    )
    with pytest.raises(foc.CacheUnavailable):
        foc.put_object("app/nocert", 1)
    assert tls_stored_keys(server, pki) == []


def test_default_client_reads_tls_files_from_environment(
        start_tls_server: Callable[..., ServerProcess], pki: Pki, flame_home: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # FLAME_CA_FILE alone (no flame.yaml) for a grpcs:// endpoint from the environment.
    tls = start_tls_server()
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", f"grpcs://127.0.0.1:{port_of(tls)}")
    monkeypatch.setenv("FLAME_CA_FILE", str(pki.ca))
    round_trip_with_default_client(tls, pki, "env-ca")

    # Without FLAME_CA_FILE the server's certificate is not trusted.
    monkeypatch.delenv("FLAME_CA_FILE")
    with pytest.raises(foc.CacheUnavailable) as exc:
        foc.put_object("app/untrusted", 1)
    assert "certificate verify failed" in str(exc.value)
    foc.set_default_client(None)

    # mTLS: FLAME_CACHE_CERT_FILE / FLAME_CACHE_KEY_FILE supply the client certificate.
    mtls = start_tls_server(mtls=True)
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", f"grpcs://127.0.0.1:{port_of(mtls)}")
    monkeypatch.setenv("FLAME_CA_FILE", str(pki.ca))
    monkeypatch.setenv("FLAME_CACHE_CERT_FILE", str(pki.path("client.crt")))
    monkeypatch.setenv("FLAME_CACHE_KEY_FILE", str(pki.path("client.key")))
    round_trip_with_default_client(mtls, pki, "env-mtls")
    assert tls_stored_keys(tls, pki) == []
