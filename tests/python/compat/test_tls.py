"""flamepy 0.6.0 over TLS against the real binary: the compose/CI setup of upstream
(`grpcs://` endpoint, CA from FLAME_CA_FILE), with the server's certificates from the shared
`pki` fixture."""

from __future__ import annotations

import pyarrow as pa
import pytest
from flamepy.core.cache import ObjectRef, delete_objects, get_object, patch_object, put_object, update_object

from .conftest import forget_local_cache


@pytest.mark.parametrize("scheme", ["grpcs", "grpc+tls"])
def test_flamepy_over_tls(scheme, start_tls_server, use_server, pki, monkeypatch) -> None:
    server = use_server(start_tls_server(scheme))
    # flamepy dials what it is told: upstream deployments configure `grpcs://`.
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", server.endpoint.replace("grpc+tls://", f"{scheme}://"))
    monkeypatch.setenv("FLAME_CA_FILE", str(pki.path("ca.crt")))

    ref = put_object("tls-app/s1", {"secret": 42})
    assert ref.endpoint == server.endpoint  # advertised as grpc+tls://
    assert ref.version == 1
    forget_local_cache()
    assert get_object(ref) == {"secret": 42}
    ref = patch_object(ref, {"more": 1})
    assert get_object(ref, deserializer=lambda base, deltas: (base, list(deltas))) == (
        {"secret": 42},
        [{"more": 1}],
    )
    ref = update_object(ref, pa.table({"x": [1, 2, 3]}))
    assert get_object(ref).column("x").to_pylist() == [1, 2, 3]
    delete_objects("tls-app/*")
    forget_local_cache()
    with pytest.raises(KeyError):
        get_object(ObjectRef(ref.endpoint, ref.key, 0))


def test_flamepy_without_the_ca_is_refused(start_tls_server, use_server, monkeypatch) -> None:
    server = use_server(start_tls_server("grpcs"))
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", server.endpoint)
    with pytest.raises(Exception) as err:
        put_object("tls-app/s1", b"x")
    assert "unavailable" in str(err.value).lower() or "ssl" in str(err.value).lower()
