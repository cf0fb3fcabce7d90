"""Issue 12, holes 3 and 4: no client can exhaust the server's threads or connections, nor hang
/health and /metrics.

Against the real binary with raw sockets and raw pyarrow.flight, as an attacker would. The limits
come from `cache.limits` (docs/operations.md); the tests wait for conditions (with generous upper
bounds), they never time the server.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight

from flight_wire import OPAQUE_SCHEMA, get, put, rows


def own_connection(endpoint: str) -> flight.FlightClient:
    """A client on its own TCP connection: gRPC otherwise shares one connection among all the
    channels of a process to the same server."""
    return flight.connect(endpoint, generic_options=[("grpc.use_local_subchannel_pool", 1)])


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def sockets_of(pid: int) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def metric(url: str, name: str) -> float:
    body = urllib.request.urlopen(url, timeout=30).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def start_limited(start_server, tmp_path: Path, limits: str):
    config = tmp_path / "flame-cluster.yaml"
    config.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  storage: none\n"
                      "  metrics:\n    port: 0\n    bind: 127.0.0.1\n"
                      "  limits:\n" + "".join(f"    {line}\n" for line in limits.strip().splitlines()))
    return start_server("-c", str(config))


def test_stalled_uploads_hold_neither_threads_nor_the_server(start_server, tmp_path):
    """Hole 3: DoPuts that send only a schema each held a server thread forever (3,000 of them:
    3,011 threads, then "Server Threadpool Exhausted" for everyone). Now at most
    max_concurrent_uploads are admitted, reads keep working, and stalled streams are cut."""
    server = start_limited(start_server, tmp_path,
                           "max_concurrent_uploads: 8\nstalled_stream_seconds: 2")
    reader = own_connection(server.endpoint)
    put(reader, "app/s/k", b"still served")
    baseline = threads_of(server.proc.pid)
    attacker = own_connection(server.endpoint)
    streams = []
    for i in range(150):
        try:
            streams.append(attacker.do_put(flight.FlightDescriptor.for_path(f"app/s/x{i}"), OPAQUE_SCHEMA))
        except flight.FlightError:
            pass
    # Every stream has reached the server: admitted (in flight) or refused.
    wait_for(lambda: metric(server.metrics_url, "foc_rpc_in_flight")
             + metric(server.metrics_url, "foc_calls_refused_total") >= 150
             or metric(server.metrics_url, "foc_rpc_in_flight") >= 150,
             60, "150 stalled DoPuts seen by the server")
    assert threads_of(server.proc.pid) < baseline + 8 + 40
    assert rows(get(reader, "app/s/k"))[0][2] == b"still served"
    # The stalled streams are cut: nothing stays in flight (the metrics call itself aside).
    wait_for(lambda: metric(server.metrics_url, "foc_rpc_in_flight") == 0, 60,
             "stalled DoPuts cut")
    assert metric(server.metrics_url, "foc_connections_closed_total") >= 1
    for writer, _ in streams:
        try:
            writer.close()
        except (flight.FlightError, pa.ArrowException, OSError):
            pass
    attacker.close()
    writer_client = flight.connect(server.endpoint)
    assert put(writer_client, "app/s/after", b"ok")["version"] >= 1
    writer_client.close()
    reader.close()


def test_idle_connections_are_closed(start_server, tmp_path):
    """Hole 3: idle connections were never closed (300 of them made disk reads fail with "Too
    many open files" under a low descriptor limit)."""
    server = start_limited(start_server, tmp_path, "idle_connection_seconds: 1")
    base = sockets_of(server.proc.pid)
    clients = [own_connection(server.endpoint) for _ in range(60)]
    for c in clients:
        c.list_actions()
    assert sockets_of(server.proc.pid) >= base + 60
    wait_for(lambda: sockets_of(server.proc.pid) < base + 10, 60, "idle connections closed")
    # A client whose connection was closed simply reconnects.
    assert clients[0].list_actions()
    for c in clients:
        c.close()


def test_connections_beyond_the_limit_are_closed(start_server, tmp_path):
    server = start_limited(start_server, tmp_path, "max_connections: 10")
    base = sockets_of(server.proc.pid)
    clients = [own_connection(server.endpoint) for _ in range(50)]
    for c in clients:
        c.list_actions()
    wait_for(lambda: sockets_of(server.proc.pid) <= base + 10, 60, "connections beyond 10 closed")
    assert metric(server.metrics_url, "foc_connections_closed_total") >= 40
    for c in clients:
        c.close()


def test_trickling_clients_cannot_hang_health(start_server, tmp_path):
    """Hole 4: eight connections (twelve here) trickling one byte every 2 s hung /health and /metrics forever
    (a liveness probe would then restart the server)."""
    server = start_limited(start_server, tmp_path, "http_timeout_seconds: 1\nhttp_threads: 2")
    m = re.match(r"http://([^:/]+):(\d+)/", server.metrics_url)
    assert m, server.metrics_url
    host, port = m.group(1), int(m.group(2))
    stop = threading.Event()

    def trickle() -> None:
        try:
            with socket.create_connection((host, port), timeout=30) as s:
                for byte in b"GET /health HTTP/1.1\r\n" + b"X-Slow: 1\r\n" * 20:
                    if stop.is_set():
                        return
                    s.sendall(bytes([byte]))
                    time.sleep(2)
        except OSError:
            pass  # the server closed the connection: what it should do

    attackers = [threading.Thread(target=trickle, daemon=True) for _ in range(12)]
    for t in attackers:
        t.start()
    time.sleep(1)
    health = urllib.request.urlopen(f"http://{host}:{port}/health", timeout=30)
    assert health.status == 200
    stop.set()


def test_huge_key_gets_a_bounded_invalid_argument(start_server):
    """Hole 7: errors echoed a 5 MB key until gRPC's metadata limit turned them into another
    error. Now the message keeps its head and tail (with the reason) and the code stays
    INVALID_ARGUMENT."""
    server = start_server("--storage", "none")
    client = flight.connect(server.endpoint)
    key = "app/s/" + "k" * (5 << 20) + "/extra"
    try:
        client.do_get(flight.Ticket(f"{key}:0".encode())).read_all()
        raise AssertionError("a 5 MB key was accepted")
    except pa.ArrowInvalid as exc:
        message = str(exc)
        assert "INVALID_ARGUMENT" in message or "Invalid" in message
        assert "bytes elided" in message and len(message) < 20000
    put(client, "app/s/after", b"still serving")
    client.close()
