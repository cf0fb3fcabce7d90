"""Disk capacity limit (`--capacity` / cache.capacity) through the real binary: the least
recently used objects are removed from disk and reported as evicted; nothing else is lost."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flight_wire import get as get_table, put


def get(client: flight.FlightClient, key: str) -> bytes:
    return b"".join(get_table(client, key).column("data").to_pylist())


def stored_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.arrow") if ".flame-cache" not in p.parts)


def test_capacity_evicts_least_recently_used_and_reports_it(tmp_path: Path, start_server) -> None:
    root = tmp_path / "store"
    server = start_server("--storage", str(root), "--capacity", "1M", "--max-memory", "64K")
    client = flight.connect(server.endpoint)
    payloads = {f"app/s/o{i}": os.urandom(300 * 1024) for i in range(3)}
    for key, data in payloads.items():
        put(client, key, data)
    assert get(client, "app/s/o0") == payloads["app/s/o0"]  # o0 becomes most recently used
    newest = os.urandom(300 * 1024)
    put(client, "app/s/o3", newest)  # needs room: o1 (least recently used) goes

    with pytest.raises(pa.ArrowKeyError) as err:  # NOT_FOUND
        get(client, "app/s/o1")
    assert "evicted" in str(err.value) and "capacity" in str(err.value)
    assert "durable tier (disk storage)" in str(err.value)  # says which tier, not memory
    assert get(client, "app/s/o0") == payloads["app/s/o0"]
    assert get(client, "app/s/o2") == payloads["app/s/o2"]
    assert get(client, "app/s/o3") == newest
    assert stored_bytes(root) <= 1024 * 1024
    listed = {info.endpoints[0].ticket.ticket.decode().rsplit(":", 1)[0] for info in client.list_flights()}
    assert listed == {"app/s/o0", "app/s/o2", "app/s/o3"}

    # Writing the evicted key again continues its versions; the store survives a restart.
    again = put(client, "app/s/o1", b"back")
    assert again["version"] > 1
    client.close()
    server.stop()
    server = start_server("--storage", str(root), "--capacity", "1M")
    client = flight.connect(server.endpoint)
    assert get(client, "app/s/o1") == b"back"
    assert get(client, "app/s/o3") == newest


def test_object_larger_than_capacity_is_refused_without_evicting(tmp_path: Path, start_server) -> None:
    root = tmp_path / "store"
    server = start_server("--storage", str(root), "--capacity", "512K")
    client = flight.connect(server.endpoint)
    put(client, "app/s/keep", b"k" * 1000)
    with pytest.raises(flight.FlightError) as err:
        put(client, "app/s/huge", os.urandom(600 * 1024))
    assert "RESOURCE_EXHAUSTED" in str(err.value)
    assert get(client, "app/s/keep") == b"k" * 1000


def eviction_lines(output: list[str]) -> list[tuple[int, str]]:
    """(objects, line) of each eviction summary the server logged."""
    out = []
    for line in output:
        m = re.search(r"store: evicted (\d+) objects? \(\d+ bytes\) from the (\w+) tier", line)
        if m:
            out.append((int(m.group(1)), line))
    return out


def test_memory_evictions_are_summarised_not_logged_per_object(start_server) -> None:
    # 300 puts of 4 KiB into a 64 KiB memory-only store: ~285 evictions, each reported
    # to GET as evicted from the memory tier; the log has one summary line per burst
    # (the first at once, the rest within 10 s together), not one line per object.
    server = start_server("--storage", "none", "--max-memory", "64K")
    client = flight.connect(server.endpoint)
    keys = [f"app/s/m{i}" for i in range(300)]
    for key in keys:
        put(client, key, os.urandom(4096))
    evicted = 0
    for key in keys:
        try:
            get(client, key)
        except pa.ArrowKeyError as e:
            assert "evicted from the memory tier" in str(e), str(e)
            evicted += 1
    assert evicted > 250
    client.close()
    assert server.stop() == 0
    lines = eviction_lines(server.output)
    assert 1 <= len(lines) <= 3, "".join(line for _, line in lines)
    assert sum(n for n, _ in lines) == evicted  # every eviction is in a summary
    assert all("memory tier" in line and "storage: none" in line for _, line in lines)


def test_durable_evictions_are_summarised(tmp_path: Path, start_server) -> None:
    root = tmp_path / "store"
    server = start_server("--storage", str(root), "--capacity", "256K", "--max-memory", "64K")
    client = flight.connect(server.endpoint)
    keys = [f"app/s/d{i}" for i in range(100)]
    for key in keys:
        put(client, key, os.urandom(16 * 1024))
    gone = 0
    for key in keys:
        try:
            get(client, key)
        except pa.ArrowKeyError as e:
            assert "evicted from the durable tier (disk storage)" in str(e), str(e)
            gone += 1
    assert gone > 80
    assert stored_bytes(root) <= 256 * 1024
    client.close()
    assert server.stop() == 0
    lines = eviction_lines(server.output)
    assert 1 <= len(lines) <= 3, "".join(line for _, line in lines)
    assert sum(n for n, _ in lines) == gone
    assert all("durable tier" in line and "cache.capacity" in line for _, line in lines)
