"""delete_objects through flamepy 0.6.0: exact key, session, every session of an app."""

from __future__ import annotations

import pytest
from flamepy.cache import delete_objects
from flamepy.core.cache import ObjectRef, get_object, put_object, upload_object

from . import wire


def exists(ref: ObjectRef) -> bool:
    try:
        get_object(ObjectRef(ref.endpoint, ref.key, 0))
        return True
    except KeyError as e:  # ArrowKeyError: NOT_FOUND
        assert "not found" in str(e)
        return False


def test_delete_exact_key(flame):
    a = put_object("app/s", "a")
    b = put_object("app/s", "b")
    assert get_object(a) == "a"
    delete_objects(a.key)
    assert not exists(a)
    assert exists(b) and get_object(b) == "b"


def test_delete_session_without_prefix_bleed(flame):
    gone = [put_object("app/session", i) for i in range(3)]
    kept = [put_object("app/session2", "s2"), put_object("app/session-extra", "extra"),
            put_object("app2/session", "other app"), put_object("ap/session", "short app")]
    for r in gone + kept:
        get_object(r)  # populate flamepy's cache
    delete_objects("app/session")
    assert not any(exists(r) for r in gone)
    assert [get_object(r) for r in kept] == ["s2", "extra", "other app", "short app"]


def test_delete_every_session_of_an_app(flame):
    gone = [put_object("app/s1", 1), put_object("app/s2", 2), put_object("app/shared", 3)]
    kept = [put_object("app2/s1", "x"), put_object("app-extra/s1", "y"), put_object("ap/s1", "z")]
    delete_objects("app/*")
    assert not any(exists(r) for r in gone)
    assert [get_object(r) for r in kept] == ["x", "y", "z"]


def test_delete_of_nothing_succeeds(flame):
    delete_objects("nobody/nothing")
    delete_objects("nobody/*")
    delete_objects("nobody/nothing/none")


def test_delete_drops_the_local_entry_and_recreation_is_a_new_version(flame, tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(b"old contents")
    old = upload_object("app/pkg/file.bin", str(f))
    assert old.version == 1
    delete_objects("app/pkg/file.bin")
    f.write_bytes(b"new contents")
    new = upload_object("app/pkg/file.bin", str(f))
    assert new.key == old.key
    assert new.version > old.version  # never reused after DELETE (DESIGN.md §3)


def test_delete_then_recreate_never_serves_not_modified_for_the_old_version(flame, raw):
    key = "app/s/fixed-id"
    first = wire.put_path(raw, key, b"generation-1")
    assert first.doc["version"] == 1
    for pattern in (key, "app/s", "app/*"):
        delete_objects(pattern)
        with pytest.raises(KeyError):
            wire.get(raw, f"{key}:0")
        again = wire.put_path(raw, key, b"generation-2")
        assert again.doc["version"] > first.doc["version"]
        # A client still holding version 1 of the old object must get the new one in full.
        reply = wire.get(raw, f"{key}:{first.doc['version']}")
        assert reply.rows == [(again.doc["version"], "base", b"generation-2")]
        first = again
