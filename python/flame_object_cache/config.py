"""Where the default client connects: flamepy 0.6.0's rules, plus client certificates.

1. ``$HOME/.flame/flame.yaml`` if it exists: ``current-context`` names one of ``contexts``; its
   ``cache.endpoint`` and ``cache.tls.ca_file`` are used (and, our addition for mTLS,
   ``cache.tls.cert_file`` and ``cache.tls.key_file``). A file without ``current-context`` or
   naming an unknown context is an error (flamepy raises too).
2. ``FLAME_CACHE_ENDPOINT`` overrides the endpoint (several, comma-separated, make a routing
   client over the servers of one cluster: docs/cluster.md).
3. ``FLAME_CA_FILE`` supplies the CA only if the file did not (the file wins, as in flamepy);
   ``FLAME_CACHE_CERT_FILE``/``FLAME_CACHE_KEY_FILE`` likewise supply a client certificate.
4. Otherwise the endpoint is ``grpc://127.0.0.1:9090``.

flamepy's local-storage mode (``cache.storage``/``FLAME_CACHE_STORAGE``), which writes files into a
directory shared with the server, is not supported: every put goes over Flight.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ENDPOINT = "grpc://127.0.0.1:9090"

__all__ = ["DEFAULT_ENDPOINT", "CacheConfig", "load_config", "config_path"]


@dataclass(frozen=True)
class CacheConfig:
    endpoint: str = DEFAULT_ENDPOINT
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def config_path() -> Path:
    return Path(os.environ.get("HOME") or Path.home()) / ".flame" / "flame.yaml"


def _from_file(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with 'current-context' and 'contexts'")
    current = doc.get("current-context")
    if not current:
        raise ValueError(f"{path}: 'current-context' is not set")
    for ctx in doc.get("contexts") or []:
        if isinstance(ctx, dict) and ctx.get("name") == current:
            cache = ctx.get("cache") or {}
            if isinstance(cache, str):  # tolerate `cache: grpc://...`
                return {"endpoint": cache}
            if not isinstance(cache, dict):
                raise ValueError(f"{path}: context {current!r}: 'cache' must be a mapping")
            return cache
    raise ValueError(f"{path}: context {current!r} not found in 'contexts'")


def load_config() -> CacheConfig:
    """Reads the configuration as described in the module documentation."""
    endpoint: str | None = None
    tls: dict[str, Any] = {}
    path = config_path()
    if path.is_file():
        cache = _from_file(path)
        endpoint = cache.get("endpoint") or None
        tls = cache.get("tls") or {}
    env = os.environ
    endpoint = env.get("FLAME_CACHE_ENDPOINT") or endpoint or DEFAULT_ENDPOINT
    return CacheConfig(
        endpoint=endpoint,
        ca_file=tls.get("ca_file") or env.get("FLAME_CA_FILE") or None,
        cert_file=tls.get("cert_file") or env.get("FLAME_CACHE_CERT_FILE") or None,
        key_file=tls.get("key_file") or env.get("FLAME_CACHE_KEY_FILE") or None,
    )
