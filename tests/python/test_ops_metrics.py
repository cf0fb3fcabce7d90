"""/metrics and /health of the real server, validated by Prometheus' promtool."""

from __future__ import annotations

import re
import socket
import subprocess
import urllib.error
import urllib.request

import pyarrow.flight as flight
import pytest

from conftest import BINARY, ServerProcess, hermetic_env
from flight_wire import put


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_pass_promtool_and_count_calls() -> None:
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--metrics-port", "0"])
    try:
        assert server.metrics_url.startswith("http://127.0.0.1:")
        client = flight.connect(server.endpoint)
        put(client, "app/s/o", b"x" * 1000)
        table = client.do_get(flight.Ticket(b"app/s/o:0")).read_all()
        version = table.column("version")[0].as_py()
        assert client.do_get(flight.Ticket(f"app/s/o:{version}".encode())).read_all().num_rows == 0
        try:
            client.do_get(flight.Ticket(b"app/s/missing:0")).read_all()
        except (flight.FlightError, KeyError):
            pass
        client.close()

        status, text = fetch(server.metrics_url)
        assert status == 200
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        assert 'foc_rpc_requests_total{rpc="DoPut",code="OK"} 1' in text
        assert 'foc_rpc_requests_total{rpc="DoGet",code="OK"} 2' in text
        assert 'foc_rpc_requests_total{rpc="DoGet",code="NOT_FOUND"} 1' in text
        assert 'foc_rpc_duration_seconds_count{rpc="DoGet"} 3' in text
        assert 'foc_get_replies_total{kind="not_modified"} 1' in text
        assert "foc_objects 1" in text
        assert "foc_payload_received_bytes_total 1000" in text
        # Limits to compare usage with, the standard process metrics, clean bucket bounds.
        assert "foc_memory_limit_bytes 1073741824" in text  # the 1 GiB default
        assert "foc_disk_capacity_bytes 0" in text
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"):
            assert f"\n{name} " in text, name
        bounds = re.findall(r'foc_rpc_duration_seconds_bucket\{rpc="DoGet",le="([^"]+)"\}', text)
        assert bounds == ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                          "0.5", "1", "2.5", "10", "60", "+Inf"]

        status, body = fetch(server.metrics_url.replace("/metrics", "/health"))
        assert (status, body) == (200, "ok\n")
    finally:
        assert server.stop() == 0


def test_metrics_are_on_by_default_on_loopback_and_a_busy_default_port_is_not_fatal(tmp_path) -> None:
    """No configuration file: metrics, /health and the status page on 127.0.0.1:9091. A second
    instance finds that port busy and starts anyway, without metrics (the default is best
    effort; an explicit port stays fatal, test below)."""
    home = {"HOME": str(tmp_path)}  # no ~/.flame: the built-in default (and conftest adds no port)
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 9091))
    except OSError as e:
        pytest.fail(f"127.0.0.1:9091 is in use on this machine ({e}); this test needs it free")
    holder.listen(1)
    try:
        busy = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"], env=home)
        try:
            assert busy.metrics_url == ""
            assert any("cannot listen for metrics on 127.0.0.1:9091 (the built-in default); metrics are off"
                       in line for line in busy.output), busy.output
            assert any("metrics off (default port busy)" in line for line in busy.output), busy.output
        finally:
            assert busy.stop() == 0
    finally:
        holder.close()
    server = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none"], env=home)
    try:
        assert server.metrics_url == "http://127.0.0.1:9091/metrics"
        assert fetch("http://127.0.0.1:9091/health") == (200, "ok\n")
        status, page = fetch("http://127.0.0.1:9091/")
        assert status == 200 and "<h1>flame-object-cache</h1>" in page
    finally:
        assert server.stop() == 0
    checked = subprocess.run([str(BINARY), "--check-config"], capture_output=True, text=True,
                             env=hermetic_env(home), timeout=60)
    assert checked.returncode == 0 and "metrics:\n    port: 9091\n    bind: 127.0.0.1" in checked.stdout, checked


def test_an_explicit_busy_metrics_port_is_fatal() -> None:
    first = ServerProcess(["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--metrics-port", "0"])
    try:
        port = first.metrics_url.split(":")[2].split("/")[0]
        r = subprocess.run([str(BINARY), "--endpoint", "grpc://127.0.0.1:0", "--storage", "none",
                            "--metrics-port", port], capture_output=True, text=True, env=hermetic_env(), timeout=60)
        assert r.returncode != 0 and f"cannot listen for metrics on 127.0.0.1:{port}" in r.stdout + r.stderr
    finally:
        assert first.stop() == 0