"""kill -9 under write load: writer processes PUT and PATCH over Flight while the server is
killed with SIGKILL at random moments; after each restart every acknowledged write is present
and whole (the object is exactly its last acknowledged state, or that state plus the one
write that was in flight), and versions keep increasing. Runs on disk storage and on s3://
storage (versitygw; 10 cycles there, each restart also takes over the killed server's lease)."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ServerProcess, new_s3_prefix
from flight_wire import get, rows

HERE = Path(__file__).resolve().parent
WRITERS = 3
CYCLES = 5


def apply(state: dict | None, op: str, sha: str, version: int) -> dict:
    """The object state after a write: version, base digest, delta digests."""
    if op == "put" or state is None:
        return {"version": version, "base": sha, "deltas": []}
    return {"version": version, "base": state["base"], "deltas": state["deltas"] + [sha]}


def server_state(client: flight.FlightClient, key: str) -> dict | None:
    try:
        r = rows(get(client, key, 0, timeout=10))
    except pa.ArrowKeyError:
        return None
    assert r and r[0][1] == "base", r
    assert all(kind == "patch" for _, kind, _ in r[1:]), r
    versions = [v for v, _, _ in r]
    assert versions == sorted(set(versions)), f"versions not increasing: {versions}"
    return {"version": versions[-1], "base": hashlib.sha256(r[0][2]).hexdigest(),
            "deltas": [hashlib.sha256(d).hexdigest() for _, _, d in r[1:]]}


@pytest.mark.parametrize("storage", ["disk", "s3"])
def test_kill9_under_write_load(tmp_path: Path, storage: str, request) -> None:
    env = None
    cycles = CYCLES
    if storage == "s3":
        gw = request.getfixturevalue("s3_gateway")
        root = gw.url(new_s3_prefix("kill9"))
        env = gw.env
        cycles = 10
    else:
        root = str(tmp_path / "store")
    rng = random.Random(1234)
    acked: dict[str, dict] = {}      # key -> last acknowledged state
    max_version: dict[str, int] = {}  # key -> highest version ever seen
    started = time.monotonic()
    total_acks = 0
    pending_writes: dict[str, dict] = {}  # key -> the write in flight at the last kill
    for cycle in range(cycles):
        server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", root], env=env)
        t_start = time.monotonic()
        client = flight.connect(server.endpoint)
        # 1. Everything acknowledged before the last kill is there and whole.
        for key, state in acked.items():
            got = server_state(client, key)
            assert got is not None, f"cycle {cycle}: acknowledged {key} v{state['version']} lost"
            if got != state:
                # Only the write in flight at the kill may have landed on top of it.
                pending = pending_writes.get(key)
                assert pending is not None and got == apply(state, pending["op"], pending["sha"],
                                                            state["version"] + 1), (
                    f"cycle {cycle}: {key} is {got}, acknowledged {state}")
                acked[key] = got
            max_version[key] = max(max_version.get(key, 0), got["version"])
        # 2. Write under load, then kill -9 at a random moment.
        logs = [tmp_path / f"c{cycle}-w{w}.log" for w in range(WRITERS)]
        writers = [subprocess.Popen([sys.executable, str(HERE / "storage_kill_writer.py"),
                                     server.endpoint, str(w), str(logs[w]),
                                     str(cycle * 100 + w)], cwd=HERE)
                   for w in range(WRITERS)]
        # Let every writer get going (importing pyarrow takes a while), then a random moment.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
                log.exists() and '"ack"' in log.read_text() for log in logs):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.2, 1.2))
        t_kill = time.monotonic()
        server.stop(signal.SIGKILL)
        for w in writers:
            w.wait(30)
        print(f"cycle {cycle}: started {t_start - started:.1f}s, killed {t_kill - started:.1f}s, "
              f"writers done {time.monotonic() - started:.1f}s")
        client.close()
        # 3. Fold the logs: acknowledged states, and the write each key had in flight.
        pending_writes = {}
        for log in logs:
            if not log.exists():
                continue
            for line in log.read_text().splitlines():
                e = json.loads(line)
                key = e["key"]
                if e["event"] == "attempt":
                    pending_writes[key] = e
                elif e["event"] == "missing":
                    pending_writes.pop(key, None)
                elif e["event"] == "ack":
                    pending_writes.pop(key, None)
                    assert e["version"] > max_version.get(key, 0), (
                        f"{key}: version {e['version']} after {max_version.get(key)}")
                    max_version[key] = e["version"]
                    acked[key] = apply(acked.get(key), e["op"], e["sha"], e["version"])
                    total_acks += 1
    # A last restart checks the final cycle's acknowledgements.
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", root], env=env)
    try:
        client = flight.connect(server.endpoint)
        for key, state in acked.items():
            got = server_state(client, key)
            pending = pending_writes.get(key)
            assert got == state or (pending is not None and got == apply(
                state, pending["op"], pending["sha"], state["version"] + 1)), (
                f"final: {key} is {got}, acknowledged {state}")
        client.close()
    finally:
        server.stop()
    assert total_acks > 20, f"only {total_acks} writes acknowledged"
    print(f"{cycles} kill -9 cycles, {total_acks} acknowledged writes verified")
