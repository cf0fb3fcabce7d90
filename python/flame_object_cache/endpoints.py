"""Endpoint URIs: which spellings a client accepts and what it dials.

The rules are the server's and the C++ client's (``ParseEndpointUri``/``ClientLocation`` in
src/protocol/endpoint.h), checked against the same table (tests/rules/endpoints.json):

* ``grpc://``, ``grpc+tcp://``, ``http://`` are plaintext; ``grpcs://``, ``grpc+tls://``,
  ``https://`` are TLS (the scheme is case-insensitive);
* the rest is ``host[:port]`` only (no path, query or user info; a trailing ``/`` is ignored),
  port 9090 when absent, IPv6 literals in brackets;
* anything else is a ``ValueError`` that says what is wrong.

What is dialed is always ``grpc://host:port`` or ``grpc+tls://host:port``, the two schemes
Arrow Flight knows.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_PORT", "Endpoint", "parse_endpoint"]

DEFAULT_PORT = 9090
_PLAINTEXT = ("grpc", "grpc+tcp", "http")
_TLS = ("grpcs", "grpc+tls", "https")
_HOST = re.compile(r"[A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint: ``scheme`` lower-cased, ``host`` without brackets."""

    scheme: str
    host: str
    port: int
    tls: bool

    @property
    def location(self) -> str:
        """The Arrow Flight location to dial: ``grpc://host:port`` or ``grpc+tls://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'grpc+tls' if self.tls else 'grpc'}://{host}:{self.port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not text.isascii() or int(text) > 65535:
        raise ValueError(f"invalid port '{text}' in '{whole}'")
    return int(text)


def parse_endpoint(text: str) -> Endpoint:
    """Parses ``scheme://host[:port]``; ``ValueError`` names the problem."""
    sep = text.find("://")
    if sep < 0:
        raise ValueError(f"endpoint '{text}' is not of the form scheme://host:port")
    scheme = text[:sep].lower()
    if scheme not in _PLAINTEXT + _TLS:
        raise ValueError(f"endpoint '{text}' has unsupported scheme '{scheme}' "
                         "(use grpc, grpc+tcp, grpcs, grpc+tls, http or https)")
    authority = text[sep + 3:]
    if authority.endswith("/"):
        authority = authority[:-1]
    if any(c in authority for c in "/?#@"):
        raise ValueError(f"endpoint '{text}' must be scheme://host[:port] only")
    port_text: str | None = None
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise ValueError(f"unterminated '[' in '{text}'")
        host, rest = authority[1:close], authority[close + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"unexpected '{rest}' in '{text}'")
            port_text = rest[1:]
            if not port_text:
                raise ValueError(f"empty port in '{text}'")
        if ":" not in host or not _is_ip(host):
            raise ValueError(f"'{host}' in brackets is not an IPv6 address in '{text}'")
    elif authority.count(":") > 1:  # a bare IPv6 literal, no port
        host = authority
        if not _is_ip(host):
            raise ValueError(f"invalid host '{host}' in '{text}'")
    else:
        host, colon, port_text = authority.partition(":")
        if colon and not port_text:
            raise ValueError(f"empty port in '{text}'")
        if not colon:
            port_text = None
        if not _HOST.fullmatch(host):
            raise ValueError(f"invalid host '{host}' in '{text}'")
    if not host:
        raise ValueError(f"no host in endpoint '{text}'")
    port = _port(port_text, text) if port_text is not None else DEFAULT_PORT
    return Endpoint(scheme=scheme, host=host, port=port, tls=scheme in _TLS)
