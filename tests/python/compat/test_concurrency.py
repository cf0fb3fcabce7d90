"""Concurrent patchers on one key, from threads of one process and from several processes:
every patch gets a distinct version, each writer sees its own versions strictly increase,
and none is lost (a final get with a deserializer sees every delta, in version order)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.flight as flight
from flamepy.core.cache import ObjectRef, get_object, patch_object, put_object

from . import wire
from .conftest import forget_local_cache

WORKER = Path(__file__).with_name("patch_worker.py")


def check_history(per_writer: dict[str, list[int]], count: int, first: int = 2) -> None:
    all_versions = [v for vs in per_writer.values() for v in vs]
    assert len(all_versions) == len(set(all_versions)), "a version was issued twice"
    assert sorted(all_versions) == list(range(first, first + len(all_versions)))
    for vs in per_writer.values():
        assert len(vs) == count
        assert vs == sorted(vs) and len(set(vs)) == len(vs)


def check_final(ref: ObjectRef, per_writer: dict[str, list[int]]) -> None:
    forget_local_cache()
    base, deltas = get_object(ObjectRef(ref.endpoint, ref.key, 0), lambda b, d: (b, list(d)))
    assert base == "base"
    by_version = {v: (tag, i) for tag, vs in per_writer.items() for i, v in enumerate(vs)}
    # Deltas come back in version order, and each one is the delta that got that version.
    assert [tuple(d) for d in deltas] == [by_version[v] for v in sorted(by_version)]


def test_threads_patching_one_key(flame):
    ref = put_object("app/concurrent", "base")
    threads, count = 8, 15
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(tag: str) -> None:
        try:
            start.wait()
            vs = []
            for i in range(count):
                vs.append(patch_object(ref, (tag, i)).version)
            results[tag] = vs
        except BaseException as e:  # reported below
            errors.append(e)

    pool = [threading.Thread(target=run, args=(f"t{n}",)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors
    assert len(results) == threads
    check_history(results, count)
    check_final(ref, results)


def test_processes_patching_one_key(flame, tmp_path):
    ref = put_object("app/concurrent", "base")
    procs, count = 4, 20
    env = dict(os.environ, HOME=str(tmp_path))
    workers = [
        subprocess.Popen([sys.executable, str(WORKER), ref.endpoint, ref.key, f"p{n}", str(count)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for n in range(procs)
    ]
    try:
        for w in workers:
            assert w.stdout.readline().strip() == "ready"
        # Meanwhile this process patches too.
        for w in workers:
            w.stdin.write("go\n")
            w.stdin.flush()
        mine = [patch_object(ref, ("main", i)).version for i in range(count)]
        results = {"main": mine}
        for n, w in enumerate(workers):
            out, _ = w.communicate(timeout=60)
            assert w.returncode == 0
            results[f"p{n}"] = json.loads(out.strip().splitlines()[-1])
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    check_history(results, count)
    check_final(ref, results)


def test_readers_during_patching_see_monotonic_consistent_states(flame, raw):
    ref = put_object("app/concurrent", "base")
    stop = threading.Event()
    seen: list[list[int]] = []
    errors: list[BaseException] = []

    def read() -> None:
        mine: list[int] = []
        seen.append(mine)
        try:
            while not stop.is_set():
                rows = wire.get(raw, f"{ref.key}:0").rows
                versions = [v for v, _, _ in rows]
                assert rows[0][1] == "base"
                assert versions == list(range(1, len(rows) + 1))  # no gaps, no torn state
                mine.append(versions[-1])
        except BaseException as e:
            errors.append(e)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for i in range(60):
        patch_object(ref, i)
    stop.set()
    for t in readers:
        t.join(30)
    assert not errors, errors
    for observed in seen:
        assert observed and observed == sorted(observed)  # never goes backwards
    forget_local_cache()
    assert get_object(ref, lambda b, d: list(d)) == list(range(60))


def test_delete_racing_with_writers_never_reuses_a_version(flame, raw):
    # DELETE is ordered with PUT/PATCH of the same key, and the version floor it leaves means
    # no version is ever handed out twice for the key, across any number of re-creations.
    key = "app/race/k"
    wire.put_path(raw, key, b"b")
    issued: list[int] = [1]
    errors: list[BaseException] = []
    stop = threading.Event()

    def patcher() -> None:
        while not stop.is_set():
            try:
                issued.append(wire.patch(raw, key, b"d").doc["version"])
            except KeyError:  # deleted at that moment: NOT_FOUND is the right answer
                pass
            except BaseException as e:
                errors.append(e)

    def creator() -> None:
        while not stop.is_set():
            try:
                issued.append(wire.put_path(raw, key, b"b").doc["version"])
            except BaseException as e:
                errors.append(e)

    workers = [threading.Thread(target=f) for f in (patcher, patcher, creator)]
    for t in workers:
        t.start()
    try:
        for pattern in [key.encode(), b"app/race", b"app/*"] * 20:
            assert [r.body.to_pybytes() for r in raw.do_action(
                flight.Action("DELETE", pattern))] == [b"OK"]
    finally:
        stop.set()
        for t in workers:
            t.join(30)
    assert not errors, errors[:3]
    assert len(issued) == len(set(issued)), f"a version was issued twice: {sorted(issued)}"
    final = wire.put_path(raw, key, b"last").doc["version"]
    assert final > max(issued)
    wire.patch(raw, key, b"p")
    assert wire.get(raw, f"{key}:0").rows == [(final, "base", b"last"), (final + 1, "patch", b"p")]
