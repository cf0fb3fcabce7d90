"""flamepy 0.6.0 sends no credentials: it keeps working where the operator allows anonymous
clients (`cache.auth.anonymous`), and is refused cleanly where not (docs/security.md)."""

from __future__ import annotations

import flamepy.core.cache as fc
import pytest
from flamepy.core.cache import get_object, put_object


def auth_server(start_server, tmp_path, anonymous: str):
    (tmp_path / "tokens.yaml").write_text("identities: []\n")
    config = tmp_path / "flame-cluster.yaml"
    config.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n"
                      f"  auth:\n    tokens_file: {tmp_path / 'tokens.yaml'}\n    anonymous: {anonymous}\n")
    return start_server("-c", str(config))


def test_flamepy_works_with_anonymous_write(start_server, use_server, tmp_path):
    use_server(auth_server(start_server, tmp_path, "write"))
    ref = put_object("app/s", {"w": [1, 2]})
    assert get_object(ref) == {"w": [1, 2]}
    with pytest.raises(Exception, match="admin"):
        fc.delete_objects("app/*")


def test_flamepy_is_refused_without_anonymous_access(start_server, use_server, tmp_path):
    use_server(auth_server(start_server, tmp_path, "none"))
    with pytest.raises(Exception, match="UNAUTHENTICATED|Unauthenticated"):
        put_object("app/s", "x")
