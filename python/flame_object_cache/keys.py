"""Object keys: ``<app>/<session>/<object>``, prefixes ``<app>/<session>`` and ``<app>/*``.

The rules are flamepy 0.6.0's (so a key accepted there is accepted here) tightened the way our
server validates keys: a component may not be ``.``, contain ``..``, ``\\``, ``/``, NUL or other
control characters; ``*`` is allowed only as a whole session in a delete or prefix pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

WILDCARD_SESSION = "*"

__all__ = ["WILDCARD_SESSION", "ObjectKey"]


def _check_component(what: str, value: str) -> None:
    if not value:
        raise ValueError(f"{what} cannot be empty")
    if value == WILDCARD_SESSION:
        raise ValueError(f"Wildcard '*' not allowed for {what}")
    if value == "." or ".." in value or "\\" in value or "/" in value:
        raise ValueError(f"{what} contains invalid characters: {value!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{what} contains control characters: {value!r}")


@dataclass(frozen=True)
class ObjectKey:
    """A parsed key or prefix. ``object_id`` is None for a prefix; ``session_id`` may be ``*``
    (all sessions of the app) only when there is no ``object_id``."""

    app_name: str
    session_id: str
    object_id: str | None = None

    def __post_init__(self) -> None:
        _check_component("app_name", self.app_name)
        if self.session_id == WILDCARD_SESSION:
            if self.object_id is not None:
                raise ValueError("Wildcard session '*' cannot have object_id")
        else:
            _check_component("session_id", self.session_id)
        if self.object_id is not None:
            _check_component("object_id", self.object_id)

    @classmethod
    def from_path(cls, path: str) -> ObjectKey:
        """Parses ``<app>/<session>`` (session may be ``*``) or ``<app>/<session>/<object>``."""
        if not isinstance(path, str):
            raise ValueError(f"key must be a string, not {type(path).__name__}")
        parts = path.split("/")
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2])
        raise ValueError(f"Invalid object key path {path!r}: expected '<app>/<ssn>' or '<app>/<ssn>/<id>'")

    @classmethod
    def from_prefix(cls, prefix: str) -> ObjectKey:
        key = cls.from_path(prefix)
        if key.object_id is not None:
            raise ValueError(f"Invalid key prefix {prefix!r}: expected '<app>/<ssn>'")
        return key

    @classmethod
    def from_key(cls, key: str) -> ObjectKey:
        parsed = cls.from_path(key)
        if parsed.object_id is None:
            raise ValueError(f"Invalid object key {key!r}: expected '<app>/<ssn>/<id>'")
        return parsed

    def is_all_sessions(self) -> bool:
        return self.session_id == WILDCARD_SESSION

    def to_prefix(self) -> str:
        return f"{self.app_name}/{self.session_id}"

    def to_key(self) -> str | None:
        if self.object_id is None:
            return None
        return f"{self.app_name}/{self.session_id}/{self.object_id}"

    def matches_key(self, key: str) -> bool:
        """True if the full key ``key`` falls under this pattern (component-exact)."""
        parts = key.split("/")
        if len(parts) != 3 or not all(parts):
            return False
        if parts[0] != self.app_name:
            return False
        if self.is_all_sessions():
            return True
        if parts[1] != self.session_id:
            return False
        return self.object_id is None or parts[2] == self.object_id

    def __str__(self) -> str:
        return self.to_key() or self.to_prefix()
