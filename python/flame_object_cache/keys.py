"""Object keys: ``<app>/<session>/<object>``, prefixes ``<app>/<session>`` and ``<app>/*``.

The rules are the server's (src/key/key.h), checked against the same table of cases
(tests/rules/keys.json) as the C++ validator, with the same messages. A component is valid when
it is 1..200 bytes of UTF-8 and

* contains no ``/``, no ``\\``, no NUL and no other control character (0x01-0x1F, 0x7F);
* does not contain ``..`` and does not start with ``.``;
* is not ``*``, except as the session of a delete or prefix pattern ``<app>/*``.

Invalid keys raise ``ValueError`` before any network access (as in flamepy).
"""

from __future__ import annotations

from dataclasses import dataclass

WILDCARD_SESSION = "*"
MAX_COMPONENT_BYTES = 200
"""Longest key component in bytes of UTF-8 (components become file names on the server)."""

__all__ = ["MAX_COMPONENT_BYTES", "WILDCARD_SESSION", "ObjectKey", "validate_component"]

_KEY_SHAPE = "expected '<app>/<session>/<object>'"
_PUT_SHAPE = "expected '<app>/<session>' or '<app>/<session>/<object>'"
_PATTERN_SHAPE = "expected '<app>/*', '<app>/<session>' or '<app>/<session>/<object>'"


def _invalid(what: str, component: str, reason: str) -> ValueError:
    return ValueError(f"Invalid {what} '{component}': {reason}")


def validate_component(value: str, what: str) -> None:
    """Raises ``ValueError`` unless ``value`` is a valid key component; ``what`` names it in
    the message (``app``, ``session``, ``object id``), as the server does."""
    if not value:
        raise ValueError(f"Invalid {what}: empty component")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: not representable as UTF-8
        raise _invalid(what, value.encode("utf-8", "replace").decode(), "not valid UTF-8") from None
    if size > MAX_COMPONENT_BYTES:
        raise _invalid(what, value[:40], f"longer than {MAX_COMPONENT_BYTES} bytes")
    if value == WILDCARD_SESSION:
        raise _invalid(what, value, "'*' is only allowed as the session of a DELETE pattern")
    if value.startswith("."):
        raise _invalid(what, value, "must not start with '.'")
    if ".." in value:
        raise _invalid(what, value, "must not contain '..'")
    for ch in value:
        if ch == "/":
            raise _invalid(what, value, "must not contain '/'")
        if ch == "\\":
            raise _invalid(what, value, "must not contain '\\'")
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise _invalid(what, value, "must not contain control characters")


@dataclass(frozen=True)
class ObjectKey:
    """A parsed key or prefix. ``object_id`` is None for a prefix; ``session_id`` may be ``*``
    (all sessions of the app) only when there is no ``object_id``."""

    app_name: str
    session_id: str
    object_id: str | None = None

    def __post_init__(self) -> None:
        validate_component(self.app_name, "app")
        if self.session_id == WILDCARD_SESSION:
            if self.object_id is not None:
                raise ValueError(f"Invalid pattern '{self}': the wildcard session '*' cannot have an object id")
        else:
            validate_component(self.session_id, "session")
        if self.object_id is not None:
            validate_component(self.object_id, "object id")

    @staticmethod
    def _split(text: object, shape: str, what: str) -> list[str]:
        if not isinstance(text, str):
            raise ValueError(f"key must be a string, not {type(text).__name__}")
        parts = text.split("/")
        if len(parts) not in (2, 3) or (shape == _KEY_SHAPE and len(parts) != 3):
            raise ValueError(f"Invalid {what} '{text}': {shape}")
        return parts

    @classmethod
    def from_path(cls, path: str) -> ObjectKey:
        """Parses a delete pattern: ``<app>/*``, ``<app>/<session>`` or ``<app>/<session>/<object>``
        (the server's ``KeyPattern``)."""
        parts = cls._split(path, _PATTERN_SHAPE, "pattern")
        if len(parts) == 3 and parts[1] == WILDCARD_SESSION:
            validate_component(parts[0], "app")
            raise ValueError(f"Invalid pattern '{path}': the wildcard session '*' cannot have an object id")
        return cls(*parts)

    @classmethod
    def from_put_path(cls, path: str) -> ObjectKey:
        """Parses what a put or upload names: ``<app>/<session>`` or a full key, no wildcard (the
        server's ``ParsePutPath``)."""
        parts = cls._split(path, _PUT_SHAPE, "path")
        validate_component(parts[0], "app")
        validate_component(parts[1], "session")  # refuses '*'
        return cls(*parts)

    @classmethod
    def from_prefix(cls, prefix: str) -> ObjectKey:
        """Parses ``<app>/<session>`` (session may be ``*``)."""
        key = cls.from_path(prefix)
        if key.object_id is not None:
            raise ValueError(f"Invalid key prefix '{prefix}': expected '<app>/<session>'")
        return key

    @classmethod
    def from_key(cls, key: str) -> ObjectKey:
        """Parses a full key ``<app>/<session>/<object>`` (the server's ``ObjectKey::Parse``)."""
        app, session, object_id = cls._split(key, _KEY_SHAPE, "key")
        validate_component(app, "app")
        validate_component(session, "session")  # refuses '*'
        return cls(app, session, object_id)

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
