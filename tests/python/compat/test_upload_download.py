"""upload_object through flamepy 0.6.0; downloads checked with a raw DoGet `<key>:0` (what
upstream's own downloader sends) and flamepy's download_object checked for what it does."""

from __future__ import annotations

import os
import re

import pytest
from flamepy.core.cache import download_object, upload_object

from . import wire

MiB = 1024 * 1024


def download(raw, key: str) -> bytes:
    reply = wire.get(raw, f"{key}:0")
    rows = reply.rows
    assert [kind for _, kind, _ in rows] == ["base"]
    return rows[0][2]


def test_upload_multi_mib_file_with_explicit_key(flame, raw, tmp_path):
    data = os.urandom(5 * MiB + 12345)  # 6 chunks of ≤ 1 MiB, the last one partial
    f = tmp_path / "model-1.0.tar.gz"
    f.write_bytes(data)
    ref = upload_object("myapp/pkg/model-1.0.tar.gz", str(f))
    assert ref.key == "myapp/pkg/model-1.0.tar.gz"
    assert ref.version == 1 and ref.endpoint == flame.endpoint
    assert download(raw, ref.key) == data  # chunks concatenated in order


def test_upload_with_prefix_gets_a_generated_id(flame, raw, tmp_path):
    data = os.urandom(2 * MiB)
    f = tmp_path / "blob"
    f.write_bytes(data)
    ref = upload_object("myapp/pkg", str(f))
    app, session, obj = ref.key.split("/")
    assert (app, session) == ("myapp", "pkg")
    assert re.fullmatch(r"[0-9a-f-]{36}", obj)
    assert download(raw, ref.key) == data


def test_upload_replaces_and_bumps_the_version(flame, raw, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"one")
    r1 = upload_object("myapp/pkg/f", str(f))
    f.write_bytes(b"two" * 1000)
    r2 = upload_object("myapp/pkg/f", str(f))
    assert (r2.key, r2.version) == (r1.key, r1.version + 1)
    assert download(raw, r2.key) == b"two" * 1000


def test_upload_empty_file(flame, raw, tmp_path):
    # flamepy sends the schema and no batch at all; upstream fails with "No data received".
    # We store an empty object: the file comes back empty.
    f = tmp_path / "empty"
    f.write_bytes(b"")
    ref = upload_object("myapp/pkg/empty", str(f))
    assert ref.version == 1
    assert download(raw, ref.key) == b""


def test_upload_key_with_colon_is_readable(flame, raw, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"tagged")
    ref = upload_object("myapp/pkg/image:v1.2", str(f))
    assert ref.key == "myapp/pkg/image:v1.2"
    assert download(raw, ref.key) == b"tagged"


def test_upload_of_a_dot_key_is_rejected_by_the_server(flame, tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    # flamepy accepts ".hidden"; the server keeps dot-names for itself (key.h) and refuses it.
    with pytest.raises(ValueError, match="must not start with '.'"):
        upload_object("myapp/pkg/.hidden", str(f))


def test_flamepy_download_object_is_broken_against_real_pyarrow(flame, tmp_path):
    # upstream-client.md §8.1: iterating a FlightStreamReader yields FlightStreamChunk, which
    # has no .column(); flamepy turns that into ValueError and removes the partial file. Our
    # server answers correctly (see the raw checks above); the defect is in the client.
    f = tmp_path / "f"
    f.write_bytes(b"payload")
    ref = upload_object("myapp/pkg/f", str(f))
    dest = tmp_path / "out" / "f"
    with pytest.raises(ValueError, match="FlightStreamChunk"):
        download_object(ref, str(dest))
    assert not dest.exists()
