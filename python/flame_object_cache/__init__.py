"""flame_object_cache: the Python SDK of flame-object-cache.

Module functions have flamepy 0.6.0's names and signatures and use a process-wide default
:class:`Client` configured like flamepy (``FLAME_CACHE_ENDPOINT``, ``$HOME/.flame/flame.yaml``,
``FLAME_CA_FILE``; see :mod:`flame_object_cache.config`). Create a :class:`Client` yourself for
explicit endpoints, TLS material, timeouts and cache bounds.

gRPC's own C-core logging (``ssl_transport_security.cc`` lines, absl's "All log messages before
absl::InitializeLog()" warning) is off: importing this package sets ``GRPC_VERBOSITY=NONE`` and
``GRPC_TRACE=""`` unless they are already set, before pyarrow.flight loads gRPC. Set
``GRPC_VERBOSITY=INFO`` (or ``DEBUG``) to see it; errors reach you as exceptions either way. If
``pyarrow.flight`` was imported before this package, gRPC has already read them.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
os.environ.setdefault("GRPC_TRACE", "")

import threading  # after the gRPC defaults above
from typing import Any, Optional

from ._listing import ObjectInfo
from ._watch import CacheSubscription, Change, Subscription, Watch, WatchDropped
from .client import Client, Deserializer, Incremental, ObjectRef
from .config import CacheConfig, load_config
from .errors import (
    CacheAuthError,
    CacheError,
    CacheFull,
    CacheTimeout,
    CacheUnavailable,
    DecodeError,
    InvalidRequest,
    ObjectNotFound,
    ProtocolError,
    ServerError,
)
from .keys import WILDCARD_SESSION, ObjectKey

__version__ = "0.1.0"

__all__ = [
    "CacheAuthError", "CacheConfig", "CacheError", "CacheFull", "CacheTimeout", "CacheUnavailable",
    "Client", "DecodeError", "Deserializer", "Incremental", "InvalidRequest", "ObjectInfo", "ObjectKey",
    "ObjectNotFound", "ObjectRef", "ProtocolError", "ServerError", "WILDCARD_SESSION", "default_client",
    "set_default_client", "load_config", "put_object", "get_object", "update_object", "patch_object",
    "delete_objects", "upload_object", "download_object", "cache_stats", "list_objects", "stat", "exists",
    "CacheSubscription", "Change", "Subscription", "Watch", "WatchDropped", "map_object",
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


def put_object(key_prefix: str, obj: Any, *, progress: bool = False) -> ObjectRef:
    ObjectKey.from_prefix(key_prefix)  # key errors before any configuration access
    return default_client().put_object(key_prefix, obj, progress=progress)


def get_object(ref: ObjectRef, deserializer: Optional[Deserializer] = None, *, raw: bool = False,
               progress: bool = False) -> Any:
    ObjectKey.from_key(ref.key)
    return default_client().get_object(ref, deserializer, raw=raw, progress=progress)


def map_object(ref: ObjectRef, deserializer: Optional[Deserializer] = None, *, raw: bool = False) -> Any:
    """See :meth:`Client.map_object` (same-machine zero copy, falls back to gRPC)."""
    ObjectKey.from_key(ref.key)
    return default_client().map_object(ref, deserializer, raw=raw)


def update_object(ref: ObjectRef, new_obj: Any) -> ObjectRef:
    ObjectKey.from_key(ref.key)
    return default_client().update_object(ref, new_obj)


def patch_object(ref: ObjectRef, delta: Any) -> ObjectRef:
    ObjectKey.from_key(ref.key)
    return default_client().patch_object(ref, delta)


def delete_objects(key_prefix: str) -> None:
    ObjectKey.from_path(key_prefix)
    default_client().delete_objects(key_prefix)


def upload_object(key_or_prefix: str, file_path: str, *, progress: bool = False) -> ObjectRef:
    if not os.path.isfile(file_path):
        raise FileNotFoundError(f"File not found: {file_path}")
    ObjectKey.from_put_path(key_or_prefix)
    return default_client().upload_object(key_or_prefix, file_path, progress=progress)


def download_object(ref: ObjectRef, dest_path: str, *, progress: bool = False) -> None:
    default_client().download_object(ref, dest_path, progress=progress)


def cache_stats() -> dict[str, int]:
    return default_client().cache_stats()


def list_objects(prefix: str | None = None) -> list[ObjectInfo]:
    """See :meth:`Client.list_objects`."""
    if prefix:
        from ._listing import parse_list_prefix

        parse_list_prefix(prefix)
    return default_client().list_objects(prefix)


def stat(key: str) -> ObjectInfo:
    """See :meth:`Client.stat`."""
    ObjectKey.from_key(key)
    return default_client().stat(key)


def exists(key: str) -> bool:
    """See :meth:`Client.exists`."""
    ObjectKey.from_key(key)
    return default_client().exists(key)
