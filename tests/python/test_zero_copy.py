"""Same-machine zero copy (issue 11, item 4; docs/node-tier.md, docs/protocol.md "MAP"): clients on
the server's machine map an object's immutable Arrow IPC files instead of receiving the bytes over
gRPC, from a disk-storage server and from a node tier; several processes share one copy; a client
that cannot map gets the same bytes over gRPC; MAP obeys cache.auth and the loopback rule."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from conftest import ROOT, ServerProcess, hermetic_env

import flame_object_cache as foc
from flame_object_cache import Client, ObjectRef, _mapped

MiB = 1 << 20


def map_reply(endpoint: str, key: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    c = flight.connect(endpoint)
    try:
        results = list(c.do_action(flight.Action("MAP", key.encode()),
                                   flight.FlightCallOptions(headers=headers or [], timeout=30)))
    finally:
        c.close()
    assert len(results) == 1
    return json.loads(results[0].body.to_pybytes())


@pytest.fixture
def upstream() -> Iterator[ServerProcess]:
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--max-memory", "2G"])
    yield proc
    proc.stop()


@pytest.fixture
def tier(upstream: ServerProcess) -> Iterator[ServerProcess]:
    proc = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--upstream", upstream.endpoint,
                          "--max-memory", "2G"])
    yield proc
    proc.stop()


def test_map_from_a_disk_server_and_versions_stay_immutable(start_server, tmp_path: Path) -> None:
    server = start_server("--storage", f"fs://{tmp_path}/store")
    with Client(server.endpoint) as c:
        arr = np.arange(1 << 20, dtype=np.float64)
        ref = c.put_object("app/s", arr)
        got = c.map_object(ref)
        assert isinstance(got, np.ndarray) and np.array_equal(got, arr)
        assert not got.flags.writeable  # a read-only view of the mapping
        reply = map_reply(server.endpoint, ref.key)
        assert reply["version"] == ref.version and len(reply["files"]) == 1
        assert reply["files"][0]["path"].startswith(str(tmp_path / "store"))
        assert reply["files"][0]["checksum"].startswith("xxh3-64:")

        # Deltas are mapped too, in order.
        bref = c.put_object("app/s", "base")
        bref = c.patch_object(bref, "d1")
        bref = c.patch_object(bref, "d2")
        assert c.map_object(bref, lambda b, ds: [b, *ds]) == ["base", "d1", "d2"]
        raw = c.map_object(bref, lambda b, ds: (b, ds), raw=True)
        assert isinstance(raw[0], pa.Buffer) and len(raw[1]) == 2

        # A mapped version is never modified in place: replacing and deleting the object leave
        # the mapping holding the old bytes; the next map sees the new version.
        old = c.map_object(ref, raw=True)
        before = hashlib.sha256(old).hexdigest()
        ref2 = c.update_object(ref, np.zeros(1 << 20, dtype=np.float64))
        assert hashlib.sha256(old).hexdigest() == before
        assert not np.any(c.map_object(ref2))
        c.delete_objects(ref.key)
        assert hashlib.sha256(old).hexdigest() == before
        with pytest.raises(foc.ObjectNotFound):
            c.map_object(ref2)
        assert c.map_stats()["mapped"] >= 5


def test_map_through_a_node_tier(upstream: ServerProcess, tier: ServerProcess) -> None:
    with Client(tier.endpoint) as c:
        ref = c.put_object("app/s", b"x" * (3 * MiB))
        assert c.map_object(ref) == b"x" * (3 * MiB)
        first = _mapped.try_map(c, ref)
        assert first is not None and first.paths[0].startswith(("/dev/shm/", "/tmp"))
        # A patch adds a delta file; the base file is reused, not written again.
        ref = c.patch_object(ref, b"tail")
        second = _mapped.try_map(c, ref)
        assert second is not None and second.paths[0] == first.paths[0] and len(second.paths) == 2
        assert c.map_object(ref, lambda b, ds: b + b"".join(ds)) == b"x" * (3 * MiB) + b"tail"
        # A native table maps as a table.
        table = pa.table({"a": list(range(1000))})
        tref = c.put_object("app/s", table)
        assert c.map_object(tref).equals(table)
        assert c.map_stats() == {"mapped": 3, "fallback": 0}  # try_map does not count
    # Written at the upstream by someone else: the tier maps the upstream's current version.
    with Client(upstream.endpoint) as up, Client(tier.endpoint) as c:
        uref = up.put_object("app/s", "from upstream")
        assert c.map_object(ObjectRef(tier.endpoint, uref.key, 0)) == "from upstream"
        up.update_object(uref, "v2")
        # The tier learns of the change after the push delay (docs/node-tier.md, "Staleness").
        deadline = time.monotonic() + 30
        while c.map_object(ObjectRef(tier.endpoint, uref.key, 0)) != "v2":
            assert time.monotonic() < deadline, "the tier kept mapping the old version"
            time.sleep(0.01)


def test_clients_that_cannot_map_get_the_bytes_over_grpc(start_server, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    payload = os.urandom(2 * MiB)
    # 1. The server has MAP off (cache.zero_copy: false): refused, the SDK falls back.
    config = tmp_path / "off.yaml"
    config.write_text(f"cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: fs://{tmp_path}/a\n"
                      "  zero_copy: false\n")
    off = start_server("-c", str(config))
    with Client(off.endpoint) as c:
        ref = c.put_object("app/s", payload)
        assert c.map_object(ref) == payload
        assert bytes(c.map_object(ref, raw=True)) == c.get_object(ref, raw=True)
        assert c.map_stats() == {"mapped": 0, "fallback": 2}
    with pytest.raises(pa.ArrowInvalid, match="Unknown action type: MAP"):
        map_reply(off.endpoint, ref.key)
    # 2. A memory-only server has no files: UNIMPLEMENTED, the SDK falls back.
    mem = start_server("--storage", "none")
    with Client(mem.endpoint) as c:
        ref = c.put_object("app/s", payload)
        with pytest.raises(pa.ArrowNotImplementedError, match="no local files"):
            map_reply(mem.endpoint, ref.key)
        assert c.map_object(ref) == payload and c.map_stats()["fallback"] == 1
    # 3. The client turned it off.
    disk = start_server("--storage", f"fs://{tmp_path}/b")
    monkeypatch.setenv("FLAME_CACHE_ZERO_COPY", "0")
    with Client(disk.endpoint) as c:
        ref = c.put_object("app/s", payload)
        assert c.map_object(ref) == payload and c.map_stats() == {"mapped": 0, "fallback": 1}


def non_loopback_address() -> str | None:
    """An address of this machine other than loopback, if it has one."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, it only picks a route
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def test_map_only_for_loopback_peers(tmp_path: Path) -> None:
    addr = non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no address other than loopback")
    server = ServerProcess(["--endpoint", f"grpc://{addr}:0", "--storage", f"fs://{tmp_path}/s"])
    try:
        with Client(server.endpoint) as c:
            ref = c.put_object("app/s", b"payload")
            # The SDK does not even ask (not a loopback endpoint) and reads over gRPC ...
            assert c.map_object(ref) == b"payload" and c.map_stats() == {"mapped": 0, "fallback": 1}
        # ... and the server refuses a MAP from a peer that is not on loopback.
        with pytest.raises(pa.ArrowNotImplementedError, match="only for clients on the server's machine"):
            map_reply(server.endpoint, ref.key)
    finally:
        server.stop()


def test_map_needs_read_on_the_app(start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "identities:\n"
        f"  - name: w\n    token_sha256: {hashlib.sha256(b'w-secret').hexdigest()}\n    grants: {{train: write}}\n"
        f"  - name: o\n    token_sha256: {hashlib.sha256(b'o-secret').hexdigest()}\n    grants: {{other: read}}\n")
    config = tmp_path / "auth.yaml"
    config.write_text(f"cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: fs://{tmp_path}/s\n"
                      f"  auth:\n    tokens_file: {tokens}\n    anonymous: none\n")
    server = start_server("-c", str(config))
    with Client(server.endpoint, token="w-secret") as w:
        ref = w.put_object("train/s", b"secret")
    auth = [(b"authorization", b"Bearer o-secret")]
    with pytest.raises(flight.FlightUnauthorizedError, match="needs read"):
        map_reply(server.endpoint, ref.key, auth)
    with pytest.raises(flight.FlightUnauthenticatedError):
        map_reply(server.endpoint, ref.key)
    with Client(server.endpoint, token="o-secret") as o, pytest.raises(foc.CacheAuthError):
        o.map_object(ref)  # refused, and the gRPC fallback is refused the same way


# --- four processes, one copy ----------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from flame_object_cache import Client, ObjectRef
    endpoint, key = sys.argv[1], sys.argv[2]
    c = Client(endpoint, cache_max_bytes=0)
    print("ready", flush=True)
    assert sys.stdin.readline().strip() == "go"
    value = c.map_object(ObjectRef(endpoint, key, 0))
    pages = value[::4096]                      # touches every page of the mapping
    print("held", int(pages.astype(np.uint64).sum()), c.map_stats()["mapped"], flush=True)
    sys.stdin.readline()
""")


def pss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise AssertionError("no MemAvailable")


def share_one_copy(tier: ServerProcess, key: str, expected_sum: int, zero_copy: bool) -> float:
    """Starts four processes that read `key` through the tier with map_object; returns the growth
    of Pss summed over the tier and the four processes while they hold it, in MiB. Pss divides a
    shared page among the processes mapping it, so pages mapped by all four count once."""
    env = hermetic_env({"PYTHONPATH": str(ROOT / "python"), "FLAME_CACHE_ZERO_COPY": "1" if zero_copy else "0"})
    children = [subprocess.Popen([sys.executable, "-c", CHILD, tier.endpoint, key], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(4)]
    try:
        for ch in children:
            assert ch.stdout is not None and ch.stdout.readline().strip() == "ready"
        pids = [tier.proc.pid, *(ch.pid for ch in children)]
        before = sum(pss_kib(p) for p in pids)
        avail_before = mem_available_kib()
        for ch in children:
            assert ch.stdin is not None
            ch.stdin.write("go\n")
            ch.stdin.flush()
        for ch in children:
            assert ch.stdout is not None
            word, total, mapped = ch.stdout.readline().split()
            assert word == "held" and int(total) == expected_sum
            assert int(mapped) == (1 if zero_copy else 0)
        after = sum(pss_kib(p) for p in pids)
        print(f"zero_copy={zero_copy}: Pss grew {(after - before) / 1024:.0f} MiB, "
              f"MemAvailable fell {(avail_before - mem_available_kib()) / 1024:.0f} MiB (noisy)")
        return (after - before) / 1024
    finally:
        for ch in children:
            if ch.stdin is not None:
                ch.stdin.close()
            ch.wait(60)


def test_four_processes_map_one_copy_of_a_256_mib_object(upstream: ServerProcess, tier: ServerProcess) -> None:
    size = 256 * MiB
    data = np.frombuffer(np.random.default_rng(1).bytes(size), dtype=np.uint8)
    expected = int(data[::4096].astype(np.uint64).sum())
    with Client(tier.endpoint, cache_max_bytes=0) as c:
        ref = c.put_object("app/s", data)
        del data
        # The tier holds its copy (a get through it) before the measurement starts.
        assert c.get_object(ObjectRef(tier.endpoint, ref.key, 0)).nbytes == size
    copy_mib = size / MiB
    mapped = share_one_copy(tier, ref.key, expected, zero_copy=True)
    # One copy: the tier's file in /dev/shm, mapped by all four. Four private copies would be
    # 1024 MiB; the bound leaves room for allocator noise.
    assert 0.5 * copy_mib < mapped < 1.75 * copy_mib, mapped
    # The measurement can fail: the same four processes reading over gRPC hold four copies.
    copied = share_one_copy(tier, ref.key, expected, zero_copy=False)
    assert copied > 3 * copy_mib, copied
