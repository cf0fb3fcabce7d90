"""flame_object_cache: the Python SDK of flame-object-cache.

Module functions have flamepy 0.6.0's names and signatures and use a process-wide default
:class:`Client` configured like flamepy (``FLAME_CACHE_ENDPOINT``, ``$HOME/.flame/flame.yaml``,
``FLAME_CA_FILE``; see :mod:`flame_object_cache.config`). Create a :class:`Client` yourself for
explicit endpoints, TLS material, timeouts and cache bounds.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from .client import Client, Deserializer, Incremental, ObjectRef
from .config import CacheConfig, load_config
from .errors import (
    CacheAuthError,
    CacheError,
    CacheFull,
    CacheTimeout,
    CacheUnavailable,
    InvalidRequest,
    ObjectNotFound,
    ProtocolError,
    ServerError,
)
from .keys import WILDCARD_SESSION, ObjectKey

__version__ = "0.1.0"

__all__ = [
    "CacheAuthError", "CacheConfig", "CacheError", "CacheFull", "CacheTimeout", "CacheUnavailable",
    "Client", "Deserializer", "Incremental", "InvalidRequest", "ObjectKey", "ObjectNotFound", "ObjectRef",
    "ProtocolError", "ServerError", "WILDCARD_SESSION", "default_client", "set_default_client",
    "load_config", "put_object", "get_object", "update_object", "patch_object", "delete_objects",
    "upload_object", "download_object", "cache_stats",
]

_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client the module functions use, created from the configuration on first use."""
    global _default
    client = _default
    if client is None:
        with _default_lock:
            if _default is None:
                _default = Client()
            client = _default
    return client


def set_default_client(client: Client | None) -> None:
    """Replaces the default client (``None``: build a new one from the configuration on next use)."""
    global _default
    with _default_lock:
        _default = client


def put_object(key_prefix: str, obj: Any) -> ObjectRef:
    ObjectKey.from_prefix(key_prefix)  # key errors before any configuration access
    return default_client().put_object(key_prefix, obj)


def get_object(ref: ObjectRef, deserializer: Optional[Deserializer] = None) -> Any:
    ObjectKey.from_key(ref.key)
    return default_client().get_object(ref, deserializer)


def update_object(ref: ObjectRef, new_obj: Any) -> ObjectRef:
    ObjectKey.from_key(ref.key)
    return default_client().update_object(ref, new_obj)


def patch_object(ref: ObjectRef, delta: Any) -> ObjectRef:
    ObjectKey.from_key(ref.key)
    return default_client().patch_object(ref, delta)


def delete_objects(key_prefix: str) -> None:
    ObjectKey.from_path(key_prefix)
    default_client().delete_objects(key_prefix)


def upload_object(key_or_prefix: str, file_path: str) -> ObjectRef:
    import os

    if not os.path.isfile(file_path):
        raise FileNotFoundError(f"File not found: {file_path}")
    ObjectKey.from_put_path(key_or_prefix)
    return default_client().upload_object(key_or_prefix, file_path)


def download_object(ref: ObjectRef, dest_path: str) -> None:
    default_client().download_object(ref, dest_path)


def cache_stats() -> dict[str, int]:
    return default_client().cache_stats()
