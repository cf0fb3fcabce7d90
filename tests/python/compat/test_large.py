"""Large objects: ≥ 64 MiB opaque through put/get, a large chunked upload, a large table."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pyarrow as pa
from flamepy.core.cache import ObjectRef, get_object, patch_object, put_object, upload_object

from . import wire
from .conftest import forget_local_cache

MiB = 1024 * 1024


def test_64_mib_opaque_object(flame, raw):
    data = os.urandom(64 * MiB + 7)
    digest = hashlib.sha256(data).digest()
    ref = put_object("app/large", data)
    assert ref.version == 1
    forget_local_cache()
    got = get_object(ref)
    assert len(got) == len(data) and hashlib.sha256(got).digest() == digest
    del got
    # On the wire: one row in one batch, however large.
    reply = wire.get(raw, f"{ref.key}:0")
    assert [b.num_rows for b in reply.batches] == [1]
    # A small patch on a large base travels alone (patch-only), the base is not resent.
    ref = patch_object(ref, b"tail")
    patch_only = wire.get(raw, f"{ref.key}:1")
    assert [(v, k) for v, k, _ in patch_only.rows] == [(2, "patch")]
    assert wire.get(raw, f"{ref.key}:2").batches == []


def test_large_chunked_upload(flame, raw, tmp_path):
    f = tmp_path / "weights.bin"
    h = hashlib.sha256()
    with open(f, "wb") as out:
        for _ in range(72):  # 72 MiB in 1 MiB chunks on the wire
            block = os.urandom(MiB)
            h.update(block)
            out.write(block)
    ref = upload_object("app/pkg/weights.bin", str(f))
    assert ref.version == 1
    rows = wire.get(raw, f"{ref.key}:0").rows
    assert len(rows) == 1 and rows[0][1] == "base"
    assert len(rows[0][2]) == 72 * MiB
    assert hashlib.sha256(rows[0][2]).digest() == h.digest()


def test_large_numpy_array_and_table(flame):
    arr = np.random.default_rng(1).random((2048, 2048))  # 32 MiB float64
    table = pa.table({"x": np.arange(4 * MiB, dtype=np.int64)})  # 32 MiB
    ra = put_object("app/large", arr)
    rt = put_object("app/large", table)
    forget_local_cache()
    assert np.array_equal(get_object(ObjectRef(ra.endpoint, ra.key, 0)), arr)
    assert get_object(rt).equals(table)
