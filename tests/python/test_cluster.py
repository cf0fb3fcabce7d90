"""Cluster mode (docs/cluster.md) between real server processes on a real etcd and a real
S3 gateway: one namespace across servers, the cluster's versions, nothing acknowledged lost
when a server is killed.

(The flamepy 0.6.0 compatibility suite also runs against a cluster member: the `cluster`
kind of tests/python/compat's `server` fixture.)"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from typing import Any, Callable

import pytest
from conftest import BINARY, Etcd, S3Gateway, ServerProcess, cluster_member, hermetic_env, new_s3_prefix, raw_get

import flame_object_cache as foc
from flame_object_cache import Client


def eventually(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
            if got:
                return got
        except foc.ObjectNotFound:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_any_server_serves_what_another_took(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    prefix = new_s3_prefix("serve")
    a, b = (cluster_member(etcd, s3_gateway, prefix) for _ in range(2))
    try:
        with Client(a.endpoint) as ca, Client(b.endpoint) as cb:
            ref = ca.put_object("app/s", {"weights": list(range(10))})
            assert ref.endpoint == a.endpoint  # PutResult advertises the server that took it
            at_b = foc.ObjectRef(b.endpoint, ref.key, 0)
            assert eventually("B never served A's write", lambda: cb.get_object(at_b)) == {"weights": list(range(10))}
            patched = cb.patch_object(foc.ObjectRef(b.endpoint, ref.key, ref.version), [10])
            assert patched.version == 2
            assert eventually("A never saw B's patch",
                              lambda: raw_get(a.endpoint, ref.key, 0) == (2, 2))  # base + delta
            cb.delete_objects("app/*")
            eventually("A kept serving a deleted key",
                       lambda: not [o for o in ca.list_objects("app")])
            again = ca.update_object(foc.ObjectRef(a.endpoint, ref.key, 2), "re-created")
            assert again.version == 3  # above every version the cluster ever issued
        assert "cluster member: etcd " + etcd.endpoint in "".join(a.output)
    finally:
        a.stop()
        b.stop()


def test_64_concurrent_patchers_through_three_servers_get_contiguous_versions(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    prefix = new_s3_prefix("patch")
    servers = [cluster_member(etcd, s3_gateway, prefix) for _ in range(3)]
    try:
        clients = [Client(s.endpoint) for s in servers]
        ref = clients[0].put_object("app/s", "base")
        versions: list[int] = []
        lock = threading.Lock()

        def patcher(i: int) -> None:
            c, s = clients[i % 3], servers[i % 3]
            for n in range(2):
                v = c.patch_object(foc.ObjectRef(s.endpoint, ref.key, 1), f"{i}.{n}").version
                with lock:
                    versions.append(v)

        threads = [threading.Thread(target=patcher, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(versions) == list(range(2, 2 + 128))  # 128 patches, none lost, no repeat
        for c in clients:
            c.close()
    finally:
        for s in servers:
            s.stop()


def test_kill_9_of_a_server_loses_no_acknowledged_write(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    prefix = new_s3_prefix("kill")
    survivor = cluster_member(etcd, s3_gateway, prefix)
    acknowledged: dict[str, tuple[int, int]] = {}
    try:
        for cycle in range(10):
            victim = cluster_member(etcd, s3_gateway, prefix)
            stop = threading.Event()

            def write() -> None:
                with Client(victim.endpoint, timeout=10) as c:
                    i = 0
                    while not stop.is_set():
                        try:
                            ref = c.put_object(f"app/c{cycle}", i)
                        except foc.CacheError:
                            return  # the server is gone: this write was not acknowledged
                        acknowledged[ref.key] = (ref.version, i)
                        i += 1

            writer = threading.Thread(target=write)
            writer.start()
            before = len(acknowledged)
            eventually("no write was acknowledged", lambda: len(acknowledged) > before + 20)
            victim.stop(signal.SIGKILL)
            stop.set()
            writer.join()
        with Client(survivor.endpoint) as c:
            for key, (version, value) in acknowledged.items():
                got = eventually(f"{key} lost", lambda: c.get_object(foc.ObjectRef(survivor.endpoint, key, 0)) == value)
                assert got
    finally:
        survivor.stop()


def test_cluster_configuration_is_checked() -> None:
    env = hermetic_env({"FLAME_CACHE_ETCD": "http://127.0.0.1:1"})
    out = subprocess.run([str(BINARY), "--check-config", "--storage", "none"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "needs s3:// storage" in out.stderr
    bad = subprocess.run([str(BINARY), "--check-config"], capture_output=True, text=True, timeout=60,
                         env=hermetic_env({"FLAME_CACHE_ETCD": "10.0.0.5:2379"}))
    assert bad.returncode != 0 and "FLAME_CACHE_ETCD" in bad.stderr


def test_etcd_unreachable_at_start_is_a_clear_failure(s3_gateway: S3Gateway, tmp_path: Any) -> None:
    (tmp_path / "c.yaml").write_text(
        f"cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: \"{s3_gateway.url(new_s3_prefix('down'))}\"\n"
        "  cluster:\n    etcd: [\"http://127.0.0.1:1\"]\n")
    out = subprocess.run([str(BINARY), "--config", str(tmp_path / "c.yaml")], env=hermetic_env(s3_gateway.env),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "cannot join the cluster" in out.stdout + out.stderr and "etcd" in out.stdout + out.stderr


@pytest.mark.parametrize("n", [1])
def test_a_single_member_cluster_is_a_server(etcd: Etcd, s3_gateway: S3Gateway, n: int) -> None:
    only: ServerProcess = cluster_member(etcd, s3_gateway, new_s3_prefix("single"))
    try:
        with Client(only.endpoint) as c:
            ref = c.put_object("a/s", b"x" * 100_000)
            assert c.get_object(ref) == b"x" * 100_000
    finally:
        only.stop()


def test_flamepy_writes_through_one_server_and_reads_through_the_others(etcd: Etcd, s3_gateway: S3Gateway,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Any) -> None:
    import flamepy.core.cache as fc
    from compat.conftest import reset_flamepy

    prefix = new_s3_prefix("flamepy")
    a, b, c = (cluster_member(etcd, s3_gateway, prefix) for _ in range(3))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FLAME_CACHE_ENDPOINT", a.endpoint)
    reset_flamepy()
    try:
        ref = fc.put_object("app/s", {"policy": 7})
        assert ref.endpoint == a.endpoint
        for other in (b, c):
            reset_flamepy()  # nothing cached: the value comes from that server
            at = fc.ObjectRef(endpoint=other.endpoint, key=ref.key, version=0)
            assert eventually(f"{other.endpoint} never served it", lambda: fc.get_object(at)) == {"policy": 7}
    finally:
        reset_flamepy()
        for s in (a, b, c):
            s.stop()


def test_etcd_outage_fails_writes_unavailable_and_recovers(s3_gateway: S3Gateway, tmp_path: Any) -> None:
    own = Etcd(tmp_path / "etcd")  # its own etcd: the session's keeps serving other tests
    prefix = new_s3_prefix("outage")
    a = cluster_member(own, s3_gateway, prefix)
    try:
        with Client(a.endpoint, timeout=60) as c:
            ref = c.put_object("app/s", "before")
            own.stop()
            with pytest.raises(foc.CacheUnavailable, match="etcd"):
                c.put_object("app/s", "during")
            # Resident versions are still served: reads never ask etcd.
            assert c.get_object(foc.ObjectRef(a.endpoint, ref.key, 0)) == "before"
            own.start()
            deadline = time.monotonic() + 60
            while True:
                try:
                    after = c.put_object("app/s", "after")
                    break
                except foc.CacheUnavailable:
                    assert time.monotonic() < deadline, "writes never resumed after etcd came back"
                    time.sleep(0.1)
            assert after.version == 1 and after.key != ref.key
            # The watch resynchronised: a write through another member is seen here.
            b = cluster_member(own, s3_gateway, prefix)
            try:
                with Client(b.endpoint) as cb:
                    late = cb.put_object("app/s", "through b")
                eventually("A never saw B's write after the outage",
                           lambda: c.get_object(foc.ObjectRef(a.endpoint, late.key, 0)) == "through b")
            finally:
                b.stop()
    finally:
        a.stop()
        own.stop()
