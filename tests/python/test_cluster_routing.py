"""Clients that use a cluster (docs/cluster.md, issue 10): MEMBERS, the SDK's rendezvous
routing over three real servers and its failover when one is killed, linearizable reads,
and orphan payloads collected by a running member — real etcd, real S3 gateway, real server
processes (the delete race and the sweep's bookkeeping are pinned in cluster_store_test)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow.flight as flight
from conftest import LISTED_ACTIONS, S3_BUCKET, Etcd, S3Gateway, ServerProcess, cluster_member, new_s3_prefix

import flame_object_cache as foc
from flame_object_cache import Client
from flame_object_cache._routing import rendezvous_order, routing_key


def eventually(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def members_of(endpoint: str) -> list[str]:
    fc = flight.connect(endpoint)
    try:
        return [r.body.to_pybytes().decode() for r in fc.do_action(flight.Action("MEMBERS", b""))]
    finally:
        fc.close()


def test_members_lists_the_live_servers(etcd: Etcd, s3_gateway: S3Gateway, server: ServerProcess) -> None:
    # A single server answers with itself.
    assert members_of(server.endpoint) == [server.endpoint]
    prefix = new_s3_prefix("members")
    servers = [cluster_member(etcd, s3_gateway, prefix) for _ in range(3)]
    try:
        everyone = sorted(s.endpoint for s in servers)
        for s in servers:
            assert eventually("MEMBERS never listed every server", lambda s=s: members_of(s.endpoint) == everyone)
        fc = flight.connect(servers[0].endpoint)
        assert [a.type for a in fc.list_actions()] == LISTED_ACTIONS
        fc.close()
        assert servers[2].stop() == 0  # leaves: its lease is revoked
        assert eventually("a stopped server stayed a member",
                          lambda: members_of(servers[0].endpoint) == sorted(s.endpoint for s in servers[:2]))
        with Client(servers[1].endpoint) as c:
            assert sorted(c.cluster_members()) == sorted(s.endpoint for s in servers[:2])
    finally:
        for s in servers:
            s.stop()


def test_sdk_routes_keys_over_three_servers_and_fails_over(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    prefix = new_s3_prefix("route")
    servers = [cluster_member(etcd, s3_gateway, prefix) for _ in range(3)]
    endpoints = [s.endpoint for s in servers]
    try:
        with Client(",".join(endpoints)) as c:  # FLAME_CACHE_ENDPOINT's form
            assert c.members() == endpoints
            refs = [c.put_object(f"app/s{i}", {"i": i}) for i in range(60)]
            took: dict[str, int] = {}
            for ref in refs:
                # The write went to the key's owner, which PutResult names.
                assert ref.endpoint == rendezvous_order(ref.key, endpoints)[0]
                took[ref.endpoint] = took.get(ref.endpoint, 0) + 1
            assert sorted(took) == sorted(endpoints), took  # spread over all three
            assert all(n >= 5 for n in took.values()), took
            assert [c.get_object(r) for r in refs] == [{"i": i} for i in range(60)]
            hits = c.cache_stats()["hits"]
            assert [c.get_object(r) for r in refs] == [{"i": i} for i in range(60)]
            assert c.cache_stats()["hits"] == hits + 60  # version-checked: not modified

            victim = servers[1]
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            owned = [r for r in refs if r.endpoint == victim.endpoint]
            assert owned
            # Every key still reads, the victim's through the next member of its order.
            assert [c.get_object(r) for r in refs] == [{"i": i} for i in range(60)]
            # Writes to the victim's sessions land on the next member; PATCH included (the
            # dead member refuses the connection, so nothing was sent twice).
            for r in owned[:5]:
                patched = c.patch_object(r, {"more": True})
                assert patched.version == r.version + 1
                assert patched.endpoint == rendezvous_order(r.key, [e for e in endpoints if e != victim.endpoint])[0]
                new = c.put_object(routing_key(r.key), "after the kill")
                assert new.endpoint == patched.endpoint
                assert c.get_object(new) == "after the kill"
            c.delete_objects("app/s0")
            assert not c.exists(refs[0].key)
        # Discovery: MEMBERS on any one endpoint gives the live members (the killed one's
        # lease expires within its TTL, 10 s).
        with Client(endpoints[0], discover=True) as d:
            assert eventually("the killed member stayed in MEMBERS",
                              lambda: sorted(d.refresh_members()) == sorted([endpoints[0], endpoints[2]]))
            assert d.get_object(refs[1]) == {"i": 1}
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.stop()


def test_linearizable_read_sees_a_write_through_another_server(etcd: Etcd, s3_gateway: S3Gateway,
                                                               server: ServerProcess) -> None:
    prefix = new_s3_prefix("linear")
    a, b = (cluster_member(etcd, s3_gateway, prefix) for _ in range(2))
    try:
        with Client(a.endpoint) as ca, Client(b.endpoint, linearizable=True) as cb:
            ref = ca.put_object("app/s", 0)
            for i in range(1, 50):
                new = ca.update_object(ref, i)
                # No waiting: the read through B reflects the write acknowledged through A.
                assert cb.get_object(foc.ObjectRef(b.endpoint, ref.key, new.version)) == i
                ref = new
            ca.delete_objects(ref.key)
            try:
                cb.get_object(foc.ObjectRef(b.endpoint, ref.key, ref.version))
                raise AssertionError("a linearizable read returned a deleted object")
            except foc.ObjectNotFound:
                pass
        # The ticket form on a single server (its own authority): an ordinary read.
        with Client(server.endpoint) as c:
            ref = c.put_object("app/s", "x")
            assert c.get_object(ref, linearizable=True) == "x"
            fc = flight.connect(server.endpoint)
            table = fc.do_get(flight.Ticket(f"{ref.key}:L{ref.version}".encode())).read_all()
            assert table.num_rows == 0  # not modified
            fc.close()
    finally:
        a.stop()
        b.stop()


def test_a_member_collects_orphans_and_never_a_live_payload(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    prefix = new_s3_prefix("orphans")
    gc = {"gc_interval_seconds": 1, "gc_grace_seconds": 1}
    a, b = (cluster_member(etcd, s3_gateway, prefix, cluster=gc) for _ in range(2))
    objects = Path(s3_gateway.root) / S3_BUCKET / prefix / "cluster" / "objects"

    def payloads() -> set[str]:
        # os.walk, not Path.rglob: the collector deletes payloads (and the gateway their
        # emptied directories) while the test looks, and os.walk skips a directory that
        # vanished under it where rglob raises FileNotFoundError.
        return {os.path.relpath(os.path.join(d, f), objects)
                for d, _, files in os.walk(objects) for f in files if f.endswith(".arrow")}

    try:
        with Client(f"{a.endpoint},{b.endpoint}") as c:
            live = c.put_object("app/live", "v1")
            live = c.update_object(live, "v2")  # v1's payload is now an orphan
            live = c.patch_object(live, "delta")
            gone = c.put_object("app/gone", "x")
            c.delete_objects("app/gone")  # its payload is an orphan
            assert len(payloads()) == 4
            kept = eventually("orphans were never collected", lambda: payloads() if len(payloads()) == 2 else None)
            assert all(p.startswith("app/live/") for p in kept)
            assert not any(p.startswith(gone.key) for p in kept)
            # What is live reads back whole from S3, on a member that never cached it.
            fresh = cluster_member(etcd, s3_gateway, prefix)
            try:
                with Client(fresh.endpoint) as cf:
                    assert cf.get_object(foc.ObjectRef(fresh.endpoint, live.key, 0),
                                         lambda base, deltas: [base, *deltas]) == ["v2", "delta"]
            finally:
                fresh.stop()
            time.sleep(3)  # more sweeps: still nothing live collected
            assert payloads() == kept
        logs = "".join(a.output) + "".join(b.output)
        assert "collected 2 orphan payloads" in logs or "collected 1 orphan payloads" in logs
    finally:
        a.stop()
        b.stop()


def test_a_routing_clients_watch_moves_to_a_live_member(etcd: Etcd, s3_gateway: S3Gateway) -> None:
    prefix = new_s3_prefix("watch")
    servers = [cluster_member(etcd, s3_gateway, prefix) for _ in range(3)]
    endpoints = [s.endpoint for s in servers]
    try:
        with Client(",".join(endpoints)) as c:
            # The subscribed cache answers a routing client's gets without a round trip.
            sub = c.subscribe_cache("app/*", heartbeat=0.1)
            assert sub.wait_ready(30)
            ref = c.put_object("app/s", "v1")
            c.get_object(ref)
            eventually("no WATCH hit for a routing client",
                       lambda: c.get_object(ref) == "v1" and c.cache_stats()["watch_hits"] > 0)
            sub.close()

            w = c.watch("app/*")
            first = rendezvous_order("app/*", endpoints)[0]  # where the watch subscribed
            victim = next(s for s in servers if s.endpoint == first)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            new = c.put_object("app/after", "written after the kill")
            # The stream ends with the member; the watch resubscribes at another member and
            # reports the write (keys it had not seen arrive as `current`).
            seen = None
            for change in w:
                if change.key == new.key:
                    seen = change
                    break
            w.close()
            assert seen is not None and seen.version == new.version and w.resyncs >= 1
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.stop()
