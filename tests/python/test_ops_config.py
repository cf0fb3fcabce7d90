"""Configuration through the real binary: search order with a fake HOME, env overrides,
errors naming key and value, --check-config, bind/advertise."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow.flight as flight
import yaml

from conftest import BINARY, LISTED_ACTIONS, ServerProcess, hermetic_env


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, env=hermetic_env(env), timeout=60)


def check_config(args: list[str], env: dict[str, str] | None = None) -> dict:
    out = run(["--check-config", *args], env)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)["cache"]


def test_builtin_default(tmp_path: Path) -> None:
    out = run(["--check-config"], {"HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "# source: built-in default" in out.stdout
    cache = yaml.safe_load(out.stdout)["cache"]
    assert cache["endpoint"] == "grpc://127.0.0.1:9090"
    assert cache["storage"] == f"{tmp_path}/.flame/cache"
    assert cache["eviction"] == {"policy": "lru", "max_memory": "1G", "memory_full": "evict"}
    assert "# bind: grpc://127.0.0.1:9090" in out.stdout


def test_search_order_reads_home_at_run_time(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".flame").mkdir(parents=True)
    (home / ".flame/flame-cluster.yaml").write_text(
        "cluster:\n  name: flame\ncache:\n  endpoint: grpc://127.0.0.1:9191\n"
        "  eviction:\n    max_memory: 512M\n"
    )
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("cache:\n  endpoint: grpc://127.0.0.1:9292\n  storage: none\n")
    env = {"HOME": str(home)}
    cache = check_config([], env)
    assert cache["endpoint"] == "grpc://127.0.0.1:9191"
    assert cache["eviction"]["max_memory"] == "512M"
    assert cache["storage"] == "none"  # a file without storage: is memory-only (upstream)
    cache = check_config(["--config", str(explicit)], env)
    assert cache["endpoint"] == "grpc://127.0.0.1:9292"
    cache = check_config(["-c", str(explicit)], env)
    assert cache["endpoint"] == "grpc://127.0.0.1:9292"
    out = run(["--config", str(tmp_path / "missing.yaml")], env)
    assert out.returncode == 2
    assert "missing.yaml is not a file" in out.stderr


def test_every_key_round_trips_through_check_config(tmp_path: Path) -> None:
    text = """
cache:
  endpoint: grpc://127.0.0.1:9393
  network_interface: lo
  bind: 127.0.0.1
  advertised_endpoint: grpc://cache.example:9393
  storage: fs://cache
  capacity: 10G
  shutdown_grace_seconds: 5
  eviction: {policy: none, max_memory: 2G, max_objects: 100, memory_full: refuse}
  metrics: {port: 9100, bind: 127.0.0.1}
  log: {level: warn, file: logs/foc.log, max_size: 1M, max_files: 2}
  limits: {upload_memory: 512M, max_concurrent_uploads: 8, stalled_stream_seconds: 30}
  auth: {tokens_file: /etc/flame/tokens.yaml, anonymous: read}
"""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    out = run(["--check-config", "-c", str(cfg)], {"FLAME_HOME": str(tmp_path / "fh")})
    assert out.returncode == 0, out.stderr
    assert f"# storage: disk at {tmp_path}/fh/cache" in out.stdout
    assert "# advertise: grpc://cache.example:9393" in out.stdout
    assert yaml.safe_load(out.stdout) == yaml.safe_load(text)


def test_environment_and_command_line_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cache:\n  eviction:\n    max_memory: 1G\n    max_objects: 10\n  storage: /from/file\n")
    env = {
        "FLAME_CACHE_MAX_MEMORY": "2G",
        "FLAME_CACHE_MAX_OBJECTS": "20",
        "FLAME_CACHE_STORAGE": "/from/env",
        "FLAME_CACHE_EVICTION_POLICY": "none",
        "FLAME_CACHE_CAPACITY": "5G",
        "FLAME_CACHE_LOG_LEVEL": "debug",
    }
    cache = check_config(["-c", str(cfg)], env)
    assert cache["eviction"]["max_memory"] == "2G"
    assert cache["eviction"]["max_objects"] == 20
    assert cache["eviction"]["policy"] == "none"
    assert cache["storage"] == "/from/env"
    assert cache["capacity"] == "5G"
    assert cache["log"]["level"] == "debug"
    cache = check_config(["-c", str(cfg), "--max-memory", "3G", "--storage", "none", "--log-level", "error"], env)
    assert cache["eviction"]["max_memory"] == "3G"
    assert cache["storage"] == "none"
    assert cache["log"]["level"] == "error"


def test_invalid_values_stop_with_key_and_value(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cache:\n  eviction:\n    max_memory: 12Q\n")
    out = run(["-c", str(cfg)])
    assert out.returncode == 2
    assert "cache.eviction.max_memory: invalid value '12Q'" in out.stderr
    out = run(["--storage", "none"], {"FLAME_CACHE_MAX_OBJECTS": "many"})
    assert out.returncode == 2
    assert "FLAME_CACHE_MAX_OBJECTS: invalid value 'many'" in out.stderr
    cfg.write_text("cache:\n  endpoint: grpcs://127.0.0.1:0\n")
    out = run(["-c", str(cfg)])
    assert out.returncode == 2
    assert "uses TLS but cache.tls.cert_file" in out.stderr
    cfg.write_text("cluster:\n  name: x\n")
    out = run(["-c", str(cfg)])
    assert out.returncode == 2
    assert "no 'cache:' section" in out.stderr


def test_unknown_keys_are_warned_about(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cache:\n  endpoint: grpc://127.0.0.1:0\n  max_memroy: 1G\n")
    server = ServerProcess(["-c", str(cfg)])
    try:
        assert any("unknown configuration key 'cache.max_memroy'" in line for line in server.output)
    finally:
        assert server.stop() == 0


def test_wildcard_bind_advertises_a_dialable_address() -> None:
    server = ServerProcess(["--endpoint", "grpc://0.0.0.0:0", "--network-interface", "lo", "--storage", "none"])
    try:
        assert server.endpoint.startswith("grpc://127.0.0.1:")
        client = flight.connect(server.endpoint)
        assert [a.type for a in client.list_actions()] == LISTED_ACTIONS
        client.close()
    finally:
        assert server.stop() == 0


def test_ipv6_loopback() -> None:
    server = ServerProcess(["--endpoint", "grpc://[::1]:0", "--storage", "none"])
    try:
        assert server.endpoint.startswith("grpc://[::1]:")
        client = flight.connect(server.endpoint)
        assert [a.type for a in client.list_actions()] == LISTED_ACTIONS
        client.close()
    finally:
        assert server.stop() == 0


def test_log_file_under_flame_home(tmp_path: Path) -> None:
    server = ServerProcess(
        ["--endpoint", "grpc://127.0.0.1:0", "--storage", "none", "--log-file", "logs/foc.log"],
        env={"FLAME_HOME": str(tmp_path)},
    )
    assert server.stop() == 0
    text = (tmp_path / "logs/foc.log").read_text()
    assert "flame-object-cache" in text and "stopped" in text
